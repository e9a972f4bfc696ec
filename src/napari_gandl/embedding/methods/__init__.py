"""Embedding methods; each module registers one or more :class:`~..registry.MethodSpec`.

Adding a method = adding a module here and importing it below.
"""

from . import gandl, handcrafted  # noqa: F401

"""Embedding methods; each module registers one or more :class:`~..registry.MethodSpec`.

Adding a method = adding a module here and importing it below.
"""

# registration order is the column order of `gandl compare`
from napari_gandl.embedding.methods import gandl, untrained, handcrafted, combined, densenet, convae, simclr  # noqa: F401,I001
from napari_gandl.embedding.methods import dino, mae  # noqa: F401,I001

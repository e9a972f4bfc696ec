"""The registry of embedding methods: ``METHODS[name] -> MethodSpec``.

A method registers itself from its own module under ``embedding/methods/``::

    from napari_gandl.embedding.registry import MethodSpec, register

    register(MethodSpec("mymethod", load=load, train=None, needs_weights=False,
                        help="one line for --help"))

and ``embedding/methods/__init__.py`` imports that module.  The modules are
imported the first time the registry is asked for a method, so importing
``napari_gandl.embedding`` stays light.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from napari_gandl.embedding.base import Embedder

__all__ = ["MethodSpec", "METHODS", "register", "get_method", "method_names", "trainable_method_names",
           "method_runs", "expand_runs", "load_embedder"]


@dataclass(frozen=True)
class MethodSpec:
    """How to get a ready :class:`Embedder` of one method.

    load(source, plate, device, **options) -> Embedder
        ``source`` is a run folder or weights file (None for methods that need
        none); ``plate`` is the plate to be embedded (for methods that adapt to
        its stains); ``device`` is "auto", "cpu" or "cuda".
    train(plate, out_dir, minutes=None, kimg=None, device="auto", resume=False, seed=0, should_stop=None)
        -> Iterator[dict] of progress dicts ``{"kimg", "fraction", "img_per_s", "eta_s"}``
        as :func:`napari_gandl.gan.iterate_training` yields them, ending after the step at which
        ``should_stop()`` turns true, with a checkpoint; ``None`` for methods without training.
    needs_weights : whether ``load`` needs a ``source``.
    preview : what the images of its training preview show (e.g. "reconstructions"), when its
        ``train`` takes ``samples_every_s`` and then sends ``samples`` with its progress; "" when none.
    gan_options : whether its ``train`` also takes the GAN's config overrides (``gandl train``'s
        GAN-only options, as :func:`napari_gandl.gan.config.make_config` takes them).
    reads_several : whether its ``load`` takes a list of several sources and reads them together
        itself; otherwise each source is loaded alone and the rows are put side by side.
    """

    name: str
    load: Callable[..., Embedder]
    train: Callable[..., Iterator[dict]] | None = None
    needs_weights: bool = False
    help: str = ""
    preview: str = ""
    gan_options: bool = False
    reads_several: bool = False


METHODS: dict[str, MethodSpec] = {}
_LOADED = False


def register(spec: MethodSpec) -> MethodSpec:
    """Add a method (its name must be new)."""
    if spec.name in METHODS and METHODS[spec.name] is not spec:
        raise ValueError(f"embedding method {spec.name!r} is registered twice")
    METHODS[spec.name] = spec
    return spec


def _import_methods() -> None:
    global _LOADED
    if not _LOADED:
        importlib.import_module("napari_gandl.embedding.methods")
        _LOADED = True


def method_names() -> list[str]:
    """Registered method names, in registration order."""
    _import_methods()
    return list(METHODS)


def trainable_method_names() -> list[str]:
    """Registered methods with a train step (``gandl train --method``, the Train dock)."""
    return [name for name in method_names() if METHODS[name].train is not None]


def get_method(name: str) -> MethodSpec:
    _import_methods()
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown embedding method {name!r}; choose one of {', '.join(METHODS)}") from None


def method_runs(spec: MethodSpec, gan_options: dict | None = None) -> int:
    """How many runs a budget of method ``spec`` is split into by default (``gandl train``, ``gandl compare``):
    the GAN preset's (``gan.config.default_runs``) for the methods built from the GAN's config, one for the
    others."""
    if not spec.gan_options:
        return 1
    from napari_gandl.gan.config import default_runs

    return default_runs((gan_options or {}).get("preset", "quick"))


def expand_runs(sources) -> list[Path]:
    """Each source as the runs it holds: a folder that ``gandl train --runs N`` split a budget into gives
    its N runs (``torch_utils.runs.run_members``), which must all have been trained; anything else itself."""
    from napari_gandl.torch_utils.runs import missing_runs, run_members

    out = []
    for source in map(Path, sources):
        members = run_members(source)
        missing = missing_runs(source) if len(members) > 1 else []  # one run: its loader names what is missing
        if missing:
            raise ValueError(f"{source}: trained as {len(members)} runs read together, but {missing[0]} has no "
                             f"checkpoint yet; finish it with gandl train PLATE --out {source} --resume")
        out += members
    return out


def load_embedder(name: str, source=None, plate=None, device: str = "auto", **options) -> Embedder:
    """A ready embedder of method ``name`` (see :class:`MethodSpec`). ``source`` may be a list of
    several run folders or weights files of the method: they are read together, each site's row
    their features side by side (:class:`~napari_gandl.embedding.joined.JoinedEmbedder`); so are the
    runs of one folder that ``gandl train`` split its budget into (:func:`expand_runs`)."""
    spec = get_method(name)
    sources = [] if source is None else list(source) if isinstance(source, (list, tuple)) else [source]
    if sources and spec.needs_weights:
        sources = expand_runs(sources)
    if len(sources) > 1:
        if spec.reads_several:
            return spec.load([Path(s) for s in sources], plate, device, **options)
        if not spec.needs_weights:
            raise ValueError(f"embedding method {name!r} reads no run folder or weights file, so "
                             f"several cannot be read together")
        from napari_gandl.embedding.joined import JoinedEmbedder

        return JoinedEmbedder([_load_one(spec, s, plate, device, options) for s in sources])
    if spec.needs_weights and not sources:
        raise ValueError(f"embedding method {name!r} needs a run folder or weights file (--checkpoint): "
                         f"{spec.help}")
    return _load_one(spec, sources[0] if sources else None, plate, device, options)


def _load_one(spec: MethodSpec, source, plate, device: str, options: dict) -> Embedder:
    embedder = spec.load(None if source is None else Path(source), plate, device, **options)
    if embedder.source is None and source is not None:
        embedder.source = Path(source)
    return embedder

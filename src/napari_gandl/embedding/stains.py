"""Stain mapping: let a model embed a plate imaged with a different stain set.

Stains are matched by name (``'w2 ConA'``, ``'ConA'`` and ``'concanavalin'``
are the same stain; see :data:`napari_gandl.plate.stains.KNOWN_DYES`), never
by position.  RxRx1 has six stains and RxRx19a five: an RxRx19a model embeds
RxRx1 with ``w4 MitoTracker`` dropped and ``w6 WGA`` moved to the fifth slot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from napari_gandl.plate.stains import known_dye

__all__ = ["StainMapError", "stain_key", "map_stains", "read_stain_map", "resolve_stain_map",
           "RXRX1_STAIN_ORDER", "RXRX19A_STAIN_ORDER"]

RXRX1_STAIN_ORDER = ("Hoechst", "ConA", "Phalloidin", "SYTO14", "MitoTracker", "WGA")
RXRX19A_STAIN_ORDER = ("Hoechst", "ConA", "Phalloidin", "SYTO14", "WGA")


class StainMapError(ValueError):
    """The plate's stains cannot be mapped onto the model's; the message names them."""


def stain_key(name: str) -> str | None:
    """Canonical stain of a channel name ('w2 ConA' -> 'cona'); None when no known dye is named."""
    dye = known_dye(name)
    return None if dye is None else dye[0].lower()


def _find(name: str, source_names: Sequence[str]) -> int | None:
    """Index of ``name`` in ``source_names``: the exact name, else the same known stain."""
    if name in source_names:
        return list(source_names).index(name)
    key = stain_key(name)
    keys = [stain_key(s) for s in source_names]
    return keys.index(key) if key is not None and key in keys else None


def map_stains(source_names: Sequence[str], target_names: Sequence[str]) -> list[int]:
    """Index into ``source_names`` for each target stain, matched by stain name.

    ``map_stains(['w1 Hoechst', 'w2 ConA', 'w3 Phalloidin', 'w4 SYTO14', 'w5 MitoTracker', 'w6 WGA'],
    RXRX19A_STAIN_ORDER)`` is ``[0, 1, 2, 3, 5]``.  Raises :class:`StainMapError`
    naming every target stain that has no match.
    """
    out, missing = [], []
    for t in target_names:
        i = _find(t, source_names)
        (missing.append(t) if i is None else out.append(i))
    if missing:
        raise StainMapError(
            f"stain{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} of the model "
            f"not found among the plate's stains {list(source_names)}"
        )
    return out


def read_stain_map(path) -> dict[str, str]:
    """A stain-map file: CSV with columns ``model_stain,plate_stain``, one row per model stain."""
    import pandas as pd

    path = Path(path)
    try:
        table = pd.read_csv(path, dtype=str, skipinitialspace=True)
    except FileNotFoundError:
        raise StainMapError(f"stain map {path}: no such file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise StainMapError(f"stain map {path}: not a CSV file ({str(exc).strip()})") from None
    if list(table.columns) != ["model_stain", "plate_stain"]:
        raise StainMapError(f"stain map {path}: needs the columns model_stain,plate_stain, "
                            f"found {list(table.columns)}")
    if table.isna().any().any():
        raise StainMapError(f"stain map {path}: empty cells")
    return dict(zip(table["model_stain"].str.strip(), table["plate_stain"].str.strip()))


def resolve_stain_map(plate_stains: Sequence[str], model_stains: Sequence[str],
                      stain_map=None) -> list[int] | None:
    """Which plate channel feeds each model stain; None when the plate's channels go in as they are.

    ``stain_map`` is None (the stain counts must agree; the channels are used in
    order), ``"auto"`` (match by stain name), a mapping ``{model stain: plate
    stain}``, the path of a stain-map CSV (see :func:`read_stain_map`) or a
    list of plate channel indices.
    """
    plate_stains, model_stains = list(plate_stains), list(model_stains)
    if stain_map is None:
        if len(plate_stains) != len(model_stains):
            raise StainMapError(
                f"the plate has {len(plate_stains)} stains ({', '.join(plate_stains)}) but the model "
                f"expects {len(model_stains)} ({', '.join(model_stains)}); map them by name with "
                f"--stain-map auto (or a stain-map file)"
            )
        return None
    if isinstance(stain_map, str) and stain_map == "auto":
        index = map_stains(plate_stains, model_stains)
    elif isinstance(stain_map, (str, Path)):
        index = _from_mapping(read_stain_map(stain_map), plate_stains, model_stains, f"stain map {stain_map}")
    elif isinstance(stain_map, Mapping):
        index = _from_mapping(stain_map, plate_stains, model_stains, "stain map")
    else:
        index = [int(i) for i in stain_map]
        if len(index) != len(model_stains) or not all(0 <= i < len(plate_stains) for i in index):
            raise StainMapError(f"stain map {index}: needs {len(model_stains)} plate channel indices "
                                f"in 0..{len(plate_stains) - 1}")
    return None if index == list(range(len(plate_stains))) else index


def _from_mapping(mapping: Mapping[str, str], plate_stains, model_stains, label: str) -> list[int]:
    by_model = {}
    for model_name, plate_name in mapping.items():
        i = _find(model_name, model_stains)
        if i is None:
            raise StainMapError(f"{label}: {model_name!r} is not one of the model's stains {model_stains}")
        by_model[i] = plate_name
    unmapped = [model_stains[i] for i in range(len(model_stains)) if i not in by_model]
    if unmapped:
        raise StainMapError(f"{label}: no plate stain given for the model's {', '.join(map(repr, unmapped))}")
    index, missing = [], []
    for i in range(len(model_stains)):
        j = _find(by_model[i], plate_stains)
        (missing.append(by_model[i]) if j is None else index.append(j))
    if missing:
        raise StainMapError(f"{label}: {', '.join(map(repr, missing))} not among the plate's stains {plate_stains}")
    return index

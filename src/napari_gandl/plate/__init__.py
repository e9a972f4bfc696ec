"""Plate model (Qt-free): RxRx folders and TIFF folders as a site table + lazy pixels."""

from __future__ import annotations

import os
from pathlib import Path

from napari_gandl.plate.model import Plate, PlateError, PlateWarning, TileError
from napari_gandl.plate.rxrx import looks_like_rxrx, open_rxrx
from napari_gandl.plate.stains import Stain
from napari_gandl.plate.tiff import open_tiff_folder, tiff_files

__all__ = ["Plate", "PlateError", "PlateWarning", "TileError", "Stain", "open_plate", "can_open"]


def can_open(path) -> bool:
    """Whether ``path`` looks like a plate folder; decodes no image and never raises."""
    try:
        path = Path(path)
        return path.is_dir() and (looks_like_rxrx(path) or bool(tiff_files(path)))
    except OSError:
        return False


def open_plate(path) -> Plate:
    """Open an RxRx dataset root, experiment or ``Plate{n}`` folder, or a folder of TIFFs; a plate
    already open is returned as it is, so that whatever takes a plate also takes its folder.

    Raises PlateError (naming the folder or file) when nothing readable is found.
    """
    if not isinstance(path, (str, os.PathLike)):
        return path
    path = Path(path).expanduser()
    plate = _open(path)
    plate.source = path.absolute()
    return plate


def _open(path: Path) -> Plate:
    if not path.exists():
        raise PlateError(f"{path}: no such folder")
    if not path.is_dir():
        raise PlateError(f"{path}: is a file; open the plate folder that holds it")
    if looks_like_rxrx(path) or (path / "metadata.csv").is_file():
        return open_rxrx(path)
    if tiff_files(path):
        return open_tiff_folder(path)
    if not any(path.iterdir()):
        raise PlateError(f"{path}: folder is empty")
    raise PlateError(
        f"{path}: neither an RxRx folder (metadata.csv + images/<experiment>/Plate<n>/"
        "<well>_s<site>_w<channel>.png) nor a folder of .tif files"
    )

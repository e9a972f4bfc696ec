"""napari reader: a plate folder becomes one lazy image layer per stain."""

from __future__ import annotations

import threading
import warnings

from napari_gandl._viewer import follow_slider, plate_layer_data
from napari_gandl.plate import can_open, open_plate


def napari_get_reader(path):
    """Return a reader for RxRx or TIFF plate folders, or None for anything else.

    Never raises: napari then offers the folder to other plugins.
    """
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    try:
        return read_plate if can_open(path) else None
    except Exception:  # a reader probe must never break napari's open dialog
        return None


def read_plate(path) -> list[tuple]:
    if isinstance(path, list):
        path = path[0]
    # napari builds pint's unit registry (0.5-1 s) when it creates its first layer;
    # building it here, while the folder is scanned and the contrast sample decoded,
    # takes it off the time to the first site. Joined before returning, so napari's
    # own thread never meets a half-built registry.
    units = threading.Thread(target=_build_unit_registry, name="gandl-units", daemon=True)
    units.start()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            plate = open_plate(path)  # a PlateError names the folder; napari shows it
        for w in caught:
            _notify(str(w.message))
        _follow_slider_of_current_viewer()
        return plate_layer_data(plate)
    finally:
        units.join()


def _build_unit_registry() -> None:
    import pint

    pint.get_application_registry().pixel  # the first unit napari asks for; builds the registry


def _follow_slider_of_current_viewer() -> None:
    """Bridge the site slider as soon as the layers arrive, so the canvas says which site is
    shown even before a dock is opened (docks bridge their own viewer again; idempotent)."""
    import napari

    viewer = napari.current_viewer()
    if viewer is not None:
        follow_slider(viewer)


def _notify(message: str) -> None:
    from napari.utils.notifications import show_warning

    show_warning(message)

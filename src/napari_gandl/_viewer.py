"""A plate in a napari viewer: its layers, its site table and the site slider (no Qt widgets).

Each opened plate has one :class:`~napari_gandl.viewmodels.SiteTable` (the
reader puts it in every stain layer's ``metadata["napari_gandl"]``): its
metadata and the docks' per-site results, announcing changes with psygnal
events. This module builds those layers, and is the one place where napari's
site slider is bridged to ``SiteTable.current``, both ways, and where the
current site is described on the canvas (the viewer's text overlay) so the
user always sees which well, condition and compound is shown. The reader and
every dock use it.
"""

from __future__ import annotations

import sys
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from napari_gandl.viewmodels import SiteTable

if TYPE_CHECKING:
    import napari
    from napari.layers import Image

    from napari_gandl.plate import Plate


def plate_layer_data(plate: Plate) -> list[tuple]:
    """Layer data for a plate: one ``(site, y, x)`` image layer per stain.

    Each layer's data is the lazy dask array of one stain (``plate.stain(c)``,
    one chunk per tile): showing a site decodes only its tiles. Contrast
    limits come from a few sample sites (napari would otherwise compute them
    over the whole array, i.e. read the whole plate). napari's own dask cache
    is off: it would keep every tile shown, up to a quarter of the memory,
    where the plate's cache of the last tiles already makes stepping back
    instant (bench_open.py measures memory after browsing).
    """
    metadata = {"napari_gandl": {"site_table": SiteTable(plate), "root": str(plate.root)}}
    common = {"blending": "additive", "metadata": metadata, "axis_labels": ("site", "y", "x"), "multiscale": False,
              "cache": False}
    if plate.pixel_size_um:
        common["scale"] = (1.0, plate.pixel_size_um, plate.pixel_size_um)
        common["units"] = ("", "micrometer", "micrometer")
    # The contrast sample is decoded (which releases the GIL) while dask.array is imported here.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gandl-contrast") as side:
        sampled = side.submit(plate.contrast_limits)
        data = [plate.stain(c) for c in range(plate.n_channels)]
        limits = sampled.result()
    _threaded_scheduler_unless_configured()
    return [
        (data[c], {**common, "name": stain.label, "colormap": stain_colormap(stain), "contrast_limits": limits[c]},
         "image")
        for c, stain in enumerate(plate.stains)
    ]


def _threaded_scheduler_unless_configured() -> None:
    """napari computes every slice of the stain layers with dask's configured scheduler. With
    none configured, dask imports ``distributed`` on the first slice to look for a client, which
    holds back the first site (bench_open). No client can exist while ``distributed`` is not
    imported, so dask's threaded scheduler, its default for arrays, is configured then; a
    ``distributed.Client`` created later makes itself the scheduler as usual."""
    import dask

    if dask.config.get("scheduler", None) is None and "distributed" not in sys.modules:
        import dask.threaded

        dask.config.set(scheduler=dask.threaded.get)


def stain_colormap(stain) -> tuple:
    """``(name, Colormap)`` from black to the stain's colour, as napari layers take it."""
    from napari.utils.colormaps import Colormap

    name = f"gandl {stain.label}"
    return name, Colormap([[0, 0, 0, 1], [*stain.color, 1]], name=name)


def plate_layers(viewer: napari.viewer.Viewer) -> list[Image]:
    """The stain layers of the first plate napari-gandl opened in ``viewer``."""
    layers = [layer for layer in viewer.layers if "site_table" in layer.metadata.get("napari_gandl", {})]
    if not layers:
        return []
    first = _table_of(layers[0])
    return [layer for layer in layers if _table_of(layer) is first]


def _table_of(layer) -> SiteTable | None:
    return layer.metadata.get("napari_gandl", {}).get("site_table")


def site_table(viewer: napari.viewer.Viewer) -> SiteTable | None:
    """The site table of the plate open in ``viewer`` (bridged to its slider)."""
    layers = plate_layers(viewer)
    if not layers:
        return None
    follow_slider(viewer)
    return _table_of(layers[0])


def current_plate(viewer: napari.viewer.Viewer) -> Plate | None:
    table = site_table(viewer)
    return table.plate if table is not None else None


def site_axis(viewer: napari.viewer.Viewer) -> int:
    """The slider axis of the plate's sites (plate layers are ``(site, y, x)``, aligned on the right)."""
    return max(0, viewer.dims.ndim - 3)


def show_site(viewer: napari.viewer.Viewer, site_index: int) -> None:
    """Move the site slider to ``site_index``."""
    viewer.dims.set_current_step(site_axis(viewer), int(site_index))


# --------------------------------------------------------------------------- slider <-> SiteTable.current

_BRIDGED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # viewer -> WeakSet of bridged tables


def follow_slider(viewer: napari.viewer.Viewer) -> None:
    """Bridge the site slider of ``viewer`` and ``SiteTable.current`` of each plate in it, both
    ways, show the current site's description on the canvas, and list the files of a plate
    opened from its metadata in the background. Idempotent; plates opened later are bridged as
    their layers arrive."""
    if viewer not in _BRIDGED:
        _BRIDGED[viewer] = weakref.WeakSet()
        ref = weakref.ref(viewer)
        viewer.dims.events.current_step.connect(lambda event: _slider_moved(ref()))
        viewer.layers.events.inserted.connect(lambda event: _bind_tables(ref()))
        viewer.layers.events.removed.connect(lambda event: _stop_checks(ref()))
    _bind_tables(viewer)


def _tables_in(viewer) -> list[SiteTable]:
    tables = [_table_of(layer) for layer in viewer.layers]
    return list({id(t): t for t in tables if t is not None}.values())


def _bind_tables(viewer) -> None:
    from qtpy.QtCore import QTimer

    if viewer is None:
        return
    bound = _BRIDGED[viewer]
    ref = weakref.ref(viewer)
    for table in _tables_in(viewer):
        if table in bound:
            continue
        bound.add(table)
        table.current_changed.connect(lambda i, t=weakref.ref(table): _current_changed(ref(), t(), i))
        _slider_moved(viewer)
        # The first description waits for the next turn of the event loop, after the layers'
        # first paint: its glyphs are rendered on the CPU (0.3 s in a bench_open profile), and
        # the site should not wait for its label.
        QTimer.singleShot(0, lambda t=weakref.ref(table): _describe(ref(), t()))
        QTimer.singleShot(FILE_CHECK_DELAY_MS, lambda t=weakref.ref(table): _check_files(t()))


def _slider_moved(viewer) -> None:
    if viewer is None:
        return
    step = int(viewer.dims.current_step[site_axis(viewer)])
    for table in _tables_in(viewer):
        if len(table):
            table.current = min(max(step, 0), len(table) - 1)


def _current_changed(viewer, table, i: int) -> None:
    if viewer is None or table is None or not any(t is table for t in _tables_in(viewer)):
        return
    if int(viewer.dims.current_step[site_axis(viewer)]) != i:
        show_site(viewer, i)
    _describe(viewer, table)


_CHECKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # table -> the worker listing its files

# Listing a plate's files starts this long after its layers arrive, so that it does not compete
# with the first paint for the 2 cores and the interpreter: started on the next turn of the event
# loop it began before the first site was drawn, which then took 3.21 s instead of 3.00 s on a
# 307,200-site screen (bench_scale.py, napari against napari_deferred).
FILE_CHECK_DELAY_MS = 2000


def _check_files(table) -> None:
    """List the files of a plate opened from its metadata in a worker thread (``Plate.check_files``),
    with a progress bar; then the site table takes the sites' problems and a warning names the
    missing files. Stopped when the plate's layers leave the viewer (the plate stays unchecked)."""
    if table is None or table.plate.files_checked or table in _CHECKS:
        return
    from napari.qt.threading import create_worker
    from napari.utils import progress
    from napari.utils.notifications import show_error, show_warning

    plate = table.plate
    bar = progress(desc=f"Listing the files of {plate.root.name}")

    def step(listed) -> None:
        bar.total = listed[1]
        bar.update(listed[0] - bar.n)

    def returned(listed_here) -> None:
        if plate.files_checked:
            table.files_checked()
            for message in plate.file_report.messages if listed_here else []:
                show_warning(message)

    worker = create_worker(plate.check_files, _ignore_errors=True)
    worker.yielded.connect(step)
    worker.returned.connect(returned)
    worker.errored.connect(lambda exc: show_error(f"Listing the files of {plate.root}: {exc}"))
    worker.finished.connect(bar.close)
    worker.finished.connect(lambda: _CHECKS.pop(table, None))
    _CHECKS[table] = worker
    worker.start()


def _stop_checks(viewer) -> None:
    """Stop listing the files of plates whose layers have left ``viewer``."""
    if viewer is None:
        return
    shown = _tables_in(viewer)
    for table in list(_BRIDGED.get(viewer, ())):
        if table in _CHECKS and not any(t is table for t in shown):
            _CHECKS[table].quit()


def _describe(viewer, table) -> None:
    """What the shown site is (well, cell type, condition, compound, dose), on the canvas."""
    if viewer is None or table is None:
        return
    layers = plate_layers(viewer)
    if not layers or _table_of(layers[0]) is not table:  # only the first plate's sites are described
        return
    overlay = viewer.text_overlay
    overlay.text = table.describe(table.current)
    overlay.position = "top_left"
    overlay.visible = True


def look_at(viewer: napari.viewer.Viewer, layers, margin: float = 0.05) -> None:
    """Move the 2-D view so that the 2-D ``layers`` fill the canvas (``viewer.fit_to_view`` cannot
    take 2-D layers beside 3-D ones)."""
    import numpy as np

    lo = np.min([layer.extent.world[0][-2:] for layer in layers], axis=0)
    hi = np.max([layer.extent.world[1][-2:] for layer in layers], axis=0)
    size = np.maximum(hi - lo, 1e-9)
    viewer.camera.center = tuple((lo + hi) / 2)
    viewer.camera.zoom = float((1 - 2 * margin) * np.min(np.asarray(viewer.canvas.size, float) / size))

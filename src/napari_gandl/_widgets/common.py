"""What every dock widget shares: finding the plate, its site table, running work off the GUI thread.

Each opened plate has one :class:`~napari_gandl.viewmodels.SiteTable` (the
reader puts it in every stain layer's ``metadata["napari_gandl"]``): its
metadata and the docks' per-site results, announcing changes with psygnal
events. This module is the one place where napari's site slider is bridged to
``SiteTable.current``, both ways, and where the current site is described on
the canvas (the viewer's text overlay) so the user always sees which well,
condition and compound is shown.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Callable, Iterable

if TYPE_CHECKING:
    import napari
    from napari.layers import Image

    from napari_gandl.plate import Plate
    from napari_gandl.viewmodels import SiteTable


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


def device_choices() -> list[str]:
    """``auto`` plus the devices torch can use here."""
    import torch

    choices = ["auto", "cpu"]
    if torch.cuda.is_available():
        choices += ["cuda"] + [f"cuda:{i}" for i in range(1, torch.cuda.device_count())]
    return choices


# --------------------------------------------------------------------------- slider <-> SiteTable.current

_BRIDGED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # viewer -> WeakSet of bridged tables


def follow_slider(viewer: napari.viewer.Viewer) -> None:
    """Bridge the site slider of ``viewer`` and ``SiteTable.current`` of each plate in it, both
    ways, and show the current site's description on the canvas. Idempotent; plates opened
    later are bridged as their layers arrive."""
    if viewer not in _BRIDGED:
        _BRIDGED[viewer] = weakref.WeakSet()
        ref = weakref.ref(viewer)
        viewer.dims.events.current_step.connect(lambda event: _slider_moved(ref()))
        viewer.layers.events.inserted.connect(lambda event: _bind_tables(ref()))
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


def start_worker(
    function: Callable,
    *args,
    buttons: Iterable = (),
    title: str = "napari-gandl",
    on_yielded: Callable | None = None,
    on_returned: Callable | None = None,
    on_finished: Callable | None = None,
    on_errored: Callable | None = None,
    progress_total: int = 0,
    **kwargs,
):
    """Run ``function`` (plain or generator) in a napari ``thread_worker``.

    The ``buttons`` are disabled while it runs and re-enabled however it ends;
    an exception becomes a napari error notification naming ``title`` and the
    cause (and is passed to ``on_errored``), never a silent failure. Returns the started worker (``quit()`` asks
    a generator to stop at its next ``yield``).
    """
    from napari.qt.threading import create_worker
    from napari.utils.notifications import show_error

    buttons = list(buttons)
    worker = create_worker(
        function,
        *args,
        _progress={"total": progress_total, "desc": title} if progress_total else False,
        _ignore_errors=True,  # errors become the notification below, not a re-raise in a Qt slot
        **kwargs,
    )
    for button in buttons:
        button.enabled = False

    def finished():
        for button in buttons:
            try:
                button.enabled = True
            except RuntimeError:  # its dock was closed with the viewer while the worker ran
                pass
        if on_finished is not None:
            on_finished()

    def errored(exc: Exception):
        show_error(f"{title} failed: {exc}")
        if on_errored is not None:
            try:
                on_errored(exc)
            except RuntimeError:  # its dock was closed meanwhile
                pass

    if on_yielded is not None and hasattr(worker, "yielded"):
        worker.yielded.connect(on_yielded)
    if on_returned is not None:
        worker.returned.connect(on_returned)
    worker.errored.connect(errored)
    worker.finished.connect(finished)
    worker.start()
    return worker


def look_at(viewer: napari.viewer.Viewer, layers, margin: float = 0.05) -> None:
    """Move the 2-D view so that the 2-D ``layers`` fill the canvas (``viewer.fit_to_view`` cannot
    take 2-D layers beside 3-D ones)."""
    import numpy as np

    lo = np.min([layer.extent.world[0][-2:] for layer in layers], axis=0)
    hi = np.max([layer.extent.world[1][-2:] for layer in layers], axis=0)
    size = np.maximum(hi - lo, 1e-9)
    viewer.camera.center = tuple((lo + hi) / 2)
    viewer.camera.zoom = float((1 - 2 * margin) * np.min(np.asarray(viewer.canvas.size, float) / size))


def scroll_area(body):
    """A vertical scroll area around the magicgui container ``body``: a dock holding it asks
    for little height, so several docks fit a 1080-pixel screen, and scrolls when squeezed."""
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QFrame, QScrollArea, QSizePolicy

    body.native.layout().addStretch(1)  # extra height goes below the widgets, not between them
    # never shorter than its natural height (Minimum: no shrinking): it scrolls instead of squeezing
    body.native.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
    area.setWidget(body.native)
    area.setMinimumWidth(body.native.minimumSizeHint().width() + 16)
    return area


def docked_figure(viewer: napari.viewer.Viewer, name: str, figsize=(5, 4)):
    """A matplotlib figure in a dock widget, coloured like napari's theme.

    Returns ``(figure, canvas)``; call ``canvas.draw_idle()`` after drawing.
    """
    from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
    from matplotlib.figure import Figure
    from napari.utils.theme import get_theme

    theme = get_theme(viewer.theme)
    background = theme.background.as_hex()
    foreground = theme.text.as_hex()
    figure = Figure(figsize=figsize, facecolor=background)
    canvas = FigureCanvasQTAgg(figure)
    figure.gandl_colors = {"background": background, "foreground": foreground}
    viewer.window.add_dock_widget(canvas, name=name, area="right")
    return figure, canvas


def style_axes(figure, ax) -> None:
    """Apply the napari theme colours of ``docked_figure`` to an axes."""
    colors = getattr(figure, "gandl_colors", {"background": "white", "foreground": "black"})
    ax.set_facecolor(colors["background"])
    for spine in ax.spines.values():
        spine.set_color(colors["foreground"])
    ax.tick_params(colors=colors["foreground"])
    ax.xaxis.label.set_color(colors["foreground"])
    ax.yaxis.label.set_color(colors["foreground"])
    ax.title.set_color(colors["foreground"])


# --------------------------------------------------------------------------- remembered parameters


def settings_path(name: str):
    """JSON file where the widget ``name`` keeps its last parameters.

    In the user config folder (``platformdirs``), or in ``$NAPARI_GANDL_CONFIG_DIR``
    when that is set (tests, portable installs).
    """
    import os
    from pathlib import Path

    base = os.environ.get("NAPARI_GANDL_CONFIG_DIR")
    if not base:
        from platformdirs import user_config_dir

        base = user_config_dir("napari-gandl", appauthor=False)
    return Path(base) / f"{name}.json"


def load_settings(name: str) -> dict:
    """The saved parameters of widget ``name`` (empty when none or unreadable)."""
    import json

    path = settings_path(name)
    try:
        values = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return values if isinstance(values, dict) else {}


def save_settings(name: str, values: dict) -> None:
    """Save widget parameters (JSON-able values) atomically; never raises on I/O errors."""
    import json
    import os

    path = settings_path(name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(values, indent=1, default=str))
        os.replace(tmp, path)
    except OSError:
        pass


def remember(container, name: str, fields: Iterable[str]) -> None:
    """Restore the magicgui sub-widgets ``fields`` of ``container`` from the last
    session, and save them whenever one changes.

    A saved value that no longer fits (a choice that disappeared) is skipped.
    """
    from pathlib import Path

    fields = list(fields)
    saved = load_settings(name)
    for field in fields:
        if field in saved:
            try:
                getattr(container, field).value = saved[field]
            except Exception:  # noqa: BLE001 - stale or invalid saved value
                pass

    def store(*_):
        values = {}
        for field in fields:
            value = getattr(container, field).value
            values[field] = str(value) if isinstance(value, Path) else value
            if isinstance(values[field], (tuple, list)):
                values[field] = [str(v) for v in values[field]]
        save_settings(name, values)

    for field in fields:
        getattr(container, field).changed.connect(store)

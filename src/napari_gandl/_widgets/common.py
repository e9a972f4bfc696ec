"""What every dock widget shares: running work off the GUI thread, scroll areas, docked
figures, remembered settings. Finding the plate and its site table in a viewer is
:mod:`napari_gandl._viewer`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable

if TYPE_CHECKING:
    import napari


def device_choices() -> list[str]:
    """``auto`` plus the devices torch can use here."""
    import torch

    choices = ["auto", "cpu"]
    if torch.cuda.is_available():
        choices += ["cuda"] + [f"cuda:{i}" for i in range(1, torch.cuda.device_count())]
    return choices


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

    from napari_gandl.files import write_text

    try:
        write_text(settings_path(name), json.dumps(values, indent=1, default=str))
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

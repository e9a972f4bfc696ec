"""What every dock widget shares: finding the plate, its site table, running work off the GUI thread.

The plate's site table (``layer.metadata["sites"]``, one DataFrame shared by
all stain layers of a plate, one row per slider position) is the plate's
*features* table: napari image layers have no ``features``, so widgets add
their per-site results (embedding columns, SVM scores, selections) to it as
columns, and every other widget finds them there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable

import pandas as pd

if TYPE_CHECKING:
    import napari
    from napari.layers import Image

    from napari_gandl.plate import Plate


def plate_layers(viewer: napari.viewer.Viewer) -> list[Image]:
    """The stain layers of the first plate napari-gandl opened in ``viewer``."""
    layers = [layer for layer in viewer.layers if "napari_gandl" in layer.metadata]
    if not layers:
        return []
    first = layers[0].metadata["napari_gandl"]["plate"]
    return [layer for layer in layers if layer.metadata["napari_gandl"]["plate"] is first]


def current_plate(viewer: napari.viewer.Viewer) -> Plate | None:
    layers = plate_layers(viewer)
    return layers[0].metadata["napari_gandl"]["plate"] if layers else None


def site_table(viewer: napari.viewer.Viewer) -> pd.DataFrame | None:
    """The shared per-site table (metadata and results) of the open plate."""
    layers = plate_layers(viewer)
    return layers[0].metadata["sites"] if layers else None


def add_site_columns(viewer: napari.viewer.Viewer, columns: pd.DataFrame) -> pd.DataFrame:
    """Add or replace per-site columns in the plate's table, in place.

    ``columns`` is aligned with the table by ``site_id`` when it has that
    column, otherwise by row order (it must then have one row per site).
    Returns the table.
    """
    table = site_table(viewer)
    if table is None:
        raise ValueError("no plate is open: open a plate folder first")
    if "site_id" in columns:
        aligned = columns.set_index("site_id").reindex(table["site_id"]).reset_index(drop=True)
    else:
        if len(columns) != len(table):
            raise ValueError(f"{len(columns)} rows given for a plate of {len(table)} sites")
        aligned = columns.reset_index(drop=True)
    new = aligned.drop(columns=[c for c in aligned.columns if c == "site_id"])
    for name in new.columns:
        table[name] = new[name].to_numpy()
    return table


def show_site(viewer: napari.viewer.Viewer, site_index: int) -> None:
    """Move the site slider to ``site_index``."""
    viewer.dims.set_current_step(0, int(site_index))


def start_worker(
    function: Callable,
    *args,
    buttons: Iterable = (),
    title: str = "napari-gandl",
    on_yielded: Callable | None = None,
    on_returned: Callable | None = None,
    on_finished: Callable | None = None,
    progress_total: int = 0,
    **kwargs,
):
    """Run ``function`` (plain or generator) in a napari ``thread_worker``.

    The ``buttons`` are disabled while it runs and re-enabled however it ends;
    an exception becomes a napari error notification naming ``title`` and the
    cause, never a silent failure. Returns the started worker (``quit()`` asks
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

    if on_yielded is not None and hasattr(worker, "yielded"):
        worker.yielded.connect(on_yielded)
    if on_returned is not None:
        worker.returned.connect(on_returned)
    worker.errored.connect(errored)
    worker.finished.connect(finished)
    worker.start()
    return worker


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


# --------------------------------------------------------------------------- embeddings in the site table

EMBEDDING_ATTR = "napari_gandl_embedding"


def set_embedding(viewer: napari.viewer.Viewer, frame: pd.DataFrame, columns: list[str], source: str) -> pd.DataFrame:
    """Attach an embedding (``site_id`` + feature ``columns``) to the plate's site table, in place.

    Columns of a previously attached embedding are removed first; the table
    remembers which columns form the embedding (see ``embedding_columns``).
    Hundreds of columns are joined in one step (adding them one by one costs
    about a second of GUI time on a small machine), and the table stays the
    same DataFrame object that every stain layer holds.
    """
    table = site_table(viewer)
    if table is None:
        raise ValueError("no plate is open: open a plate folder first")
    columns = list(columns)
    old = table.attrs.get(EMBEDDING_ATTR, {}).get("columns", [])
    if "site_id" in frame:
        aligned = frame.set_index(frame["site_id"].astype(str))[columns].reindex(table["site_id"].astype(str))
    else:
        if len(frame) != len(table):
            raise ValueError(f"{len(frame)} rows given for a plate of {len(table)} sites")
        aligned = frame[columns]
    aligned = aligned.set_axis(table.index, axis=0)
    drop = [c for c in table.columns if c in set(old) | set(columns)]
    combined = pd.concat([table.drop(columns=drop), aligned], axis=1)
    combined.attrs = dict(table.attrs)
    try:
        table._update_inplace(combined)  # pandas' own in-place replacement (drop(inplace=True) uses it)
    except AttributeError:  # pragma: no cover - a pandas without it: the slow public way
        import warnings

        table.drop(columns=drop, inplace=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pd.errors.PerformanceWarning)
            for name in columns:
                table[name] = aligned[name].to_numpy()
    table.attrs[EMBEDDING_ATTR] = {"columns": columns, "source": str(source)}
    return table


def embedding_columns(viewer: napari.viewer.Viewer) -> list[str]:
    """Feature columns of the embedding attached to the open plate (empty when none)."""
    table = site_table(viewer)
    if table is None:
        return []
    return [c for c in table.attrs.get(EMBEDDING_ATTR, {}).get("columns", []) if c in table.columns]

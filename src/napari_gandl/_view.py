"""``gandl view``: a plate opened in napari with its embedding attached and the browsing docks open.

``gandl view DIR`` takes a ``gandl demo`` output folder (``plate/``,
``embeddings.parquet``, ``report/``) or a plate folder (with ``--embeddings``).
The embedding is loaded through the Embed dock, exactly as a user would load
it; once it is attached, the perturbation plot, dose-response and
similar-sites docks run on it, and the plate map shows the wells by condition.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PLUGIN = "napari-gandl"
#: the docks ``gandl view`` opens (manifest display names): the plate map above, the others in tabs
#: below it, the perturbation plot in front; and the docks that analyse the embedding once attached
DOCKS = ("Plate map", "Perturbation-axis plot", "Dose-response", "Similar sites", "GAN-DL embeddings")
ANALYSES = ("Perturbation-axis plot", "Dose-response", "Similar sites")


@dataclass
class ViewInputs:
    plate: Path
    embeddings: Path | None
    report: Path | None


def find_inputs(folder, embeddings=None) -> ViewInputs:
    """The plate, embedding table and report of a demo output folder, or of a plate folder."""
    from napari_gandl.plate import can_open

    folder = Path(folder)
    if not folder.exists():
        raise FileNotFoundError(f"{folder}: no such folder")
    demo = folder / "plate"
    if (folder / "embeddings.parquet").is_file() or (demo.is_dir() and can_open(demo)):
        plate = demo
        found = folder / "embeddings.parquet"
        report = folder / "report" / "report.html"
    else:
        plate, found, report = folder, None, None
    if not can_open(plate):
        raise ValueError(f"{plate}: not a plate folder (no metadata.csv + images/ or TIFF files), "
                         "nor a gandl demo folder (plate/, embeddings.parquet)")
    table = Path(embeddings) if embeddings else found
    if table is not None and not table.is_file():
        if embeddings:
            raise FileNotFoundError(f"{table}: no such embedding table")
        table = None
    return ViewInputs(plate, table, report if report is not None and report.is_file() else None)


def open_view(viewer, inputs: ViewInputs) -> dict:
    """Open the plate in ``viewer``, open the docks, load the embedding; returns the docks by name."""
    from napari_gandl._viewer import site_table

    viewer.open(str(inputs.plate), plugin=PLUGIN)
    docks, frames = {}, {}
    for name in DOCKS:
        frames[name], docks[name] = viewer.window.add_plugin_dock_widget(PLUGIN, name, tabify=name not in DOCKS[:2])
    frames[DOCKS[1]].raise_()
    table = site_table(viewer)
    if inputs.embeddings is None:
        return docks

    def analyse(names) -> None:
        if table.embedding_columns and set(names) & set(table.embedding_columns):
            table.changed.disconnect(analyse)
            for name in ANALYSES:
                docks[name].run()
            frames[DOCKS[1]].raise_()

    table.changed.connect(analyse)
    embed = docks["GAN-DL embeddings"]
    embed.table_path.value = inputs.embeddings
    embed.load_table()
    return docks


def run_view(args) -> int:
    """The ``gandl view`` command: open the window and wait until it is closed."""
    inputs = find_inputs(args.folder, args.embeddings)
    try:
        import napari

        viewer = napari.Viewer(title=f"napari-gandl: {inputs.plate}")
    except ImportError as exc:  # napari without a Qt binding
        raise ValueError(f"napari cannot open a window ({exc}); install the Qt binding with "
                         "pip install 'napari-gandl[all]'") from None
    open_view(viewer, inputs)
    print(f"Opened {inputs.plate}" + (f" with {inputs.embeddings}" if inputs.embeddings else " (no embedding)")
          + (f"; report: {inputs.report}" if inputs.report else ""), flush=True)
    napari.run()
    return 0

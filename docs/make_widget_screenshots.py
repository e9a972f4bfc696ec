"""Render the screenshots of the train / embed / latent-space widgets in use.

    QT_QPA_PLATFORM=xcb xvfb-run -a python docs/make_widget_screenshots.py

Opens the synthetic demo screen in a real napari window, trains a small
GAN-DL model from the Train widget for five minutes (CPU), embeds the plate
from the Embed widget, then interpolates between a Mock and an active-virus
site and generates a grid of cells from the Latent widget. Writes
docs/images/widget_*.png. Set ``GANDL_DOC_MINUTES`` to train longer, or
``GANDL_DOC_RUN`` to a run folder trained on the demo screen (e.g. the run
``gandl demo`` writes: the default ``quick`` preset, 5 CPU minutes) to embed
and draw the latent space of that run without training (the train screenshot
is then left as it is). With ``GANDL_DOC_RUN``, ``GANDL_DOC_PLATE`` opens the
plate that run was trained on instead of the demo screen (the docs' embed,
latent and generate shots come from the default preset's 30-minute run on the
suite's ``texture`` screen). ``GANDL_DOC_ALSO_RUN`` fills the Embed widget's *read with run*
with a second run, read together with the first. ``GANDL_DOC_SHOTS=train`` (or ``embed``) draws
only that screenshot and leaves the other images as they are; the docs' embed shot reads the
``texture`` screen's two 16-kimg ``--info 10`` runs of bench_suite (seeds 0 and 1) together.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import napari
from PIL import Image
from qtpy.QtWidgets import QApplication

from napari_gandl._sample_data import sample_plate_path

IMAGES = Path(__file__).resolve().parent / "images"
# small networks so the documentation renders in minutes on a laptop CPU; the scale is the
# preset's (auto: chosen from the nuclei, and said under the progress bar)
DOC_NETWORK = dict(batch=8, network=dict(channel_base=1024, channel_max=64),
                   snapshot_kimg=0.25)  # a sample-quality point (metrics.csv) every 250 images


def save(array, name: str) -> None:
    IMAGES.mkdir(exist_ok=True)
    Image.fromarray(array).save(IMAGES / name)
    print(IMAGES / name, flush=True)


def pump(seconds: float = 0.3) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.01)


def wait_for(condition, timeout: float = 900.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("widget did not finish in time")
        pump(0.05)


def shoot(viewer, name: str) -> None:
    pump(0.5)
    save(viewer.screenshot(canvas_only=False, flash=False), name)


def embedding_overview(viewer) -> None:
    """Docked PCA of the attached features, coloured by condition: read straight from the site table."""
    import numpy as np

    from napari_gandl._widgets.common import docked_figure, style_axes
    from napari_gandl._viewer import site_table
    from napari_gandl.palettes import CONDITION_COLORS

    sites = site_table(viewer)
    table = sites.frame
    X = table[sites.embedding_columns].to_numpy(np.float64)
    X = (X - X.mean(0)) / (X.std(0) + 1e-9)
    _, _, vt = np.linalg.svd(X, full_matrices=False)
    pcs = X @ vt[:2].T
    figure, canvas = docked_figure(viewer, "features (from the site table)", figsize=(4, 3.4))
    canvas.setMinimumHeight(320)
    ax = figure.add_subplot(111)
    for condition, color in CONDITION_COLORS.items():
        pick = (table.disease_condition == condition).to_numpy()
        ax.scatter(pcs[pick, 0], pcs[pick, 1], s=6, color=color, label=condition.replace(" SARS-CoV-2", ""))
    ax.set_xlabel(f"PC 1 of {sites.embedding_columns[0]}..{sites.embedding_columns[-1]}")
    ax.set_ylabel("PC 2")
    style_axes(figure, ax)
    legend = ax.legend(frameon=False, fontsize=7)
    for text in legend.get_texts():
        text.set_color(figure.gandl_colors["foreground"])
    figure.tight_layout()
    canvas.draw_idle()


def main() -> None:
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))  # leave a core to the GUI
    os.environ.setdefault("NAPARI_GANDL_CONFIG_DIR", tempfile.mkdtemp(prefix="gandl-doc-config-"))
    plate_path = os.environ.get("GANDL_DOC_PLATE") or sample_plate_path("demo")
    run = Path(tempfile.gettempdir()) / "napari-gandl" / "doc-widget-run"
    out = Path(tempfile.mkdtemp(prefix="gandl-doc-out-"))  # exports (never into a given run folder)
    minutes = float(os.environ.get("GANDL_DOC_MINUTES", "5.0"))
    only = os.environ.get("GANDL_DOC_SHOTS")  # "train" or "embed": that screenshot alone

    viewer = napari.Viewer(show=True)
    viewer.window.resize(1920, 1080)
    viewer.open(str(plate_path), plugin="napari-gandl")
    plate = viewer.layers[0].metadata["napari_gandl"]["site_table"].plate
    sites = plate.sites

    if os.environ.get("GANDL_DOC_RUN"):  # an existing run on the demo screen: no training, no train shot
        run = Path(os.environ["GANDL_DOC_RUN"])
    else:
        # --- train: live samples beside the plate, loss plot, progress
        _, train = viewer.window.add_plugin_dock_widget("napari-gandl", "Train GAN-DL")
        train.config_overrides = dict(DOC_NETWORK)
        train.resolution.value = "32"
        train.minutes.value = minutes
        train.refresh_s.value = 5.0
        train.run_dir.value = str(run)
        shutil.rmtree(run, ignore_errors=True)
        train.start()
        wait_for(lambda: train.last_progress is not None and train.last_progress.get("fraction", 0) > 0.85)
        viewer.reset_view()
        shoot(viewer, "widget_train.png")
        wait_for(lambda: train.start_button.enabled)
        if only == "train":
            viewer.close()
            return
        viewer.window.remove_dock_widget("all")
        for layer in [layer for layer in viewer.layers if layer.name.startswith("GAN samples")]:
            viewer.layers.remove(layer)

    # --- embed: features of every site into the plate's site table
    _, embed = viewer.window.add_plugin_dock_widget("napari-gandl", "GAN-DL embeddings")
    embed.run_dir.value = str(run)
    if os.environ.get("GANDL_DOC_ALSO_RUN"):
        embed.also_run.value = os.environ["GANDL_DOC_ALSO_RUN"]
    embed.export_path.value = str(out / "embeddings.parquet")
    embed.embed()
    wait_for(lambda: embed.embed_button.enabled)
    embedding_overview(viewer)
    viewer.reset_view()
    shoot(viewer, "widget_embed.png")
    if only == "embed":
        viewer.close()
        return
    embed.export()
    wait_for(lambda: embed.export_button.enabled)
    viewer.window.remove_dock_widget("all")

    # --- latent: a Mock site to an active-virus site, then a grid of generated cells
    _, latent = viewer.window.add_plugin_dock_widget("napari-gandl", "GAN-DL latent space")
    latent.run_dir.value = str(run)
    untreated = sites.treatment.isna()
    mock = int(sites.index[(sites.disease_condition == "Mock") & untreated][0])
    active = int(sites.index[(sites.disease_condition == "Active SARS-CoV-2") & untreated][0])
    latent.mode.value = "two sites"
    viewer.dims.set_current_step(0, mock)
    latent.pick_a.changed.emit(True)
    latent.site_b.value = active
    latent.projection_steps.value = 150
    latent.steps.value = 12
    latent.run()
    wait_for(lambda: latent.run_button.enabled)
    shoot(viewer, "widget_latent.png")  # the widget moved the view to the path
    latent.export_path.value = str(out / "path.gif")
    latent.export("gif")
    wait_for(lambda: latent.export_gif_button.enabled)
    for layer in [*latent.layers, viewer.layers["latent path labels"]]:
        viewer.layers.remove(layer)
    latent.mode.value = "generate grid"
    latent.n_cells.value = 16
    latent.truncation.value = 0.7
    latent.run()
    wait_for(lambda: latent.run_button.enabled)
    shoot(viewer, "widget_generate.png")
    viewer.close()


if __name__ == "__main__":
    main()

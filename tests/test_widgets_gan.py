"""Train, embed and latent-space dock widgets, driven like a user would, with a tiny model.

Everything runs for real (training, embedding, projection) on the session's
synthetic plate with tiny networks at 32 px; a QTimer heartbeat measures the
longest stall of the GUI thread while the workers run.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("napari")

from napari_gandl.embedding import embed_plate  # noqa: E402
from napari_gandl.comparators.tiles import load_tile_checkpoint  # noqa: E402
from napari_gandl.gan import generate, load_checkpoint, load_model, train  # noqa: E402

TINY = dict(batch=8, network=dict(channel_base=256, channel_max=32), snapshot_kimg=1000.0)
MAX_STALL_S = 1.0  # a responsiveness bound, not a speed benchmark


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    """Widgets remember parameters in a private folder per test."""
    monkeypatch.setenv("NAPARI_GANDL_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path / "config"


@pytest.fixture
def viewer(make_napari_viewer, sample_plate):
    v = make_napari_viewer()
    v.open(str(sample_plate), plugin="napari-gandl")
    return v


@pytest.fixture(scope="module")
def tiny_run(sample_plate, tmp_path_factory):
    out = tmp_path_factory.mktemp("widget_run") / "run"
    # without code recovery: a run for pictures of the cells, as the latent dock's advice says
    train(sample_plate, out, preset="quick", resolution=32, kimg=0.048, device="cpu", seed=1, info=0.0, **TINY)
    return out


@pytest.fixture
def notifications():
    from napari.utils.notifications import notification_manager

    seen = []
    notification_manager.notification_ready.connect(seen.append)
    yield seen
    notification_manager.notification_ready.disconnect(seen.append)


class Heartbeat:
    """Longest gap between ticks of a 10 ms QTimer on the GUI thread."""

    def __init__(self):
        from qtpy.QtCore import QTimer

        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.max_gap = 0.0
        self.ticks = 0
        self._last = None

    def _tick(self):
        now = time.perf_counter()
        if self._last is not None:
            self.max_gap = max(self.max_gap, now - self._last)
        self._last = now
        self.ticks += 1

    def __enter__(self):
        self._last = time.perf_counter()
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self.timer.stop()

    def split(self) -> float:
        """End a phase: return its longest stall and start measuring afresh."""
        gap, self.max_gap = self.max_gap, 0.0
        return gap


def click(button):
    button.native.click()


def wait_idle(qtbot, widget_button, timeout=60_000):
    qtbot.waitUntil(lambda: widget_button.enabled, timeout=timeout)


def train_widget(viewer, run_dir, minutes=5.0):
    from napari_gandl._widgets.train import TrainWidget

    w = TrainWidget(viewer)
    viewer.window.add_dock_widget(w, name="Train GAN-DL")
    w.config_overrides = dict(TINY)
    w.resolution.value = "32"
    w.minutes.value = minutes
    w.device.value = "cpu"
    w.refresh_s.value = 0.3
    w.run_dir.value = str(run_dir)
    return w


# --------------------------------------------------------------------------- train


def test_train_progress_samples_stop_resume(viewer, qtbot, tmp_path):
    run = tmp_path / "run"
    w = train_widget(viewer, run)
    with Heartbeat() as beat:
        click(w.start_button)
        assert not w.start_button.enabled and not w.resume_button.enabled and w.stop_button.enabled
        rows = w.progress_rows
        # the widget builds its layers and plot first; training waits for it
        qtbot.waitUntil(w._gui_ready.is_set, timeout=60_000)
        setup_stall = beat.split()
        # live samples: a multichannel layer set, refreshed while training runs
        qtbot.waitUntil(lambda: w.sample_refreshes >= 3 and len(rows) >= 5, timeout=90_000)
        click(w.stop_button)
        wait_idle(qtbot, w.start_button)
    assert beat.ticks > 50
    print(f"\nlongest GUI stall: {setup_stall * 1000:.0f} ms building the sample layers and loss plot, "
          f"{beat.max_gap * 1000:.0f} ms while training ran")
    assert beat.max_gap < MAX_STALL_S
    assert setup_stall < 3 * MAX_STALL_S  # napari adding a layer or the plot dock, on a shared 2-core box

    names = [layer.name for layer in viewer.layers if layer.name.startswith("GAN samples")]
    assert len(names) == 5 and "GAN samples · w1 Hoechst (nuclei)" in names
    sample = viewer.layers[names[0]]
    assert sample.data.shape == (4 * 34 - 2, 4 * 34 - 2) and sample.blending == "additive"
    assert sample.colormap.name == "gandl w1 Hoechst (nuclei)"
    assert "GAN-DL losses" in viewer.window.dock_widgets
    # the sample-quality metrics (metrics.csv) are plotted under the losses
    from napari_gandl.viewmodels.training import run_history

    measured = run_history(run).metrics
    assert len(measured) >= 1 and len(w._metric_lines["kid"].get_xdata()) == len(measured)
    assert not w._quality_note.get_visible()
    assert rows[0]["setup"] and rows[0]["shape"] == (5, 4 * 34 - 2, 4 * 34 - 2)
    rows = rows[1:]
    steps = [r for r in rows if not r["done"]]
    assert [r["nimg"] for r in steps] == [8 * (i + 1) for i in range(len(steps))]
    assert {(r["run"], r["runs"]) for r in rows} == {(1, 2)} and (run / "runs.json").is_file()  # the first of two
    assert all(np.isfinite(r["loss_G"]) and np.isfinite(r["loss_D"]) for r in steps)

    # Stop left a valid checkpoint at the images seen
    last = rows[-1]
    assert last["done"] and w.last_progress["nimg"] == last["nimg"]
    assert "stopped at" in w.status.value and str(run / "checkpoint.pt") in w.status.value
    ckpt = load_checkpoint(run)
    stopped_at = int(ckpt["cur_nimg"])
    assert stopped_at == last["nimg"] > 0 and not w.stop_button.enabled

    # Start refuses to overwrite it; Resume continues the image count
    click(w.start_button)
    assert "press Resume" in w.status.value and w.worker is not None
    metrics = pd.read_csv(run / "metrics.csv")  # as if the generator had been far better at the stop:
    metrics.loc[metrics.index[-1], "kid"] /= 1e6  # the resumed run ends far worse, and is warned
    metrics.to_csv(run / "metrics.csv", index=False)
    click(w.resume_button)
    resumed = w.progress_rows
    qtbot.waitUntil(lambda: len(resumed) >= 3, timeout=60_000)
    click(w.stop_button)
    wait_idle(qtbot, w.start_button)
    assert resumed[0]["history"][: len(steps)] == [(r["kimg"], r["loss_G"], r["loss_D"]) for r in steps]
    assert len(resumed[0]["metrics"]) == len(measured)
    assert resumed[-1]["done"]
    resumed = resumed[1:]
    assert resumed[0]["nimg"] == stopped_at + 8
    assert load_checkpoint(run)["cur_nimg"] == resumed[-1]["nimg"] > stopped_at
    assert "warning: run 1 of 2" in w.status.value and "the generator got much worse at the end" in w.status.value


def test_train_plot_marks_where_the_second_run_began(viewer, qtbot, tmp_path):
    """Two runs of one budget: the loss and sample-quality plots run on across both, with a dashed
    line and a label where run 2 began; a resumed folder's plot gets the same mark from its history."""
    from napari_gandl.viewmodels.training import run_history

    run = tmp_path / "run"
    w = train_widget(viewer, run)
    w.config_overrides = {**TINY, "minutes": None, "kimg": 0.032}  # 16 images a run
    click(w.start_button)
    wait_idle(qtbot, w.start_button)
    assert [(r["run"], r["nimg"]) for r in w.progress_rows[1:] if "loss_G" in r] == [(1, 8), (1, 16), (2, 24), (2, 32)]
    assert w._run_starts == {2: 0.016} and run_history(run).run_starts == [0.016]
    lines = [m for m in w._run_marks if hasattr(m, "get_xdata")]
    assert [line.get_xdata()[0] for line in lines] == [0.016, 0.016]  # on the losses and on the metrics
    assert [m.get_text() for m in w._run_marks if hasattr(m, "get_text")] == [" run 2"]
    assert all(m.axes is not None for m in w._run_marks)
    click(w.resume_button)  # both runs are finished: nothing trains, the plot is drawn from the folder's logs
    wait_idle(qtbot, w.start_button)
    assert w.progress_rows[0]["run_starts"] == [0.016] and w._run_starts == {2: 0.016}
    assert len(w._run_marks) == 3 and all(m.axes is not None for m in w._run_marks)


def test_closing_viewer_stops_training_with_checkpoint(make_napari_viewer, sample_plate, qtbot, tmp_path):
    viewer = make_napari_viewer()
    viewer.open(str(sample_plate), plugin="napari-gandl")
    run = tmp_path / "run"
    w = train_widget(viewer, run, minutes=30.0)
    click(w.start_button)
    qtbot.waitUntil(lambda: w.last_progress is not None, timeout=60_000)
    t0 = time.monotonic()
    viewer.close()
    assert w._job_done.is_set(), "closing the viewer must wait for training to stop"
    assert time.monotonic() - t0 < 30
    assert load_checkpoint(run)["cur_nimg"] >= w.last_progress["nimg"] > 0


def test_train_simclr_from_the_dock_progress_stop_resume(viewer, qtbot, tmp_path):
    """A registry method (SimCLR) trains through the same dock: progress, Stop writes its
    checkpoint, Resume continues; GAN-DL's controls are hidden and no sample layers appear."""
    run = tmp_path / "simclr-run"
    w = train_widget(viewer, run, minutes=30.0)
    assert w.method.value == "gandl" and not w.preset.native.isHidden()
    assert {"gandl", "convae", "simclr"} <= set(w.method.choices)
    w.method.value = "simclr"
    assert all(c.native.isHidden() for c in (w.preset, w.resolution, w.refresh_s))
    click(w.start_button)
    assert not w.start_button.enabled and w.stop_button.enabled and not w.method.enabled
    rows = w.progress_rows
    qtbot.waitUntil(lambda: len(rows) >= 2, timeout=60_000)
    assert "images seen" in w.status.value and "ETA" in w.status.value
    assert 0 < w.progress_bar.value < 1000
    click(w.stop_button)
    wait_idle(qtbot, w.start_button)
    assert w.method.enabled and w.method.value == "simclr"
    steps = [r for r in rows if not r["done"]]
    assert [r["nimg"] for r in steps] == [64 * (i + 1) for i in range(len(steps))]
    assert rows[-1]["done"] and "stopped at" in w.status.value and str(run / "checkpoint.pt") in w.status.value
    stopped_at = load_tile_checkpoint("simclr", run)["nimg"]
    assert stopped_at == rows[-1]["nimg"] == steps[-1]["nimg"]
    assert not [layer for layer in viewer.layers if layer.name.startswith("GAN samples")]
    assert "GAN-DL losses" not in viewer.window.dock_widgets

    click(w.resume_button)
    resumed = w.progress_rows
    qtbot.waitUntil(lambda: len(resumed) >= 1, timeout=60_000)
    click(w.stop_button)
    wait_idle(qtbot, w.start_button)
    assert resumed[0]["nimg"] == stopped_at + 64 and resumed[-1]["done"]
    assert load_tile_checkpoint("simclr", run)["nimg"] == resumed[-1]["nimg"]


@pytest.mark.parametrize("method,dim", [("dino", 192), ("mae", 192)])
def test_train_dino_and_mae_from_the_dock_stop_resume_then_embed(viewer, qtbot, tmp_path, sample_plate, method, dim):
    """DINO and MAE train through the dock (MAE with its live reconstructions), stop, resume with one
    losses.csv row per step, and the Embed dock embeds the plate with the run."""
    from napari_gandl._viewer import site_table
    from napari_gandl._widgets.embed import EmbedWidget

    run = tmp_path / f"{method}-run"
    w = train_widget(viewer, run, minutes=30.0)
    w.method.value = method
    assert w.preset.native.isHidden() and w.refresh_s.native.isHidden() == (method == "dino")
    click(w.start_button)
    rows = w.progress_rows
    trained = lambda: [r for r in rows if not r.get("setup")]  # noqa: E731
    qtbot.waitUntil(lambda: len(trained()) >= 2, timeout=90_000)
    click(w.stop_button)
    wait_idle(qtbot, w.start_button)
    steps = [r for r in trained() if not r["done"]]
    assert [r["nimg"] for r in steps] == [32 * (i + 1) for i in range(len(steps))]
    stopped_at = load_tile_checkpoint(method, run)["nimg"]
    assert stopped_at == rows[-1]["nimg"] == steps[-1]["nimg"] and "stopped at" in w.status.value
    previews = [layer for layer in viewer.layers if layer.name.startswith(f"{method} reconstructions")]
    if method == "mae":  # tiles, what the encoder saw, the reconstructions: 3 rows of 8 tiles of 64 px
        assert rows[0]["setup"] and len(previews) == 5 and previews[0].name == "mae reconstructions · w1 Hoechst (nuclei)"
        assert previews[0].data.shape == (3 * 66 - 2, 8 * 66 - 2) and w.sample_refreshes >= 1
    else:
        assert not previews and not rows[0].get("setup")
    assert "GAN-DL losses" not in viewer.window.dock_widgets

    click(w.resume_button)
    resumed = w.progress_rows
    qtbot.waitUntil(lambda: len([r for r in resumed if not r.get("setup")]) >= 1, timeout=90_000)
    click(w.stop_button)
    wait_idle(qtbot, w.start_button)
    resumed = [r for r in resumed if not r.get("setup")]
    assert resumed[0]["nimg"] == stopped_at + 32 and resumed[-1]["done"]
    total = load_tile_checkpoint(method, run)["step"]
    assert pd.read_csv(run / "losses.csv")["step"].tolist() == list(range(1, total + 1))

    e = EmbedWidget(viewer)
    viewer.window.add_dock_widget(e)
    e.method.value = method
    e.run_dir.value = str(run)
    e.device.value = "cpu"
    click(e.embed_button)
    wait_idle(qtbot, e.embed_button, timeout=120_000)
    cols = [f"f{i:03d}" for i in range(dim)]
    sites = site_table(viewer)
    assert sites.embedding_columns == cols
    ref = embed_plate(sample_plate, method, source=run, device="cpu")
    np.testing.assert_allclose(sites.frame[cols].to_numpy(), ref[cols].to_numpy(), rtol=1e-4, atol=1e-5)


def test_failing_worker_notifies_and_reenables_buttons(viewer, qtbot, tmp_path, notifications):
    run = tmp_path / "broken"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"not a checkpoint")
    w = train_widget(viewer, run)
    click(w.resume_button)
    assert not w.resume_button.enabled
    wait_idle(qtbot, w.resume_button)
    qtbot.waitUntil(lambda: bool(notifications), timeout=10_000)
    message = str(notifications[-1].message)
    assert "GAN-DL training failed" in message and str(run / "checkpoint.pt") in message
    assert w.start_button.enabled and w.resume_button.enabled and not w.stop_button.enabled


def test_train_explains_missing_plate_or_folder(make_napari_viewer, tmp_path, notifications):
    from napari_gandl._widgets.train import TrainWidget

    w = TrainWidget(make_napari_viewer())
    click(w.start_button)
    assert "no plate" in w.status.value and w.worker is None
    w.plate_dir.value = str(tmp_path / "nowhere")
    click(w.start_button)
    assert f"plate folder {tmp_path / 'nowhere'} does not exist" in w.status.value
    assert w.start_button.enabled and not w.stop_button.enabled
    assert any("does not exist" in str(n.message) for n in notifications)


def test_widgets_remember_parameters(viewer, config_dir):
    from napari_gandl._widgets.latent import LatentWidget
    from napari_gandl._widgets.train import TrainWidget

    w = TrainWidget(viewer)
    assert w.runs.value == 2  # the quick preset splits its duration into two runs; paper trains one
    w.preset.value = "paper"
    assert w.runs.value == 1
    w.preset.value = "quick"
    w.minutes.value = 3.5
    w.resolution.value = "128"
    w.run_dir.value = "/data/runs/a"
    w.runs.value = 3
    l1 = LatentWidget(viewer)
    l1.mode.value = "generate grid"
    l1.truncation.value = 0.5
    assert (config_dir / "train.json").exists()
    again = TrainWidget(viewer)
    assert again.minutes.value == 3.5 and again.resolution.value == "128" and again.runs.value == 3
    assert str(again.run_dir.value) == "/data/runs/a"
    l2 = LatentWidget(viewer)
    assert l2.mode.value == "generate grid" and l2.truncation.value == 0.5
    assert l2.site_a.native.isHidden() and not l2.n_cells.native.isHidden()


def test_latent_endpoints_from_a_selection(viewer):
    from napari_gandl._viewer import site_table
    from napari_gandl._widgets.latent import LatentWidget

    w = LatentWidget(viewer)
    click(w.pick_selection)
    assert "no 'selected' column" in w.status.value
    selected = np.zeros(len(site_table(viewer)), bool)
    selected[[12, 30, 71]] = True
    site_table(viewer).set_columns({"selected": selected})
    click(w.pick_selection)
    assert (w.site_a.value, w.site_b.value) == (12, 71)


# --------------------------------------------------------------------------- embed


def test_embed_attaches_features_export_and_load(viewer, qtbot, tmp_path, tiny_run, sample_plate, notifications):
    from napari_gandl._viewer import site_table
    from napari_gandl._widgets.embed import EmbedWidget

    w = EmbedWidget(viewer)
    viewer.window.add_dock_widget(w)
    w.run_dir.value = str(tiny_run)
    w.batch_size.value = 16
    w.device.value = "cpu"
    with Heartbeat() as beat:
        click(w.embed_button)
        assert not w.embed_button.enabled
        wait_idle(qtbot, w.embed_button)
    print(f"\nlongest GUI stall while embedding: {beat.max_gap * 1000:.0f} ms")
    assert beat.max_gap < MAX_STALL_S
    sites = site_table(viewer)
    cols = [f"f{i:03d}" for i in range(512)]
    assert sites.embedding_columns == cols
    X = sites.frame[cols].to_numpy()
    assert X.shape == (100, 512) and np.isfinite(X).all()
    assert w.progress_bar.value == 100 and "512 features attached to 100 of 100 sites" in w.status.value
    # every stain layer sees the same table, and it is the backend's embedding
    assert all(layer.metadata["napari_gandl"]["site_table"] is sites for layer in viewer.layers)
    ref = embed_plate(sample_plate, "gandl", source=tiny_run, device="cpu")
    np.testing.assert_allclose(X, ref[cols].to_numpy(), rtol=1e-4, atol=1e-5)

    # parquet export: metadata + features
    w.export_path.value = str(tmp_path / "out" / "emb.parquet")
    click(w.export_button)
    wait_idle(qtbot, w.export_button)
    back = pd.read_parquet(tmp_path / "out" / "emb.parquet")
    assert len(back) == 100 and {"site_id", "well", "treatment", "f000", "f511"} <= set(back.columns)
    np.testing.assert_array_equal(back[cols].to_numpy(), X.astype(np.float32))

    # an RxRx19a-style embeddings.csv (site_id, 0..1023) replaces it; unknown sites are ignored
    rng = np.random.default_rng(0)
    ids = sites.frame["site_id"].astype(str).tolist()[:80] + ["HRCE-9_9_Z99_9"]
    rx = pd.DataFrame(rng.normal(size=(len(ids), 1024)).astype(np.float32), columns=[str(i) for i in range(1024)])
    rx.insert(0, "site_id", ids)
    rx.to_csv(tmp_path / "embeddings.csv", index=False)
    w.table_path.value = str(tmp_path / "embeddings.csv")
    click(w.load_button)
    wait_idle(qtbot, w.load_button)
    rx_cols = [f"f{i:03d}" for i in range(1024)]
    assert sites.embedding_columns == rx_cols and "f511" in sites.frame.columns
    table = sites.frame
    np.testing.assert_allclose(table.loc[:79, rx_cols].to_numpy(), rx[[str(i) for i in range(1024)]].to_numpy()[:80])
    assert table.loc[80:, rx_cols].isna().all().all()
    assert w.progress_bar.value == w.progress_bar.max       # a load fills the bar too

    # a table of another screen: an error naming the file, buttons back
    other = rx.assign(site_id=[f"X_{i}" for i in range(len(rx))])
    other.to_csv(tmp_path / "other.csv", index=False)
    w.table_path.value = str(tmp_path / "other.csv")
    click(w.load_button)
    wait_idle(qtbot, w.load_button)
    qtbot.waitUntil(lambda: any("other.csv" in str(n.message) for n in notifications), timeout=10_000)
    assert sites.embedding_columns == rx_cols

    # a file without site_id: the status says it failed (not "reading ..." forever)
    rx.drop(columns="site_id").to_csv(tmp_path / "no_ids.csv", index=False)
    w.table_path.value = str(tmp_path / "no_ids.csv")
    click(w.load_button)
    wait_idle(qtbot, w.load_button)
    qtbot.waitUntil(lambda: w.status.value.startswith("failed"), timeout=10_000)
    assert "site_id" in w.status.value


def test_embed_reads_two_runs_together(viewer, qtbot, tmp_path, tiny_run, sample_plate):
    from napari_gandl._viewer import site_table
    from napari_gandl._widgets.embed import EmbedWidget

    other = tmp_path / "seed2"
    train(sample_plate, other, preset="quick", resolution=32, kimg=0.016, device="cpu", seed=2, **TINY)
    w = EmbedWidget(viewer)
    viewer.window.add_dock_widget(w)
    w.run_dir.value, w.also_run.value, w.device.value = str(tiny_run), str(other), "cpu"
    click(w.embed_button)
    wait_idle(qtbot, w.embed_button)
    sites = site_table(viewer)
    cols = [f"f{i:03d}" for i in range(1024)]
    assert sites.embedding_columns == cols and "1024 features attached to 100 of 100 sites" in w.status.value
    assert sites.embedding_source == f"gandl: {tiny_run / 'checkpoint.pt'} + {other / 'checkpoint.pt'}"
    shown = w.status.value.splitlines()[1:]  # each run on its own line, its folder in sight
    assert len(shown) == 2 and shown[0].endswith(f"{tiny_run.name}/checkpoint.pt")
    assert shown[0].startswith("gandl: ") and shown[1].startswith("+ ")
    assert shown[1].endswith("seed2/checkpoint.pt")
    ref = embed_plate(sample_plate, "gandl", source=[tiny_run, other], device="cpu")
    np.testing.assert_allclose(sites.frame[cols].to_numpy(), ref[cols].to_numpy(), rtol=1e-4, atol=1e-5)


def test_embed_with_another_registered_method_and_a_stain_map(viewer, qtbot, sample_plate):
    from napari_gandl._viewer import site_table
    from napari_gandl._widgets.embed import EmbedWidget
    from napari_gandl.viewmodels.embed import STAIN_MAPS

    w = EmbedWidget(viewer)
    assert {"gandl", "handcrafted"} <= set(w.method.choices)
    w.method.value = "handcrafted"
    assert w.run_dir.native.isHidden() and w.also_run.native.isHidden()  # no weights needed
    w.stain_map.value = STAIN_MAPS[2]
    click(w.embed_button)
    assert "choose the stain-map file" in w.status.value and w.worker is None
    w.stain_map.value = STAIN_MAPS[1]             # matched by name
    click(w.embed_button)
    wait_idle(qtbot, w.embed_button)
    sites = site_table(viewer)
    ref = embed_plate(sample_plate, "handcrafted")
    cols = [c for c in ref.columns if c.startswith("f")]
    assert sites.embedding_columns == cols and sites.embedding_source == "handcrafted"
    np.testing.assert_allclose(sites.frame[cols].to_numpy(), ref[cols].to_numpy(), rtol=1e-5)


# --------------------------------------------------------------------------- latent


def _mse(a, b):
    return float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))


def test_interpolation_between_two_sites(viewer, qtbot, tmp_path, tiny_run, sample_plate):
    from PIL import Image
    import tifffile

    from napari_gandl._widgets.latent import LatentWidget

    w = LatentWidget(viewer)
    viewer.window.add_dock_widget(w)
    w.run_dir.value = str(tiny_run)
    w.device.value = "cpu"
    w.mode.value = "two sites"
    viewer.dims.set_current_step(0, 7)
    click(w.pick_a)
    w.site_b.value = 62
    w.projection_steps.value = 60
    w.steps.value = 6
    w.method.value = "slerp"
    click(w.run_button)
    stages = w.progress_log
    wait_idle(qtbot, w.run_button, timeout=120_000)
    assert w.site_a.value == 7
    assert any(s[0].startswith("projecting site A") for s in stages)
    assert any(s[0].startswith("projecting site B") and s[1] == s[2] == 60 for s in stages)

    # the path is shown where the user looks: one row A | 6 steps | B below the plate, labelled,
    # with the real endpoints (the crops the projection reconstructs) at the same scale
    from napari_gandl._viewer import site_table
    from napari_gandl.gan.latent import target_crop
    from napari_gandl.viewmodels.latent import STRIP_PAD

    table = site_table(viewer)
    plate = table.plate
    names = [layer.name for layer in viewer.layers if layer.name.startswith("latent path ·")]
    assert len(names) == 5
    layers = [viewer.layers[n] for n in names]
    assert all(layer.data.shape == (32, 8 * (32 + STRIP_PAD) - STRIP_PAD) for layer in layers)
    assert layers[0].colormap.name == "gandl w1 Hoechst (nuclei)" and layers[0].blending == "additive"
    model = load_model(tiny_run)
    plate_layer = viewer.layers[0]
    assert layers[0].scale[0] == pytest.approx(plate_layer.scale[-1] * model.scale)
    assert layers[0].translate[0] > plate.data.shape[-2] * plate_layer.scale[-1]       # below the plate
    strip = np.stack([layer.data for layer in layers])
    np.testing.assert_allclose(strip[:, :, :32], target_crop(model, plate.read_site(7)), rtol=1e-5)
    np.testing.assert_allclose(strip[:, :, -32:], target_crop(model, plate.read_site(62)), rtol=1e-5)
    caption = list(viewer.layers["latent path labels"].features["label"])[0].split("\n")
    assert caption[1] == f"A (real, left): {table.describe(7)}"
    assert caption[2] == f"B (real, right): {table.describe(62)}"
    assert caption[0].startswith("6-step slerp path")
    assert viewer.dims.current_step[0] == 7                  # the slider still shows site A
    # the view moved to the strip: its centre is on screen
    centre_x = layers[0].translate[1] + strip.shape[-1] * layers[0].scale[1] / 2
    assert abs(viewer.camera.center[-1] - centre_x) < 1e-3 * centre_x + 1
    stack = w.result["stack"]                                # (T, C, H, W)
    assert stack.shape == (6, 5, 32, 32)

    # endpoints resemble their sites better than random cells do (normalised, centre 32 px)
    frames = np.stack([model.normalizer(frame) for frame in stack])
    random_cells = generate(model, seeds=range(100, 108))
    for frame, site in ((frames[0], 7), (frames[-1], 62)):
        t = model.normalizer(target_crop(model, plate.read_site(site)))
        baseline = np.mean([_mse(r, t) for r in random_cells])
        assert _mse(frame, t) < baseline, (site, _mse(frame, t), baseline)

    # exports: multi-page TIFF (T, C, Y, X) and an animated GIF of the composite
    w.export_path.value = str(tmp_path / "exp" / "path.tif")
    click(w.export_tiff_button)
    wait_idle(qtbot, w.export_tiff_button)
    tif = tifffile.imread(tmp_path / "exp" / "path.tif")
    assert tif.shape == (6, 5, 32, 32)
    np.testing.assert_allclose(tif, stack, rtol=1e-6)
    click(w.export_gif_button)
    wait_idle(qtbot, w.export_gif_button)
    with Image.open(tmp_path / "exp" / "path.gif") as gif:
        assert gif.n_frames == 6 and gif.size == (32, 32)


def generated_grid(viewer, qtbot, run, n_cells, truncation=None):
    """The latent dock of ``viewer`` after drawing a grid of ``n_cells`` cells from ``run`` (at the
    dock's default truncation unless ``truncation`` is given)."""
    from napari_gandl._widgets.latent import LatentWidget

    w = LatentWidget(viewer)
    w.run_dir.value = str(run)
    w.device.value = "cpu"
    w.mode.value = "generate grid"
    w.n_cells.value = n_cells
    if truncation is not None:
        w.truncation.value = truncation
    click(w.run_button)
    wait_idle(qtbot, w.run_button)
    return w


def test_generate_grid_and_truncation(viewer, qtbot, tiny_run):
    w = generated_grid(viewer, qtbot, tiny_run, 9, truncation=1.0)
    names = [layer.name for layer in viewer.layers if layer.name.startswith("generated")]
    assert len(names) == 5
    assert viewer.layers[names[0]].data.shape == (3 * 34 - 2, 3 * 34 - 2)
    assert w.result["note"] is None and "warning" not in w.status.value
    cells = w.result["cells"]
    assert cells.shape == (9, 5, 32, 32) and cells.std(axis=0).mean() > 0
    # truncation 0 gives every seed the average style; only its own noise still varies
    w.truncation.value = 0.0
    click(w.run_button)
    wait_idle(qtbot, w.run_button)
    flat = w.result["cells"]
    assert flat.std(axis=0).mean() < 0.5 * cells.std(axis=0).mean()
    assert len([layer for layer in viewer.layers if layer.name.startswith("generated")]) == 5


def test_a_diverged_generator_is_said_under_its_samples(viewer, qtbot, tiny_run, tmp_path, notifications):
    """The latent dock repeats the run's divergence warning, since its samples show that generator."""
    import shutil

    run = shutil.copytree(tiny_run, tmp_path / "run")
    (run / "metrics.csv").write_text("kimg,kid\n0,9000\n2,60\n4,600000\n")
    w = generated_grid(viewer, qtbot, run, 4)
    assert "warning: the generator got much worse at the end: KID 6e+05 at 4 kimg" in w.status.value
    assert any("Latent space: the generator got much worse" in str(n.message) for n in notifications)


def test_seed_interpolation_lerp(viewer, qtbot, tiny_run):
    from napari_gandl._widgets.latent import LatentWidget

    w = LatentWidget(viewer)
    w.run_dir.value = str(tiny_run)
    w.device.value = "cpu"
    w.mode.value = "two seeds"
    w.seed_a.value, w.seed_b.value = 3, 4
    w.steps.value = 4
    w.method.value = "lerp"
    w.truncation.value = 1.0
    click(w.run_button)
    wait_idle(qtbot, w.run_button)
    ws = w.result["w"]
    assert ws.shape[0] == 4
    np.testing.assert_allclose(ws[1], ws[0] + (ws[3] - ws[0]) / 3, rtol=1e-4, atol=1e-5)
    model = load_model(tiny_run)
    ends = generate(model, seeds=[3, 4])
    from napari_gandl.gan import to_raw

    np.testing.assert_allclose(w.result["stack"][[0, -1]], to_raw(model, ends), rtol=1e-3, atol=1e-3)


def test_generate_without_an_open_plate(make_napari_viewer, qtbot, tiny_run):
    """Seeds need no plate: the run's stain names and colours are used."""
    viewer = make_napari_viewer()
    generated_grid(viewer, qtbot, tiny_run, 4)
    names = [layer.name for layer in viewer.layers]
    assert names[0] == "generated · w1 Hoechst (nuclei)" and len(names) == 5
    assert viewer.layers[0].data.shape == (2 * 34 - 2, 2 * 34 - 2)

"""Analysis dock widgets (SVM, perturbation plot, dose-response) end to end on the
synthetic plate, with real embeddings (handcrafted features) and real fits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("napari")

from napari_gandl._widgets import _analysis  # noqa: E402
from napari_gandl._widgets.common import add_site_columns, site_table  # noqa: E402

WAIT_MS = 60_000


@pytest.fixture(scope="module")
def handcrafted(sample_plate):
    from napari_gandl.analysis.features import handcrafted_features

    return handcrafted_features(sample_plate)


@pytest.fixture
def viewer(make_napari_viewer, sample_plate):
    viewer = make_napari_viewer()
    viewer.open(str(sample_plate), plugin="napari-gandl")
    return viewer


def attach_embedding(viewer, handcrafted, scale: float = 1.0):
    """The handcrafted features as the plate's embedding columns f000…"""
    feats = [c for c in handcrafted.columns if "_" in c and c not in site_table(viewer).columns]
    frame = pd.DataFrame(handcrafted[feats].to_numpy() * scale, columns=[f"f{i:03d}" for i in range(len(feats))])
    frame.insert(0, "site_id", handcrafted["site_id"].to_numpy())
    add_site_columns(viewer, frame)
    return frame


def run_and_wait(qtbot, widget):
    widget.run()
    qtbot.waitUntil(lambda: not widget.busy, timeout=WAIT_MS)
    assert widget.record is not None, widget.status.value


def test_svm_widget_end_to_end(viewer, qtbot, handcrafted):
    from napari_gandl._widgets.svm import SVMWidget

    attach_embedding(viewer, handcrafted)
    widget = SVMWidget(viewer)
    assert "C+ vs C- (merged)" in widget.task.choices
    widget.task.value = "C+ vs C- (merged)"
    widget.picker.normalisation.value = "none"
    widget.n_splits.value = 5
    run_and_wait(qtbot, widget)
    result = widget.record["result"]
    assert result.n_splits == 5 and result.classes == ["C+", "C-"]
    assert 0.6 < result.accuracy_mean <= 1.0
    assert "accuracy" in widget.status.value and "±" in widget.status.value
    table = site_table(viewer)
    col = widget.record["column"]
    assert col == "svm_Cpos_vs_Cneg_merged"
    scores = table[col].to_numpy()
    assert np.isfinite(scores).all()
    ctrl = table["treatment"].isna()
    cplus = ctrl & table["disease_condition"].isin(["Mock", "UV Inactivated SARS-CoV-2"])
    cminus = ctrl & (table["disease_condition"] == "Active SARS-CoV-2")
    assert scores[cplus].mean() > scores[cminus].mean()   # positive towards C+
    assert len(widget.figure.axes) == 1 and len(widget.figure.axes[0].images) == 1


def test_perturbation_plot_click_hover_lasso(viewer, qtbot):
    from matplotlib.backend_bases import MouseEvent

    from napari_gandl._widgets.axes import PerturbationPlotWidget

    widget = PerturbationPlotWidget(viewer)
    widget.picker.source.value = _analysis.HANDCRAFTED
    widget.picker.normalisation.value = "none"
    run_and_wait(qtbot, widget)
    table = site_table(viewer)
    coords, rows = widget.plot.coords, widget.rows
    assert coords.shape == (len(table), 2) and np.isfinite(coords).all()
    # E2 puts C+ at +1 and C- at -1 on average
    ctrl = table["treatment"].isna().to_numpy()[rows]
    cond = table["disease_condition"].to_numpy()[rows]
    assert coords[ctrl & (cond == "Mock"), 0].mean() > coords[ctrl & (cond == "Active SARS-CoV-2"), 0].mean()
    legend = [t.get_text() for t in widget.ax.get_legend().get_texts()]
    assert any(t.startswith("Mock") for t in legend)
    widget.color_by.value = "dose"
    legend = [t.get_text() for t in widget.ax.get_legend().get_texts()]
    assert "0.01 µM (12)" in legend and any(t.startswith("untreated") for t in legend)

    widget.canvas.draw()
    px = widget.ax.transData.transform(coords)
    gaps = np.hypot(*(px[:, None, :] - px[None, :, :]).transpose(2, 0, 1)) + np.eye(len(px)) * 1e9
    i = int(np.argmax(gaps.min(axis=1)))   # the most isolated point: unambiguous target
    assert rows[i] != viewer.dims.current_step[0]
    MouseEvent("motion_notify_event", widget.canvas, *px[i])._process()
    assert widget.plot.annotation.get_visible()
    assert widget.plot.annotation.get_text().startswith(str(table["site_id"].iloc[rows[i]]))
    MouseEvent("button_press_event", widget.canvas, *px[i], button=1)._process()
    assert viewer.dims.current_step[0] == rows[i]
    assert np.allclose(np.ravel(widget.plot.current.get_data()), coords[i])

    # lasso: a polygon around every site right of on-axis 0.3
    x0, x1 = 0.3, coords[:, 0].max() + 1
    y0, y1 = coords[:, 1].min() - 1, coords[:, 1].max() + 1
    widget.selection_name.value = "rescued_like"
    widget.lasso.value = True
    widget.lasso_selector.onselect([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
    expected = np.sort(rows[coords[:, 0] > x0])
    assert 0 < len(expected) < len(rows)
    column = site_table(viewer)["rescued_like"]
    assert column.dtype == bool
    assert np.array_equal(np.flatnonzero(column.to_numpy()), expected)
    assert viewer.dims.current_step[0] == expected[0]
    widget.stepper.step(+1)
    assert viewer.dims.current_step[0] == expected[1]
    widget.stepper.step(-1)
    widget.stepper.step(-1)
    assert viewer.dims.current_step[0] == expected[-1]
    # with lasso on, a click selects nothing and does not move the slider
    MouseEvent("button_press_event", widget.canvas, *px[i], button=1)._process()
    assert viewer.dims.current_step[0] == expected[-1]

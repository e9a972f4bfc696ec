"""Analysis dock widgets (SVM, perturbation plot, dose-response) end to end on the
synthetic plate, with real embeddings (handcrafted features) and real fits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("napari")

from napari_gandl.viewmodels import embedding_choice as _analysis  # noqa: E402
from napari_gandl._viewer import site_table  # noqa: E402

WAIT_MS = 60_000


@pytest.fixture(scope="module")
def handcrafted(sample_plate):
    from napari_gandl.embedding.methods.handcrafted import handcrafted_features

    return handcrafted_features(sample_plate)


@pytest.fixture
def viewer(make_napari_viewer, sample_plate):
    viewer = make_napari_viewer()
    viewer.open(str(sample_plate), plugin="napari-gandl")
    return viewer


def attach_embedding(viewer, handcrafted, scale: float = 1.0):
    """The handcrafted features as the plate's embedding columns f000… (as the Embed dock attaches one)"""
    feats = [c for c in handcrafted.columns if "_" in c and c not in site_table(viewer).frame.columns]
    frame = pd.DataFrame(handcrafted[feats].to_numpy() * scale, columns=[f"f{i:03d}" for i in range(len(feats))])
    frame.insert(0, "site_id", handcrafted["site_id"].to_numpy())
    site_table(viewer).set_columns(frame, embedding=True, source="handcrafted")
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
    table = site_table(viewer).frame
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

    from napari_gandl._widgets.perturbation import PerturbationPlotWidget

    widget = PerturbationPlotWidget(viewer)
    widget.picker.source.value = _analysis.HANDCRAFTED
    widget.picker.normalisation.value = "none"
    run_and_wait(qtbot, widget)
    table = site_table(viewer).frame
    coords, rows = widget.plot.coords, widget.rows
    assert coords.shape == (len(table), 2) and np.isfinite(coords).all()
    # E2 puts C+ at +1 and C- at -1 on average
    ctrl = table["treatment"].isna().to_numpy()[rows]
    cond = table["disease_condition"].to_numpy()[rows]
    assert coords[ctrl & (cond == "Mock"), 0].mean() > coords[ctrl & (cond == "Active SARS-CoV-2"), 0].mean()
    legend = [t.get_text() for t in widget.ax.get_legend().get_texts()]
    assert any(t.startswith("Mock") for t in legend)
    assert min(t.get_fontsize() for t in widget.ax.get_legend().get_texts()) >= 9
    # each condition in its own colour-blind-safe colour (the plate map's and the report's), the
    # compound-treated sites grey; the -1 / +1 lines say whose centres they are
    from matplotlib.colors import to_hex

    from napari_gandl.palettes import CONDITION_COLORS, OTHER, TREATED

    legend = widget.ax.get_legend()
    shown = {t.get_text().rsplit(" (", 1)[0]: to_hex(h.get_color()).lower()
             for t, h in zip(legend.get_texts(), legend.legend_handles)}
    assert shown == {**{c: v.lower() for c, v in CONDITION_COLORS.items()}, TREATED: OTHER}
    assert [widget.plot.level_labels[x].get_text() for x in (-1, 1)] == ["C- -1", "C+ +1"]
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
    widget.color_by.value = "cell type"          # a recolour drops the hover label
    assert not widget.plot.annotation.get_visible()
    widget.color_by.value = "dose"
    widget.canvas.draw()
    # slider moves and hovers blit the marker: the points are not redrawn
    draws = []
    qtbot.wait(50)  # let pending idle draws (the recolour) happen first
    widget.canvas.mpl_connect("draw_event", lambda event: draws.append(event))
    for step in (3, 11, 42):
        viewer.dims.set_current_step(0, step)
        qtbot.wait(10)
        j = int(np.flatnonzero(rows == step)[0])
        assert np.allclose(np.ravel(widget.plot.current.get_data()), coords[j])
    MouseEvent("motion_notify_event", widget.canvas, *px[i])._process()
    qtbot.wait(50)
    assert draws == []

    # lasso: a polygon around every site right of on-axis 0.3
    x0, x1 = 0.3, coords[:, 0].max() + 1
    y0, y1 = coords[:, 1].min() - 1, coords[:, 1].max() + 1
    widget.selection_name.value = "rescued_like"
    widget.lasso.value = True
    widget.lasso_selector.onselect([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
    expected = np.sort(rows[coords[:, 0] > x0])
    assert 0 < len(expected) < len(rows)
    column = site_table(viewer).frame["rescued_like"]
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
    widget.lasso.value = False
    assert widget.lasso_selector is None
    widget.canvas.draw()   # the dock's labels changed size: take the current transform
    x, y = widget.ax.transData.transform(coords[i])
    MouseEvent("button_press_event", widget.canvas, x, y, button=1)._process()
    assert viewer.dims.current_step[0] == rows[i]
    # re-opened: the same space, colouring choices and the selection to step through
    again = PerturbationPlotWidget(viewer)
    assert again.record is widget.record
    assert np.array_equal(again.plot.coords, coords) and np.array_equal(again.stepper.rows, expected)
    assert "rescued_like" in again.color_by.choices
    again.color_by.value = "rescued_like"
    legend = [t.get_text() for t in again.ax.get_legend().get_texts()]
    assert f"yes ({len(expected)})" in legend
    # the C2 (cell model) space: HRCE towards +1, VERO towards -1
    again.space.value = again.space.choices[1]
    run_and_wait(qtbot, again)
    assert again.record["space"]["name"] == "C2" and again.record is not widget.record
    cell = table["cell_type"].to_numpy()[again.rows]
    c2 = again.plot.coords[:, 0]
    assert c2[cell == "HRCE"].mean() > 0.5 and c2[cell == "VERO"].mean() < -0.5


def test_dose_response_widget(viewer, qtbot, handcrafted, sample_plate, tmp_path):
    from matplotlib.backend_bases import MouseEvent

    from napari_gandl._widgets.dose_response import DoseResponseWidget

    attach_embedding(viewer, handcrafted)
    widget = DoseResponseWidget(viewer)
    widget.picker.normalisation.value = "none"
    run_and_wait(qtbot, widget)
    truth = pd.read_csv(sample_plate / "ground_truth" / "compounds.csv")
    shown = widget.table_rows()
    assert set(shown["compound"]) == set(truth["compound"])          # every compound listed
    assert set(shown["cell_type"]) == {"HRCE", "VERO"}
    curves = widget.record["curves"]
    fitted = curves["status"] == "fitted"
    assert fitted.all() and np.isfinite(curves.loc[fitted, "ec50_uM"]).all()
    assert np.isfinite(pd.to_numeric(shown.loc[shown["status"] == "fitted", "ec50_uM"])).all()
    # the table is sorted by rank: the true rescuer is on top
    rescuers = set(truth.loc[truth["active"], "compound"])
    assert shown["compound"].iloc[0] in rescuers
    assert shown["rank"].iloc[0] == "1"
    # sorting by EC50 reorders the rows numerically (NaN last)
    widget.table.sortItems(4)
    ec50 = pd.to_numeric(widget.table_rows()["ec50_uM"], errors="coerce").to_numpy()
    assert np.all(np.diff(ec50[np.isfinite(ec50)]) >= 0)
    # search narrows the list; the shown compound is the top-ranked one
    assert widget.compound == shown["compound"].iloc[0]
    widget.search.value = "inert"
    assert [widget.compound_list.item(i).text() for i in range(widget.compound_list.count())] == ["inert-1"]
    widget.compound_list.setCurrentRow(0)
    assert widget.compound == "inert-1"
    widget.search.value = ""
    # a click on a table row shows that compound
    row = next(r for r in range(widget.table.rowCount()) if widget.table.item(r, 1).text() == "rescue-potent")
    widget._row_clicked(row, 0)
    assert widget.compound == "rescue-potent"
    ax = widget.figure.axes[0]
    assert any("EC50" in t.get_text() for t in ax.get_legend().get_texts())
    # click on a dose point: the viewer steps through that dose's wells' sites
    widget.canvas.draw()
    line, (compound, cell, doses) = next(iter(widget._pickable.items()))
    x, y = ax.transData.transform(np.column_stack(line.get_data()).astype(float)[2])
    MouseEvent("button_press_event", widget.canvas, x, y, button=1)._process()
    table = site_table(viewer).frame
    expected = np.flatnonzero((table["treatment"] == compound) & (table["cell_type"] == cell)
                              & np.isclose(table["treatment_conc"], doses[2]))
    assert len(expected) >= 2 and np.array_equal(widget.stepper.rows, expected)
    assert viewer.dims.current_step[0] == expected[0]
    widget.stepper.step(+1)
    assert viewer.dims.current_step[0] == expected[1]
    # the per-site E2 score is in the site table
    assert np.isfinite(table["e2_score"]).all()
    # exports
    csv = widget.export_table(tmp_path / "curves.csv")
    assert set(pd.read_csv(csv)["compound"]) == set(truth["compound"])
    png = widget.export_figure(tmp_path / "curves.png")
    svg = widget.export_figure(tmp_path / "curves.svg")
    assert png.read_bytes()[:4] == b"\x89PNG" and b"<svg" in svg.read_bytes()[:400]
    with pytest.raises(ValueError, match="png or .svg"):
        widget.export_figure(tmp_path / "curves.jpg")
    # re-opened: the last fit, on the compound last shown
    again = DoseResponseWidget(viewer)
    assert again.record is widget.record and again.compound == "rescue-potent"
    assert again.table.rowCount() == len(curves) and again.export_table_button.enabled


def test_menu_entries_open_the_widgets(viewer):
    from napari_gandl._widgets.perturbation import PerturbationPlotWidget
    from napari_gandl._widgets.dose_response import DoseResponseWidget
    from napari_gandl._widgets.svm import SVMWidget

    widgets = {}
    for name, cls in (("SVM classification", SVMWidget), ("Perturbation-axis plot", PerturbationPlotWidget),
                      ("Dose-response", DoseResponseWidget)):
        _, widget = viewer.window.add_plugin_dock_widget("napari-gandl", name)
        assert isinstance(widget, cls)
        widgets[name] = widget
    svm = widgets["SVM classification"]
    svm.reset_choices()  # napari does this on every layer change
    assert svm.task.choices[:2] == ("C+ vs C- (merged)", "C+ vs C- (HRCE)")
    svm.task.value = _svm_custom()
    svm.column.value = "disease_condition"
    assert set(svm.positive.choices) == {"Mock", "UV Inactivated SARS-CoV-2", "Active SARS-CoV-2"}


def _svm_custom():
    from napari_gandl._widgets.svm import CUSTOM

    return CUSTOM


def test_results_persist_and_a_changed_embedding_invalidates(viewer, qtbot, handcrafted):
    from napari_gandl._widgets.svm import CUSTOM, SVMWidget

    attach_embedding(viewer, handcrafted)
    first = SVMWidget(viewer)
    first.task.value = CUSTOM
    first.column.value = "cell_type"
    first.positive.value = ["HRCE"]
    first.negative.value = ["VERO"]
    first.picker.normalisation.value = "none"
    first.n_splits.value = 4
    run_and_wait(qtbot, first)
    assert first.record["result"].classes == ["HRCE", "VERO"]
    assert first.record["result"].accuracy_mean > 0.9
    # re-opening shows the last analysis, parameters included
    again = SVMWidget(viewer)
    assert again.record is first.record
    assert again.picker.normalisation.value == "none"
    assert "accuracy" in again.status.value and len(again.figure.axes[0].images) == 1
    # a new embedding (same column names, other values) invalidates both, and they say so
    attach_embedding(viewer, handcrafted, scale=2.0)
    viewer.dims.set_current_step(0, 7)
    for widget in (first, again):
        assert widget.record is None
        assert "embedding changed" in widget.status.value and "press Run" in widget.status.value
        assert not widget.figure.axes
    assert SVMWidget(viewer).record is None


def test_clear_errors(make_napari_viewer, viewer, qtbot, handcrafted, tmp_path):
    from napari_gandl._widgets.dose_response import DoseResponseWidget
    from napari_gandl._widgets.svm import SVMWidget

    empty = SVMWidget(make_napari_viewer())
    empty.run()
    assert "no plate is open" in empty.status.value
    widget = SVMWidget(viewer)
    widget.run()                                   # plate open, nothing embedded yet
    assert "no embedding yet" in widget.status.value and widget.record is None
    # an embedding file with HRCE sites only: the cell-type task has a single class
    hrce = handcrafted[handcrafted["cell_type"] == "HRCE"]
    path = tmp_path / "hrce.parquet"
    hrce.to_parquet(path)
    widget.picker.source.value = _analysis.FILE
    widget.picker.path.value = path
    widget.task.value = "HRCE vs VERO"
    widget.run()
    qtbot.waitUntil(lambda: not widget.busy, timeout=WAIT_MS)
    assert widget.record is None and "only one class" in widget.status.value
    assert widget.run_button.enabled
    # a file whose sites belong to another plate
    other = hrce.assign(site_id="elsewhere_" + hrce["site_id"].astype(str))
    other.to_csv(tmp_path / "other.csv", index=False)
    dose = DoseResponseWidget(viewer)
    dose.picker.source.value = _analysis.FILE
    dose.picker.path.value = tmp_path / "other.csv"
    dose.run()
    qtbot.waitUntil(lambda: not dose.busy, timeout=WAIT_MS)
    assert dose.record is None and "belong to the open plate" in dose.status.value


def test_a_new_embedding_updates_the_svm_dock_through_events(viewer, qtbot, handcrafted):
    """The SVM dock hears about the attached embedding (no stale "no embedding yet"), uses
    exactly its columns (not other numeric result columns), and drops a result when a new
    embedding is attached."""
    from napari_gandl._widgets.svm import SVMWidget

    widget = SVMWidget(viewer)
    widget.picker.normalisation.value = "none"
    widget.n_splits.value = 3
    widget.run()
    assert widget.status.value.startswith("no embedding yet")
    frame = attach_embedding(viewer, handcrafted)
    assert widget.status.value.startswith("embedding attached")
    table = site_table(viewer)
    table.set_columns({"decoy": np.arange(len(table))})
    columns = [c for c in frame.columns if c != "site_id"][:40]
    table.set_columns(frame[["site_id", *columns]], embedding=True, source="run-1")
    run_and_wait(qtbot, widget)
    assert widget.record["label"] == "site table: 40 columns f000…f039"
    second = frame[["site_id", *columns]].assign(**{c: frame[c] * 3.0 for c in columns})
    table.set_columns(second, embedding=True, source="run-2")
    assert widget.record is None and "embedding changed" in widget.status.value


def test_the_docks_fit_a_1080p_screen(viewer, qtbot):
    """With the embedding, SVM, perturbation-plot, dose-response and navigator docks open, the
    window still fits 1920 x 1080: the docks scroll inside instead of growing the window."""
    docks = ["GAN-DL embeddings", "SVM classification", "Perturbation-axis plot", "Dose-response", "Site navigator"]
    window = None
    for name in docks:
        dock, _ = viewer.window.add_plugin_dock_widget("napari-gandl", name)
        window = dock.window()
    window.resize(1920, 1080)
    qtbot.wait(50)
    hint = window.minimumSizeHint()
    assert hint.height() <= 1080 and hint.width() <= 1920, (hint.width(), hint.height())
    assert window.height() <= 1080

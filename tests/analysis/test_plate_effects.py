"""Leave-one-plate-out splits and batch (plate) diagnostics."""

import numpy as np
import pytest

from napari_gandl.analysis.classify import TaskError, evaluate_task, plate_splits, rxrx19a_tasks
from napari_gandl.tables import load_embeddings

from analysis_synth import rxrx_like


@pytest.fixture(scope="module")
def table():
    return load_embeddings(rxrx_like(n_feat=10, wells=4, sites=2, plate_shift=0.3))


def test_leave_one_plate_out_holds_out_each_plate_whole(table):
    task = rxrx19a_tasks(table.meta)["C+ vs C- (merged)"]
    m = task.mask
    folds, excluded = plate_splits(task.labels[m], task.plates[m])
    assert excluded == {}
    held = [plate for _, _, plate in folds]
    assert sorted(held) == sorted(set(task.plates[m]))      # one fold per plate
    for tr, te, plate in folds:
        assert set(task.plates[m][te]) == {plate} and plate not in set(task.plates[m][tr])
    res = evaluate_task(table.X, task, split="plate")
    assert res.split == "plate" and res.n_splits == 4 and res.accuracy_mean > 0.9
    assert "leave-one-plate-out" in res.summary()


def test_single_class_plates_are_named_not_scored(table):
    # each plate holds one cell type: no held-out plate can score HRCE vs VERO
    task = rxrx19a_tasks(table.meta)["HRCE vs VERO"]
    with pytest.raises(TaskError, match="every plate holds a single class.*HRCE-1_1: holds only HRCE"):
        evaluate_task(table.X, task, split="plate")
    # one plate without C- sites: that plate is excluded, with the reason, the others are scored
    task = rxrx19a_tasks(table.meta)["C+ vs C- (merged)"]
    labels = task.labels.copy()
    labels[(task.plates == "VERO-1_2") & (labels == "C-")] = None
    task.labels = labels
    res = evaluate_task(table.X, task, split="plate")
    assert res.excluded == {"VERO-1_2": "holds only C+ sites"} and res.n_splits == 3


def test_diagnostics_on_a_perfectly_predictable_plate(tmp_path):
    from napari_gandl.analysis.batch import batch_diagnostics, plot_batch_pca

    frame = rxrx_like(n_feat=8, wells=4, sites=2, plate_shift=0.0, seed=1)
    table = load_embeddings(frame)
    meta = table.meta
    X = table.X.copy()
    # features 2-7 (noise so far) now carry the plate: it is perfectly predictable
    X[:, 2:] += np.where(meta["plate"].to_numpy() == 1, 5.0, -5.0)[:, None]
    d = batch_diagnostics(X, meta, n_splits=3)
    pp = d["plate_predictability"]
    assert pp["accuracy"] == 1.0 and pp["chance"] == 0.5 and pp["n_plates"] == 4
    assert d["silhouette"]["plate"] > 0.5 > d["silhouette"]["condition"]
    # without it the plates cannot be told apart, and the controls separate by condition
    clean = batch_diagnostics(table.X, meta, n_splits=3)
    assert clean["plate_predictability"]["accuracy"] < 0.75
    assert clean["silhouette"]["plate"] < 0.05 < clean["silhouette"]["condition"]
    plot_batch_pca({"raw": X, "clean": table.X}, meta, tmp_path / "pca.png")
    assert (tmp_path / "pca.png").stat().st_size > 10_000
    # metadata without plates: the part is skipped with the reason
    no_plates = meta.drop(columns=["plate", "experiment"])
    assert "no batch column" in batch_diagnostics(X, no_plates)["plate_predictability"]["skipped"]


def test_report_shows_both_splits_and_plate_effects(tmp_path):
    import json

    from napari_gandl.analysis import analyse

    rep = analyse(rxrx_like(n_feat=10, wells=4, sites=2, plate_shift=3.0), out_dir=tmp_path,
                  n_splits=3, ground_truth=False)
    assert rep["tasks_lopo"]["C+ vs C- (merged)"]["split"] == "plate"
    assert "every plate holds a single class" in rep["skipped"]["task HRCE vs VERO (leave-one-plate-out)"]
    raw, norm = rep["batch"]["raw"], rep["batch"]["centerscale"]
    assert norm["plate_predictability"]["accuracy"] < raw["plate_predictability"]["accuracy"]
    page = (tmp_path / "report.html").read_text()
    assert "held-out plates" in page and "Plate effects" in page and "batch_pca" not in page
    assert json.loads((tmp_path / "report.json").read_text())["files"]["batch_pca"] == "batch_pca.png"


def test_post_hoc_alignment_hides_the_plate_and_keeps_the_controls(tmp_path, capsys):
    import json

    from napari_gandl.analysis.batch import plate_predictability
    from napari_gandl.cli import main

    frame = rxrx_like(n_feat=16, wells=4, sites=2, plate_shift=3.0)
    src = tmp_path / "emb.parquet"
    frame.to_parquet(src)
    out = tmp_path / "aligned.parquet"
    assert main(["align", str(src), "--batch", "plate", "--out", str(out), "--steps", "600", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "plates are aligned within each experiment" in printed
    before, after = load_embeddings(src), load_embeddings(out)
    assert list(after.meta["site_id"]) == list(before.meta["site_id"]) and after.features == before.features
    assert plate_predictability(before.X, before.meta, n_splits=3)["accuracy"] == 1.0
    assert plate_predictability(after.X, after.meta, n_splits=3)["accuracy"] < 0.6   # chance 0.5
    task = rxrx19a_tasks(after.meta)["C+ vs C- (merged)"]
    assert evaluate_task(after.X, task, split="plate").accuracy_mean > 0.85
    # the cell type (confounded with the experiment) survives; centre-scaling each plate erases it
    from napari_gandl.analysis.normalise import normalise

    cell = rxrx19a_tasks(after.meta)["HRCE vs VERO"]
    assert evaluate_task(after.X, cell, n_splits=3).accuracy_mean > 0.85
    assert evaluate_task(normalise(before, "centerscale").X, cell, n_splits=3).accuracy_mean < 0.7
    summary = json.loads((tmp_path / "aligned.align.json").read_text())
    assert summary["diagnostics"]["after"]["plate_predictability"]["accuracy"] < 0.6


def test_align_errors_name_the_problem(tmp_path, capsys):
    from napari_gandl.cli import main

    frame = rxrx_like(n_feat=4, wells=2, sites=1)
    one_plate = tmp_path / "one.csv"
    frame.assign(plate=1, experiment="E").to_csv(one_plate, index=False)
    assert main(["align", str(one_plate), "--out", str(tmp_path / "a.csv")]) == 2
    assert "column 'plate' has a single value" in capsys.readouterr().err
    no_plate = tmp_path / "none.csv"
    frame.drop(columns=["plate"]).to_csv(no_plate, index=False)
    assert main(["align", str(no_plate), "--out", str(tmp_path / "a.csv")]) == 2
    assert "needs a 'plate' column, which is missing" in capsys.readouterr().err
    assert not (tmp_path / "a.csv").exists()


def test_a_screen_of_many_plates_holds_them_out_in_groups_each_once(table):
    task = rxrx19a_tasks(table.meta)["C+ vs C- (merged)"]
    labels, plates = task.labels[task.mask], task.plates[task.mask]
    folds, excluded = plate_splits(labels, plates, max_folds=3)  # 4 plates, at most 3 folds
    assert excluded == {} and len(folds) == 3
    held = [set(plates[te]) for _, te, _ in folds]
    assert sorted(p for group in held for p in group) == sorted(set(plates))  # every plate held out once
    for (tr, te, name), group in zip(folds, held):
        assert not group & set(plates[tr]) and set(name.split(", ")) == group
    assert sorted(len(group) for group in held) == [1, 1, 2]


def test_plate_predictability_of_a_large_experiment_is_estimated_on_a_sample():
    """30 plates of 100 wells x 4 sites in one experiment: at most 10 plates evenly spread, whole wells,
    at most 2,000 sites, as many from each plate; the plate still shows through its offset."""
    import pandas as pd

    from napari_gandl.analysis.batch import (
        MAX_PLATES_COMPARED, MAX_SITES_COMPARED, column_moments, compared_sites, plate_predictability,
    )

    rng = np.random.default_rng(0)
    plates = np.repeat([f"P{p:02d}" for p in range(30)], 400)
    wells = np.array([f"{p}_{w // 4}" for p, w in zip(plates, np.tile(np.arange(400), 30))])
    rows = compared_sites(np.arange(len(plates)), plates, wells, np.random.default_rng(1))
    kept, per_plate = np.unique(plates[rows], return_counts=True)
    assert len(kept) == MAX_PLATES_COMPARED and kept[0] == "P00" and kept[-1] == "P29"
    assert len(rows) <= MAX_SITES_COMPARED and set(per_plate) == {200}
    assert np.isin(wells, wells[rows]).sum() == len(rows)  # whole wells only

    X = rng.normal(size=(len(plates), 16)).astype(np.float32)
    X[:, 0] += np.repeat(rng.normal(0, 3, 30), 400).astype(np.float32)
    meta = pd.DataFrame({"experiment": "E", "plate": plates, "well": wells, "well_id": wells})
    pp = plate_predictability(X, meta, n_splits=2)
    assert pp["n_plates"] == 10 and pp["n_sites"] == 2000 and pp["accuracy"] > 3 * pp["chance"]
    mean, sd = column_moments(X, chunk=1000)
    np.testing.assert_allclose(mean, X.mean(axis=0, dtype=np.float64), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(sd, X.std(axis=0, dtype=np.float64), rtol=1e-5)

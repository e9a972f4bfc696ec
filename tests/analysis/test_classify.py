import numpy as np
import pandas as pd
import pytest

from napari_gandl.analysis import classify
from napari_gandl.analysis.classify import (
    TaskError, define_task, evaluate_task, grouped_splits, rxrx19a_tasks, zero_shot_cell_types,
)
from napari_gandl.tables import load_embeddings

from analysis_synth import rxrx_like


@pytest.fixture(scope="module")
def table():
    return load_embeddings(rxrx_like(n_feat=10, wells=4, sites=3, plate_shift=0.3))


def test_splits_never_share_a_well(table):
    task = rxrx19a_tasks(table.meta)["C+ vs C- (merged)"]
    y = task.labels[task.mask].astype(str)
    g = task.groups[task.mask]
    n = 0
    for tr, te in grouped_splits(y, g, n_splits=8, test_size=0.25, seed=3):
        assert not set(g[tr]) & set(g[te])
        assert set(y[tr]) == set(y[te]) == {"C+", "C-"}
        # about a quarter of the wells are held out
        assert abs(len(set(g[te])) / len(set(g)) - 0.25) < 0.05
        n += 1
    assert n == 8


def test_presets_and_accuracy(table):
    tasks = rxrx19a_tasks(table.meta)
    assert set(tasks) == {"C+ vs C- (merged)", "C+ vs C- (HRCE)", "C+ vs C- (VERO)", "HRCE vs VERO"}
    counts = tasks["C+ vs C- (merged)"].counts()
    # C+ = Mock + UV wells (untreated), C- = untreated active wells; treated sites excluded
    assert counts == {"C+": 2 * 2 * 8 * 3, "C-": 2 * 2 * 8 * 3}
    res = evaluate_task(table.X, tasks["C+ vs C- (merged)"], n_splits=5)
    assert res.accuracy_mean > 0.9 and len(res.accuracies) == 5
    assert np.array(res.confusion).sum() > 0 and res.classes == ["C+", "C-"]
    cell = evaluate_task(table.X, tasks["HRCE vs VERO"], n_splits=3)
    assert cell.accuracy_mean > 0.95


def test_shuffled_labels_give_chance(table):
    task = rxrx19a_tasks(table.meta)["C+ vs C- (merged)"]
    rng = np.random.default_rng(0)
    lab = task.labels.copy()
    m = task.mask
    # shuffle whole wells' labels so grouping still holds
    wells = pd.unique(task.groups[m])
    flip = dict(zip(wells, rng.permutation([task.labels[m][task.groups[m] == w][0] for w in wells])))
    lab[m] = [flip[g] for g in task.groups[m]]
    # noise features carry no label information
    X = rng.normal(size=table.X.shape).astype(np.float32)
    res = evaluate_task(X, classify.Task("noise", lab, task.groups), n_splits=6)
    assert 0.3 < res.accuracy_mean < 0.7


def test_class_weights_balance_minority(table):
    # 1 C+ well per plate against all C- wells: balanced weights keep recall of C+
    meta = table.meta
    task = define_task(meta, "disease_condition", ["Mock"], ["Active SARS-CoV-2"],
                       where=meta["treatment"].isna().to_numpy())
    res = evaluate_task(table.X, task, n_splits=4)
    assert res.balanced_accuracy_mean > 0.9


def test_single_class_and_missing_column_errors(table):
    only = define_task(table.meta, "disease_condition", ["Mock"], ["Nonexistent"])
    with pytest.raises(TaskError, match="only one class"):
        evaluate_task(table.X, only)
    with pytest.raises(ValueError, match="needs metadata column.*not_there"):
        define_task(table.meta, "not_there", ["a"], ["b"])
    one_well = define_task(table.meta.assign(well_id="same"), "cell_type", ["HRCE"], ["VERO"])
    with pytest.raises(TaskError, match="well"):
        evaluate_task(table.X, one_well)


def test_sgd_solver_agrees(table):
    task = rxrx19a_tasks(table.meta)["HRCE vs VERO"]
    res = evaluate_task(table.X, task, n_splits=2, solver="sgd")
    assert res.solver == "sgd" and res.accuracy_mean > 0.9


def test_auto_solver_fits_many_classes_by_sgd():
    from napari_gandl.analysis.classify import MAX_LIBLINEAR_CLASSES, LinearModel

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(MAX_LIBLINEAR_CLASSES + 1), 40).astype(str)
    X = rng.normal(size=(len(y), 6)) + 4 * np.eye(6)[y.astype(int)]
    assert LinearModel().fit(X, y).solver_ == "sgd"
    assert (LinearModel().fit(X, y).predict(X) == y).mean() > 0.9
    two = y <= "1"
    assert LinearModel().fit(X[two], y[two]).solver_ == "liblinear"


def test_zero_shot_multiclass():
    rng = np.random.default_rng(1)
    rows, X = [], []
    centres = rng.normal(0, 3, (4, 12))
    for k, ct in enumerate(["HEPG2", "HUVEC", "RPE", "U2OS"]):
        for w in range(6):
            for s in range(3):
                rows.append({"site_id": f"{ct}_{w}_{s}", "well_id": f"{ct}_{w}", "cell_type": ct})
                X.append(centres[k] + rng.normal(0, 1, 12))
    df = pd.concat([pd.DataFrame(rows), pd.DataFrame(np.array(X), columns=[f"f{i}" for i in range(12)])], axis=1)
    res = zero_shot_cell_types(load_embeddings(df), n_splits=3)
    assert res.classes == ["HEPG2", "HUVEC", "RPE", "U2OS"]
    assert np.array(res.confusion).shape == (4, 4) and res.accuracy_mean > 0.9

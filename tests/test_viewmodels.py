"""View-models without a viewer or Qt: the site table and its events, the embedding choice."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_gandl import columns as cols
from napari_gandl.plate import open_plate
from napari_gandl.viewmodels import SiteTable
from napari_gandl.viewmodels.embedding_choice import (
    FILE, HANDCRAFTED, SITE_TABLE, NoEmbedding, precheck, record, resolve_embedding, stale_reason,
)


@pytest.fixture
def table(sample_plate) -> SiteTable:
    return SiteTable(open_plate(sample_plate))


def test_set_columns_emits_changed_with_the_names(table):
    heard = []
    table.changed.connect(heard.append)
    before = table.frame
    scores = pd.DataFrame({cols.SITE_ID: table.frame[cols.SITE_ID][::-1], cols.E2_SCORE: np.arange(len(table))[::-1]})
    table.set_columns(scores)                       # aligned by site_id, whatever the order
    assert heard == [(cols.E2_SCORE,)]
    assert np.array_equal(table.frame[cols.E2_SCORE], np.arange(len(table)))
    assert cols.E2_SCORE not in before.columns      # frames are snapshots, never changed in place
    table.set_columns({cols.SELECTED: np.arange(len(table)) < 3})   # by row order
    assert heard[-1] == (cols.SELECTED,) and table.frame[cols.SELECTED].sum() == 3
    assert table.result_columns == [cols.E2_SCORE, cols.SELECTED]


def test_embedding_replaces_the_previous_one(table):
    heard = []
    table.changed.connect(heard.append)
    ids = table.frame[cols.SITE_ID]
    first = pd.DataFrame(np.ones((len(ids), 3)), columns=["f000", "f001", "f002"]).assign(site_id=ids.to_numpy())
    table.set_columns(first, embedding=True, source="run-1")
    assert table.embedding_columns == ["f000", "f001", "f002"] and table.embedding_source == "run-1"
    version = table.embedding_version
    second = pd.DataFrame({"site_id": ids.iloc[:10].to_numpy(), "f000": np.arange(10.0)})
    table.set_columns(second, embedding=True, source="run-2")
    assert heard[-1] == ("f000", "f001", "f002")    # f000 replaced, f001 f002 removed
    assert table.embedding_columns == ["f000"] and "f001" not in table.frame.columns
    assert table.embedding_version == version + 1
    assert table.frame["f000"].isna().sum() == len(ids) - 10   # sites it lacks: NaN
    with pytest.raises(ValueError, match="belong to the attached embedding"):
        table.set_columns({"f000": np.zeros(len(ids))})


def test_bad_columns_are_refused_naming_the_problem(table):
    with pytest.raises(ValueError, match=r"5 rows given for a plate of \d+ sites"):
        table.set_columns({"x": np.zeros(5)})
    with pytest.raises(ValueError, match="metadata columns cannot be replaced"):
        table.set_columns({cols.CELL_TYPE: np.zeros(len(table))})
    twice = pd.DataFrame({cols.SITE_ID: [table.frame[cols.SITE_ID].iloc[0]] * 2, "x": [1, 2]})
    with pytest.raises(ValueError, match="repeat site ids"):
        table.set_columns(twice)
    assert list(table.frame.columns) == list(table.plate.sites.columns)   # nothing changed


def test_current_site_event_and_description(table):
    heard = []
    table.current_changed.connect(heard.append)
    table.current = 5
    table.current = 5                               # unchanged: no event
    assert heard == [5] and table.current == 5
    with pytest.raises(IndexError, match="outside the plate"):
        table.current = len(table)
    row = table.frame.iloc[5]
    text = table.describe(5)
    assert text.startswith(str(row[cols.SITE_ID])) and str(row[cols.CELL_TYPE]) in text
    treated = int(np.flatnonzero(table.frame[cols.COMPOUND].notna())[0])
    r = table.frame.iloc[treated]
    assert f"{r[cols.COMPOUND]} {r[cols.DOSE]:g} µM" in table.describe(treated)


def test_embedding_choice_and_staleness(table, tmp_path):
    assert precheck(None, SITE_TABLE) .startswith("no plate is open")
    assert precheck(table, SITE_TABLE).startswith("no embedding yet")
    with pytest.raises(NoEmbedding, match="no embedding yet"):
        resolve_embedding(table, SITE_TABLE)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(len(table), 6))
    frame = pd.DataFrame(X, columns=[f"f{i:03d}" for i in range(6)]).assign(site_id=table.frame[cols.SITE_ID])
    frame.loc[3, "f002"] = np.nan
    table.set_columns(frame, embedding=True, source="run")
    assert precheck(table, SITE_TABLE) is None
    emb = resolve_embedding(table, SITE_TABLE, normalisation="none")
    assert len(emb.rows) == len(table) - 1 and 3 not in emb.rows and "1 site(s)" in emb.notes
    assert np.allclose(emb.table.X, X[emb.rows])
    rec = record(table, {"source": SITE_TABLE, "normalisation": "none"}, emb)
    assert stale_reason(table, rec) is None
    table.set_columns({cols.E2_SCORE: np.zeros(len(table))})       # a result column: still valid
    assert stale_reason(table, rec) is None
    table.set_columns(frame, embedding=True, source="run again")
    assert stale_reason(table, rec) == "the embedding changed"
    # a file: stale when it changes on disk
    path = tmp_path / "emb.csv"
    frame.iloc[:20].to_csv(path, index=False)
    choice = {"source": FILE, "path": str(path), "normalisation": "none"}
    emb = resolve_embedding(table, FILE, path, "none")
    assert len(emb.rows) == 19
    rec = record(table, choice, emb)
    assert stale_reason(table, rec) is None
    frame.iloc[:30].to_csv(path, index=False)
    assert "changed" in stale_reason(table, rec)
    with pytest.raises(NoEmbedding, match="not found"):
        resolve_embedding(table, FILE, tmp_path / "missing.csv")
    assert stale_reason(table, {"embedding": {"source": HANDCRAFTED}}) is None


# ---------------------------------------------------------------- the analysis docks' view-models

@pytest.fixture(scope="module")
def embedded(sample_plate) -> SiteTable:
    """A site table with the plate's handcrafted features attached as its embedding."""
    from napari_gandl.embedding.methods.handcrafted import handcrafted_features

    table = SiteTable(open_plate(sample_plate))
    feats = handcrafted_features(table.plate)
    names = [c for c in feats.columns if c not in table.frame.columns]
    table.set_columns(feats[[cols.SITE_ID, *names]], embedding=True, source="handcrafted")
    return table


def _report(log):
    return lambda done, total, text: log.append((done, total, text))


def test_svm_view_model(embedded):
    from napari_gandl.analysis import TaskError
    from napari_gandl.viewmodels import svm

    assert svm.task_choices(embedded)[0] == "C+ vs C- (merged)" and svm.task_choices(None) == [svm.CUSTOM]
    assert "cell_type" in svm.column_choices(embedded)
    assert not set(embedded.embedding_columns) & set(svm.column_choices(embedded))
    assert svm.value_choices(embedded, "cell_type") == ["HRCE", "VERO"]
    custom = {"task": svm.CUSTOM, "column": "cell_type", "positive": ["VERO"], "negative": ["VERO"]}
    assert "both positive and negative" in svm.check(custom)
    with pytest.raises(TaskError, match="both positive and negative"):
        svm.build_task(embedded.frame, custom)
    params = {"embedding": {"source": SITE_TABLE, "normalisation": "none"}, "n_splits": 4, "C": 1.0,
              "task": {**custom, "negative": ["HRCE"]}}
    log = []
    rec = svm.run(embedded, params, _report(log))
    result = rec["result"]
    assert result.classes == ["HRCE", "VERO"] and result.accuracy_mean > 0.9 and log
    assert rec["column"] == cols.svm_score("VERO vs HRCE") == "svm_VERO_vs_HRCE"
    scores = rec["scores"].set_index(cols.SITE_ID)[rec["column"]]
    vero = (embedded.frame.set_index(cols.SITE_ID)[cols.CELL_TYPE] == "VERO").reindex(scores.index)
    assert rec["positive"] == "VERO" and scores[vero].mean() > 0 > scores[~vero].mean()  # > 0 towards VERO
    assert "summed over the 4 splits" in svm.confusion_note(result)


def test_perturbation_and_dose_view_models(embedded):
    from napari_gandl.viewmodels import dose, perturbation

    params = {"embedding": {"source": SITE_TABLE, "normalisation": "none"}, "space": perturbation.SPACES[0]}
    rec = perturbation.run(embedded, params, _report([]))
    coords, rows = rec["coords"], rec["rows"]
    cond = embedded.frame[cols.CONDITION].to_numpy()[rows]
    untreated = embedded.frame[cols.COMPOUND].isna().to_numpy()[rows]
    assert coords[untreated & (cond == "Mock"), 0].mean() > coords[untreated & (cond == "Active SARS-CoV-2"), 0].mean()
    tree, scale = rec["tree"]
    assert tree.query(coords[5] / scale)[1] == 5

    params = {"embedding": {"source": SITE_TABLE, "normalisation": "none"}, "min_doses": 4, "alpha": 0.05,
              "min_effect": 0.2}
    rec = dose.run(embedded, params, _report([]))
    curves, scores = rec["curves"], rec["scores"]
    assert set(scores.columns) == {cols.SITE_ID, cols.E2_SCORE, cols.HIT}
    # the report's off-manifold check, so the dock's flags and rank are the report's
    assert curves["off_manifold"].notna().all() and curves["rank"].tolist() == list(range(1, len(curves) + 1))
    frame = embedded.frame.set_index(cols.SITE_ID).reindex(scores[cols.SITE_ID])
    hits = set(zip(curves.loc[curves["hit"], "compound"], curves.loc[curves["hit"], "cell_type"]))
    expected = [(c, t) in hits for c, t in zip(frame[cols.COMPOUND], frame[cols.CELL_TYPE])]
    assert scores[cols.HIT].tolist() == expected and np.isfinite(scores[cols.E2_SCORE]).all()
    point = rec["points"].iloc[0]
    found = dose.dose_point_rows(embedded, rec["rows"], point["compound"], point["cell_type"], point["dose"])
    sub = embedded.frame.iloc[found]
    assert len(found) and (sub[cols.COMPOUND] == point["compound"]).all()
    assert np.allclose(sub[cols.DOSE], point["dose"])


def test_training_view_model(tmp_path):
    from napari_gandl.viewmodels import training

    run = tmp_path / "run"
    with pytest.raises(ValueError, match="nothing to resume: no checkpoint"):
        training.check_run_folder(run, resume=True)
    training.check_run_folder(run, resume=False)
    assert training.run_history(run).losses.empty and training.run_history(run).metrics.empty
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"x")
    with pytest.raises(ValueError, match="press Resume"):
        training.check_run_folder(run, resume=False)
    (run / "losses.csv").write_text("step,kimg,loss_G,loss_D,reg\n1,0.008,0.7,1.3,0\n2,0.016,0.6,1.2,0\n")
    (run / "metrics.csv").write_text("kimg,nn1_accuracy,kid,diversity,augment_p,metrics_s\n0,0.98,0.2,0.4,0,1.5\n")
    assert list(training.run_history(run).losses.itertuples(index=False, name=None)) == [(0.008, 0.7, 1.3), (0.016, 0.6, 1.2)]
    assert training.run_history(run).metrics.to_dict("records") == [
        {"kimg": 0.0, "nn1_accuracy": 0.98, "kid": 0.2, "diversity": 0.4}]


def test_colour_choices_follow_the_other_docks_results(embedded):
    from napari_gandl.viewmodels.perturbation import color_choices

    before = color_choices(embedded)
    assert before[:4] == ["condition", "cell type", "compound", "dose"]
    assert not set(embedded.embedding_columns) & set(before)
    embedded.set_columns({cols.svm_score("C+ vs C- (merged)"): np.linspace(-1, 1, len(embedded)),
                          "rescued_like": np.arange(len(embedded)) % 3 == 0})
    after = color_choices(embedded)
    assert {"svm_Cpos_vs_Cneg_merged", "rescued_like"} <= set(after) - set(before)


def test_train_dock_method_choices_and_stop(sample_plate, tmp_path, torch_threads):
    """The Train dock's choices are the registry's trainable methods; stopping a non-GAN method
    closes its generator, which writes the checkpoint the last (done) row names."""
    import torch

    from napari_gandl.comparators.tiles import load_tile_checkpoint
    from napari_gandl.viewmodels import training

    assert training.method_choices()[0] == "gandl" and {"convae", "simclr"} <= set(training.method_choices())
    assert "handcrafted" not in training.method_choices()
    assert training.is_gan("gandl") and not training.is_gan("convae")
    assert training.default_run_folder(tmp_path / "P1", "convae") == tmp_path / "P1-convae-run"
    torch.set_num_threads(1)  # torch_threads puts the count back
    rows = []
    rows.extend(training.train_method("convae", open_plate(sample_plate), tmp_path / "run", 30.0, "cpu",
                                      False, should_stop=lambda: len(rows) >= 1))  # Stop pressed after a step
    assert [r["done"] for r in rows] == [False, True] and rows[1]["nimg"] == rows[0]["nimg"] == 32
    assert load_tile_checkpoint("convae", rows[1]["checkpoint"])["nimg"] == 32

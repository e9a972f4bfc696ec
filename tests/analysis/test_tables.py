import numpy as np
import pandas as pd
import pytest

from napari_gandl.tables import TableError, control_labels, load_embeddings, read_table, write_table

from analysis_synth import rxrx_like


def test_join_metadata_csv_and_feature_columns(tmp_path):
    full = rxrx_like(n_feat=6, plates=1, wells=2)
    meta_cols = ["site_id", "well_id", "cell_type", "experiment", "plate", "well", "site",
                 "disease_condition", "treatment", "treatment_conc", "SMILES"]
    full[meta_cols].to_csv(tmp_path / "metadata.csv", index=False)
    # a released-embeddings-style CSV: site_id then numeric columns named 0..5
    emb = full[["site_id"] + [f"f{i:03d}" for i in range(6)]].copy()
    emb.columns = ["site_id"] + [str(i) for i in range(6)]
    emb.to_csv(tmp_path / "embeddings.csv", index=False)
    t = load_embeddings(tmp_path / "embeddings.csv", tmp_path / "metadata.csv")
    assert t.features == [str(i) for i in range(6)]
    assert t.X.dtype == np.float32 and t.X.shape == (len(full), 6)
    assert {"plate", "site", "treatment_conc"} <= set(t.meta.columns)   # numeric metadata kept as metadata
    np.testing.assert_allclose(t.X[:, 2], full["f002"].to_numpy(), rtol=1e-6)
    # round trip through parquet keeps metadata
    path = write_table(t, tmp_path / "out.parquet")
    back = read_table(path)
    assert list(back.columns[:3]) == ["site_id", "well_id", "cell_type"]
    assert load_embeddings(path).features == t.features


def test_explicit_feature_list_and_errors(tmp_path):
    full = rxrx_like(n_feat=4, plates=1, wells=2)
    t = load_embeddings(full, features=["f001", "f003"])
    assert t.features == ["f001", "f003"]
    with pytest.raises(TableError, match="not found: nope"):
        load_embeddings(full, features=["f001", "nope"])
    with pytest.raises(TableError, match="not numeric"):
        load_embeddings(full, features=["f001", "cell_type"])
    with pytest.raises(TableError, match="site_id"):
        load_embeddings(full, metadata=full[["well_id"]])
    with pytest.raises(FileNotFoundError):
        load_embeddings(tmp_path / "missing.parquet")


def test_nonfinite_rows_named_or_dropped():
    full = rxrx_like(n_feat=4, plates=1, wells=2)
    full.loc[3, "f001"] = np.nan
    full.loc[7, "f002"] = np.inf
    with pytest.raises(TableError) as err:
        load_embeddings(full)
    msg = str(err.value)
    assert full.loc[3, "site_id"] in msg and full.loc[7, "site_id"] in msg
    assert "f001" in msg and "f002" in msg and "2 row(s)" in msg
    with pytest.warns(UserWarning, match="dropped"):
        t = load_embeddings(full, on_nonfinite="drop")
    assert len(t) == len(full) - 2 and np.isfinite(t.X).all()
    assert set(t.dropped_rows) == {full.loc[3, "site_id"], full.loc[7, "site_id"]}


def test_constant_columns_dropped_with_warning():
    full = rxrx_like(n_feat=4, plates=1, wells=2)
    full["f001"] = 3.0
    with pytest.warns(UserWarning, match="constant feature column.*f001"):
        t = load_embeddings(full)
    assert "f001" not in t.features and t.dropped_columns == ["f001"]
    full[["f000", "f002", "f003"]] = 1.0
    with pytest.raises(TableError, match="every feature column is constant"):
        load_embeddings(full)


def test_unmatched_sites_warn_and_no_overlap_raises():
    full = rxrx_like(n_feat=3, plates=1, wells=2)
    meta = full[["site_id", "cell_type", "disease_condition"]].iloc[5:]
    emb = full[["site_id", "f000", "f001", "f002"]]
    with pytest.warns(UserWarning, match="5 site"):
        t = load_embeddings(emb, meta)
    assert len(t) == len(full) - 5
    meta2 = meta.assign(site_id="x" + meta["site_id"])
    with pytest.raises(TableError, match="none of the"):
        load_embeddings(emb, meta2)


def test_control_labels():
    full = rxrx_like(n_feat=3, plates=1, wells=2)
    lab = control_labels(full)
    untreated = full["treatment"].isna()
    assert set(lab[~untreated]) == {""}
    assert (lab[(full["disease_condition"] == "Mock").to_numpy()] == "C+").all()
    assert (lab[(untreated & (full["disease_condition"] == "Active SARS-CoV-2")).to_numpy()] == "C-").all()
    with pytest.raises(TableError, match="disease_condition"):
        control_labels(full.drop(columns=["disease_condition"]))

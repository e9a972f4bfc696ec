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


def _released_like(path, n=120, dim=5, seed=0):
    """An embeddings CSV as released (site_id, then columns 0..dim-1) with columns whose type the
    first rows do not show: a dose empty at first, a feature of whole numbers at first, a note
    that turns from numbers into text."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"site_id": [f"S{i:04d}" for i in range(n)]})
    for j in range(dim):
        frame[str(j)] = rng.normal(size=n).round(3)
    frame["0"] = np.where(np.arange(n) < n // 2, np.arange(n) % 3, frame["0"])  # 0, 1, 2 ... then 0.5-like
    frame["treatment_conc"] = np.where(np.arange(n) < n // 2, np.nan, 0.3)
    frame["note"] = [str(i) if i < n // 2 else f"note {i}" for i in range(n)]
    frame.to_csv(path, index=False)
    return frame


def test_a_large_csv_is_converted_once_to_parquet_beside_it(tmp_path, monkeypatch):
    import napari_gandl.tables as tables

    # every CSV counts as large here; small blocks and batches, so that types change between blocks
    monkeypatch.setattr(tables, "CONVERT_CSV_BYTES", 0)
    monkeypatch.setattr(tables, "CSV_BLOCK_BYTES", 1024)
    monkeypatch.setattr(tables, "ROWS_PER_BATCH", 7)
    csv = tmp_path / "embeddings.csv"
    frame = _released_like(csv)
    meta = pd.DataFrame({"site_id": frame["site_id"].iloc[3:], "cell_type": "HRCE"})  # sites 0-2 have none
    meta.to_csv(tmp_path / "metadata.csv", index=False)

    with pytest.warns(UserWarning, match="3 site"):
        t = load_embeddings(csv, tmp_path / "metadata.csv")
    copy = tmp_path / "embeddings.csv.parquet"
    assert copy.is_file()
    assert t.features == ["0", "1", "2", "3", "4"]  # the dose and the note are metadata
    np.testing.assert_array_equal(t.X, frame[t.features].iloc[3:].to_numpy(np.float32))
    assert t.X.flags["C_CONTIGUOUS"] and t.X.dtype == np.float32
    assert t.meta["site_id"].tolist() == frame["site_id"].iloc[3:].tolist()
    np.testing.assert_array_equal(t.meta["treatment_conc"].to_numpy(), frame["treatment_conc"].iloc[3:].to_numpy())
    assert t.meta["note"].tolist() == frame["note"].iloc[3:].tolist() and set(t.meta["cell_type"]) == {"HRCE"}

    converted = copy.stat().st_mtime_ns
    again = load_embeddings(csv, on_nonfinite="drop")  # read from the copy, not parsed again
    assert copy.stat().st_mtime_ns == converted and len(again) == len(frame)
    pd.testing.assert_frame_equal(read_table(csv), read_table(copy))

    changed = _released_like(csv, n=50, seed=1)  # a new CSV in its place is converted again
    t = load_embeddings(csv)
    np.testing.assert_array_equal(t.X, changed[t.features].to_numpy(np.float32))


def test_a_malformed_large_csv_is_named_and_leaves_no_copy(tmp_path, monkeypatch):
    import napari_gandl.tables as tables

    monkeypatch.setattr(tables, "CONVERT_CSV_BYTES", 0)
    csv = tmp_path / "embeddings.csv"
    _released_like(csv)
    csv.write_text(csv.read_text() + "S9999,1,2,3\n")  # a row too short
    with pytest.raises(TableError, match=f"{csv}: cannot be read as a table .*Expected 8 columns, got 4"):
        load_embeddings(csv)
    assert [p.name for p in tmp_path.iterdir()] == ["embeddings.csv"]


def test_a_malformed_small_csv_names_the_line(tmp_path):
    csv = tmp_path / "metadata.csv"
    _released_like(csv, n=20)
    csv.write_text(csv.read_text() + "S9999,1,2,3\n")
    with pytest.raises(TableError, match=f"{csv}: cannot be read as a table \\(line 22: expected 8 columns, got 4\\)"):
        read_table(csv)


def test_a_large_csv_in_a_read_only_folder_is_converted_to_a_temporary_file(tmp_path, monkeypatch):
    import subprocess

    import napari_gandl.tables as tables

    monkeypatch.setattr(tables, "CONVERT_CSV_BYTES", 0)
    folder = tmp_path / "ro"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)], capture_output=True).returncode:
        pytest.skip("cannot mount a file system here to make a read-only folder")
    try:
        frame = _released_like(folder / "embeddings.csv")
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        with pytest.warns(UserWarning, match=f"{folder} cannot be written to: embeddings.csv was converted to"):
            t = load_embeddings(folder / "embeddings.csv", on_nonfinite="drop")
        np.testing.assert_array_equal(t.X, frame[t.features].to_numpy(np.float32))
    finally:
        subprocess.run(["umount", str(folder)], check=True)

import json

import numpy as np
import pandas as pd
import pytest

from napari_gandl.analysis import analyse
from napari_gandl.embedding.methods.handcrafted import handcrafted_features
from napari_gandl.tables import load_embeddings
from napari_gandl.features.handcrafted import FEATURES, site_features
from napari_gandl.cli import main
from napari_gandl.plate import open_plate

from analysis_synth import rxrx_like


@pytest.fixture(scope="module")
def plate_features(sample_plate, tmp_path_factory):
    calls = []
    df = handcrafted_features(sample_plate, batch_size=16, progress=lambda d, t: calls.append((d, t)))
    path = tmp_path_factory.mktemp("feat") / "features.parquet"
    df.to_parquet(path)
    return df, path, calls


def test_handcrafted_features_table(sample_plate, plate_features):
    df, _, calls = plate_features
    plate = open_plate(sample_plate)
    assert len(df) == len(plate.usable_sites)
    assert df.columns[0] == "site_id" and "well_id" in df.columns and "problem" not in df.columns
    feats = load_embeddings(df).features
    assert len(feats) == 5 * len(FEATURES)
    assert feats[0].endswith("_mean")
    # streamed in batches of 16 with progress, and equal to a one-site computation
    assert calls[:2] == [(0, len(df)), (16, len(df))] and calls[-1] == (len(df), len(df))
    one = site_features(plate.read_site(int(plate.usable_sites[3]))).ravel()
    np.testing.assert_allclose(df[feats].to_numpy()[3], one, rtol=1e-5)
    img = plate.read_site(0).astype(float)
    np.testing.assert_allclose(df.filter(like="_mean").to_numpy()[0], img.reshape(5, -1).mean(1), rtol=1e-5)


def test_site_features_respond_to_texture():
    rng = np.random.default_rng(0)
    smooth = np.full((1, 1, 64, 64), 100.0) + rng.normal(0, 1, (1, 1, 64, 64))
    spotty = smooth.copy()
    spotty[0, 0, 8::16, 8::16] += 80
    f0, f1 = site_features(smooth)[0, 0], site_features(spotty)[0, 0]
    i = {n: k for k, n in enumerate(FEATURES)}
    assert f1[i["spot_density"]] > f0[i["spot_density"]] + 0.5
    assert f1[i["lap_energy"]] > 10 * f0[i["lap_energy"]]


def test_analyse_report_on_sample_plate(sample_plate, plate_features, tmp_path):
    _, path, _ = plate_features
    steps = []
    analyse(path, out_dir=tmp_path / "rep", n_splits=3,
            ground_truth=sample_plate / "ground_truth" / "compounds.csv",
            progress=lambda i, n, m: steps.append((i, m)))
    assert steps[0][0] == 0 and steps[-1][0] == 6
    said = [m for i, m in steps if i == 2]  # the long step says which fold it is fitting
    assert "classification tasks: C+ vs C- (merged), held-out wells 1/3" in said
    assert "classification tasks: HRCE vs VERO, held-out wells 3/3" in said
    assert said[-2:] == ["plate effects", "copairs mAP"]
    out = tmp_path / "rep"
    for f in ("report.json", "report.html", "dose_response.csv", "dose_points.csv", "e2.png", "c2.png",
              "dose_curves.png", "scores.parquet"):
        assert (out / f).is_file(), f
    saved = json.loads((out / "report.json").read_text())
    assert set(saved["tasks"]) == {"C+ vs C- (merged)", "C+ vs C- (HRCE)", "C+ vs C- (VERO)", "HRCE vs VERO"}
    for r in saved["tasks"].values():
        assert 0 <= r["accuracy_mean"] <= 1 and len(r["accuracies"]) == 3
    assert saved["tasks"]["HRCE vs VERO"]["accuracy_mean"] > 0.9
    curves = pd.read_csv(out / "dose_response.csv")
    truth = pd.read_csv(sample_plate / "ground_truth" / "compounds.csv")
    assert set(curves["compound"]) == set(truth["compound"])
    assert (curves["status"] == "fitted").all() and curves["ec50_uM"].notna().all()
    # the truly active compound ranks above the inert one in both cell types
    gt = saved["ground_truth"]
    assert gt["n_active_curves"] == 2 and gt["auc"] >= 0.75
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 3 and "C+ vs C- (merged)" in html
    scores = pd.read_parquet(out / "scores.parquet")
    assert {"e2_on", "e2_off", "c2_on"} <= set(scores.columns) and len(scores) == saved["n_sites"]


def test_analyse_skips_what_the_table_cannot_support(tmp_path):
    # no treatment/dose columns and a single cell type: tasks run, dose-response and C2 skipped
    df = rxrx_like(n_feat=6, plates=2, wells=3, compounds=())
    df = df[df["cell_type"] == "HRCE"].drop(columns=["treatment_conc"])
    rep = analyse(df, out_dir=tmp_path / "r", n_splits=2, normalise="tvn", ground_truth=False)
    assert "C+ vs C- (merged)" in rep["tasks"]
    assert "C2 space" in rep["skipped"] and "dose-response" in rep["skipped"]
    assert (tmp_path / "r" / "report.html").is_file()


def test_confounded_plates_keep_cell_model(tmp_path):
    df = rxrx_like(n_feat=6, plates=2, wells=3)
    rep = analyse(df, out_dir=tmp_path / "r", n_splits=2, ground_truth=False)
    assert any("single cell type" in n for n in rep["notes"])
    assert rep["tasks"]["HRCE vs VERO"]["accuracy_mean"] > 0.9


def test_cli_analyse_and_errors(plate_features, tmp_path, capsys):
    _, path, _ = plate_features
    assert main(["analyse", str(path), "--out", str(tmp_path / "cli"), "--splits", "2", "--quiet",
                 "--normalise", "none"]) == 0
    out = capsys.readouterr().out
    assert "C+ vs C- (merged)" in out and "report.html" in out
    assert main(["analyse", str(tmp_path / "missing.parquet"), "--out", str(tmp_path / "x")]) == 2
    assert "missing.parquet" in capsys.readouterr().err
    bad = pd.read_parquet(path)
    bad.iloc[2, bad.columns.get_loc(bad.columns[-1])] = np.nan
    bad.to_csv(tmp_path / "bad.csv", index=False)
    assert main(["analyse", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "y"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert bad.loc[2, "site_id"] in err and "NaN" in err
    assert main(["analyse", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "y"), "--quiet",
                 "--splits", "2", "--drop-nonfinite", "--no-ground-truth"]) == 0


def test_cli_embed_handcrafted(sample_plate, tmp_path, capsys):
    out = tmp_path / "f.parquet"
    assert main(["embed", str(sample_plate), "--method", "handcrafted", "--out", str(out)]) == 0
    df = pd.read_parquet(out)
    assert len(df) > 0 and df.filter(regex=r"^f\d{3}$").shape[1] == 5 * len(FEATURES)


def test_report_pages_escape_metadata(tmp_path):
    """Names from the metadata and the comparison (compounds, cell types, plates, reasons) that hold
    HTML show as text: escaped once, never as markup."""
    from napari_gandl.analysis.compare import to_html

    df = rxrx_like(n_feat=6, plates=2, wells=3, compounds=(("<i>good</i>", 0.1, 1.5, 1.0), ("inert&co", 1.0, 1.0, 0.0)))
    df["cell_type"] = df["cell_type"].replace({"VERO": "<b>VERO</b>"})
    analyse(df, out_dir=tmp_path / "r", n_splits=2, ground_truth=False)
    page = (tmp_path / "r" / "report.html").read_text()
    assert "&lt;i&gt;good&lt;/i&gt;" in page and "inert&amp;co" in page and "&lt;b&gt;VERO&lt;/b&gt;" in page
    assert "<i>" not in page and "<b>VERO" not in page and "inert&co" not in page and "&amp;lt;" not in page

    compare = {"plate": "plate<script>", "minutes": 1, "methods": {"m<1>": {"dim": 8}},
               "results": {"tasks": {"C+ vs C-": {"m<1>": {"mean": 0.9, "sd": 0.01}}}, "tasks_lopo": {}},
               "map": {}, "skipped": {"simclr": "needs <torch>"}}
    page = to_html(compare)
    assert "plate&lt;script&gt;" in page and "m&lt;1&gt;" in page and "needs &lt;torch&gt;" in page
    assert "<script" not in page and "<torch>" not in page and "90.0 ± 1.0" in page

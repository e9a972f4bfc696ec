import numpy as np
import pytest

from napari_gandl.analysis.normalise import (
    centerscale_on_controls, control_mask, normalise, tvn_on_controls,
)
from napari_gandl.tables import TableError, load_embeddings

from analysis_synth import rxrx_like


@pytest.fixture(scope="module")
def table():
    return load_embeddings(rxrx_like(n_feat=8, wells=5))


def test_control_mask_is_untreated(table):
    mask = control_mask(table.meta)
    assert mask.sum() == (table.meta["treatment"].isna()).sum()
    assert not mask[table.meta["treatment"].notna().to_numpy()].any()


def test_centerscale_controls_have_zero_mean_unit_sd_per_plate(table):
    Z = centerscale_on_controls(table.X, table.meta, batch_col=["experiment", "plate"])
    ctrl = control_mask(table.meta)
    batches = table.meta["experiment"] + "_" + table.meta["plate"].astype(str)
    for b in batches.unique():
        rows = (batches == b).to_numpy() & ctrl
        np.testing.assert_allclose(Z[rows].mean(0), 0, atol=1e-5)
        np.testing.assert_allclose(Z[rows].std(0, ddof=1), 1, atol=1e-4)
    # reference computation for one batch, one feature, treated rows included
    b = batches.unique()[1]
    rows = (batches == b).to_numpy()
    ref = table.X[rows & ctrl, 3].astype(float)
    expect = (table.X[rows, 3] - ref.mean()) / ref.std(ddof=1)
    np.testing.assert_allclose(Z[rows, 3], expect, rtol=1e-4, atol=1e-4)


def test_centerscale_removes_plate_offsets(table):
    ctrl = control_mask(table.meta)
    batches = (table.meta["experiment"] + "_" + table.meta["plate"].astype(str)).to_numpy()
    hrce = (table.meta["cell_type"] == "HRCE").to_numpy()

    def spread(X):
        """Spread of the per-plate control means (HRCE plates, so cell type does not
        differ between them) relative to the within-plate control sd."""
        keep = ctrl & hrce
        means = np.array([X[(batches == b) & keep].mean(0) for b in np.unique(batches[keep])])
        within = np.mean([X[(batches == b) & keep].std(0) for b in np.unique(batches[keep])], axis=0)
        return (means.std(0) / within).mean()

    assert spread(table.X) > 0.5
    assert spread(normalise(table, "centerscale").X) < 0.05


def test_tvn_whitens_pooled_controls_and_aligns_batches(table):
    Z = tvn_on_controls(table.X, table.meta)
    ctrl = control_mask(table.meta)
    assert Z.shape == table.X.shape
    batches = (table.meta["experiment"] + "_" + table.meta["plate"].astype(str)).to_numpy()
    for b in np.unique(batches):
        rows = (batches == b) & ctrl
        np.testing.assert_allclose(Z[rows].mean(0), 0, atol=1e-4)
        C = np.cov(Z[rows], rowvar=False)
        # shrunk towards identity: variances near 1, far from the raw scales
        assert np.all(np.abs(np.diag(C) - 1) < 0.5)
    # without alignment the pooled control covariance is exactly the identity
    Zw = tvn_on_controls(table.X, table.meta, align=False)
    np.testing.assert_allclose(np.cov(Zw[ctrl], rowvar=False), np.eye(Z.shape[1]), atol=1e-4)


def test_tvn_through_table_names_columns(table):
    out = normalise(table, "tvn")
    assert out.features[0] == "tvn000" and len(out) == len(table)


def test_none_and_unknown_method(table):
    assert normalise(table, "none") is table
    with pytest.raises(ValueError, match="unknown normalisation"):
        normalise(table, "quantile")


def test_missing_batch_or_perturbation_columns_are_named(table):
    meta = table.meta.drop(columns=["experiment", "plate"])
    with pytest.raises(TableError, match="batch"):
        centerscale_on_controls(table.X, meta)
    with pytest.raises(TableError, match="treatment"):
        centerscale_on_controls(table.X, table.meta.drop(columns=["treatment"]))


def test_batch_without_controls_warns_and_uses_whole_batch(table):
    meta = table.meta.copy()
    first = (meta["experiment"] == "HRCE-1") & (meta["plate"] == 1)
    meta.loc[first & meta["treatment"].isna(), "treatment"] = "something"
    with pytest.warns(UserWarning, match="control site"):
        Z = centerscale_on_controls(table.X, meta)
    np.testing.assert_allclose(Z[first.to_numpy()].mean(0), 0, atol=1e-5)


def test_tvn_alignment_matches_explicit_inverse_square_root():
    from napari_gandl.analysis.normalise import _shrunk_whiten
    rng = np.random.default_rng(0)
    for n, d in ((30, 50), (200, 20)):       # fewer and more controls than features
        ctrl = rng.normal(size=(n, d)) @ rng.normal(size=(d, d))
        rows = rng.normal(size=(40, d))
        alpha = d / (n + d)
        C = (1 - alpha) * np.cov(ctrl, rowvar=False) + alpha * np.eye(d)
        w, V = np.linalg.eigh(C)
        np.testing.assert_allclose(_shrunk_whiten(rows, ctrl, alpha, 1e-9),
                                   rows @ (V / np.sqrt(w)) @ V.T, atol=1e-9)

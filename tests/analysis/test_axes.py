
import numpy as np
import pytest

from napari_gandl.analysis.axes import fit_c2, fit_e2, fit_space, plot_space
from napari_gandl.analysis.classify import TaskError
from napari_gandl.tables import control_labels, load_embeddings

from analysis_synth import rxrx_like


@pytest.fixture(scope="module")
def table():
    return load_embeddings(rxrx_like(n_feat=12, wells=4, plate_shift=0.2))


def test_e2_centres_and_orthogonality(table):
    space = fit_e2(table)
    xy = space.transform(table.X)
    lab = control_labels(table.meta)
    np.testing.assert_allclose(xy[lab == "C+", 0].mean(), 1.0, atol=1e-6)
    np.testing.assert_allclose(xy[lab == "C-", 0].mean(), -1.0, atol=1e-6)
    np.testing.assert_allclose(xy[lab != "", 1].mean(), 0.0, atol=1e-6)
    assert abs(space.normal @ space.off_direction) < 1e-9
    # the on-axis picks up feature 0 (the infection phenotype), the off-axis the
    # main remaining variation: cell type along feature 1
    assert np.argmax(np.abs(space.normal)) == 0
    assert np.argmax(np.abs(space.off_direction)) == 1
    # treated sites rank by rescue: good compound at top dose near C+
    good = (table.meta["treatment"] == "good") & (table.meta["treatment_conc"] == 3.0)
    assert xy[good.to_numpy(), 0].mean() > 0.5


def test_c2_orients_hrce_positive(table):
    xy = fit_c2(table).transform(table.X)
    ct = table.meta["cell_type"].to_numpy()
    untreated = table.meta["treatment"].isna().to_numpy()
    np.testing.assert_allclose(xy[untreated & (ct == "HRCE"), 0].mean(), 1, atol=1e-6)
    np.testing.assert_allclose(xy[untreated & (ct == "VERO"), 0].mean(), -1, atol=1e-6)


def test_missing_class_errors(table):
    with pytest.raises(TaskError, match="C-"):
        fit_space(table.X, np.array(["C+"] * len(table), dtype=object), "C+", "C-")
    with pytest.raises(TaskError, match="two cell types"):
        fit_c2(table.subset((table.meta["cell_type"] == "HRCE").to_numpy()))


def test_transform_300k_and_plots(table, tmp_path):
    space = fit_e2(table)
    big = np.random.default_rng(0).normal(size=(300_000, table.X.shape[1])).astype(np.float32)
    xy = space.transform(big)
    assert xy.shape == (300_000, 2) and np.isfinite(xy).all()
    xy = space.transform(table.X)
    fig = plot_space(xy, control_labels(table.meta), tmp_path / "e2.png", title="E2")
    assert (tmp_path / "e2.png").stat().st_size > 5000 and fig.axes
    plot_space(xy, table.meta["treatment_conc"], tmp_path / "dose.svg", kind="numeric")
    assert (tmp_path / "dose.svg").read_text().startswith("<?xml")

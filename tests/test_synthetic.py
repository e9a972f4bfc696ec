"""The synthetic screens: the benchmark suite is frozen, its ground truth is consistent, each screen shows what it says."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest
from skimage.feature import peak_local_max

from napari_gandl.cli import main as gandl
from napari_gandl.synthetic import (
    ACTIVE, CELL_TYPES, DECOYS, DOSES_UM, MOCK, OFF_TARGETS, PRESETS, SUITE, SUITE_V1, UV, design_wells, plate_effects, render_cell, render_site, shading,
    write_sample_plate,
)

# sha256 (first 16 hex digits) of each screen's design, its wells, its plate effects and one rendered site.
# A screen that scored a method must never change: add a new screen instead of editing these. (A new
# ScreenDesign or Compound field changes every "design" hash; re-record those only if every other hash still
# matches.)
FROZEN = {
    'test': {'design': '2c9927d38ec70dc2', 'wells': 'b1dd0ba3a1c8b3ab', 'plates': 'cc3ce2a248d8cec0', 'site': 'da81e8aebaa0f28c'},
    'demo': {'design': '17498d89b0c30511', 'wells': 'fd0167550c522444', 'plates': 'ba8660cf255d4da3', 'site': '4782450c4fcfdba1'},
    'large': {'design': 'b5384bc74d9f380c', 'wells': 'fd0167550c522444', 'plates': 'ba8660cf255d4da3', 'site': '8cd8879b34dae169'},
    'texture': {'design': '45837df90a3ab589', 'wells': '89e3846659ef659e', 'plates': 'e3c3d4395ccb87dd', 'site': '318011c81f7724cd'},
    'translocation': {'design': '606301d0e0c98cd7', 'wells': '89e3846659ef659e', 'plates': 'e3c3d4395ccb87dd', 'site': '9307336b62801b6d'},
    'morphology': {'design': 'b08a7631e2991e1a', 'wells': '89e3846659ef659e', 'plates': 'e3c3d4395ccb87dd', 'site': 'a84859764a51db61'},
    'partial': {'design': '6c8f136b3e0af437', 'wells': '3eae37bfa2e3202b', 'plates': 'e3c3d4395ccb87dd', 'site': '1d7dbe1a345c9d61'},
    'plate-gain-blur': {'design': '4cb6b36cc5d7e074', 'wells': '89e3846659ef659e', 'plates': 'c3126d9850dee81e', 'site': '318011c81f7724cd'},
    'plate-background-density': {'design': 'b1bd2a0c51ba2a8d', 'wells': '89e3846659ef659e', 'plates': 'db5769e1b7edaf0b', 'site': '318011c81f7724cd'},
    'mixed-weak': {'design': '8e9c12a84c886e98', 'wells': 'b7bbfb0057359836', 'plates': '86cacb4ef07b0bab', 'site': '446151389bc6ab98'},
    'low-moi-dim': {'design': 'e0ae037cc37edde4', 'wells': '9ccccc005fbd538e', 'plates': '6f4876d702942866', 'site': '218d98ef8736ade8'},
    # suite v2: the scales of real screens (frozen before any method was scored on them)
    'large-few': {'design': 'e9e32c3248d8654f', 'wells': 'ae5a9bb09fa2ffa7', 'plates': 'e9c224171ce5950c', 'site': '6d85c258cff97999'},
    'medium': {'design': '470f883272a83c40', 'wells': 'b7bbfb0057359836', 'plates': 'a8e2a9a424faf707', 'site': '9f94760d15295218'},
    'crowded-small': {'design': '816a79a24d1e8fed', 'wells': '764523c7f9614c7e', 'plates': '421b99ea90b68d1b', 'site': 'ae05f0659fb106be'},
    'large-rare': {'design': 'b374e388b97c9a48', 'wells': '9496085cc7cffb8a', 'plates': 'ab49120d152252d9', 'site': '1cf2806bb4095132'},
    # held out (suite v3): frozen before any method was scored on them; never used to choose among variants
    'heldout-judge': {'design': '94b9c9749d1cd538', 'wells': '81c50a6d86b5b315', 'plates': 'd76aaa2f79dcd6de', 'site': '722f0d0d2bfe5c20'},
    'heldout-library': {'design': '8895aa4fdd6b4974', 'wells': '9a1c3eaff72d0d7c', 'plates': '0a2e1d807fd71355', 'site': '62a093fc2e90d22b'},
    'heldout-dim-large': {'design': '944c438a187f2c19', 'wells': '94032eebece490be', 'plates': 'd0bf2251a8be7af3', 'site': 'e25d78e914330cf0'},
    'heldout-small-texture': {'design': 'fa2502b5855567b1', 'wells': '9ccccc005fbd538e', 'plates': '9cd1ff786504e67a', 'site': '83721b68aca5d184'},
    # decoys: libraries with off-target phenotypes (frozen before any method was scored on them)
    'decoys-medium': {'design': '2fd19758423b12da', 'wells': '85c520c0f56d3986', 'plates': '929ce87c4bb994f1', 'site': '1a8880574b03db2b', 'off_target_sites': 'e88637ab3cd52116'},
    'decoys-small': {'design': '102383d48e7026f3', 'wells': '9c3443dad7926191', 'plates': 'dc8fbc7dcfacd2ab', 'site': 'fafd909eb9e02391', 'off_target_sites': 'ae2c9e57df2da44e'},
    'decoys-large': {'design': 'f752a9dd38fc48d8', 'wells': '85c520c0f56d3986', 'plates': '6d6ecb46e66e77ea', 'site': 'a3857a9083816694', 'off_target_sites': 'c4dad8791f06d6e8'},
}


def fingerprint(name: str) -> dict[str, str]:
    design = PRESETS[name]

    def sha(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()[:16]

    rng = np.random.default_rng(0)
    wells = design_wells(design, rng)
    plates = plate_effects(design, wells, rng, np.random.default_rng(1))
    site, _, _ = render_site(np.random.default_rng(0), design, CELL_TYPES[1], design.infected_fraction, 0.0,
                             np.ones(5), np.full(5, 5.0), 0.7, 1.0, shading(design, 0.1, -0.1))
    out = {"design": sha(json.dumps(asdict(design), sort_keys=True).encode()),
           "wells": sha(wells.to_csv(index=False).encode()), "plates": sha(plates.to_csv(index=False).encode()),
           "site": sha(site.tobytes())}
    off_targets = [c.off_target for c in design.compounds if c.off_target]
    if off_targets:  # the same site under each off-target phenotype of the library, at full strength
        out["off_target_sites"] = sha(b"".join(
            render_site(np.random.default_rng(0), design, CELL_TYPES[1], design.infected_fraction, 0.0, np.ones(5),
                        np.full(5, 5.0), 0.7, 1.0, shading(design, 0.1, -0.1), off_target, 1.0)[0].tobytes()
            for off_target in off_targets))
    return out


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_screen_is_frozen(name):
    assert fingerprint(name) == FROZEN[name], f"screen {name!r} changed; add a new screen instead"


def test_plate_effect_screens_keep_the_texture_screens_ground_truth():
    base = design_wells(PRESETS["texture"], np.random.default_rng(0))
    for name in ("plate-gain-blur", "plate-background-density"):
        pd.testing.assert_frame_equal(design_wells(PRESETS[name], np.random.default_rng(0)), base)


def test_suite_layout_is_rxrx19a_at_4x_downscale():
    for name in SUITE_V1:
        design = PRESETS[name]
        wells = design_wells(design, np.random.default_rng(0))
        assert design.tile_size == 256 and design.cell_scale == 0.5
        assert wells.groupby("cell_type")["plate"].nunique().tolist() == [2, 2]
        assert len(wells) * design.sites_per_well == 4 * 2 * (16 + 6 * len(design.compounds))  # 4 plates x 2 sites; 512 with 8 compounds
        assert design.illumination > 0 and design.density_sigma > 0 and design.focus_jitter > 0


def test_suite_v2_spans_the_scales_of_real_screens():
    """Cell size 10-60 px across, about 15 to 400 cells per site, 10-50 % of cells infected, weak to
    strong plate effects; the layout stays RxRx19a's."""
    designs = [PRESETS[name] for name in SUITE if name not in SUITE_V1]
    sizes = [2 * cell.cell_radius * d.cell_scale for d in designs for cell in CELL_TYPES]
    assert min(sizes) <= 10.5 and max(sizes) >= 60
    cells = [render_site(np.random.default_rng(k), d, cell, d.infected_fraction, 0.0, np.ones(5), np.full(5, 5.0),
                         1.0)[1] for d in designs for cell in CELL_TYPES for k in range(2)]
    assert min(cells) <= 25 and max(cells) >= 400
    fractions = [d.infected_fraction for d in designs]
    assert min(fractions) == 0.1 and max(fractions) == 0.5
    gains = [d.gain_sigma for d in designs]
    assert min(gains) <= 0.15 and max(gains) >= 0.45
    for d in designs:
        assert d.illumination > 0 and d.density_sigma > 0 and d.focus_jitter > 0


def test_ground_truth_is_consistent(tmp_path):
    design = PRESETS["partial"]
    root = write_sample_plate(tmp_path / "partial", "partial", seed=3, tile_size=96, sites_per_well=1)
    truth = root / "ground_truth"
    wells = pd.read_csv(truth / "wells.csv")
    compounds = pd.read_csv(truth / "compounds.csv").set_index("compound")
    assert list(compounds.index) == [c.name for c in design.compounds]
    untreated = wells["treatment"].isna()
    assert (wells.loc[untreated & wells.disease_condition.isin([MOCK, UV]), "true_rescue"] == 1).all()
    assert (wells.loc[untreated & (wells.disease_condition == ACTIVE), "true_rescue"] == 0).all()
    treated = wells[~untreated]
    assert (treated["disease_condition"] == ACTIVE).all()
    for compound in design.compounds:
        mine = treated[treated.treatment == compound.name].sort_values(["experiment", "plate", "treatment_conc"])
        assert len(mine) == 4 * len(DOSES_UM)
        np.testing.assert_allclose(mine["true_rescue"], [compound.rescue(d) for d in mine["treatment_conc"]])
        per_plate = mine.groupby(["experiment", "plate"])["true_rescue"]
        if compound.active:
            assert per_plate.apply(lambda r: r.is_monotonic_increasing and r.iloc[-1] > r.iloc[0]).all()
            assert bool(compounds.loc[compound.name, "active"])
        else:
            assert (mine["true_rescue"] == 0).all()
    expected = design.healthy_infected_fraction + (design.infected_fraction - design.healthy_infected_fraction) * (
        1 - wells["true_rescue"])
    np.testing.assert_allclose(wells["infected_fraction"], expected)

    sites = pd.read_csv(truth / "sites.csv").merge(wells, on="well_id")
    metadata = pd.read_csv(root / "metadata.csv")
    assert sorted(sites["site_id"]) == sorted(metadata["site_id"])
    assert (sites["n_infected"] <= sites["n_cells"]).all() and (sites["n_cells"] > 0).all()
    c_minus = sites[sites.treatment.isna() & (sites.disease_condition == ACTIVE)]
    share = c_minus["n_infected"].sum() / c_minus["n_cells"].sum()
    assert 0.15 < share < 0.35, "the partial screen infects a minority of each site's cells"
    c_plus = sites[sites.treatment.isna() & (sites.disease_condition != ACTIVE)]
    assert c_plus["n_infected"].sum() / c_plus["n_cells"].sum() < 0.06
    plates = pd.read_csv(truth / "plates.csv")
    assert len(plates) == 4 and {"gain_w1", "background_w5", "blur", "density"} <= set(plates.columns)
    saved = json.loads((truth / "design.json").read_text())
    assert saved["screen"] == "partial" and saved["tile_size"] == 96 and saved["texture_strength"] == 0.5


def test_denser_plates_have_more_cells(tmp_path):
    root = write_sample_plate(tmp_path / "p", "plate-background-density", tile_size=96, sites_per_well=1)
    truth = root / "ground_truth"
    sites = pd.read_csv(truth / "sites.csv").merge(pd.read_csv(truth / "wells.csv"), on="well_id")
    plates = pd.read_csv(truth / "plates.csv")
    per_plate = sites.groupby(["experiment", "plate"])["n_cells"].mean().reset_index().merge(plates)
    for _, group in per_plate.groupby("experiment"):
        assert group.sort_values("density")["n_cells"].is_monotonic_increasing


def _cells(name: str, infected: bool, n: int = 40) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    texture = rng.standard_normal((2, 200, 200))
    return [render_cell(rng, CELL_TYPES[0], infected, 0.0, texture, PRESETS[name]) for _ in range(n)]


def _moment(stain: np.ndarray, about: np.ndarray) -> float:
    """Mean squared distance of a stain's light from the light of ``about`` (its centroid)."""
    yy, xx = np.mgrid[: stain.shape[0], : stain.shape[1]]
    cy, cx = (about * yy).sum() / about.sum(), (about * xx).sum() / about.sum()
    return float((stain * ((yy - cy) ** 2 + (xx - cx) ** 2)).sum() / stain.sum())


def test_each_phenotype_screen_changes_what_it_says():
    # morphology: infected cells are larger (swollen, syncytia)
    area = {inf: np.mean([(c[2] > 0.05 * c[2].max()).sum() for c in _cells("morphology", inf)]) for inf in (0, 1)}
    assert area[1] > 1.3 * area[0]
    # translocation: the RNA (w4) leaves the nucleus (w1); the Golgi (w5) collapses onto it
    rna = {inf: np.mean([_moment(c[3], c[0]) for c in _cells("translocation", inf)]) for inf in (0, 1)}
    assert rna[1] > 1.5 * rna[0]
    # texture: RNA granules (w4) in the cytoplasm, without any translocation
    def outside_nucleus(c):
        return c[3][c[0] < 0.2 * c[0].max()].sum() / c[3].sum()

    granules = {inf: np.mean([outside_nucleus(c) for c in _cells("texture", inf)]) for inf in (0, 1)}
    assert granules[1] > granules[0] + 0.03
    # ...while the translocation screen's stains alone keep their texture: same cell size
    size = {inf: np.mean([c.shape[1] for c in _cells("translocation", inf)]) for inf in (0, 1)}
    assert abs(size[1] - size[0]) < 0.1 * size[0]


def _treated_cells(off_target: str | None, n: int = 40) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    texture = rng.standard_normal((2, 300, 300))
    return [render_cell(rng, CELL_TYPES[1], False, 0.0, texture, PRESETS["decoys-medium"], off_target, 1.0)
            for _ in range(n)]


def test_each_off_target_phenotype_changes_what_it_says():
    """In healthy cells (so nothing is infection): each decoy's phenotype against untreated cells."""
    cells = {name: _treated_cells(name) for name in (None, *OFF_TARGETS)}

    def mean(name, measure):
        return np.mean([measure(c) for c in cells[name]])

    def area(c):
        return (c[2] > 0.05 * c[2].max()).sum()

    def nucleus(c):
        return (c[0] > 0.5 * c[0].max()).sum()

    # spreading: larger cells with more stress-fibre light per unit of area than the ring alone gives
    assert mean("spreading", area) > 1.3 * mean(None, area)
    # nuclear swelling: a third larger in radius, so well over 1.4 times the area; the cell itself unchanged
    assert mean("nuclear-swelling", nucleus) > 1.4 * mean(None, nucleus)
    assert abs(mean("nuclear-swelling", area) / mean(None, area) - 1) < 0.1
    # Golgi dispersal: the one compact Golgi cluster (w5) breaks into separate puncta
    def puncta(c):
        return len(peak_local_max(c[4], min_distance=2, threshold_rel=0.3))

    assert mean("golgi-dispersal", puncta) > 2 * mean(None, puncta) + 1
    # ER expansion: more ER light (w2) per cell of the same size
    er = {name: mean(name, lambda c: c[1].sum() / area(c)) for name in (None, "er-expansion")}
    assert er["er-expansion"] > 1.4 * er[None]
    with pytest.raises(ValueError, match="unknown off-target phenotype 'nonsense'"):
        _treated_cells("nonsense", n=1)


def test_decoy_screens_hold_decoys_that_do_not_rescue(tmp_path):
    for name in DECOYS:
        compounds = PRESETS[name].compounds
        decoys = [c for c in compounds if c.off_target and not c.active]
        assert {c.off_target for c in decoys} == set(OFF_TARGETS)
        assert all(c.rescue(3.0) == 0 and c.off_target_strength(3.0) > 0.9 for c in decoys)
        assert [c.name for c in compounds if c.off_target and c.active] == ["rescue-nuclear"]
    root = write_sample_plate(tmp_path / "d", "decoys-medium", tile_size=64, sites_per_well=1)
    truth = pd.read_csv(root / "ground_truth" / "compounds.csv").set_index("compound")
    assert truth.loc["decoy-golgi", "off_target"] == "golgi-dispersal" and not truth.loc["decoy-golgi", "active"]
    assert truth.loc["rescue-nuclear", "active"] and truth["off_target"].isna().sum() == 12


def test_gandl_synthetic_writes_a_named_screen(tmp_path, capsys):
    assert gandl(["synthetic", str(tmp_path / "t"), "--preset", "test"]) == 0
    assert (tmp_path / "t" / "metadata.csv").is_file()
    with pytest.raises(SystemExit):
        gandl(["synthetic", str(tmp_path / "x"), "--preset", "nonsense"])
    assert "invalid choice: 'nonsense'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown synthetic screen 'nonsense'"):
        write_sample_plate(tmp_path / "y", "nonsense")

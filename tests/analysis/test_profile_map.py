"""copairs mAP (phenotypic activity and replicate consistency) on tables whose answer is known."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from napari_gandl.analysis import analyse
from napari_gandl.tables import load_embeddings
from napari_gandl.analysis.profile_map import C_MINUS, C_PLUS, profile_map
from napari_gandl.tables import TableError

ACTIVE = "Active SARS-CoV-2"


def screen(seed: int = 0) -> pd.DataFrame:
    """Two cell types x 3 plates, 2 sites per well. Infection points along -e0, health along
    +e0; the compound "hit" moves cells along e1 at 1 µM and e2 at 3 µM; "inert" leaves them
    infected (the C- distribution)."""
    rng = np.random.default_rng(seed)
    axis = np.eye(8)
    wells = [("Mock", None, np.nan, axis[0])] * 2 + [("UV Inactivated SARS-CoV-2", None, np.nan, axis[0])] * 2
    wells += [(ACTIVE, None, np.nan, -axis[0])] * 6
    wells += [(ACTIVE, "hit", 1.0, 2 * axis[1]), (ACTIVE, "hit", 3.0, 2 * axis[2]),
              (ACTIVE, "inert", 1.0, -axis[0]), (ACTIVE, "inert", 3.0, -axis[0])]
    rows = []
    for cell in ("HRCE", "VERO"):
        for plate in (1, 2, 3):
            for w, (condition, compound, dose, centre) in enumerate(wells):
                for site in (1, 2):
                    rows.append({"site_id": f"{cell}_{plate}_{w}_{site}", "well_id": f"{cell}_{plate}_{w}",
                                 "cell_type": cell, "experiment": cell, "plate": plate, "well": f"W{w:02d}",
                                 "disease_condition": condition, "treatment": compound, "treatment_conc": dose,
                                 **{f"f{i}": v for i, v in enumerate(centre + rng.normal(0, 0.3, 8))}})
    return pd.DataFrame(rows)


def test_rescuing_doses_are_active_and_inert_ones_are_not():
    scores = profile_map(load_embeddings(screen()), null_size=2000)
    act = scores["activity"].set_index(["cell_type", "perturbation"])
    assert C_MINUS not in act.index.get_level_values(1)  # the reference is not scored
    for cell in ("HRCE", "VERO"):
        for group in ("hit @ 1 µM", "hit @ 3 µM", C_PLUS):
            assert act.loc[(cell, group), "mAP"] > 0.95 and act.loc[(cell, group), "active"]
        for group in ("inert @ 1 µM", "inert @ 3 µM"):  # near chance: 2 replicates among 6 C- wells
            assert act.loc[(cell, group), "mAP"] < 0.6 and not act.loc[(cell, group), "active"]

    con = scores["consistency"].set_index(["cell_type", "perturbation"])
    assert len(con) == 8  # treated groups only
    for cell in ("HRCE", "VERO"):  # each hit dose has its own phenotype; the inert doses share one
        assert con.loc[(cell, "hit @ 1 µM"), "mAP"] > 0.95 and con.loc[(cell, "hit @ 3 µM"), "active"]
        # on its plate the other inert dose, of the same phenotype, ranks among its replicates
        assert con.loc[(cell, "inert @ 1 µM"), "mAP"] < 0.9


def test_negatives_come_from_the_query_wells_plate():
    """A compound whose phenotype looks like another plate's plate effect (along e3) is retrieved
    first among the C- wells of its own plate, though plate 1's C- wells, which carry that plate
    effect, would tie with its replicates; a plate without C- wells is left out and counted."""
    frame = screen()
    rng = np.random.default_rng(3)
    extra = []
    for plate in (2, 3):
        for w in (20, 21):
            for site in (1, 2):
                row = frame[(frame["plate"] == plate) & (frame["cell_type"] == "HRCE")].iloc[0].to_dict()
                centre = -np.eye(8)[0] + 3 * np.eye(8)[3] + rng.normal(0, 0.3, 8)
                row.update(site_id=f"HRCE_{plate}_{w}_{site}", well_id=f"HRCE_{plate}_{w}", well=f"W{w}",
                           treatment="mimic", treatment_conc=1.0, disease_condition=ACTIVE,
                           **{f"f{i}": centre[i] for i in range(8)})
                extra.append(row)
    frame = pd.concat([frame, pd.DataFrame(extra)], ignore_index=True)
    frame.loc[(frame["plate"] == 1).to_numpy(), "f3"] += 3.0
    lost = ((frame["cell_type"] == "VERO") & (frame["plate"] == 3) & frame["treatment"].isna()
            & (frame["disease_condition"] == ACTIVE)).to_numpy()  # VERO's plate 3 loses its C- wells
    act = profile_map(load_embeddings(frame[~lost]), null_size=2000)["activity"]
    assert act.set_index(["cell_type", "perturbation"]).loc[("HRCE", "mimic @ 1 µM"), "mAP"] > 0.95
    assert act.attrs["wells_without_plate_controls"] == 8  # VERO plate 3: 4 C+ (Mock, UV), 4 treated wells


@pytest.fixture
def table():
    return load_embeddings(screen())


def test_map_needs_c_minus_wells(table):
    no_cminus = table.subset((table.meta["disease_condition"] != "Active SARS-CoV-2").to_numpy())
    with pytest.raises(TableError, match=r"needs untreated active-virus \(C-\) wells"):
        profile_map(no_cminus, null_size=100)


def test_analyse_reports_map_beside_the_svm(tmp_path):
    report = analyse(screen(seed=1), out_dir=tmp_path, n_splits=2, ground_truth=False)
    summary = json.loads((tmp_path / "report.json").read_text())["map"]
    assert summary == json.loads(json.dumps(report["map"]))
    assert summary["activity"]["n_significant"] >= 4 and summary["activity"]["C+_mAP"]["HRCE"] > 0.8
    table = pd.read_csv(tmp_path / "map_activity.csv")
    assert {"cell_type", "perturbation", "mAP", "p_value", "q_value", "active"} <= set(table.columns)
    assert (tmp_path / "map_consistency.csv").is_file()
    assert "copairs mAP" in (tmp_path / "report.html").read_text()

"""Profile strength the field's way: mean average precision (mAP) with copairs.

Sites are averaged into well profiles (after plate normalisation), and
copairs ranks wells by cosine similarity:

* **phenotypic activity**: can the replicate wells of one compound at one
  dose (same cell type) be retrieved from among the untreated active-virus
  wells (C-) of that cell type on the query well's own plate? The healthy
  controls (C+) are scored the same way, as a reference for a full rescue. A
  group whose mAP beats copairs' permutation null at FDR-corrected p < 0.05 is
  *active*.
* **replicate consistency**: can the replicate wells of one compound at one
  dose be retrieved from among every other compound and dose of that cell
  type on the query well's plate?

Negatives come from the query's plate, as the JUMP Cell Painting analyses draw
them: a plate effect left after normalisation then does not count as activity,
and the pairs grow with the plate, not the screen (with every C- well of its
cell type as negatives, RxRx19a's 60,000 treated wells make 300 million
pairs, hours of copairs; on their plates, 3 million). A well on a plate without
C- wells of its cell type has no negatives for phenotypic activity and is left
out of it; ``report.json`` counts such wells.

mAP is computed by ``copairs`` (average precision per well, null
distributions, Benjamini-Hochberg correction); nothing of it is
re-implemented here.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from napari_gandl.tables import (
    EmbeddingTable, TableError, as_str, batch_labels, control_labels, is_untreated, well_groups,
)

C_PLUS, C_MINUS = "C+ (Mock, UV)", "C- (active virus)"
THRESHOLD = 0.05


def well_profiles(table: EmbeddingTable) -> tuple[pd.DataFrame, np.ndarray]:
    """Mean feature vector of each well, with its cell type, plate and perturbation.

    The perturbation is ``compound @ dose`` for treated wells, ``C+``/``C-``
    for controls and empty for anything else.
    """
    meta = table.meta
    wells = well_groups(meta)
    ctrl = control_labels(meta)
    treated = ~is_untreated(meta)
    if "treatment_conc" in meta.columns:
        dose = pd.to_numeric(meta["treatment_conc"], errors="coerce").to_numpy()
        dose_txt = np.array([f" @ {d:g} µM" if np.isfinite(d) else "" for d in dose], dtype=object)
    else:
        dose_txt = np.full(len(meta), "", dtype=object)
    perturbation = np.where(treated, as_str(meta, "treatment").astype(object) + dose_txt,
                            np.where(ctrl == "C+", C_PLUS, np.where(ctrl == "C-", C_MINUS, "")))
    frame = pd.DataFrame({
        "well": wells,
        "cell_type": as_str(meta, "cell_type") if "cell_type" in meta.columns else "",
        "batch": batch_labels(meta),
        "perturbation": perturbation,
    })
    features = pd.DataFrame(table.X, columns=range(table.X.shape[1])).groupby(frame["well"].to_numpy()).mean()
    profiles = frame.groupby("well", sort=False).first().loc[features.index].reset_index()
    return profiles, features.to_numpy(np.float64)


def _map(profiles: pd.DataFrame, X: np.ndarray, pos_sameby, neg_sameby, neg_diffby, groups,
         null_size: int, seed: int) -> pd.DataFrame:
    import copairs.map

    logging.getLogger("copairs").setLevel(logging.WARNING)
    ap = copairs.map.average_precision(profiles, X, pos_sameby=pos_sameby, pos_diffby=[],
                                       neg_sameby=neg_sameby, neg_diffby=neg_diffby, progress_bar=False)
    scores = copairs.map.mean_average_precision(ap, groups, null_size=null_size, threshold=THRESHOLD,
                                                seed=seed, progress_bar=False)
    return scores.drop(columns=["indices"], errors="ignore").rename(columns={
        "mean_average_precision": "mAP", "corrected_p_value": "q_value", "below_corrected_p": "active"})


def profile_map(table: EmbeddingTable, null_size: int = 10000, seed: int = 0) -> dict[str, pd.DataFrame]:
    """copairs mAP tables ``{"activity": ..., "consistency": ...}``, one row per cell type x perturbation.

    Raises ``TableError`` when the table cannot support them (no wells, no
    C- controls, no replicated treatment).
    """
    from copairs.matching import UnpairedException

    profiles, X = well_profiles(table)
    is_cminus = (profiles["perturbation"] == C_MINUS).to_numpy()
    if not is_cminus.any():
        raise TableError("copairs mAP needs untreated active-virus (C-) wells to compare against")
    plate_of = profiles["cell_type"].astype(str) + "\x1f" + profiles["batch"].astype(str)
    has_cminus = plate_of.isin(plate_of[is_cminus]).to_numpy()
    scored = (profiles["perturbation"] != "").to_numpy()
    out = {}
    activity = profiles[scored & has_cminus].reset_index(drop=True)
    # copairs' reference-index idiom: each C- well is its own group, so C- wells are
    # never positives of one another and are the only negatives of everything else.
    activity["reference"] = np.where(activity["perturbation"] == C_MINUS, activity.index, -1)
    try:
        out["activity"] = _map(activity, X[scored & has_cminus], ["cell_type", "perturbation", "reference"],
                               ["cell_type", "batch"], ["perturbation", "reference"], ["cell_type", "perturbation"],
                               null_size, seed)
    except UnpairedException as exc:
        raise TableError(f"copairs mAP: {exc} (phenotypic activity needs replicate wells and C- wells "
                         "on their plates)") from exc
    out["activity"].attrs["wells_without_plate_controls"] = int((scored & ~has_cminus).sum())
    treated = scored & ~is_cminus & (profiles["perturbation"] != C_PLUS).to_numpy()
    # a well alone with its own perturbation on its plate would have no negatives (copairs would
    # rank its positives first and score it 1)
    kinds = profiles[treated].groupby(plate_of[treated].to_numpy())["perturbation"].nunique()
    treated &= plate_of.map(kinds).fillna(0).to_numpy() > 1
    try:
        out["consistency"] = _map(profiles[treated].reset_index(drop=True), X[treated],
                                  ["cell_type", "perturbation"], ["cell_type", "batch"], ["perturbation"],
                                  ["cell_type", "perturbation"], null_size, seed)
    except UnpairedException as exc:
        raise TableError(f"copairs mAP: {exc} (replicate consistency needs replicated treatments)") from exc
    return out


def map_report(table: EmbeddingTable, out_dir, null_size: int = 10000, seed: int = 0) -> dict:
    """Write ``map_activity.csv`` and ``map_consistency.csv``; return the summary for report.json."""
    tables = profile_map(table, null_size=null_size, seed=seed)
    summary = {"threshold_q": THRESHOLD, "null_size": null_size, "negatives": "from the query well's plate",
               "wells_without_plate_controls": tables["activity"].attrs["wells_without_plate_controls"]}
    for name, frame in tables.items():
        frame = frame.sort_values("mAP", ascending=False)
        frame.to_csv(f"{out_dir}/map_{name}.csv", index=False)
        treated = frame[~frame["perturbation"].isin([C_PLUS, C_MINUS])]
        summary[name] = {
            "file": f"map_{name}.csv",
            "mean_mAP": float(treated["mAP"].mean()),
            "n_groups": int(len(treated)),
            "n_significant": int(treated["active"].sum()),
            "top": treated.head(10)[["cell_type", "perturbation", "mAP", "q_value"]].to_dict(orient="records"),
        }
    controls = tables["activity"][tables["activity"]["perturbation"] == C_PLUS]
    if len(controls):
        summary["activity"]["C+_mAP"] = {r.cell_type: float(r.mAP) for r in controls.itertuples()}
    return summary

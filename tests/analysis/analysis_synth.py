"""Synthetic embedding tables with known structure, shared by the analysis tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from napari_gandl.analysis.dose import logistic4

DOSES = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)


def rxrx_like(n_feat: int = 16, plates: int = 2, wells: int = 6, sites: int = 2,
              compounds=(("good", 0.1, 1.5, 1.0), ("inert", 1.0, 1.0, 0.0)),
              plate_shift: float = 3.0, seed: int = 0):
    """RxRx19a-shaped table: C+/C- controls and compounds whose rescue follows a
    4PL; the infection phenotype lies along feature 0, cell type along feature 1,
    and every plate adds its own offset and scale (a batch effect)."""
    rng = np.random.default_rng(seed)
    rows, X = [], []
    for cell, ct_shift in (("HRCE", 2.0), ("VERO", -2.0)):
        for p in range(1, plates + 1):
            offset = rng.normal(0, plate_shift, n_feat)
            scale = rng.uniform(0.5, 2.0, n_feat)
            conds = ([("Mock", None, np.nan, 1.0)] * wells + [("UV Inactivated SARS-CoV-2", None, np.nan, 1.0)] * wells
                     + [("Active SARS-CoV-2", None, np.nan, 0.0)] * (2 * wells))
            for name, ec50, hill, top in compounds:
                for d in DOSES:
                    rescue = top / (1 + (ec50 / d) ** hill)
                    conds.append(("Active SARS-CoV-2", name, d, rescue))
            for w, (cond, comp, dose, rescue) in enumerate(conds):
                well = f"W{w:03d}"
                for s in range(1, sites + 1):
                    x = rng.normal(0, 1, n_feat)
                    x[0] += 4.0 * rescue - 2.0
                    x[1] += ct_shift
                    X.append(x * scale + offset)
                    rows.append({
                        "site_id": f"{cell}-1_{p}_{well}_{s}", "well_id": f"{cell}-1_{p}_{well}",
                        "cell_type": cell, "experiment": f"{cell}-1", "plate": p, "well": well,
                        "site": s, "disease_condition": cond, "treatment": comp,
                        "treatment_conc": dose, "SMILES": None,
                    })
    meta = pd.DataFrame(rows)
    feats = pd.DataFrame(np.asarray(X, np.float32), columns=[f"f{i:03d}" for i in range(n_feat)])
    return pd.concat([meta, feats], axis=1)


def noisy_curves(n: int, seed: int = 0, noise: float = 0.05, reps: int = 1):
    """n 4PL curves on the six RxRx19a doses with known parameters."""
    rng = np.random.default_rng(seed)
    x = np.log10(np.array(DOSES))
    m = rng.uniform(x[1], x[-2], n)
    h = rng.uniform(0.8, 3.0, n)
    b = -1 + rng.normal(0, 0.05, n)
    t = b + rng.uniform(1.2, 2.0, n)
    X = np.tile(x, (n, 1))
    Y = logistic4(X[:, :, None], b[:, None, None], t[:, None, None], m[:, None, None], h[:, None, None])
    Y = Y + rng.normal(0, noise, (n, len(x), reps))
    return X, Y, dict(bottom=b, top=t, log10_ec50=m, hill=h)

"""What each screen of the suite allows: its ground truth, scored as an embedding.

A synthetic screen records, for every site, how many cells it holds and how many of them are infected
(``ground_truth/sites.csv``). A site whose infected fraction were known exactly would be the best
profile of infection a method could compute from the pixels; it still leaves the noise of the screen
itself: a site of 28 cells of which 10 % are infected holds 2 or 3 infected cells, sometimes none, so
such a site can look like a control whatever reads it.

The **reference** embedding has two columns per site: the true infected fraction and the true number
of cells (a cytotoxic dose kills cells). It goes through exactly what every method goes through in the
suite (``bench_suite.score``: ``gandl analyse`` with plate centre-scaling; C+/C- accuracy on held-out
wells, dose-ranking Spearman, compound-ranking AP by ``gandl analyse``'s rank, hits). Its figures are
what the screen's own sampling permits; a method can beat them only by luck of the splits, or where it
sees a cue the reference lacks. They are set beside bench_suite's 16-kimg runs (GAN-DL and the same
network untrained, the mean of seeds 0 and 1) and the handcrafted features.

    python benchmarks/bench_reference.py [--screens large-rare,medium] [--no-report]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _report import publish  # noqa: E402
from bench_suite import log, scored, suite_parser  # noqa: E402

TAGS = ("16kimg", "16kimg-seed1")   # bench_suite's default runs at seeds 0 and 1
METHODS = ("GAN-DL", "untrained", "handcrafted")
KEYS = (("acc", "C+/C- %", 100.0, "{:.1f}"), ("spearman", "Spearman", 1.0, "{:.3f}"),
        ("rank_ap", "ranking AP", 1.0, "{:.3f}"))


def reference_embedding(plate_root: Path, out: Path) -> Path:
    """``out``: the plate's metadata and, per site, its true infected fraction and number of cells."""
    if not out.is_file():
        meta = pd.read_csv(plate_root / "metadata.csv")
        truth = pd.read_csv(plate_root / "ground_truth" / "sites.csv")
        table = meta.merge(truth[["site_id", "n_cells", "n_infected"]], on="site_id", how="left",
                           validate="one_to_one")
        if table["n_cells"].isna().any():
            raise ValueError(f"{plate_root / 'ground_truth' / 'sites.csv'}: sites of metadata.csv missing")
        table["f000"] = table["n_infected"] / table["n_cells"].clip(lower=1)
        table["f001"] = table["n_cells"].astype(np.float64)
        table.drop(columns=["n_cells", "n_infected"]).to_parquet(out, index=False)
    return out


def main(argv=None) -> int:
    ap = suite_parser(__doc__, splits=True)
    args = ap.parse_args(argv)
    screens = args.screens.split(",")
    got = {}  # screen -> method -> scores (the two seeds' mean for the networks)
    for screen in screens:
        folder = args.cache / screen
        runs = [json.loads((folder / f"results-{tag}.json").read_text())["results"] for tag in TAGS]
        got[screen] = {m: {k: float(np.mean([r[m][k] for r in runs])) for k in
                           ("acc", "spearman", "rank_ap", "true_hits", "false_hits")} for m in METHODS}
        ref = scored(reference_embedding(folder / "plate", folder / "emb-reference.parquet"), folder / "plate",
                     args.splits)
        got[screen]["reference"] = ref
        log(f"{screen}: reference C+/C- {100 * ref['acc']:.1f} %, Spearman {ref['spearman']:.3f}, "
            f"AP {ref['rank_ap']:.3f}")
    columns = ("reference", *METHODS)
    lines = [
        "**Reference**: each site's true infected fraction and number of cells (`ground_truth/sites.csv`) as a "
        "two-column embedding, through the same `gandl analyse` and scoring as every method (bench_suite). "
        "Each cell reads **reference / GAN-DL / untrained / handcrafted**. GAN-DL and untrained: the mean of "
        "bench_suite's 16-kimg runs at seeds 0 and 1; hits: the mean number of true / false hits over the two "
        "seeds, of the screen's rescuing compound x cell-type curves.", "",
        "| screen | " + " | ".join(label for _, label, _, _ in KEYS) + " | true / false hits (of N) |",
        "|---|" + "---|" * (len(KEYS) + 1)]
    for screen in [*screens, "mean"]:
        rows = [got[s] for s in screens] if screen == "mean" else [got[screen]]
        cells = [" / ".join(fmt.format(scale * np.mean([r[c][key] for r in rows])) for c in columns)
                 for key, _, scale, fmt in KEYS]
        hits = " · ".join(f"{np.sum([r[c]['true_hits'] for r in rows]):g}/{np.sum([r[c]['false_hits'] for r in rows]):g}"
                          for c in columns)
        name = "**mean** (hits summed)" if screen == "mean" else screen
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {hits} ({sum(r['reference']['rescuing_curves'] for r in rows)}) |")
    below = [s for s in screens if got[s]["reference"]["acc"] < 0.9]
    lines += ["", "Screens where the reference itself is below 90 % C+/C-: "
              + (", ".join(f"`{s}` ({100 * got[s]['reference']['acc']:.1f} %)" for s in below) or "none") + "."]
    body = "\n".join(lines)
    publish("reference", "What each screen allows: its ground truth as the embedding (bench_reference.py)",
            body, write=not args.no_report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

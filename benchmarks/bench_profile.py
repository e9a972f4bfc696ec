"""What a site's profile should be: GAN-DL's features over a site's tiles, or over its cells.

For every screen of the suite, bench_suite's 16-kimg run (tag ``16kimg``) and the same network
untrained embed each site two ways:

- **tiles** (the default): the discriminator's features of every training-resolution square of
  the site, averaged;
- **cells** (``gandl embed --sampling crops``): one crop centred on each nucleus found in the
  Hoechst stain (at most 64 per site), each through D.

The cells are summarised three ways, each scored exactly as the suite scores an embedding, beside
the handcrafted features: their mean (what ``--sampling crops`` gives); their mean and standard
deviation; and those and, per feature, the fraction of cells more than 3 robust standard
deviations (1.4826 MAD) from the cells of 48 spread-out sites of the plate (the profile
``--sampling crops`` gave before this benchmark).

Last, ``gandl embed`` of each ``--timed`` screen is timed both ways, tiles and cells (one thread;
run it with the machine otherwise idle).

    python benchmarks/bench_profile.py [--screens texture,large-rare] [--timed texture] [--cache DIR]

Runs and embeddings are cached under ``--cache`` beside bench_suite's: what is there is reused,
what is missing is trained (16 kimg, one thread) or embedded first.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _report import publish  # noqa: E402
from bench_suite import NETWORK_SUFFIX, embed_seconds, run_screen, score, suite_parser  # noqa: E402

from napari_gandl.embedding.base import Embedder  # noqa: E402

TAG = "16kimg"
METHODS = ("GAN-DL", "untrained", "handcrafted")
# the cells' profiles, by how many D-width column blocks of ThreeBlocks they keep: mean | sd | outlying fraction
PROFILES = (("cells: mean", 1), ("cells: mean + sd", 2), ("cells: mean + sd + outlying", 3))
REFERENCE_SITES = 48  # sites whose cells are the reference population of "outlying"
OUTLIER_Z = 3.0


class ThreeBlocks(Embedder):
    """A site's cells (``--sampling crops``) summarised by their mean, standard deviation and
    fraction of outlying cells per feature: three times D's width."""

    name = "gandl-cells-3"

    def __init__(self, run: Path, plate):
        from napari_gandl.embedding.registry import load_embedder

        self.crops = load_embedder("gandl", run, plate, "cpu", sampling="crops")
        self.stains, self.source, self.normalizer = self.crops.stains, run, self.crops.normalizer
        self.dim = 3 * self.crops.dim
        usable = np.asarray(plate.usable_sites)
        pick = usable[np.unique(np.linspace(0, len(usable) - 1, min(REFERENCE_SITES, len(usable))).round().astype(int))]
        reference = np.concatenate(self.cells([plate.read_site(int(s)) for s in pick])).astype(np.float64)
        self.median = np.median(reference, axis=0)
        mad = np.median(np.abs(reference - self.median), axis=0) * 1.4826
        sd = reference.std(axis=0)
        self.scale = np.where(mad > 1e-12, mad, np.where(sd > 1e-12, sd, 1.0))

    def cells(self, images) -> list[np.ndarray]:
        """Per site, D's features of its cell crops, as ``--sampling crops`` computes them."""
        from napari_gandl.embedding.methods.gandl import cell_features

        return cell_features(self.crops.model, list(images), self.crops.layer, self.crops.nuclear)

    def embed_sites(self, images: np.ndarray) -> np.ndarray:
        from napari_gandl.preprocessing.crops import aggregate_cells

        rows = []
        for f in self.cells(images):
            if len(f) == 0:
                rows.append(np.full(self.dim, np.nan))
                continue
            f = f.astype(np.float64)
            outlying = (np.abs((f - self.median) / self.scale) > OUTLIER_Z).mean(axis=0)
            rows.append(np.concatenate([aggregate_cells(f), f.std(axis=0), outlying]))  # the mean: the product's own
        return np.stack(rows).astype(np.float32)


def three_blocks(screen: str, cache: Path, network: str) -> Path:
    """The cells' three-block profile of every site by ``network``'s run, embedded once."""
    from napari_gandl.embedding import embed_plate
    from napari_gandl.plate import open_plate

    suffix = NETWORK_SUFFIX[network]
    path = cache / screen / f"emb-cells3-{TAG}{suffix}.parquet"
    if not path.is_file():
        opened = open_plate(cache / screen / "plate")
        embed_plate(opened, ThreeBlocks(cache / screen / f"gandl-{TAG}{suffix}", opened), out_path=path,
                    batch_size=8)
    return path
METRICS = (("acc", "C+/C- accuracy (%)", 100.0), ("spearman", "dose-ranking Spearman", 1.0),
           ("rank_ap", "compound-ranking AP", 1.0))


def profile_scores(screen: str, cache: Path, network: str, blocks: int, splits: int) -> dict:
    """The suite's scores of the first ``blocks`` column blocks of a network's three-block cells profile."""
    cells = three_blocks(screen, cache, network)
    out = cache / screen / f"profile-{cells.stem[4:]}-{blocks}"
    saved = out / "bench_scores.json"
    if not saved.is_file():
        frame = pd.read_parquet(cells)
        features = [c for c in frame.columns if c.startswith("f") and c[1:].isdigit()]
        keep = features[: len(features) // 3 * blocks]
        out.mkdir(parents=True, exist_ok=True)
        path = out / "embeddings.parquet"
        frame[[c for c in frame.columns if c not in features] + keep].to_parquet(path)
        saved.write_text(json.dumps(score(path, cache / screen / "plate", out / "report", splits), indent=1))
    return json.loads(saved.read_text())


def cell(r: dict, key: str, scale: float) -> str:
    v = r[key]
    return "–" if v is None or not np.isfinite(v) else (f"{v * scale:.1f}" if scale == 100 else f"{v:.3f}")


def main(argv=None) -> int:
    ap = suite_parser(__doc__, splits=True)
    ap.add_argument("--timed", default="texture,large-rare",
                    help="screens whose embedding is timed, tiles against cells (the machine must be otherwise idle)")
    args = ap.parse_args(argv)
    screens = args.screens.split(",")
    columns = [("GAN-DL", "tiles"), *(("GAN-DL", p) for p, _ in PROFILES),
               ("untrained", "tiles"), *(("untrained", p) for p, _ in PROFILES), ("handcrafted", "")]
    results = {}
    for screen in screens:
        row = run_screen(screen, args.cache, 0, TAG, args.splits, METHODS, kimg=16)
        for network in ("GAN-DL", "untrained"):
            results[screen, network, "tiles"] = row["results"][network]
            for name, blocks in PROFILES:
                results[screen, network, name] = profile_scores(screen, args.cache, network, blocks, args.splits)
        results[screen, "handcrafted", ""] = row["results"]["handcrafted"]
        print(screen, {c: round(results[(screen, *c)]["spearman"], 3) for c in columns}, flush=True)

    header = "| screen | " + " | ".join(f"{n} {p}".strip() for n, p in columns) + " |"
    lines = [
        "Each site embedded by GAN-DL's 16-kimg run of bench_suite (`gandl train PLATE --kimg 16 --threads 1`, "
        "the default preset) and by the same network untrained, two ways: **tiles** (the default: D's features "
        "of every training-resolution square of the site, averaged) and **cells** (`gandl embed --sampling "
        "crops`: a crop centred on each nucleus found in the Hoechst stain, at most 64 per site, each through "
        "D). The cells are summarised three ways: their mean (what `--sampling crops` gives now); their mean "
        "and standard deviation; and those and, per feature, the fraction of cells more than 3 robust "
        "standard deviations from the cells of 48 spread-out sites of the plate (what it gave before). Every "
        "embedding is scored as the suite scores one (`gandl analyse` with plate centre-scaling; "
        "compound-ranking AP: the true rescuers first, in "
        "`gandl analyse`'s order).", ""]
    for key, title, scale in METRICS:
        lines += [f"**{title}**", "", header, "|---" * (len(columns) + 1) + "|"]
        for screen in screens:
            lines.append(f"| {screen} | " + " | ".join(cell(results[(screen, *c)], key, scale) for c in columns) + " |")
        means = [np.mean([results[(s, *c)][key] for s in screens]) for c in columns]
        lines += ["| **mean** | " + " | ".join(f"**{cell({key: m}, key, scale)}**" for m in means) + " |", ""]
    lines += ["**True / false hits** (rescuing compound x cell-type curves called at q < 0.05)", "", header,
              "|---" * (len(columns) + 1) + "|"]
    for screen in screens:
        lines.append(f"| {screen} | " + " | ".join(
            f"{results[(screen, *c)]['true_hits']} / {results[(screen, *c)]['false_hits']}" for c in columns) + " |")
    totals = [(sum(results[(s, *c)]["true_hits"] for s in screens), sum(results[(s, *c)]["false_hits"] for s in screens))
              for c in columns]
    lines += ["| **total** | " + " | ".join(f"**{t} / {f}**" for t, f in totals) + " |", ""]
    for network in ("GAN-DL", "untrained"):
        base = [results[s, network, "tiles"] for s in screens]
        for name, _ in PROFILES:
            other = [results[s, network, name] for s in screens]
            better = {k: sum(o[k] > b[k] for o, b in zip(other, base)) for k, _, _ in METRICS}
            worse = {k: sum(o[k] < b[k] for o, b in zip(other, base)) for k, _, _ in METRICS}
            lines.append(f"- {network}, {name} against tiles: higher / lower on "
                         + "; ".join(f"{title.split(' (')[0]} {better[k]} / {worse[k]}" for k, title, _ in METRICS)
                         + f" of {len(screens)} screens.")
    load = [os.getloadavg()[0]]
    timed = []
    for screen in filter(None, args.timed.split(",")):
        plate_root, run = args.cache / screen / "plate", args.cache / screen / f"gandl-{TAG}"
        tiles, cells = (embed_seconds(plate_root, run, "--sampling", how) for how in ("tiles", "crops"))
        load.append(os.getloadavg()[0])
        sites = len(pd.read_csv(args.cache / screen / "plate" / "metadata.csv"))
        timed.append(f"`{screen}` {cells:.0f} s against {tiles:.0f} s ({sites} sites)")
    if timed:
        lines += ["", "Time to embed a whole screen (`gandl embed --threads 1 --device cpu`, the 16-kimg run, "
                  "decoding included), cells (`--sampling crops`, the mean) against tiles: " + "; ".join(timed)
                  + f". Load average (1 min) from start to end: {min(load):.1f}–{max(load):.1f} on 2 cores, "
                  "nothing else running."]
    body = "\n".join(lines)
    publish("profile", "What a site's profile should be: tiles or cells (bench_profile.py)",
            body, write=not args.no_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())

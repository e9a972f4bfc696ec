"""DINO's backbone at our CPU budget: the small ViT against the residual CNN, the same minutes each.

For each screen of the synthetic suite given, DINO is trained with each backbone for ``--minutes``
on one torch thread (everything else DINO's defaults), embeds every site, and the embedding is
scored as ``bench_suite.py`` scores GAN-DL's (``gandl analyse`` with ground truth: C+/C- accuracy,
dose-ranking Spearman, copairs mAP of the rescued doses, compound-ranking AP).  Work is kept under
``CACHE/dino-backbone/minutes-M/SCREEN/BACKBONE`` and resumes.

    OMP_NUM_THREADS=1 python benchmarks/bench_dino_backbone.py --screens texture --minutes 2
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _report import publish  # noqa: E402

BACKBONES = ("cnn", "vit")


def run_backbone(cache: Path, screen: str, backbone: str, minutes: float, splits: int) -> dict:
    from bench_suite import score, screen_plate

    from napari_gandl.comparators import dino
    from napari_gandl.comparators.tiles import iterate_tile_training, load_tile_checkpoint
    from napari_gandl.embedding import embed_plate
    from napari_gandl.embedding.methods._tiles import load_tile_run

    folder = cache / "dino-backbone" / f"minutes-{minutes:g}" / screen / backbone
    saved = folder / "result.json"
    if saved.is_file():
        return json.loads(saved.read_text())
    plate_root = screen_plate(cache / "suite", screen)
    run = folder / "run"
    defaults = {**dino.DEFAULTS, "network": {**dino.DEFAULTS["network"], "backbone": backbone}}
    if not (run / "checkpoint.pt").exists() or load_tile_checkpoint("dino", run)["elapsed_s"] < 60 * minutes * 0.98:
        for info in iterate_tile_training("dino", dino.build, defaults, plate_root, run, minutes=minutes,
                                          device="cpu", resume=(run / "checkpoint.pt").exists()):
            pass
    ckpt = load_tile_checkpoint("dino", run)
    table = folder / "embeddings.parquet"
    if not table.is_file():
        embed_plate(plate_root, load_tile_run("dino", dino.build, run, "cpu"), out_path=table, device="cpu")
    result = {"screen": screen, "backbone": backbone, "kimg": ckpt["nimg"] / 1000,
              "train_img_per_s": ckpt["nimg"] / ckpt["elapsed_s"],
              **score(table, plate_root, folder / "report", splits)}
    saved.write_text(json.dumps(result, indent=1))
    print(f"{screen} {backbone}: " + ", ".join(f"{k} {result[k]:.3f}" for k in ("kimg", "acc", "spearman", "map",
                                                                            "rank_ap")), flush=True)
    return result


def report_body(results: list[dict], minutes: float) -> str:
    lines = [
        f"DINO trained with each backbone for **{minutes:g} min** on one CPU thread of the shared 2-core "
        "machine (other developers' tests and benchmarks ran beside it), everything else DINO's defaults "
        "(batch 32, 64 px tiles, 2 global + 4 local crops). Small ViT: 8 px patches, width 192, 4 blocks, "
        "3 heads, CLS token. Residual CNN: the ConvAE/SimCLR encoder (widths 16-256), globally pooled. "
        "Scored as `bench_suite.py` scores GAN-DL: C+/C- accuracy (well-grouped splits), dose-ranking "
        "Spearman, copairs mAP of the rescued doses vs C-, compound-ranking AP. One seed per cell.",
        "",
        "| screen | backbone | kimg | training img/s | C+/C- % | Spearman | copairs mAP | ranking AP |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(f"| {r['screen']} | {r['backbone']} | {r['kimg']:.1f} | {r['train_img_per_s']:.1f} | "
                     f"{100 * r['acc']:.1f} | {r['spearman']:.3f} | {r['map']:.3f} | {r['rank_ap']:.3f} |")
    screens = {r["screen"] for r in results}
    if len(screens) > 1:
        for backbone in BACKBONES:
            mine = [r for r in results if r["backbone"] == backbone]
            mean = {k: sum(r[k] for r in mine) / len(mine) for k in ("acc", "spearman", "map", "rank_ap")}
            lines.append(f"| **mean of {len(screens)}** | {backbone} | | | {100 * mean['acc']:.1f} | "
                         f"{mean['spearman']:.3f} | {mean['map']:.3f} | {mean['rank_ap']:.3f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--screens", default="texture", help="comma-separated suite screens")
    ap.add_argument("--minutes", type=float, default=2.0, help="training budget per backbone and screen")
    ap.add_argument("--splits", type=int, default=10)
    ap.add_argument("--cache", default="/work/bench-cache")
    ap.add_argument("--no-report", action="store_true")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    results = [run_backbone(Path(args.cache), screen, backbone, args.minutes, args.splits)
               for screen in args.screens.split(",") for backbone in BACKBONES]
    body = report_body(results, args.minutes)
    publish("dino_backbone", "DINO's backbone: small ViT or residual CNN (bench_dino_backbone.py)",
            body, write=not args.no_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())

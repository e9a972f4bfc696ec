"""Does the 1-NN two-sample accuracy of ``metrics.csv`` measure the generator's samples, or that the real crops
come from tiles stored as integers while the samples are not?

Every run of the suite reads 1.00 (the target is at most 0.80), whatever its KID. The check: on the held-out
crops the metric compares against, four sets are measured as ``gandl train`` measures its samples
(``SampleQuality``, 128 each): a second draw of real crops; that draw with every value moved by up to half a
grey level (``U(-0.5, 0.5)``, the reals as a continuous image would give them); the run's samples; and the
samples rounded and clipped to the plate's range, as a stored tile would hold them. If storage alone made 1.00,
the second set would read near 1.00 and the fourth far below it. Each screen gets one run without code recovery
(``gandl train PLATE --kimg 8 --info 0 --runs 1``, seed 0; code recovery makes samples less realistic on
purpose), trained once into the suite's cache (``gandl-8kimg-info0``).

    python benchmarks/bench_nn1_check.py [--screens texture,large-rare] [--no-report]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import publish  # noqa: E402
from bench_suite import log, screen_plate, suite_parser, train_run  # noqa: E402

TAG = "8kimg-info0"
N = 128


def measured(plate_root: Path, run: Path) -> tuple[dict[str, dict], float, dict[str, tuple[int, int]]]:
    """The three sample-quality numbers of each set against the run's held-out real crops (set name -> numbers),
    the 1-NN accuracy of the samples by each stain's mean intensity alone, and the range of the reals' and the
    samples' values."""
    import torch

    from napari_gandl.features.handcrafted import FEATURES
    from napari_gandl.gan.checkpoint import load_checkpoint
    from napari_gandl.gan.config import TrainConfig
    from napari_gandl.gan.metrics import SampleQuality, image_features, nn1_accuracy
    from napari_gandl.gan.trainer import Trainer
    from napari_gandl.plate import open_plate

    torch.set_num_threads(1)
    cfg = TrainConfig.from_dict(load_checkpoint(run)["config"])
    cfg.device, cfg.threads = "cpu", 1
    trainer = Trainer(open_plate(plate_root), run, cfg, resume=True)
    reals, second = trainer.held_out_crops(N), trainer.held_out_crops(N, seed=3)  # the first: gandl train's
    fakes = trainer.generate(N)
    quality = SampleQuality(reals)
    sets = {"real crops, a second draw": second,
            "the same, each value moved by up to half a grey level":
                second + np.random.default_rng(4).uniform(-0.5, 0.5, second.shape),
            "the run's samples": fakes,
            "the samples rounded and clipped to the plate's range":
                np.clip(np.round(fakes), 0, float(np.iinfo(trainer.plate.dtype).max))}
    mean_col = [j for j in range(quality.real.shape[1]) if FEATURES[j % len(FEATURES)] == "mean"]
    mean_only = nn1_accuracy(quality.real[:, mean_col], quality.scaler.transform(image_features(fakes))[:, mean_col])
    ranges = {who: (round(float(x.min())), round(float(x.max()))) for who, x in (("real", reals), ("fake", fakes))}
    return {name: quality(images) for name, images in sets.items()}, mean_only, ranges


def main(argv=None) -> int:
    ap = suite_parser(__doc__, screens="texture,large-rare")
    args = ap.parse_args(argv)
    lines = ["Every suite run's samples read 1-NN 1.00. Is that the samples, or that the real crops come from tiles "
             "stored as integers? If storage made it, real crops moved by up to half a grey level would read near "
             "1.00, and samples rounded and clipped as a stored tile would read far below it.", "",
             "Per screen, 1-NN two-sample accuracy / KID / diversity of each set against 128 held-out real "
             "crops, measured by `gandl train`'s own code (0.5 / 0 / 1 for sets drawn like the reals). The runs: "
             "`gandl train PLATE --kimg 8 --info 0 --runs 1 --seed 0 --threads 1`.", "",
             "| screen | set | 1-NN | KID | diversity |", "|---|---|---|---|---|"]
    notes = []
    for screen in args.screens.split(","):
        plate = screen_plate(args.cache, screen)
        run = args.cache / screen / f"gandl-{TAG}"
        train_run(plate, run, None, ("--info", "0"), kimg=8)
        got, mean_only, rng = measured(plate, run)
        for name, q in got.items():
            lines.append(f"| {screen} | {name} | {q['nn1_accuracy']:.2f} | {q['kid']:.3g} | {q['diversity']:.2f} |")
        notes.append(f"`{screen}`: the samples are told apart by each stain's mean intensity alone with 1-NN "
                     f"{mean_only:.2f}; their values span {rng['fake'][0]} to {rng['fake'][1]}, the reals' "
                     f"{rng['real'][0]} to {rng['real'][1]}.")
        log(f"{screen}: " + "; ".join(f"{name} {q['nn1_accuracy']:.2f}" for name, q in got.items()))
    publish("nn1_check", "What the 1-NN two-sample accuracy measures (bench_nn1_check.py)",
            "\n".join(lines + [""] + [f"- {n}" for n in notes]), write=not args.no_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())

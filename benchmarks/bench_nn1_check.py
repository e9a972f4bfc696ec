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


def measured(plate_root: Path, run: Path) -> dict[str, dict]:
    """Set name -> the three sample-quality numbers of that set against the run's held-out real crops."""
    import torch

    from napari_gandl.gan.checkpoint import load_checkpoint
    from napari_gandl.gan.config import TrainConfig
    from napari_gandl.gan.metrics import SampleQuality, image_features, nn1_accuracy
    from napari_gandl.features.handcrafted import FEATURES
    from napari_gandl.gan.trainer import Trainer
    from napari_gandl.plate import open_plate
    from napari_gandl.preprocessing.sampling import TileSampler

    torch.set_num_threads(1)
    cfg = TrainConfig.from_dict(load_checkpoint(run)["config"])
    cfg.device, cfg.threads = "cpu", 1
    trainer = Trainer(open_plate(plate_root), run, cfg, resume=True)
    sampler = TileSampler(trainer.plate, cfg.resolution, trainer.data_cfg, trainer.normalizer,
                          sites=trainer.metric_sites)
    reals, second = (trainer.normalizer.inverse(sampler.sample(N, np.random.default_rng(seed)).numpy())
                     for seed in (2, 3))  # seed 2: the reals gandl train measures against
    top = float(np.iinfo(trainer.plate.dtype).max)
    fakes = trainer.generate(N)
    quality = SampleQuality(reals)
    sets = {"real crops, a second draw": second,
            "the same, each value moved by up to half a grey level":
                second + np.random.default_rng(4).uniform(-0.5, 0.5, second.shape),
            "the run's samples": fakes,
            "the samples rounded and clipped to the plate's range": np.clip(np.round(fakes), 0, top)}
    out = {name: quality(images) for name, images in sets.items()}
    # how far apart the samples are on the crudest feature: each stain's mean intensity alone
    mean_col = [j for j in range(quality.real.shape[1]) if FEATURES[j % len(FEATURES)] == "mean"]
    fake = quality.scaler.transform(image_features(fakes))
    out["the run's samples"]["nn1_mean_only"] = nn1_accuracy(quality.real[:, mean_col], fake[:, mean_col])
    out["range"] = {"real": (round(float(reals.min())), round(float(reals.max()))),
                    "fake": (round(float(fakes.min())), round(float(fakes.max())))}
    return out


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
        got = measured(plate, run)
        rng = got.pop("range")
        for name, q in got.items():
            lines.append(f"| {screen} | {name} | {q['nn1_accuracy']:.2f} | {q['kid']:.3g} | {q['diversity']:.2f} |")
        mean_only = got["the run's samples"]["nn1_mean_only"]
        notes.append(f"`{screen}`: the samples are told apart by each stain's mean intensity alone with 1-NN "
                     f"{mean_only:.2f}; their values span {rng['fake'][0]} to {rng['fake'][1]}, the reals' "
                     f"{rng['real'][0]} to {rng['real'][1]}.")
        log(f"{screen}: " + "; ".join(f"{name} {q['nn1_accuracy']:.2f}" for name, q in got.items()))
    publish("nn1_check", "What the 1-NN two-sample accuracy measures (bench_nn1_check.py)",
            "\n".join(lines + [""] + [f"- {n}" for n in notes]), write=not args.no_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())

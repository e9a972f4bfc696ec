"""Which discriminator weights embed a screen best: the last ones, or a running average of them.

A GAN's discriminator oscillates as it chases the generator, so the weights at the last step are
one point of a noisy path. Averaging weights along the path (as G_ema does for the generator)
may give steadier features. This benchmark trains the 16-kimg suite runs again (``gandl train
--kimg 16 --seed 0 --threads 1``, as bench_suite's tag ``16kimg``) with two running averages of
D's weights kept beside training, which itself is unchanged (D comes out bit-identical to the
``16kimg`` run; checked, and the script stops if not):

* **short**: half-life min(ema_kimg, 5 % of the images seen), G_ema's rule (StyleGAN2's);
* **tail**: half-life 25 % of the images seen.

Each average is put in place of D in a copy of the run (``gandl-16kimg-dema-<average>``), which
bench_suite embeds and scores like any run (tag ``16kimg-dema-<average>``), against the run's
own last D. The untrained network and handcrafted features are the ``16kimg`` runs' (the same
config and seed, so the same initial weights).

It needs bench_suite's 16-kimg runs (``bench_suite.py --kimg 16``), and reuses what it finds:

    python benchmarks/bench_d_average.py [--screens a,b] [--no-report] [--load "what else ran"]
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _report import publish  # noqa: E402
from bench_suite import commit, reuse_untrained, run_screen, screen_plate, suite_parser  # noqa: E402

KIMG = 16
BASE = f"{KIMG:g}kimg"          # bench_suite's tag of the runs compared with
RUN = f"gandl-{BASE}-dema"      # the runs trained again with the averages
AVERAGES = {  # the half-life, in images, of each average after ``nimg`` images
    "short": lambda cfg, nimg: min(cfg.ema_kimg * 1000, 0.05 * nimg),
    "tail": lambda cfg, nimg: 0.25 * nimg,
}
KEYS = (("acc", "C+/C- %"), ("spearman", "Spearman"), ("rank_ap", "rank AP"), ("map", "mAP"))


def averaging_trainer():
    """:class:`Trainer` that also keeps :data:`AVERAGES` of D (saved as ``D_ema_<name>``)."""
    import torch

    from napari_gandl.gan.trainer import Trainer

    class AveragingTrainer(Trainer):
        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            self.averages = {name: copy.deepcopy(self.D).requires_grad_(False) for name in AVERAGES}

        def step(self):
            stats = super().step()
            with torch.no_grad():
                for name, average in self.averages.items():
                    beta = 0.5 ** (self.cfg.batch / max(AVERAGES[name](self.cfg, self.cur_nimg), 1e-8))
                    for pa, p in zip(average.parameters(), self.D.parameters()):
                        pa.copy_(p.detach().lerp(pa, beta))
                    for ba, b in zip(average.buffers(), self.D.buffers()):
                        ba.copy_(b)
            return stats

        def checkpoint_payload(self):
            return {**super().checkpoint_payload(),
                    **{f"D_ema_{name}": m.state_dict() for name, m in self.averages.items()}}

    return AveragingTrainer


def train_child(argv: list[str]) -> int:
    """``gandl train ARGV`` with :func:`averaging_trainer` in place of the Trainer."""
    from napari_gandl.cli import main
    from napari_gandl.gan import loop

    loop.Trainer = averaging_trainer()
    return main(["train", "--runs", "1", *argv])  # one run, as the runs it is compared with


def train(plate_root: Path, run: Path) -> None:
    """``gandl train`` as bench_suite runs it (one thread), through this script's child entry point."""
    if (run / "checkpoint.pt").is_file():
        return
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    subprocess.run([sys.executable, __file__, "--train-child", str(plate_root), "--out", str(run),
                    "--kimg", str(KIMG), "--device", "cpu", "--threads", "1", "--seed", "0"], check=True, env=env)
    (run / "commit.txt").write_text(commit())


def derive(folder: Path) -> None:
    """Copies of the run with each average in place of D, and the untrained network's results."""
    import torch

    from napari_gandl.gan.checkpoint import load_checkpoint
    from napari_gandl.torch_utils.checkpoint import save_checkpoint

    trained = load_checkpoint(folder / RUN)
    last = load_checkpoint(folder / f"gandl-{BASE}")
    if trained["cur_nimg"] != last["cur_nimg"]:  # a killed run: the averages are not saved to resume from
        raise SystemExit(f"{folder / RUN}: stopped at {trained['cur_nimg']} of {last['cur_nimg']} images; "
                         "delete it to train it again")
    if not all(torch.equal(trained["D"][k], v) for k, v in last["D"].items()):
        raise SystemExit(f"{folder / RUN}: D differs from {folder / f'gandl-{BASE}'}'s: training was not unchanged")
    payload = {k: v for k, v in trained.items() if not k.startswith(("_", "D_ema_"))}
    for name in AVERAGES:
        out = folder / f"{RUN}-{name}"
        if not (out / "checkpoint.pt").is_file():
            out.mkdir(exist_ok=True)
            save_checkpoint(out / "checkpoint.pt", {**payload, "D": trained[f"D_ema_{name}"]})
            shutil.copy(folder / RUN / "config.json", out / "config.json")
            shutil.copy(folder / RUN / "commit.txt", out / "commit.txt")
        reuse_untrained(folder, BASE, f"{BASE}-dema-{name}")


def markdown(rows: dict[str, dict[str, dict]]) -> str:
    """``rows[screen][weights]``: bench_suite results of D's last weights and of each average."""
    weights = ("last", *AVERAGES)
    lines = [f"Each screen's `gandl train --kimg {KIMG} --seed 0` run, embedded with D's last weights and with "
             "each running average in their place; the untrained network and handcrafted features for reference. "
             "Cells: C+/C- %, Spearman, compound-ranking AP, mAP, true / false hits.\n",
             "| screen | " + " | ".join(f"D {w}" for w in weights) + " | untrained | handcrafted |",
             "|---|" + "---|" * (len(weights) + 2)]

    def cell(r):
        return (f"{100 * r['acc']:.1f} / {r['spearman']:.3f} / {r['rank_ap']:.3f} / {r['map']:.3f} / "
                f"{r['true_hits']}/{r['false_hits']}")

    for screen, row in rows.items():
        lines.append(f"| {screen} | " + " | ".join(cell(row[w]["GAN-DL"]) for w in weights)
                     + f" | {cell(row['last']['untrained'])} | {cell(row['last']['handcrafted'])} |")
    lines += ["", "| suite mean | " + " | ".join(name for _, name in KEYS)
              + " | true / false hits | screens trailing a baseline |", "|---|" + "---|" * (len(KEYS) + 2)]
    summary = {}
    for w in weights:
        res = [row[w]["GAN-DL"] for row in rows.values()]
        summary[w] = {k: np.mean([r[k] for r in res]) for k, _ in KEYS}
        summary[w]["hits"] = (sum(r["true_hits"] for r in res), sum(r["false_hits"] for r in res))
        summary[w]["trailing"] = sum(any(row[w]["GAN-DL"][k] < row["last"][b][k] for k in ("spearman", "rank_ap")
                                         for b in ("untrained", "handcrafted")) for row in rows.values())
        m = summary[w]
        lines.append(f"| D {w} | {100 * m['acc']:.1f} | " + " | ".join(f"{m[k]:.3f}" for k, _ in KEYS[1:])
                     + f" | {m['hits'][0]} / {m['hits'][1]} | {m['trailing']} of {len(rows)} |")
    last = summary["last"]
    for w in AVERAGES:
        better = {k: sum(row[w]["GAN-DL"][k] > row["last"]["GAN-DL"][k] for row in rows.values()) for k, _ in KEYS}
        worse = {k: sum(row[w]["GAN-DL"][k] < row["last"]["GAN-DL"][k] for row in rows.values()) for k, _ in KEYS}
        m = summary[w]
        passes = (m["spearman"] > last["spearman"] and m["rank_ap"] > last["rank_ap"]
                  and m["hits"][0] >= last["hits"][0] and m["hits"][1] <= last["hits"][1]
                  and m["trailing"] <= last["trailing"])
        lines.append(f"\nD {w} against D last, higher / lower on: "
                     + "; ".join(f"{name} {better[k]} / {worse[k]}" for k, name in KEYS) + f" of {len(rows)} screens. "
                     + ("It passes" if passes else "It fails") + " the rule below.")
    lines.append("\nThe rule, written before any average was trained or scored: an average replaces D's last weights "
                 "in `gandl embed` only if, over all screens, the mean Spearman and the mean compound-ranking AP are "
                 "both higher, there are no fewer true hits and no more false ones, and no more screens trail a "
                 "baseline (AP or Spearman below the untrained network's or handcrafted features').")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = suite_parser(__doc__)
    ap.add_argument("--load", default="each run trained alone on one thread",
                    help="what else ran while the runs trained, said in the report (the budget is in images, so "
                         "load changes the time, not the result)")
    args = ap.parse_args(argv)
    methods = ("GAN-DL", "untrained", "handcrafted")
    rows = {}
    for name in args.screens.split(","):
        folder = args.cache / name
        last = run_screen(name, args.cache, None, BASE, 10, methods, kimg=KIMG)
        train(screen_plate(args.cache, name), folder / RUN)
        derive(folder)
        rows[name] = {"last": last["results"]}
        for average in AVERAGES:
            rows[name][average] = run_screen(name, args.cache, None, f"{BASE}-dema-{average}", 10, methods,
                                             kimg=KIMG)["results"]
        (folder / "results-d-average.json").write_text(json.dumps(rows[name], indent=1))
    body = markdown(rows) + f"\nTraining: {args.load}.\n"
    publish("d_average", "Which discriminator weights embed best: the last or a running average "
            "(bench_d_average.py)", body, write=not args.no_report)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--train-child"]:
        sys.exit(train_child(sys.argv[2:]))
    sys.exit(main())

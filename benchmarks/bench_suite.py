"""GAN-DL against its baselines on every screen of the fixed synthetic suite.

For each screen of ``napari_gandl.synthetic.SUITE`` (docs/synthetic.md):

* **GAN-DL**: ``gandl train PLATE --minutes M --runs 1`` with the default preset
  (one CPU thread), embedded with the default read-out: one run per tag. The
  ``quick`` preset's default splits a budget into two runs read together; that
  read-out is scored by reading two tags' runs together (bench_joined_runs.py,
  bench_split_budget.py). Sections written before that default trained one run
  without code recovery: ``--train-args="--info 0"`` trains them the same way;
* **GAN-DL fc**: the same run, read out at D's penultimate fully connected
  layer (the paper's read-out);
* **untrained**: the same networks (the run's own config) at their seeded
  initialisation, default read-out;
* **handcrafted**: ``gandl embed --method handcrafted`` (per-stain intensity
  and texture statistics);
* **combined**: ``gandl embed --method gandl+handcrafted`` on the GAN-DL run
  (both blocks, the same number of principal components each);

Per-cell read-outs (``--sampling crops``) are compared with the tiles by
``bench_profile.py``, on these runs.

Each embedding goes through ``gandl analyse`` (``napari_gandl.analysis.analyse``:
plate centre-scaling on controls, linear SVM with well-grouped splits, E2
space, dose-response, copairs mAP) and is scored against the screen's ground
truth:

* **C+/C-**: accuracy of the "C+ vs C- (merged)" task (held-out wells);
* **Spearman**: well means of the E2 on-axis score of every treated well
  against the true rescue (``ground_truth/wells.csv``);
* **mAP**: copairs phenotypic activity against the C- wells of each well's plate, averaged over the
  compound-dose-cell-type groups whose true rescue is at least 0.5 (those a
  good embedding must tell from infected wells);
* **AUC**: the report's ground-truth AUC (hit score of truly active vs
  inactive compound x cell-type curves);
* **rank AP**: what a biologist reads, the compound x cell-type curves in the
  order of ``dose_response.csv``'s ``rank`` (``gandl analyse``'s own ranking):
  average precision of the truly rescuing compounds against the rest;
* **hits**: truly rescuing curves called hits at q < 0.05, and false hits.

Everything is cached under ``--cache`` (default /work/bench-cache/suite):
``<screen>/plate`` (the written screen), ``<screen>/gandl-<tag>`` (the trained
run) and ``<screen>/gandl-<tag>-untrained``, ``<screen>/emb-<method>.parquet``
``<screen>/report-<embedding>/`` (the analyse report and ``bench_scores.json``)
and ``<screen>/results-<tag>.json``. The tag (default ``<M>min``) names the
training budget; a rerun reuses what is there (delete a report folder to score
that embedding again).

A training variant passes its ``gandl train`` options with ``--train-args`` and
names its runs with ``--tag``. Each tag but a short default one writes its own
section of docs/benchmarks.md, and ``--against TAG`` adds a row-by-row
comparison with the runs of that tag:

    python benchmarks/bench_suite.py --minutes 4 [--screens texture,morphology] [--no-report]
    python benchmarks/bench_suite.py --minutes 30 --tag 30min-ada --train-args="--ada --augment-p 0" --against 30min
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

METHODS = ("GAN-DL", "untrained", "handcrafted", "combined", "GAN-DL fc")
TABLE = ("GAN-DL", "untrained", "handcrafted", "combined")   # the rows of the report's tables
METRICS = (("acc", "C+/C- accuracy (%)", 100.0), ("spearman", "dose-ranking Spearman", 1.0),
           ("rank_ap", "compound-ranking AP (true rescuers first, by gandl analyse's rank)", 1.0),
           ("map", "copairs mAP, rescued doses vs C-", 1.0), ("auc", "active-compound AUC", 1.0))


CACHE = Path("/work/bench-cache/suite")  # screens, runs, embeddings and scores, kept between benchmarks


def suite_parser(doc: str, screens: bool | str = True, splits: bool = False) -> argparse.ArgumentParser:
    """The options every benchmark over the suite's cache shares: ``--cache``, ``--no-report`` and
    ``--screens`` (default: every screen of the suite; a string: those comma-separated screens; False:
    no such option), with ``--splits`` when asked. ``doc``: the benchmark's docstring, whose first
    paragraph describes it."""
    from napari_gandl.synthetic import SUITE

    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, default=CACHE)
    if screens:
        ap.add_argument("--screens", default=",".join(SUITE) if screens is True else screens)
    if splits:
        ap.add_argument("--splits", type=int, default=10, help="SVM splits per task")
    ap.add_argument("--no-report", action="store_true", help="print the results, leave docs/benchmarks.md alone")
    return ap


#: a run folder ``gandl-TAG`` and the same network untrained, ``gandl-TAG-untrained``, by method name
NETWORK_SUFFIX = {"GAN-DL": "", "untrained": "-untrained"}


def cached_embedding(cache: Path, screen: str, tag: str, method: str) -> Path:
    """The embedding :func:`run_screen` writes for ``method`` (GAN-DL, untrained or handcrafted) of a tag."""
    if method == "handcrafted":
        return cache / screen / "emb-handcrafted.parquet"
    return cache / screen / f"emb-gandl-{tag}{NETWORK_SUFFIX[method]}.parquet"


def paired_se(differences: np.ndarray) -> float:
    """Standard error of the mean of paired differences (one per screen, or screen and seed)."""
    return float(np.std(differences, ddof=1) / np.sqrt(len(differences)))


def log(*args):
    print(time.strftime("%H:%M:%S"), *args, flush=True)


def gandl(*args) -> None:
    """Run ``gandl ARGS`` as a user would, on one thread."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    subprocess.run([sys.executable, "-m", "napari_gandl.cli", *args], check=True, env=env)


def embed_seconds(plate_root: Path, run: Path, *options: str) -> float:
    """Wall time of ``gandl embed PLATE --checkpoint RUN OPTIONS`` of a whole screen on one thread, as a
    user runs it (decoding included; time it with the machine otherwise idle)."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        gandl("embed", str(plate_root), "--checkpoint", str(run), *options, "--threads", "1", "--device", "cpu",
              "--out", str(Path(tmp) / "e.parquet"))
        return time.perf_counter() - start


def write_untrained(plate_root: Path, run: Path, untrained: Path, seed: int | None = None) -> None:
    """The trained run's networks and config, at their seeded initialisation (at ``seed``'s instead when
    given: the same networks, another random draw)."""
    from napari_gandl.gan.checkpoint import load_checkpoint
    from napari_gandl.gan.config import TrainConfig
    from napari_gandl.gan.trainer import Trainer
    from napari_gandl.plate import open_plate

    if (untrained / "checkpoint.pt").is_file():
        return
    cfg = load_checkpoint(run)["config"]
    if seed is not None:
        cfg = {**cfg, "seed": seed}
    Trainer(open_plate(plate_root), untrained, TrainConfig.from_dict(cfg)).save(samples=False)


def reuse_untrained(folder: Path, tag: str, new_tag: str) -> None:
    """Give the runs tagged ``new_tag`` the untrained network of those tagged ``tag``, with its
    embedding and scores: for runs that start from the same weights (same networks and seed)."""
    for old, new in ((f"gandl-{tag}-untrained", f"gandl-{new_tag}-untrained"),
                     (f"report-gandl-{tag}-untrained", f"report-gandl-{new_tag}-untrained")):
        if not (folder / new).exists():
            shutil.copytree(folder / old, folder / new)
    embedding = folder / f"emb-gandl-{new_tag}-untrained.parquet"
    if not embedding.exists():
        shutil.copy(folder / f"emb-gandl-{tag}-untrained.parquet", embedding)


def trails_a_baseline(results: dict) -> bool:
    """Whether GAN-DL misses the per-screen target: below the untrained network or handcrafted features
    on Spearman or compound-ranking AP (``results``: method -> scores, as in ``results-<tag>.json``)."""
    gan = results["GAN-DL"]
    return any(gan[k] < max(results[b][k] for b in ("handcrafted", "untrained")) for k in ("spearman", "rank_ap"))


def embed(plate_root: Path, method: str, source: Path | None, out: Path, **options) -> Path:
    from napari_gandl.embedding import embed_plate

    if not out.is_file():
        t0 = time.time()
        embed_plate(plate_root, method, out_path=out, device="cpu", source=source, **options)
        log(f"  embedded {out.name} in {time.time() - t0:.0f} s")
    return out


def ranking_scores(sites: pd.DataFrame, curves: pd.DataFrame, truth: Path) -> dict:
    """What a biologist reads, against the screen's ground truth (``truth``: its ground_truth folder):
    the Spearman of treated wells' mean on-axis score (``sites``: ``well_id``, ``treatment``,
    ``e2_on``) against their true rescue, the compound-ranking AP of ``curves``' rank (a
    dose_response table), and its true and false hits."""
    from scipy.stats import spearmanr

    treated = sites[sites["treatment"].notna()].groupby("well_id")["e2_on"].mean().rename("score")
    ranked = pd.read_csv(truth / "wells.csv").merge(treated, left_on="well_id", right_index=True)
    curves, active, ap = rank_ap(curves, truth)
    return {"spearman": float(spearmanr(ranked["score"], ranked["true_rescue"]).statistic),
            "rank_ap": ap, "true_hits": int((curves["hit"] & active).sum()),
            "false_hits": int((curves["hit"] & ~active).sum()), "rescuing_curves": int(active.sum())}


def rank_ap(curves: pd.DataFrame, truth: Path) -> tuple[pd.DataFrame, pd.Series, float]:
    """``curves`` (a dose_response table) joined with the truth's ``active`` column, that column, and the
    compound-ranking AP of their ``rank``: the true rescuers against the rest (``truth``: the ground_truth
    folder)."""
    from sklearn.metrics import average_precision_score

    curves = curves.merge(pd.read_csv(truth / "compounds.csv")[["compound", "active"]], on="compound")
    active = curves["active"].astype(bool)
    return curves, active, float(average_precision_score(active, -curves["rank"]))


def rank_ap_flag_ignored(report_dir: Path, truth: Path) -> float:
    """The compound-ranking AP of an analyse report's curves ranked as ``gandl analyse`` ranked them before it
    read the off-manifold flag (hits by q-value alone), as sections dated before 2026-12-07 were scored
    (``truth``: the screen's ground_truth folder)."""
    from napari_gandl.analysis.dose import ranked

    return rank_ap(ranked(pd.read_csv(report_dir / "dose_response.csv").drop(columns="flag")), truth)[2]


def embedding_report(embeddings: Path, C: float = 1.0) -> Path:
    """Where :func:`scored` writes the analyse report of ``emb-NAME.parquet``: ``report-NAME`` beside it
    (``report-NAME-C<C>`` for a C other than 1)."""
    return embeddings.parent / f"report-{embeddings.stem[4:]}{'' if C == 1.0 else f'-C{C:g}'}"


def score(embeddings: Path, plate_root: Path, report_dir: Path, splits: int, C: float = 1.0) -> dict:
    """The four numbers of one embedding on one screen (see the module docstring), with the SVMs'
    regularisation ``C`` (analyse's default unless a benchmark varies it)."""
    from napari_gandl.analysis import analyse

    truth = plate_root / "ground_truth"
    report = analyse(embeddings, out_dir=report_dir, normalise="centerscale", n_splits=splits,
                     ground_truth=truth / "compounds.csv", C=C)
    wells = pd.read_csv(truth / "wells.csv")
    activity = pd.read_csv(report_dir / "map_activity.csv")
    wells["perturbation"] = [f"{t} @ {d:g} µM" if isinstance(t, str) else "" for t, d in
                             zip(wells["treatment"], wells["treatment_conc"])]
    rescue = wells.groupby(["cell_type", "perturbation"])["true_rescue"].first().rename("true_rescue")
    activity = activity.merge(rescue, left_on=["cell_type", "perturbation"], right_index=True)
    task = report["tasks"]["C+ vs C- (merged)"]
    return {
        "acc": task["accuracy_mean"], "acc_sd": task["accuracy_sd"],
        "acc_by_cell_type": {name: t["accuracy_mean"] for name, t in report["tasks"].items()
                             if name.startswith("C+ vs C- (") and "merged" not in name},
        "map": float(activity.loc[activity["true_rescue"] >= 0.5, "mAP"].mean()),
        "map_significant_rescued": int(activity.loc[activity["true_rescue"] >= 0.5, "active"].sum()),
        "map_groups_rescued": int((activity["true_rescue"] >= 0.5).sum()),
        "auc": (report.get("ground_truth") or {}).get("auc"),
        "n_hits": (report.get("dose_response") or {}).get("n_hits"),
        **ranking_scores(pd.read_parquet(report_dir / "scores.parquet"),
                         pd.read_csv(report_dir / "dose_response.csv"), truth),
    }


def scored(embeddings: Path, plate_root: Path, splits: int, C: float = 1.0) -> dict:
    """:func:`score` of ``emb-NAME.parquet``, computed once into ``bench_scores.json`` in its
    :func:`embedding_report` folder."""
    saved = embedding_report(embeddings, C) / "bench_scores.json"
    if not saved.is_file():
        t0 = time.time()
        saved.write_text(json.dumps(score(embeddings, plate_root, saved.parent, splits, C), indent=1))
        log(f"  scored {embeddings.name} in {time.time() - t0:.0f} s")
    return json.loads(saved.read_text())


def screen_plate(cache: Path, name: str) -> Path:
    """The suite screen ``name`` written once under ``cache/name/plate``."""
    from napari_gandl.synthetic import write_sample_plate

    plate_root = cache / name / "plate"
    if not (plate_root / "ground_truth" / "sites.csv").is_file():
        log(f"{name}: writing the screen")
        write_sample_plate(plate_root, name, seed=0)
    return plate_root


#: one run per tag, whatever gandl train's default split (see the module's docstring)
ONE_RUN = ("--runs", "1")


def train_run(plate_root: Path, run: Path, minutes: float | None, train_args: tuple[str, ...] = (),
              kimg: float | None = None) -> None:
    """``gandl train --minutes M [train_args]`` (default preset unless ``train_args`` say otherwise) on one
    thread, resumed until the budget is spent; with ``kimg``, ``--kimg K`` instead (a budget that does
    not depend on what else the machine runs)."""
    from napari_gandl.gan.checkpoint import load_checkpoint

    length = ["--kimg", f"{kimg:g}"] if kimg else ["--minutes", f"{minutes:g}"]
    if (run / "checkpoint.pt").is_file():
        ck = load_checkpoint(run)
        if (ck["cur_nimg"] >= 1000 * kimg) if kimg else (ck["elapsed_s"] >= 60 * minutes * 0.98):
            return
    log(f"{plate_root.parent.name}: gandl train {' '.join(length)}")
    resume = ["--resume"] if (run / "checkpoint.pt").is_file() else []
    gandl("train", str(plate_root), "--out", str(run), *length, "--device", "cpu",
          "--threads", "1", "--seed", "0", *ONE_RUN, *train_args, *resume)
    (run / "commit.txt").write_text(commit())  # the code (and defaults) it was trained with


def final_sample_quality(plate_root: Path, run: Path) -> dict:
    """1-NN, KID and diversity of the run's final G_ema, measured by the current code (a run's
    ``metrics.csv`` keeps what the code it was trained with measured)."""
    from napari_gandl.gan.checkpoint import load_checkpoint
    from napari_gandl.gan.config import TrainConfig
    from napari_gandl.gan.trainer import Trainer
    from napari_gandl.plate import open_plate

    cfg = TrainConfig.from_dict(load_checkpoint(run)["config"])
    cfg.device, cfg.threads = "cpu", 1
    return Trainer(open_plate(plate_root), run, cfg, resume=True).measure()


def run_screen(name: str, cache: Path, minutes: float, tag: str, splits: int, methods=METHODS,
               train_args: tuple[str, ...] = (), kimg: float | None = None) -> dict:
    import torch

    from napari_gandl.gan.checkpoint import load_checkpoint
    from napari_gandl.plate import open_plate
    from napari_gandl.preprocessing.scale import measure_scale

    torch.set_num_threads(1)
    folder = cache / name
    plate_root = screen_plate(cache, name)
    row = {"screen": name, "results": {}}
    run = folder / f"gandl-{tag}"
    if any(m != "handcrafted" for m in methods):
        train_run(plate_root, run, minutes, train_args, kimg)
        ck = load_checkpoint(run)
        row.update(kimg=ck["cur_nimg"] / 1000, train_minutes=ck["elapsed_s"] / 60, config=ck["config"],
                   commit=(run / "commit.txt").read_text().strip() if (run / "commit.txt").is_file() else "?")
        row["sample_quality"] = final_sample_quality(plate_root, run)
        # what --scale auto chooses for this screen with the current rule (the run may have had another)
        row["auto_scale"] = measure_scale(open_plate(plate_root), row["config"]["resolution"]).to_dict()
        untrained = folder / f"gandl-{tag}{NETWORK_SUFFIX['untrained']}"
        if "untrained" in methods:
            write_untrained(plate_root, run, untrained)
    sources = {
        "GAN-DL": lambda: embed(plate_root, "gandl", run, cached_embedding(cache, name, tag, "GAN-DL")),
        "untrained": lambda: embed(plate_root, "gandl", untrained, cached_embedding(cache, name, tag, "untrained")),
        "handcrafted": lambda: embed(plate_root, "handcrafted", None, cached_embedding(cache, name, tag, "handcrafted")),
        "GAN-DL fc": lambda: embed(plate_root, "gandl", run, folder / f"emb-gandl-{tag}-fc.parquet", layer="fc"),
        "combined": lambda: embed(plate_root, "gandl+handcrafted", run, folder / f"emb-combined-{tag}.parquet"),
    }
    for method in methods:
        row["results"][method] = scored(sources[method](), plate_root, splits)
        log(f"{name} {method}: " + ", ".join(f"{k} {row['results'][method][k]:.3f}" for k, _, _ in METRICS
                                             if row["results"][method][k] is not None))
    return row


def commit() -> str:
    return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()


def markdown(rows: list[dict], minutes: float, side_by_side: int = 1, shared: bool = False,
             train_args: tuple[str, ...] = (), against: dict[str, dict] | None = None,
             kimg: float | None = None) -> str:
    """The suite table; ``against`` (screen -> a results JSON of another tag) adds a GAN-DL comparison."""
    def cell(v, scale):
        return "–" if v is None or not np.isfinite(v) else (f"{v * scale:.1f}" if scale == 100 else f"{v:.3f}")

    lines = []
    cfg = rows[0]["config"]
    net = cfg.get("network", {})
    lines.append(
        ("GAN-DL" if train_args else "Default GAN-DL")
        + f" = `gandl train PLATE {f'--kimg {kimg:g}' if kimg else f'--minutes {minutes:g}'} {' '.join(ONE_RUN)} --device cpu --threads 1"
        + (f" {shlex.join(train_args)}`" if train_args else "`")
        + " on main at "
        f"`{', '.join(sorted({r['commit'] for r in rows}))}` (preset defaults: resolution {cfg.get('resolution')}, batch {cfg.get('batch')}, "
        f"loss {cfg.get('loss')}, code recovery {cfg.get('info', 0):g}, G widths {net.get('channel_base')}/{net.get('channel_max')}, "
        f"D widths {net.get('d_channel_base')}/{net.get('d_channel_max')}), one CPU thread each, "
        + ("one screen at a time" if side_by_side == 1 else
           f"{side_by_side} screens trained side by side on the 2 cores (separate processes)")
        + (", with other work on the machine at times, so each run had at most one core. " if shared else ". ")
        + (f"**Training budget: {kimg:g} kimg per screen** (a fixed number of images, whatever else the "
           f"machine ran; the minutes each took are below). " if kimg else
           f"**Training budget: {minutes:g} minutes per screen"
           f"{'' if minutes >= 30 else ', not the 30 the targets assume'}.** ")
        + "Trained: " + ", ".join(f"{r['screen']} {r['kimg']:.1f} kimg in {r['train_minutes']:.0f} min" for r in rows)
        + ".\n")
    lines.append("Each embedding: `gandl analyse` with plate centre-scaling on controls; C+/C- = linear SVM "
                 "accuracy on held-out wells (well-grouped splits); Spearman = E2 on-axis well means vs true "
                 "rescue of every treated well; mAP = copairs phenotypic activity vs the C- wells of the query "
                 "well's plate, mean over the compound-dose-cell-type groups with true rescue >= 0.5; "
                 "AUC = ground-truth AUC of the hit score (active vs inactive compound x cell-type curves); "
                 "rank AP = average precision of the truly rescuing compound x cell-type curves in the order of "
                 "`gandl analyse`'s dose-response rank.\n")
    lines.append("**The screens and the scale GAN-DL trained at** (`--scale auto`: nuclei measured in the "
                 "Hoechst stain, tiles downsampled only when they are larger than about 33 px; a factor marked "
                 "*given* was set with `--scale`, and the last column says what `--scale auto` chooses now)\n")
    lines.append("| screen | kimg | nuclei (px) | downsampling | `--scale auto` now |")
    lines.append("|---|---|---|---|---|")
    for r in rows:
        measured = r["config"].get("cell_scale") or r.get("auto_scale") or {}
        nucleus = f"{measured['nucleus_px']:.1f}" if measured.get("nucleus_px") else "–"
        given = "" if r["config"].get("cell_scale") else " (given)"
        auto = f"{r['auto_scale']['scale']}x" if r.get("auto_scale") else "–"
        lines.append(f"| {r['screen']} | {r['kimg']:.1f} | {nucleus} | {r['config']['data']['scale']}x{given} | {auto} |")
    lines.append("")
    for key, title, scale in METRICS:
        lines.append(f"**{title}**\n")
        lines.append("| screen | " + " | ".join(TABLE) + " |")
        lines.append("|---|" + "---|" * len(TABLE))
        for r in rows:
            lines.append(f"| {r['screen']} | " + " | ".join(cell(r["results"][m][key], scale) for m in TABLE) + " |")
        means = [np.nanmean([np.nan if r["results"][m][key] is None else r["results"][m][key] for r in rows])
                 for m in TABLE]
        lines.append("| **mean** | " + " | ".join(f"**{cell(v, scale)}**" for v in means) + " |\n")
    lines.append("**Hits recovered**: truly rescuing compound x cell-type curves called hits at q < 0.05 "
                 "/ false hits (N: the rescuing curves)\n")
    lines.append("| screen | N | " + " | ".join(TABLE) + " |")
    lines.append("|---|---|" + "---|" * len(TABLE))
    for r in rows:
        res = r["results"]
        lines.append(f"| {r['screen']} | {res['handcrafted']['rescuing_curves']} | "
                     + " | ".join(f"{res[m]['true_hits']} / {res[m]['false_hits']}" for m in TABLE) + " |")
    lines.append("")
    checks = []
    gan = {k: np.array([r["results"]["GAN-DL"][k] for r in rows]) for k in ("acc", "spearman", "rank_ap")}
    best = {k: np.maximum(*[np.array([r["results"][b][k] for r in rows]) for b in ("handcrafted", "untrained")])
            for k in ("spearman", "rank_ap")}
    behind = [r["screen"] for r in rows if trails_a_baseline(r["results"])]
    checks.append("- compound-ranking AP and Spearman at least handcrafted's and untrained's on every screen: "
                  f"**{'met' if not behind else 'not met'}**" + (f" (behind on {', '.join(behind)})" if behind else "")
                  + ".")
    d_ap, d_rho = gan["rank_ap"].mean() - best["rank_ap"].mean(), gan["spearman"].mean() - best["spearman"].mean()
    checks.append(f"- suite mean over the better of the two on each screen: AP {d_ap:+.3f}, Spearman {d_rho:+.3f} "
                  f"(targets +0.05 each): **{'met' if d_ap >= 0.05 and d_rho >= 0.05 else 'not met'}**.")
    low = [f"{r['screen']} {100 * a:.1f} %" for r, a in zip(rows, gan["acc"]) if a < 0.9]
    checks.append(f"- C+/C- at least 90 % on every screen: **{'met' if not low else 'not met'}**"
                  + (f" ({', '.join(low)})" if low else "") + ".")
    quality = [r for r in rows if r.get("sample_quality")]
    if quality:
        lines.append("Sample quality of these runs' final G_ema (1-NN two-sample accuracy of 128 samples, "
                     "each with its own seeded noise, against 128 held-out real crops, target <= 0.80; KID; "
                     "diversity relative to the reals): " + "; ".join(
                         f"{r['screen']} {r['sample_quality']['nn1_accuracy']:.2f} / {r['sample_quality']['kid']:.3g}"
                         f" / {r['sample_quality']['diversity']:.2f}" for r in quality) + ".\n")
        checks.append(f"- 1-NN two-sample accuracy at most 0.80: **"
                      f"{'met' if all(r['sample_quality']['nn1_accuracy'] <= 0.8 for r in quality) else 'not met'}**.")
    if against:
        lines.extend(comparison(rows, against))
    lines.append("The project's targets (for a 30-minute run" + ("" if minutes and minutes >= 30 else "; this is a shorter one")
                 + "):\n")
    lines.extend(checks)
    return "\n".join(lines)


def comparison(rows: list[dict], against: dict[str, dict]) -> list[str]:
    """These runs against other runs of the same screens (e.g. a variant against the default): GAN-DL and the
    same network untrained, each with its own runs' config."""
    keys = (("acc", "C+/C-"), ("spearman", "Spearman"), ("rank_ap", "rank AP"), ("map", "mAP"))
    paired = [(r, against[r["screen"]]) for r in rows if r["screen"] in against]
    lines = ["**These runs / the runs they are compared with** (C+/C- accuracy %, Spearman, compound-ranking AP, "
             "mAP, true / false hits; downsampling and kimg trained)\n",
             "| screen | features | C+/C- | Spearman | rank AP | mAP | hits | downsampling | kimg |",
             "|---|---|---|---|---|---|---|---|---|"]
    for method in ("GAN-DL", "untrained"):
        for r, o in paired:
            a, b = r["results"][method], o["results"][method]
            lines.append(f"| {r['screen']} | {method} | {100 * a['acc']:.1f} / {100 * b['acc']:.1f} | "
                         + " | ".join(f"{a[k]:.3f} / {b[k]:.3f}" for k, _ in keys[1:])
                         + f" | {a['true_hits']}/{a['false_hits']} · {b['true_hits']}/{b['false_hits']} | "
                         f"{r['config']['data']['scale']}x / {o['config']['data']['scale']}x | "
                         f"{r['kimg']:.1f} / {o['kimg']:.1f} |")
        mean = {k: [np.mean([p[i]["results"][method][k] for p in paired]) for i in (0, 1)] for k, _ in keys}
        lines.append(f"| **mean** | {method} | **{100 * mean['acc'][0]:.1f} / {100 * mean['acc'][1]:.1f}** | "
                     + " | ".join(f"**{mean[k][0]:.3f} / {mean[k][1]:.3f}**" for k, _ in keys[1:]) + " | | | |")
    lines.append("")
    for method in ("GAN-DL", "untrained"):
        wins = {k: sum(p[0]["results"][method][k] > p[1]["results"][method][k] for p in paired) for k, _ in keys}
        losses = {k: sum(p[0]["results"][method][k] < p[1]["results"][method][k] for p in paired) for k, _ in keys}
        lines.append(f"{method}: higher / lower on " + "; ".join(f"{name} {wins[k]} / {losses[k]}" for k, name in keys)
                     + f" of {len(paired)} screens.\n")
    return lines


def main(argv=None) -> int:
    from _report import publish

    ap = suite_parser(__doc__, splits=True)
    ap.add_argument("--minutes", type=float, default=4.0, help="training budget per screen")
    ap.add_argument("--kimg", type=float, help="train this many thousand images per screen instead of --minutes")
    ap.add_argument("--tag", help="names the runs and embeddings (default: <minutes>min)")
    ap.add_argument("--train-args", default="",
                    help="extra gandl train options of a training variant, e.g. --train-args='--ada --augment-p 0' "
                         "(needs --tag)")
    ap.add_argument("--against", metavar="TAG",
                    help="compare GAN-DL row by row with the runs of this tag (their results-TAG.json)")
    ap.add_argument("--methods", default=",".join(TABLE),
                    help="which rows to compute (e.g. handcrafted alone, which needs no training)")
    ap.add_argument("--side-by-side", type=int, default=1,
                    help="how many of these screens were trained at once (separate processes): said in the report")
    ap.add_argument("--shared", action="store_true",
                    help="other work ran on the machine during training: said in the report")
    args = ap.parse_args(argv)
    train_args = tuple(shlex.split(args.train_args))
    if train_args and not args.tag:
        ap.error("--train-args needs a --tag to name the variant's runs")
    tag = args.tag or (f"{args.kimg:g}kimg" if args.kimg else f"{args.minutes:g}min")
    methods = args.methods.split(",")
    screens = args.screens.split(",")
    against = None
    if args.against:  # read before any training, so a wrong tag costs nothing
        paths = {name: args.cache / name / f"results-{args.against}.json" for name in screens}
        against = {name: json.loads(path.read_text()) for name, path in paths.items() if path.is_file()}
        if not against:
            ap.error(f"--against {args.against}: no results-{args.against}.json under {args.cache}/<screen>/")
    rows = []
    for name in screens:
        rows.append(run_screen(name, args.cache, args.minutes, tag, args.splits, methods, train_args, args.kimg))
        (args.cache / name / f"results-{tag}.json").write_text(json.dumps(rows[-1], indent=1, default=str))
    if not set(TABLE) <= set(methods):
        return 0
    body = markdown(rows, args.minutes, args.side_by_side, args.shared, train_args, against, args.kimg)
    title = "GAN-DL on the synthetic benchmark suite"
    if not args.kimg and tag == f"{args.minutes:g}min" and args.minutes < 30:
        publish("suite", title, body, write=not args.no_report)
    else:  # the targets' budget, or a training variant: its own section beside the short-budget table
        publish(f"suite_{tag}", f"{title}: " + (f"{args.kimg:g}-kimg runs" if args.kimg else
                                                 f"{args.minutes:g}-minute runs")
                + (f", `{args.train_args}`" if train_args else ""), body, write=not args.no_report)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``gandl compare``: every method trained and embedded with the same budget, then Table 1.

For each method, in its own folder ``OUT/METHOD/``:

1. train it on the plate for ``minutes`` (methods with a train step:
   GAN-DL, ConvAE, SimCLR, DINO, MAE; the same budget for each), resuming a run that
   was interrupted; in N runs at consecutive seeds (``run``, ``run-2``...) that share the
   budget and are then read together: ``runs`` N, or by default as ``gandl train`` trains
   (GAN-DL and its untrained control: the preset's runs, two with ``quick``; others one);
2. embed every site (``embeddings.parquet``; the pipeline resumes a partial
   output) and, with ``zero_shot``, every site of a second plate with a
   different stain set (stains mapped by name);
3. record what was done in ``status.json``, so a rerun skips finished steps.

Then every embedding goes through the analysis of ``gandl analyse``
(centre-scale plate normalisation on controls; linear SVM tasks: C+ vs C-
merged and per cell type, cell type, zero-shot cell type) under two split
schemes: repeated well-grouped 75/25 splits and leave-one-plate-out; and
copairs mAP of the well profiles.  The comparison is written as
``compare.md``, ``compare.html`` and ``compare.json``: rows are tasks,
columns are methods, accuracy mean ± sd.
"""

from __future__ import annotations

import json
import time
from contextlib import closing
from pathlib import Path
from typing import Callable

from napari_gandl.analysis.classify import define_task
from napari_gandl.files import write_text
from napari_gandl.analysis.pages import render
from napari_gandl.analysis.profile_map import map_report
from napari_gandl.analysis.report import control_tasks, normalise_for_tasks, score_tasks
from napari_gandl.tables import TableError, load_embeddings

from napari_gandl.embedding.pipeline import iterate_embedding
from napari_gandl.embedding.registry import METHODS, get_method, load_embedder, method_names, method_runs

__all__ = ["compare", "default_methods", "SPLITS"]

STATUS = "status.json"
SPLITS = {"tasks": "well-grouped 75/25 splits", "tasks_lopo": "leave-one-plate-out"}  # report keys
ZERO_SHOT = "zero-shot cell type"
MAP_ROWS = {"activity": "phenotypic activity vs C-", "consistency": "replicate consistency"}
Progress = Callable[[str, str, float, str], None]  # (method, stage, fraction, message)


def default_methods(with_weights: bool = False) -> list[str]:
    """Every registered method that runs without a weights file (it trains its own
    model or needs none); with a weights file, the methods that need one too."""
    return [n for n in method_names()
            if with_weights or METHODS[n].train is not None or not METHODS[n].needs_weights]


def _read_status(folder: Path) -> dict:
    try:
        return json.loads((folder / STATUS).read_text())
    except (OSError, ValueError):
        return {}


def _write_status(folder: Path, status: dict) -> None:
    write_text(folder / STATUS, json.dumps(status, indent=2))


def _embed_timed(plate, embedder, out_path: Path, stain_map, report: Callable[[float, str], None],
                 should_stop: Callable[[], bool] | None = None) -> dict | None:
    """Embed (resuming), returning sites/s over the sites embedded in this call; None when ``should_stop()``
    turned true first (the finished batches are kept for the next call)."""
    first = last = None
    t0 = time.perf_counter()
    with closing(iterate_embedding(plate, embedder, out_path=out_path, stain_map=stain_map)) as batches:
        for done, total in batches:
            first, last = done if first is None else first, done
            report(done / max(total, 1), f"{done}/{total} sites")
            if should_stop is not None and should_stop() and done < total:
                return None
    seconds = time.perf_counter() - t0
    n = (last or 0) - (first or 0)
    return {"file": out_path.name, "sites": n, "seconds": seconds,
            "sites_per_s": n / seconds if n and seconds > 0 else None}


def _trained(status: dict) -> list[dict]:
    """The runs trained so far, in order (a status written by a version without ``--runs`` holds one)."""
    trained = status.get("trained") or []
    return [trained] if isinstance(trained, dict) else list(trained)


def run_folders(folder: Path, runs: int) -> list[Path]:
    """A trainable method's run folders in ``folder``: ``run``, then ``run-2``, ``run-3``..."""
    return [folder / ("run" if i == 0 else f"run-{i + 1}") for i in range(runs)]


def run_method(name: str, plate, folder: Path, minutes: float, weights=None, zero_shot=None,
               device: str = "auto", seed: int = 0, progress: Progress | None = None, runs: int | None = None,
               gan_options: dict | None = None, should_stop: Callable[[], bool] | None = None) -> dict:
    """Train (if the method trains) and embed one method into ``folder``; returns its status. A method that
    trains is trained ``runs`` times (default :func:`method_runs`), at seeds ``seed``, ``seed + 1``..., each
    for its share of ``minutes``, and its runs are read together (each site's row their features side by
    side); ``gan_options`` go to the methods built from the GAN's config (``gandl`` and ``gandl-untrained``).
    When ``should_stop()`` turns true, training stops after its step with a checkpoint and embedding after its
    batch, and the status returned is what was finished (the next call goes on from there)."""
    spec = get_method(name)
    status = _read_status(folder)
    options = gan_options if spec.gan_options and gan_options else {}
    runs = runs if runs is not None else method_runs(spec, options)

    def say(stage: str) -> Callable[[float, str], None]:
        return lambda fraction, message: progress and progress(name, stage, fraction, message)

    folders = run_folders(folder, runs) if spec.train is not None else []
    trained = _trained(status)
    if any(t.get("gan_options", {}) != options for t in trained):
        raise ValueError(f"{folder}: trained with other GAN options ({trained[0].get('gan_options', {})}) "
                         f"than given now ({options}); give another --out")
    for i, run in enumerate(folders[len(trained):], start=len(trained)):
        resume = (run / "checkpoint.pt").exists()
        last = {}
        stage = "train" if runs == 1 else f"train {i + 1}/{runs}"
        for info in spec.train(plate, run, minutes=minutes / runs, device=device, resume=resume, seed=seed + i,
                               should_stop=should_stop, **options):
            last = info
            rate = f", {info['img_per_s']:.0f} img/s" if "img_per_s" in info else ""
            say(stage)(float(info.get("fraction", 0.0)), f"{info.get('kimg', 0):.2f} kimg{rate}")
        if should_stop is not None and should_stop() and float(last.get("fraction", 0.0)) < 1:
            return status  # stopped: this run is resumed next time
        trained.append({"minutes": minutes / runs, "kimg": last.get("kimg"), "elapsed_s": last.get("elapsed_s"),
                        "resumed": resume, "seed": seed + i, "folder": run.name, "gan_options": options})
        status["trained"] = trained
        _write_status(folder, status)
    sources = folders or ([weights] if spec.needs_weights else [None])
    read = [str(s) for s in sources]
    if status.get("read", read[:1]) != read:  # other runs than the embeddings were made from
        status = {k: v for k, v in status.items() if k not in ("embedded", "zero_shot")}
    status["read"], status["runs"] = read, len(folders)
    targets = [("embedded", plate, "embeddings.parquet", None, "embed")]  # status key, plate, file, stain map, stage
    if zero_shot is not None:
        targets.append(("zero_shot", zero_shot, "zero_shot.parquet", "auto", "zero-shot"))
    embedder = None
    for key, target, file, stain_map, stage in targets:
        if key in status:
            continue
        embedder = embedder or load_embedder(name, sources, plate, device)
        status["dim"] = int(embedder.dim)
        embedded = _embed_timed(target, embedder, folder / file, stain_map, say(stage), should_stop)
        if embedded is None:
            return status
        status[key] = embedded
        _write_status(folder, status)
    return status


# ------------------------------------------------------------------ evaluation


def evaluate_embedding(path: Path, metadata=None, zero_shot_path: Path | None = None,
                       n_splits: int = 10, seed: int = 0) -> dict:
    """The control tasks of ``gandl analyse`` (and the zero-shot cell-type task) on one
    embedding, under both split schemes, and its copairs mAP (``map_*.csv`` beside
    the embedding): a dict with ``tasks`` (well-grouped), ``tasks_lopo``
    (leave-one-plate-out), ``map``, ``skipped`` and ``notes``."""
    part = {"normalise": "centerscale", "tasks": {}, "tasks_lopo": {}, "skipped": {}, "notes": []}
    raw = load_embeddings(path, metadata)
    table, confounded = normalise_for_tasks(raw, "centerscale", part)
    tasks = control_tasks(raw, table, confounded, part)
    if zero_shot_path is not None:
        zs = load_embeddings(zero_shot_path)
        try:
            tasks[ZERO_SHOT] = (define_task(zs.meta, "cell_type", None, None, name=ZERO_SHOT), zs.X)
        except TableError as exc:
            part["skipped"][ZERO_SHOT] = str(exc)
    score_tasks(tasks, part, n_splits=n_splits, seed=seed)
    try:
        part["map"] = map_report(table, path.parent, seed=seed)
    except TableError as exc:
        part["skipped"]["copairs mAP"] = str(exc)
    return part


# ------------------------------------------------------------------ the command


def compare(plate, out_dir, methods=None, minutes: float = 2.0, metadata=None, weights=None,
            zero_shot=None, device: str = "auto", n_splits: int = 10, seed: int = 0,
            progress: Progress | None = None, runs: int | None = None, gan_options: dict | None = None,
            should_stop: Callable[[], bool] | None = None) -> dict | None:
    """Train, embed and evaluate every method; writes compare.{md,html,json} into ``out_dir``. ``runs``,
    ``gan_options`` and ``should_stop``: see :func:`run_method`; None when stopped before the end (no
    comparison is written; the same call goes on from what was finished)."""
    from napari_gandl.plate import open_plate

    plate, zs_plate = open_plate(plate), open_plate(zero_shot)
    out = Path(out_dir)
    methods = list(methods) if methods else default_methods(weights is not None)
    if runs is not None and runs < 1:
        raise ValueError(f"runs must be at least 1, not {runs}")
    specs = [get_method(name) for name in methods]  # unknown names fail before any work
    for name, spec in zip(methods, specs):
        if spec.needs_weights and spec.train is None and weights is None:
            raise ValueError(f"method {name!r} needs a weights file (--weights): {spec.help}")
    if gan_options and not any(spec.gan_options for spec in specs):
        takers = ", ".join(s.name for s in map(get_method, method_names()) if s.gan_options)
        raise ValueError(f"GAN-DL's options ({_options_text(gan_options)}) go to {takers}, and none of them "
                         f"is among the methods ({', '.join(methods)})")
    report = {"plate": str(plate.root), "zero_shot": None if zs_plate is None else str(zs_plate.root),
              "minutes": minutes, "runs": runs, "seed": seed, "gan_options": gan_options or {}, "methods": {},
              "splits": SPLITS, "results": {s: {} for s in SPLITS}, "map": {}, "skipped": {}, "notes": []}
    for name in methods:
        status = run_method(name, plate, out / name, minutes, weights, zs_plate, device, seed, progress,
                            runs, gan_options, should_stop)
        if should_stop is not None and should_stop():
            return None
        report["methods"][name] = status
    for name in methods:
        if progress:
            progress(name, "evaluate", 0.0, "linear SVM tasks")
        zs_path = out / name / "zero_shot.parquet" if zs_plate is not None else None
        part = evaluate_embedding(out / name / "embeddings.parquet", metadata, zs_path, n_splits, seed)
        for split in SPLITS:
            for task, r in part[split].items():
                report["results"][split].setdefault(task, {})[name] = {
                    "mean": r["accuracy_mean"], "sd": r["accuracy_sd"], "n": r["n_splits"],
                    "balanced_mean": r["balanced_accuracy_mean"]}
        if "map" in part:
            report["map"][name] = {kind: {k: part["map"][kind][k]
                                          for k in ("mean_mAP", "n_groups", "n_significant")}
                                   for kind in MAP_ROWS}
        report["skipped"].update({f"{name}: {k}": v for k, v in part["skipped"].items()})
        report["notes"] += [f"{name}: {n}" for n in part["notes"]]
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(report, indent=2))
    (out / "compare.md").write_text(markdown(report))
    (out / "compare.html").write_text(to_html(report))
    return report


# ------------------------------------------------------------------ tables


def accuracy_cell(cell: dict | None) -> str:
    return "–" if cell is None else f"{100 * cell['mean']:.1f} ± {100 * cell['sd']:.1f}"


def map_cell(cell: dict | None) -> str:
    return "–" if cell is None else f"{cell['mean_mAP']:.3f} ({cell['n_significant']}/{cell['n_groups']})"


def _rows(report: dict, split: str) -> list[list[str]]:
    methods = list(report["methods"])
    return [[task] + [accuracy_cell(cells.get(m)) for m in methods]
            for task, cells in report["results"][split].items()]


def _map_rows(report: dict) -> list[list[str]]:
    return [[label] + [map_cell(report["map"].get(m, {}).get(kind)) for m in report["methods"]]
            for kind, label in MAP_ROWS.items()]


def _method_rows(report: dict) -> list[list[str]]:
    rows = []
    for name, st in report["methods"].items():
        trained = _trained(st)[:len(st.get("read", [None]))]  # the runs read
        rows.append([name, str(st.get("dim", "")), _training_cell(trained),
                     "–" if (sps := st.get("embedded", {}).get("sites_per_s")) is None else f"{sps:.1f}"])
    return rows


def _training_cell(trained: list[dict]) -> str:
    """What the runs read were trained for: each run's minutes and kimg, or the seeds of networks that
    never trained (an untrained control)."""
    if not trained:
        return "–"
    if all(t.get("kimg") == 0 for t in trained):
        seeds = [str(t["seed"]) for t in trained if "seed" in t]
        return "untrained" + (f", seed{'s' * (len(seeds) > 1)} {', '.join(seeds)}" if seeds else "")
    return " + ".join(f"{t['elapsed_s'] / 60:.2f} min ({t['kimg']:.2f} kimg)" for t in trained)


def tables(report: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of every table of the comparison."""
    methods = list(report["methods"])
    out = [(f"Accuracy (%), {SPLITS[s]}: mean ± sd", ["task"] + methods, _rows(report, s)) for s in SPLITS]
    if report["map"]:
        out.append(("copairs mAP of well profiles: mean over compound x dose groups (groups at q < 0.05)",
                    ["profile"] + methods, _map_rows(report)))
    out.append(("Methods", ["method", "features", "training", "embedding (sites/s)"], _method_rows(report)))
    return out


def md_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def _options_text(options: dict, prefix: str = "") -> str:
    """``{"info": 10.0, "data": {"scale": 2}}`` as ``info 10, data.scale 2``."""
    return ", ".join(_options_text(v, f"{prefix}{k}.") if isinstance(v, dict)
                     else f"{prefix}{k} {v:g}" if isinstance(v, float) else f"{prefix}{k} {v}"
                     for k, v in options.items())


def budget_text(report: dict) -> str:
    """The sentence on what each method was trained with, for the page and the markdown."""
    seed = report.get("seed", 0)
    several = [f"{name} {st['runs']} runs, at seeds {seed} to {seed + st['runs'] - 1}, read together"
               for name, st in report["methods"].items() if st.get("runs", 1) > 1]
    return (f"Training budget: {report['minutes']} min per trainable method"
            + (f", shared by its runs ({'; '.join(several)})" if several else "")
            + (f"; GAN-DL's options: {_options_text(report['gan_options'])}" if report.get("gan_options") else "")
            + ".")


def markdown(report: dict) -> str:
    parts = [f"# Comparison on {report['plate']}", "",
             f"{budget_text(report)} Linear SVM on "
             "centre-scaled features (controls of each plate); sd over splits (well-grouped) or "
             "over held-out plates (leave-one-plate-out)."]
    for title, header, rows in tables(report):
        parts += ["", f"## {title}", "", md_table(header, rows)]
    if report["skipped"]:
        parts += ["", "## Not evaluated", ""] + [f"- {k}: {v}" for k, v in report["skipped"].items()]
    return "\n".join(parts) + "\n"


def to_html(report: dict) -> str:
    """The comparison as one page (templates/compare.html.j2): the tables of :func:`tables`."""
    return render("compare.html.j2", report=report, budget=budget_text(report), tables=tables(report))

"""Bookkeeping every training run shares: its length, a diverged loss, its CSV logs, and the runs one
budget is split into (read together)."""

from __future__ import annotations

import csv
import json
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from napari_gandl.files import atomic_path, first_process, output_lock, write_text
from napari_gandl.torch_utils.checkpoint import CHECKPOINT_NAME


class TrainingDiverged(RuntimeError):
    """A loss became NaN/inf; the last good checkpoint is left untouched."""


@dataclass
class RunLength:
    """How long a run trains: ``kimg`` thousand images and/or ``minutes``, whichever ends first."""

    kimg: float | None = None
    minutes: float | None = None

    def fraction(self, nimg: int, elapsed_s: float) -> float:
        parts = []
        if self.kimg is not None:
            parts.append(nimg / (self.kimg * 1000))
        if self.minutes is not None:
            parts.append(elapsed_s / (self.minutes * 60))
        return float(min(1.0, max(parts))) if parts else 0.0

    def done(self, nimg: int, elapsed_s: float) -> bool:
        return ((self.kimg is not None and nimg >= self.kimg * 1000)
                or (self.minutes is not None and elapsed_s >= self.minutes * 60))


def append_row(path: Path, fields: list[str], row: dict) -> None:
    """One row of a CSV log (its header first when the file is new); unknown keys are ignored.

    A log that exists keeps its own columns, so a run resumed by a version that logs more
    (or fewer) fields does not write rows that disagree with the header."""
    header = None
    if path.exists():
        with open(path, newline="") as fh:
            header = next(csv.reader(fh), None)
    with open(path, "a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=header or fields, extrasaction="ignore")
        if header is None:
            w.writeheader()
        w.writerow(row)


def logged_at(path: Path, kimg: float) -> bool:
    """Whether the CSV log ``path`` has a row at ``kimg``."""
    if not path.exists():
        return False
    with open(path, newline="") as fh:
        return any(abs(float(r["kimg"]) - kimg) < 1e-9 for r in csv.DictReader(fh))


def drop_rows_after(path: Path, kimg: float, inclusive: bool = False) -> None:
    """Forget rows of the CSV log ``path`` written after ``kimg`` (the checkpoint a run resumes
    from), and those at ``kimg`` too when ``inclusive`` (a measurement about to be repeated)."""
    if not path.exists():
        return
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    last = kimg - 1e-9 if inclusive else kimg + 1e-9
    keep = [r for r in rows if float(r["kimg"]) < last]
    if len(keep) < len(rows):
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0].keys()))
            w.writeheader()
            w.writerows(keep)


# --- several runs of one budget, read together -------------------------------------------------

RUNS_FILE = "runs.json"


def member_folder(run, index: int) -> Path:
    """Where the ``index``-th (from 0) of the runs a run folder holds trains: the folder itself,
    then ``run-2``, ``run-3``... inside it."""
    run = Path(run)
    return run if index == 0 else run / f"run-{index + 1}"


def read_runs(run) -> dict | None:
    """The run folder's ``runs.json`` (``runs``, the per-run ``minutes`` / ``kimg``, the first ``seed``),
    or None for a folder of one run; a one-line ValueError naming the file when it is unreadable."""
    path = Path(run) / RUNS_FILE
    if not path.is_file():
        return None
    try:
        plan = json.loads(path.read_text())
        if int(plan["runs"]) < 1:
            raise ValueError("runs < 1")
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a runs file of gandl train ({exc})") from None
    return plan


def run_members(run) -> list[Path]:
    """Every run a folder holds, in order: itself alone, or the runs ``gandl train --runs N`` trained
    into it (its ``runs.json``), which are read together."""
    plan = read_runs(run) if Path(run).is_dir() else None
    return [member_folder(run, i) for i in range(int(plan["runs"]) if plan else 1)]


def missing_runs(run) -> list[Path]:
    """The runs of the folder ``run`` (:func:`run_members`) that have no checkpoint yet."""
    return [member for member in run_members(run) if not (member / CHECKPOINT_NAME).exists()]


def planned_runs(run) -> int | None:
    """How many runs the folder ``run`` was started with: its ``runs.json``'s, 1 for a run trained alone,
    None when nothing was trained there yet."""
    plan = read_runs(run) if Path(run).is_dir() else None
    if plan is not None:
        return int(plan["runs"])
    return 1 if (Path(run) / CHECKPOINT_NAME).exists() else None


def train_runs(train_one: Callable[..., Iterator[dict]], out_dir, runs: int, minutes: float | None,
               kimg: float | None, seed: int, resume: bool,
               should_stop: Callable[[], bool] | None = None) -> Iterator[dict]:
    """One training budget (``minutes`` or ``kimg``) split over ``runs`` runs at seeds ``seed``,
    ``seed + 1``..., trained one after the other into ``out_dir`` and ``out_dir/run-2``...
    (:func:`member_folder`); ``gandl embed --checkpoint OUT_DIR`` reads them together.

    ``train_one(folder, minutes=, kimg=, seed=, resume=)`` is one run's progress generator. Its rows
    are passed on with the whole training's ``fraction`` and ``kimg`` (images seen by every run so
    far), and ``run`` / ``runs``; only the last run's ``done`` row is ``done``, and it names
    ``out_dir``. The split is written to ``out_dir/runs.json`` first, so ``resume`` (budget None: the
    one written) continues whichever run was interrupted and then trains the rest. With one run
    this is ``train_one`` into ``out_dir`` and no runs file.
    """
    out_dir = Path(out_dir)
    started = planned_runs(out_dir) if resume else None
    if started is not None and started != runs:  # a run trained alone stays alone, a pair a pair
        raise ValueError(f"{out_dir} holds {started} run(s) trained together; resume it with --runs "
                         f"{started}, or train {runs} runs into another folder")
    if runs == 1:
        yield from train_one(out_dir, minutes=minutes, kimg=kimg, seed=seed, resume=resume)
        return
    plan = read_runs(out_dir) if resume else None
    if minutes is not None or kimg is not None or plan is None:
        plan = {"runs": runs, "seed": (plan or {}).get("seed", seed),
                "minutes": None if minutes is None else minutes / runs, "kimg": None if kimg is None else kimg / runs}

    def start(index: int) -> Iterator[dict]:
        folder = member_folder(out_dir, index)
        return train_one(folder, minutes=plan["minutes"], kimg=plan["kimg"], seed=int(plan["seed"]) + index,
                         resume=resume or (folder / CHECKPOINT_NAME).exists())

    first = start(0)  # a bad option is refused here, before anything is written
    if first_process():  # one process of a torchrun writes the plan
        with output_lock(out_dir, folder=True):  # refused while another process trains there
            if not resume and (out_dir / CHECKPOINT_NAME).exists():  # a plan without one lost nothing
                raise FileExistsError(f"{out_dir} holds a run already; pass --resume to continue it or choose "
                                      f"another output folder")
            write_text(out_dir / RUNS_FILE, json.dumps(plan, indent=1))
    seen_kimg = 0.0
    for index in range(runs):
        folder = member_folder(out_dir, index)
        rows = first if index == 0 else start(index)
        last, ended = None, False
        with closing(rows):  # closed early, the run still writes its checkpoint
            for row in rows:
                last = row
                stopped = should_stop is not None and should_stop()
                ended = bool(row.get("done")) and (index == runs - 1 or stopped)
                note = {"quality_note": f"run {index + 1} of {runs} ({folder}): {row['quality_note']}"} \
                    if row.get("quality_note") else {}
                # the whole training's checkpoint is the folder that reads every run; a stop names the run's
                yield {**row, **_so_far(row, index, runs, seen_kimg), **note, "done": ended,
                       **({"checkpoint": str(out_dir)} if ended and not stopped else {})}
        if ended or last is None:
            return
        if not last.get("done") or (should_stop is not None and should_stop()):  # stopped between two runs
            yield {**last, **_so_far(last, index, runs, seen_kimg), "fraction": (index + 1) / runs, "done": True}
            return
        seen_kimg += float(last.get("kimg", 0.0))


def _so_far(row: dict, index: int, runs: int, seen_kimg: float) -> dict:
    """A run's progress row as the whole training's: which run, where it began (``run_start_kimg``), and
    the images and fraction of every run so far (``seen_kimg``: the runs before this one)."""
    out = {"run": index + 1, "runs": runs, "run_start_kimg": seen_kimg,
           "kimg": seen_kimg + float(row.get("kimg", 0.0)),
           "fraction": (index + float(row.get("fraction", 0.0))) / runs}
    if "nimg" in row:
        out["nimg"] = round(seen_kimg * 1000) + int(row["nimg"])
    return out

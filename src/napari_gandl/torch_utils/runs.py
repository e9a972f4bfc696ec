"""Bookkeeping every training run shares: its length, a diverged loss, and its CSV logs."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from napari_gandl.files import atomic_path


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

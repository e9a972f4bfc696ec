"""The SVM dock's view-model: which task, run it, and the per-site decision scores (Qt-free).

Tasks are the paper's presets (``analysis.rxrx19a_tasks``) or a custom one:
any site-table column with chosen positive and negative values. :func:`run`
reads the chosen embedding, evaluates the task with repeated well-grouped
splits (``analysis.evaluate_task``) and scores every embedded site with an
SVM fitted on all the task's sites (``analysis.decision_scores``), positive
towards the task's first class; the dock writes the scores to the site table
as ``svm_<task>``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from napari_gandl import columns as cols
from napari_gandl.analysis import TaskError, decision_scores, define_task, evaluate_task, rxrx19a_tasks
from napari_gandl.tables import as_str, categorical_columns

from napari_gandl.viewmodels.embedding_choice import record, resolve_embedding
from napari_gandl.viewmodels.site_table import SiteTable

CUSTOM = "custom: a column, positive vs negative values"
HELP = {
    "task": "C+: untreated uninfected control sites (Mock and UV-inactivated virus). "
            "C-: untreated infected sites (active SARS-CoV-2). 'HRCE vs VERO': the cell model, on untreated "
            "sites. Custom: any site-table column, positive values against negative ones.",
    "C": "SVM regularisation strength: a larger C fits the training sites more tightly (narrower margin), "
         "a smaller C tolerates more errors for a wider margin. 1 is the usual start.",
    "splits": "Repeated random 75 % / 25 % splits with whole wells on one side, so neighbouring sites of "
              "one well never end up on both sides.",
}


def metadata_frame(table: SiteTable) -> pd.DataFrame:
    """The site table without the embedding's columns (what tasks are defined on)."""
    drop = set(table.embedding_columns)
    return table.frame[[c for c in table.frame.columns if c not in drop]]


def task_choices(table: SiteTable | None) -> list[str]:
    """The preset tasks this plate supports, then the custom task."""
    presets: list[str] = []
    if table is not None:
        frame = table.frame
        try:
            presets = list(rxrx19a_tasks(frame[[c for c in cols.META if c in frame.columns]]))
        except ValueError:
            presets = []
    return [*presets, CUSTOM]


def column_choices(table: SiteTable | None) -> list[str]:
    return categorical_columns(metadata_frame(table)) if table is not None else []


def value_choices(table: SiteTable | None, column: str | None) -> list[str]:
    if table is None or not column or column not in table.frame.columns:
        return []
    return sorted(v for v in pd.unique(as_str(table.frame, column)) if v != "")


def check(spec: dict) -> str | None:
    """What is missing from a task choice (None when it can run)."""
    if spec["task"] == CUSTOM:
        if not spec["column"]:
            return "choose a column for the custom task"
        if not spec["positive"]:
            return f"choose at least one positive value of {spec['column']!r}"
        overlap = sorted(set(spec["positive"]) & set(spec["negative"]))
        if overlap:
            return f"values {overlap} are chosen as both positive and negative"
    return None


def build_task(meta: pd.DataFrame, spec: dict):
    """The :class:`~napari_gandl.analysis.Task` described by ``spec`` (task, column, positive, negative)."""
    reason = check(spec)
    if reason:
        raise TaskError(reason)
    if spec["task"] != CUSTOM:
        tasks = rxrx19a_tasks(meta)
        if spec["task"] not in tasks:
            raise TaskError(f"preset task {spec['task']!r} is not available for this plate "
                            f"(available: {', '.join(tasks) or 'none'})")
        return tasks[spec["task"]]
    return define_task(meta, spec["column"], list(spec["positive"]), list(spec["negative"]) or None)


def run(table: SiteTable, params: dict, report: Callable[[int, int, str], None]) -> dict:
    """Evaluate the task on the chosen embedding (worker thread); returns the dock's record."""
    choice = params["embedding"]
    n = params["n_splits"]
    report(0, n, "reading the embedding…")
    emb = resolve_embedding(table, choice["source"], choice.get("path"), choice["normalisation"],
                            progress=lambda d, t: report(0, n, f"handcrafted features {d} / {t}…"))
    frame = table.frame
    spec = params["task"]
    columns = [c for c in cols.META if c in frame.columns]
    if spec["task"] == CUSTOM and spec["column"] not in columns:
        columns.append(spec["column"])
    # the task is defined on the whole plate, then restricted to the embedded sites
    task = build_task(frame[columns], spec).subset(emb.rows)
    report(0, n, f"{task.name}: {task.counts()} sites; fitting…")
    result = evaluate_task(emb.table.X, task, n_splits=n, C=params["C"],
                           progress=lambda k, total: report(k, total, f"split {k} / {total}"))
    scores, positive = decision_scores(emb.table.X, task, C=params["C"])
    ids = emb.table.meta[cols.SITE_ID].astype(str).to_numpy()
    return record(table, choice, emb, params=params, result=result, positive=positive,
                  scores=pd.DataFrame({cols.SITE_ID: ids, cols.svm_score(task.name): scores}),
                  column=cols.svm_score(task.name), notes=emb.notes)


def confusion_note(result) -> str:
    """What the confusion-matrix counts are: test sites summed over the splits."""
    total = int(np.sum(result.confusion))
    sites = sum(result.n_sites.values())
    return (f"counts: test sites summed over the {result.n_splits} splits, % of each true class\n"
            f"({total} for {sites} sites: a site counts once per split that tests it)")

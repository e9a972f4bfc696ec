"""SVM widget: linear-SVM control tasks on an embedding, with well-grouped splits.

Thin: the task definitions, splits and the SVM are ``analysis.classify``.
The widget picks the embedding, the normalisation and a task (the paper's
presets, or any site-table column with chosen positive and negative values),
runs the repeated well-grouped evaluation in a worker, shows accuracy ± sd and
the summed confusion matrix, and writes every site's decision score (an SVM
fitted on all the task's sites; positive towards the first class named) into
the site table as ``svm_<task>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from magicgui.widgets import ComboBox, Container, FloatSpinBox, Select, SpinBox

from napari_gandl import columns as cols
from napari_gandl.analysis.tables import categorical_columns
from napari_gandl.viewmodels.embedding_choice import record as analysis_record

from ._analysis import AnalysisWidget, add_native, themed_figure
from .common import site_table, style_axes

if TYPE_CHECKING:
    import napari

CUSTOM = "custom: a column, positive vs negative values"


def column_values(table: pd.DataFrame, column: str) -> list[str]:
    from napari_gandl.analysis.tables import as_str

    vals = pd.unique(as_str(table, column))
    return sorted(v for v in vals if v != "")


def build_task(meta: pd.DataFrame, spec: dict):
    """The :class:`~napari_gandl.analysis.Task` described by ``spec``."""
    from napari_gandl.analysis import TaskError, define_task, rxrx19a_tasks

    if spec["task"] != CUSTOM:
        tasks = rxrx19a_tasks(meta)
        if spec["task"] not in tasks:
            raise TaskError(f"preset task {spec['task']!r} is not available for this plate "
                            f"(available: {', '.join(tasks) or 'none'})")
        return tasks[spec["task"]]
    column, pos, neg = spec["column"], list(spec["positive"]), list(spec["negative"])
    if not column:
        raise TaskError("choose a column for the custom task")
    if not pos:
        raise TaskError(f"choose at least one positive value of {column!r}")
    overlap = sorted(set(pos) & set(neg))
    if overlap:
        raise TaskError(f"values {overlap} are chosen as both positive and negative")
    return define_task(meta, column, pos, neg or None)


def first_named(task_name: str, classes) -> str:
    """The class named first in the task name ("C+ vs C- (merged)" -> "C+")."""
    found = [(task_name.find(str(c)), str(c)) for c in classes if str(c) in task_name]
    return min(found)[1] if found else str(classes[0])


def decision_scores(X: np.ndarray, task, C: float = 1.0, seed: int = 0) -> tuple[np.ndarray, str]:
    """Fit the SVM on every site of the task; score all rows, positive towards the
    first-named class. Returns (scores, that class)."""
    from napari_gandl.analysis import LinearModel

    mask = task.mask
    y = task.labels[mask].astype(str)
    model = LinearModel(C=C, seed=seed).fit(X[mask], y)
    d = np.asarray(model.decision_function(X), np.float64)
    classes = [str(c) for c in model.classes_]
    positive = first_named(task.name, classes)
    if d.ndim == 2:  # multi-class: score of the first-named class
        return d[:, classes.index(positive)], positive
    if classes[1] != positive:
        d = -d
    return d, positive


def plot_confusion(figure, ax, result) -> None:
    """Row-normalised confusion matrix with counts, themed."""
    colors = getattr(figure, "gandl_colors", {"foreground": "black"})
    cm = np.asarray(result.confusion, float)
    rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    ax.imshow(rates, vmin=0, vmax=1, cmap="Blues")
    k = len(result.classes)
    ax.set_xticks(range(k), result.classes, rotation=30 if k > 2 else 0, ha="right" if k > 2 else "center")
    ax.set_yticks(range(k), result.classes)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{int(cm[i, j])}\n{100 * rates[i, j]:.0f} %", ha="center", va="center",
                    fontsize=8, color="white" if rates[i, j] > 0.55 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{result.name}\naccuracy {100 * result.accuracy_mean:.1f} ± "
                 f"{100 * result.accuracy_sd:.1f} %", fontsize=9)
    style_axes(figure, ax)
    ax.title.set_color(colors["foreground"])


class SVMWidget(AnalysisWidget):
    """Linear-SVM task on the plate's embedding: accuracy ± sd, confusion matrix, scores."""

    kind = "svm"
    title = "SVM"
    run_text = "Run SVM"

    def __init__(self, viewer: napari.viewer.Viewer):
        self._viewer = viewer
        self.sites = site_table(viewer)  # the choices below read it
        # choices are callables: napari's reset_choices (on layer changes) re-evaluates them
        self.task = ComboBox(label="task", choices=self._task_choices)
        self.column = ComboBox(label="column", choices=self._column_choices)
        self.positive = Select(label="positive", choices=self._value_choices)
        self.negative = Select(label="negative (none: all others)", choices=self._value_choices)
        self.n_splits = SpinBox(label="splits", value=10, min=2, max=200)
        self.C = FloatSpinBox(label="C", value=1.0, min=1e-4, max=1e4, step=0.1)
        self.custom = Container(widgets=[self.column, self.positive, self.negative])
        self.custom.margins = (0, 0, 0, 0)
        super().__init__(viewer, [self.task, self.custom, self.n_splits, self.C])
        self.figure, self.canvas = themed_figure(viewer, (4.2, 3.6))
        add_native(self, self.canvas)
        self.task.changed.connect(self._task_changed)
        self.column.changed.connect(self._column_changed)
        self.refresh_choices()
        self.restore()

    # ---------------------------------------------------------------- choices
    def _task_choices(self, *_) -> list[str]:
        from napari_gandl.analysis import rxrx19a_tasks

        table = self._frame()
        presets: list[str] = []
        if table is not None:
            try:
                presets = list(rxrx19a_tasks(table[[c for c in cols.META if c in table.columns]]))
            except ValueError:
                presets = []
        return [*presets, CUSTOM]

    def _frame(self):
        """The site table's metadata and result columns (not the embedding), or None."""
        table = getattr(self, "sites", None)
        if table is None:
            return None
        return table.frame[[c for c in table.frame.columns if c not in set(table.embedding_columns)]]

    def _column_choices(self, *_) -> list[str]:
        table = self._frame()
        return categorical_columns(table) if table is not None else []

    def _value_choices(self, *_) -> list[str]:
        table = self._frame()
        column = getattr(getattr(self, "column", None), "value", None)
        if table is None or not column or column not in table.columns:
            return []
        return column_values(table, column)

    def refresh_choices(self) -> None:
        self.reset_choices()
        self._task_changed()

    def on_layers_changed(self) -> None:
        self.refresh_choices()

    def on_table_changed(self, names: tuple) -> None:
        if not set(names) <= set(self.sites.embedding_columns):
            self.column.reset_choices()

    def _task_changed(self, *_) -> None:
        self.custom.visible = self.task.value == CUSTOM

    def _column_changed(self, *_) -> None:
        self.positive.reset_choices()
        self.negative.reset_choices()

    # ---------------------------------------------------------------- running
    def params(self) -> dict:
        params = super().params()
        params["task"] = {"task": self.task.value, "column": self.column.value,
                          "positive": list(self.positive.value or []),
                          "negative": list(self.negative.value or [])}
        params["n_splits"] = int(self.n_splits.value)
        params["C"] = float(self.C.value)
        return params

    def precheck(self, params: dict) -> str | None:
        reason = super().precheck(params)
        if reason:
            return reason
        spec = params["task"]
        if spec["task"] == CUSTOM:
            if not spec["column"]:
                return "choose a column for the custom task"
            if not spec["positive"]:
                return f"choose at least one positive value of {spec['column']!r}"
        return None

    def compute(self, table, params: dict, report) -> dict:
        from napari_gandl.analysis import Task, evaluate_task

        emb = self.read_embedding(table, params, report, total=params["n_splits"])
        # the task is defined on the whole plate, then restricted to the embedded sites
        frame = table.frame
        spec = params["task"]
        columns = [c for c in cols.META if c in frame.columns]
        if spec["task"] == CUSTOM and spec["column"] not in columns:
            columns.append(spec["column"])
        whole = build_task(frame[columns], spec)
        task = Task(whole.name, whole.labels[emb.rows], whole.groups[emb.rows], whole.description)
        report(0, params["n_splits"], f"{task.name}: {task.counts()} sites; fitting…")
        result = evaluate_task(emb.table.X, task, n_splits=params["n_splits"], C=params["C"],
                               progress=lambda k, n: report(k, n, f"split {k} / {n}"))
        scores, positive = decision_scores(emb.table.X, task, C=params["C"])
        ids = emb.table.meta["site_id"].astype(str).to_numpy()
        return analysis_record(table, params["embedding"], emb, params=params, result=result,
                               scores=pd.DataFrame({cols.SITE_ID: ids, "score": scores}),
                               positive=positive, column=cols.svm_score(task.name), notes=emb.notes)

    def show_record(self, record: dict) -> None:
        result = record["result"]
        if self.sites is not None:
            self.sites.set_columns(record["scores"].rename(columns={"score": record["column"]}))
        counts = ", ".join(f"{k}: {v}" for k, v in result.n_sites.items())
        lines = [
            f"{result.name} — {record['label']}, {record['params']['embedding']['normalisation']}",
            f"accuracy {100 * result.accuracy_mean:.1f} ± {100 * result.accuracy_sd:.1f} % "
            f"(balanced {100 * result.balanced_accuracy_mean:.1f} ± {100 * result.balanced_accuracy_sd:.1f} %)",
            f"{result.n_splits} well-grouped splits, {result.n_wells} wells; sites {counts}",
            f"decision scores → site table column '{record['column']}' (> 0: {record['positive']})",
        ]
        if record.get("notes"):
            lines.append(record["notes"])
        self.status.value = "\n".join(lines)
        self.figure.clear()
        plot_confusion(self.figure, self.figure.add_subplot(), result)
        self.canvas.draw_idle()

    def clear_record(self) -> None:
        self.figure.clear()
        self.canvas.draw_idle()


__all__ = ["SVMWidget", "build_task", "decision_scores"]

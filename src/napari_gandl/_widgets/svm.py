"""SVM dock: linear-SVM control tasks on an embedding, with well-grouped splits.

A thin view over ``viewmodels.svm``: it picks the embedding, the normalisation
and a task (the paper's presets, or any site-table column with chosen positive
and negative values), runs the view-model in a worker, shows accuracy ± sd and
the confusion matrix of the test sites summed over the splits (labelled so),
and writes every site's decision score into the site table as ``svm_<task>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import ComboBox, Container, FloatSpinBox, Select, SpinBox

from napari_gandl.viewmodels import svm as model

from napari_gandl._widgets._analysis import AnalysisWidget, add_native, themed_figure
from napari_gandl._viewer import site_table
from napari_gandl._widgets.common import style_axes

if TYPE_CHECKING:
    import napari

CUSTOM = model.CUSTOM


def plot_confusion(figure, ax, result) -> None:
    """Row-normalised confusion matrix with counts, themed, saying what the counts are."""
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
    ax.set_xlabel(f"predicted\n(test sites summed over {result.n_splits} splits)")
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
        self.task = ComboBox(label="task", choices=lambda *_: model.task_choices(self.sites),
                             tooltip=model.HELP["task"])
        self.column = ComboBox(label="column", choices=lambda *_: model.column_choices(self.sites))
        self.positive = Select(label="positive", choices=self._value_choices)
        self.negative = Select(label="negative (none: all others)", choices=self._value_choices)
        self.n_splits = SpinBox(label="splits", value=10, min=2, max=200, tooltip=model.HELP["splits"])
        self.C = FloatSpinBox(label="C", value=1.0, min=1e-4, max=1e4, step=0.1, tooltip=model.HELP["C"])
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
    def _value_choices(self, *_) -> list[str]:
        return model.value_choices(self.sites, getattr(getattr(self, "column", None), "value", None))

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
        return super().precheck(params) or model.check(params["task"])

    def compute(self, table, params: dict, report) -> dict:
        return model.run(table, params, report)

    def show_record(self, record: dict) -> None:
        result = record["result"]
        if self.sites is not None:
            self.sites.set_columns(record["scores"])
        counts = ", ".join(f"{k}: {v}" for k, v in result.n_sites.items())
        lines = [
            f"{result.name} — {record['label']}, {record['params']['embedding']['normalisation']}",
            f"accuracy {100 * result.accuracy_mean:.1f} ± {100 * result.accuracy_sd:.1f} % "
            f"(balanced {100 * result.balanced_accuracy_mean:.1f} ± {100 * result.balanced_accuracy_sd:.1f} %)",
            f"{result.n_splits} well-grouped splits, {result.n_wells} wells; sites {counts}",
            f"confusion matrix {model.confusion_note(result)}",
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


__all__ = ["SVMWidget"]

"""Analysis backend (Qt-free): what the GAN-DL paper does with an embedding.

Works on any embedding table (ours, the RxRx19a ``embeddings.csv``, a
CellProfiler-style table): plate normalisation on controls, linear-SVM
control tasks with well-grouped splits, E2/C2 perturbation spaces,
dose-response curves with EC50 and F-test q-values, classifier two-sample
tests, and the one-page report of ``gandl analyse``.
"""

from napari_gandl.analysis.classify import (
    LinearModel, Task, TaskError, TaskResult, decision_scores, define_task, evaluate_task,
    rxrx19a_tasks, zero_shot_cell_types,
)
from napari_gandl.analysis.c2st import C2STResult, c2st, tile_features
from napari_gandl.analysis.dose import (
    dose_points, dose_response, fit_dose_response, fit_logistic4_batch, logistic4, off_manifold,
)
from napari_gandl.analysis.dose_plots import plot_curves
from napari_gandl.analysis.axes import PerturbationSpace, fit_c2, fit_e2, fit_space, plot_space
from napari_gandl.analysis.normalise import centerscale_on_controls, control_mask, normalise, tvn_on_controls
from napari_gandl.analysis.report import analyse, ground_truth_auc

__all__ = [
    "C2STResult", "analyse", "ground_truth_auc", "LinearModel", "PerturbationSpace", "Task",
    "TaskError", "TaskResult", "c2st", "centerscale_on_controls",
    "control_mask", "decision_scores", "define_task", "dose_points", "dose_response", "evaluate_task", "fit_c2",
    "fit_dose_response", "fit_e2", "fit_logistic4_batch", "fit_space",
    "logistic4", "normalise", "off_manifold", "plot_curves", "plot_space",
    "rxrx19a_tasks", "tile_features",
    "tvn_on_controls", "zero_shot_cell_types",
]

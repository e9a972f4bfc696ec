"""Linear-SVM classification tasks with well-grouped or leave-one-plate-out splits.

As in the GAN-DL paper: a soft-margin linear SVM on standardised features,
class weights inversely proportional to class frequencies, 75 % / 25 %
train/test splits drawn *by well* (no well contributes sites to both sides),
repeated ``n_splits`` times; we report mean ± sd of held-out accuracy (and
balanced accuracy) and the summed confusion matrix.

``evaluate_task(..., split="plate")`` holds out one whole plate at a time
instead (scikit-learn's ``LeaveOneGroupOut`` on the plates; on a screen of more
than :data:`MAX_PLATE_FOLDS` plates, that many groups of plates): the classifier
never saw the held-out plate's plate effect, so the figure says how well a
result carries over to a new plate.  A plate that holds a single class of the
task is not scored (its accuracy would measure the plate, not the classes);
the result names it under ``excluded``.

RxRx19a presets (:func:`rxrx19a_tasks`):

* ``C+ vs C-`` : C+ = untreated Mock or UV-inactivated virus, C- =
  untreated active SARS-CoV-2; cell types merged, and per cell type;
* ``HRCE vs VERO`` : cell model, on control (untreated) sites.

:func:`define_task` builds a generic task from ``column``, positive values
and negative values.  :func:`zero_shot_cell_types` classifies RxRx1 cell
types (multi-class); the six RxRx1 stains are mapped onto the five of an
RxRx19a model when embedding (``napari_gandl.embedding.stains``).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import confusion_matrix
from sklearn.model_selection import LeaveOneGroupOut
from sklearn.svm import LinearSVC

from napari_gandl.tables import (
    RXRX1_CONTROL_WELLS, EmbeddingTable, TableError, as_str, batch_labels, control_labels, is_untreated, require_columns, well_groups,
)


@dataclass
class Task:
    """A labelled subset of sites: ``labels[i]`` is a class name or None (excluded)."""

    name: str
    labels: np.ndarray          # object array, None = not in task
    groups: np.ndarray          # well id per site
    description: str = ""
    plates: np.ndarray | None = None   # plate id per site (for leave-one-plate-out splits)
    positive: str | None = None        # the class a decision score points to (default: the first)

    @property
    def mask(self) -> np.ndarray:
        return np.array([lab is not None for lab in self.labels], dtype=bool)

    def subset(self, rows: np.ndarray) -> "Task":
        """The same task on the sites ``rows`` only (e.g. those with an embedding)."""
        rows = np.asarray(rows)
        return Task(self.name, self.labels[rows], self.groups[rows], self.description,
                    None if self.plates is None else self.plates[rows], self.positive)

    def counts(self) -> dict[str, int]:
        vals, n = np.unique(self.labels[self.mask].astype(str), return_counts=True)
        return dict(zip(vals.tolist(), n.tolist()))


@dataclass
class TaskResult:
    name: str
    classes: list[str]
    accuracy_mean: float
    accuracy_sd: float
    balanced_accuracy_mean: float
    balanced_accuracy_sd: float
    accuracies: list[float]
    confusion: list[list[int]]          # rows = true, columns = predicted, summed over splits
    n_sites: dict[str, int]
    n_wells: int
    n_splits: int
    test_size: float
    solver: str
    seconds: float
    description: str = ""
    split: str = "well"                 # "well": repeated well-grouped; "plate": leave-one-plate-out
    excluded: dict[str, str] = field(default_factory=dict)  # held-out plate -> why it was not scored

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        return (f"{self.name}: accuracy {100 * self.accuracy_mean:.1f} ± "
                f"{100 * self.accuracy_sd:.1f} % (balanced {100 * self.balanced_accuracy_mean:.1f} %, "
                f"{self.n_splits} {SPLIT_NAMES[self.split]} splits)")


SPLIT_NAMES = {"well": "well-grouped", "plate": "leave-one-plate-out"}


class TaskError(ValueError):
    """A task cannot be evaluated (e.g. one class only, too few wells)."""


# ------------------------------------------------------------------ tasks

def define_task(meta: pd.DataFrame, column: str, positive: Sequence | str,
                negative: Sequence | str | None = None, name: str | None = None,
                where: np.ndarray | None = None, labels: tuple[str, str] | None = None,
                ) -> Task:
    """Generic binary (or multi-class) task on a metadata column.

    ``positive``/``negative`` are values (or lists of values) of ``column``;
    ``negative=None`` means "every other value".  ``where`` restricts the task
    to a subset of sites.  Passing ``positive=None`` and ``negative=None``
    makes every distinct value its own class (multi-class).
    """
    require_columns(meta, [column], f"task on {column!r}")
    vals = as_str(meta, column)
    inside = np.ones(len(meta), bool) if where is None else np.asarray(where, bool)
    out = np.full(len(meta), None, dtype=object)
    pos_lab = None
    if positive is None and negative is None:
        out[inside & (vals != "")] = vals[inside & (vals != "")]
        name = name or f"{column} (multi-class)"
    else:
        pos = [positive] if isinstance(positive, str) else [str(p) for p in positive]
        pos_lab, neg_lab = labels or ("+".join(pos), "other" if negative is None else None)
        is_pos = np.isin(vals, pos)
        if negative is None:
            is_neg = ~is_pos & (vals != "")
        else:
            neg = [negative] if isinstance(negative, str) else [str(n) for n in negative]
            is_neg = np.isin(vals, neg)
            neg_lab = neg_lab or "+".join(neg)
            both = is_pos & is_neg
            if both.any():
                raise TaskError(f"task {column}: values {sorted(set(vals[both]))} are both positive and negative")
        out[inside & is_pos] = pos_lab
        out[inside & is_neg] = neg_lab
        name = name or f"{pos_lab} vs {neg_lab}"
    return Task(name, out, well_groups(meta), description=f"column {column!r}",
                plates=plate_groups(meta), positive=pos_lab)


def plate_groups(meta: pd.DataFrame) -> np.ndarray | None:
    """Plate id per site ((experiment, plate) when both are present); None without plate columns."""
    try:
        return batch_labels(meta)
    except TableError:
        return None


def rxrx19a_tasks(meta: pd.DataFrame) -> dict[str, Task]:
    """The paper's control tasks, for whichever columns/classes are present."""
    tasks: dict[str, Task] = {}
    groups = well_groups(meta)
    plates = plate_groups(meta)
    if "disease_condition" in meta.columns:
        ctrl = control_labels(meta)
        lab = np.where(ctrl == "", None, ctrl).astype(object)
        tasks["C+ vs C- (merged)"] = Task(
            "C+ vs C- (merged)", lab, groups,
            "untreated Mock/UV-inactivated (C+) vs untreated active SARS-CoV-2 (C-), all cell types",
            plates, positive="C+")
        if "cell_type" in meta.columns:
            ct = as_str(meta, "cell_type")
            for c in sorted(set(ct) - {""}):
                sub = np.where(ct == c, lab, None).astype(object)
                tasks[f"C+ vs C- ({c})"] = Task(f"C+ vs C- ({c})", sub, groups,
                                               f"C+ vs C- on {c} cells only", plates, positive="C+")
    if "cell_type" in meta.columns:
        ct = as_str(meta, "cell_type")
        kinds = sorted(set(ct) - {""})
        if len(kinds) >= 2:
            if "well_type" in meta.columns and "disease_condition" not in meta.columns:  # RxRx1
                controls = np.isin(as_str(meta, "well_type"), RXRX1_CONTROL_WELLS)
                description = "cell type on the control wells (negative and positive control siRNAs)"
            else:
                controls = is_untreated(meta)
                description = "cell model on untreated control sites"
            lab = np.where(controls & (ct != ""), ct, None).astype(object)
            name = " vs ".join(kinds)
            tasks[name] = Task(name, lab, groups, description, plates, positive=kinds[0])
    return tasks


# ------------------------------------------------------------------ splits & SVM

def grouped_splits(labels: np.ndarray, groups: np.ndarray, n_splits: int = 10,
                   test_size: float = 0.25, seed: int = 0, max_tries: int = 50):
    """Yield (train_idx, test_idx) with whole groups on one side and every
    class present on both sides (splits lacking a class are redrawn)."""
    labels = np.asarray(labels)
    groups = np.asarray(groups)
    uniq, ginv = np.unique(groups, return_inverse=True)
    n_groups = len(uniq)
    classes = np.unique(labels)
    if len(classes) < 2:
        raise TaskError(f"only one class present ({classes.tolist()}); a classifier needs two")
    n_test = max(1, int(round(test_size * n_groups)))
    if n_groups < 2 or n_test >= n_groups:
        raise TaskError(f"only {n_groups} well(s); need at least 2 wells to split by well")
    rng = np.random.default_rng(seed)
    made = 0
    tries = 0
    while made < n_splits:
        tries += 1
        if tries > max_tries * n_splits:
            raise TaskError(f"could not draw well-grouped splits with every class "
                            f"({classes.tolist()}) on both sides from {n_groups} wells; "
                            "each class needs wells of its own on both sides")
        test_groups = np.zeros(n_groups, bool)
        test_groups[rng.choice(n_groups, n_test, replace=False)] = True
        is_test = test_groups[ginv]
        if (len(np.unique(labels[is_test])) < len(classes)
                or len(np.unique(labels[~is_test])) < len(classes)):
            continue
        made += 1
        yield np.flatnonzero(~is_test), np.flatnonzero(is_test)


#: above these, ``LinearModel(solver="auto")`` fits by SGD: liblinear's primal solver is fast on two
#: classes (5.6 s on 48,564 sites x 1,024 features) but not one-vs-rest on many classes when the
#: sites are about as many as the features (1,500 x 1,024, 10 classes: 6-80 s against SGD's 0.6 s;
#: 50 classes: 345 s against 2.5 s), as when plates are told apart
MAX_LIBLINEAR_SITES = 100_000
MAX_LIBLINEAR_CLASSES = 4


class LinearModel:
    """Standardise, then a class-balanced soft-margin linear SVM.

    ``solver='liblinear'`` is sklearn's LinearSVC solved in the primal
    (``dual=False``: scales with samples, fine for a few hundred features);
    ``'sgd'`` is a hinge-loss SGD (same objective, approximate, for very
    large n); ``'auto'`` picks SGD above :data:`MAX_LIBLINEAR_SITES` training sites or
    :data:`MAX_LIBLINEAR_CLASSES` classes.
    """

    def __init__(self, C: float = 1.0, solver: str = "auto", seed: int = 0, max_iter: int = 2000):
        self.C, self.solver, self.seed, self.max_iter = C, solver, seed, max_iter

    def fit(self, X: np.ndarray, y: np.ndarray) -> "LinearModel":
        X = np.asarray(X, dtype=np.float32)
        self.mean_ = X.mean(axis=0)
        sd = X.std(axis=0)
        self.scale_ = np.where(sd > 1e-12, sd, 1.0).astype(np.float32)
        Z = (X - self.mean_) / self.scale_
        solver = self.solver
        if solver == "auto":
            many = len(X) > MAX_LIBLINEAR_SITES or len(np.unique(y)) > MAX_LIBLINEAR_CLASSES
            solver = "sgd" if many else "liblinear"
        self.solver_ = solver
        if solver == "liblinear":
            clf = LinearSVC(C=self.C, class_weight="balanced", dual=False,
                            max_iter=self.max_iter, tol=1e-3, random_state=self.seed)
        elif solver == "sgd":
            alpha = 1.0 / (self.C * len(X))
            clf = SGDClassifier(loss="hinge", alpha=alpha, class_weight="balanced",
                                max_iter=20, tol=1e-4, random_state=self.seed, average=True)
        else:
            raise ValueError(f"unknown solver {solver!r}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(Z, y)
        self.clf_ = clf
        self.classes_ = clf.classes_
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return self.clf_.decision_function((np.asarray(X, np.float32) - self.mean_) / self.scale_)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.clf_.predict((np.asarray(X, np.float32) - self.mean_) / self.scale_)

    @property
    def normal_(self) -> np.ndarray:
        """Unit normal of the (binary) separating hyperplane, in standardised space."""
        w = np.asarray(self.clf_.coef_[0], dtype=np.float64)
        return w / max(np.linalg.norm(w), 1e-300)


def decision_scores(X: np.ndarray, task: Task, C: float = 1.0, seed: int = 0) -> tuple[np.ndarray, str]:
    """An SVM fitted on every site of ``task`` scores every row of ``X``, positive towards
    ``task.positive`` (the first class when the task names none). Returns (scores, that class)."""
    mask = task.mask
    y = task.labels[mask].astype(str)
    model = LinearModel(C=C, seed=seed).fit(np.asarray(X)[mask], y)
    d = np.asarray(model.decision_function(X), np.float64)
    classes = [str(c) for c in model.classes_]
    positive = task.positive if task.positive in classes else classes[0]
    if d.ndim == 2:  # multi-class: one score per class
        return d[:, classes.index(positive)], positive
    return (d if classes[1] == positive else -d), positive


#: at most this many held-out-plate folds: a screen of more plates holds them out in this many
#: groups, each plate once (RxRx19a's 200 plates would otherwise cost 200 fits per task; a
#: linear SVM on 65,000 sites x 1,024 features takes tens of seconds each, bench_scale_embed)
MAX_PLATE_FOLDS = 10


def plate_splits(labels: np.ndarray, plates: np.ndarray, max_folds: int = MAX_PLATE_FOLDS,
                 ) -> tuple[list[tuple[np.ndarray, np.ndarray, str]], dict[str, str]]:
    """Held-out-plate folds ``(train_idx, test_idx, plates held out)`` and the plates not scored.

    Each plate that can be scored is held out once, whole: alone (leave-one-plate-out) when
    there are at most ``max_folds`` such plates, otherwise with others in ``max_folds`` groups
    (every ``max_folds``-th plate in plate order, so a group spans the screen's experiments).
    The classifier never sees a held-out plate. A plate is not scored when it holds a single
    class (its accuracy would say how the plate is classified, not whether the classes
    separate) or when the remaining plates lack a class; ``excluded`` maps it to why.
    """
    labels, plates = np.asarray(labels).astype(str), np.asarray(plates).astype(str)
    classes = np.unique(labels)
    if len(classes) < 2:
        raise TaskError(f"only one class present ({classes.tolist()}); a classifier needs two")
    if len(np.unique(plates)) < 2:
        raise TaskError(f"leave-one-plate-out needs at least 2 plates; every site is on plate {plates[0]}")
    scored, excluded = [], {}
    for tr, te in LeaveOneGroupOut().split(labels, groups=plates):
        plate = str(plates[te[0]])
        held = np.unique(labels[te])
        if len(held) < 2:
            excluded[plate] = f"holds only {held[0]} sites"
        elif len(np.unique(labels[tr])) < len(classes):
            missing = sorted(set(classes) - set(labels[tr]))
            excluded[plate] = f"the other plates have no {', '.join(missing)} sites"
        else:
            scored.append(plate)
    if not scored:
        reasons = [f"plate {p}: {why}" for p, why in excluded.items()]
        more = f"; and {len(reasons) - 3} more plate{'s' * (len(reasons) > 4)}" if len(reasons) > 3 else ""
        raise TaskError("every plate holds a single class of this task (" + "; ".join(reasons[:3]) + more
                        + "), so leave-one-plate-out accuracy would measure the plate effect, not the classes")
    groups = [scored[k::max_folds] for k in range(min(max_folds, len(scored)))]
    folds = []
    for group in groups:
        held_out = np.isin(plates, group)
        tr, te = np.flatnonzero(~held_out), np.flatnonzero(held_out)
        if len(np.unique(labels[tr])) < len(classes):  # a group of plates that holds a class alone
            missing = ", ".join(sorted(set(classes) - set(labels[tr])))
            excluded.update({plate: f"held out with {len(group) - 1} other plates, the rest have no {missing} sites"
                             for plate in group})
            continue
        folds.append((tr, te, ", ".join(group)))
    if not folds:
        raise TaskError("no group of held-out plates leaves every class to train on")
    return folds, excluded


def evaluate_task(X: np.ndarray, task: Task, n_splits: int = 10, test_size: float = 0.25,
                  C: float = 1.0, solver: str = "auto", seed: int = 0,
                  progress: Callable[[int, int], None] | None = None,
                  split: str = "well") -> TaskResult:
    """Held-out evaluation of a linear SVM on a task.

    ``split="well"``: ``n_splits`` repeated well-grouped ``1 - test_size`` /
    ``test_size`` splits; ``split="plate"``: held-out plates (:func:`plate_splits`: one fold per
    plate, or :data:`MAX_PLATE_FOLDS` groups of plates on a larger screen; ``n_splits`` and
    ``test_size`` are then unused; needs ``task.plates``).
    """
    if split not in SPLIT_NAMES:
        raise ValueError(f"split must be one of {', '.join(SPLIT_NAMES)}, got {split!r}")
    mask = task.mask
    if mask.sum() == 0:
        raise TaskError(f"task {task.name!r}: no site belongs to any class")
    y = task.labels[mask].astype(str)
    groups = task.groups[mask]
    Xt = np.asarray(X)[mask]
    classes = sorted(set(y))
    if len(classes) < 2:
        raise TaskError(f"task {task.name!r}: only one class present ({classes[0]!r}, "
                        f"{len(y)} sites); a classifier needs two")
    excluded: dict[str, str] = {}
    if split == "well":
        splits = list(grouped_splits(y, groups, n_splits, test_size, seed))
    else:
        if task.plates is None:
            raise TaskError(f"task {task.name!r}: leave-one-plate-out splits need plate "
                            "columns ('experiment'/'plate') in the metadata")
        try:
            folds, excluded = plate_splits(y, task.plates[mask])
        except TaskError as exc:
            raise TaskError(f"task {task.name!r}: {exc}") from None
        splits = [(tr, te) for tr, te, _ in folds]
    t0 = time.perf_counter()
    accs, baccs = [], []
    conf = np.zeros((len(classes), len(classes)), dtype=np.int64)
    used_solver = solver
    for k, (tr, te) in enumerate(splits):
        model = LinearModel(C=C, solver=solver, seed=seed + k).fit(Xt[tr], y[tr])
        used_solver = model.solver_
        pred = model.predict(Xt[te])
        accs.append(float(np.mean(pred == y[te])))
        cm = confusion_matrix(y[te], pred, labels=classes)
        conf += cm
        with np.errstate(invalid="ignore", divide="ignore"):
            recall = np.diag(cm) / cm.sum(axis=1)
        baccs.append(float(np.nanmean(recall)))
        if progress:
            progress(k + 1, len(splits))
    vals, counts = np.unique(y, return_counts=True)
    return TaskResult(
        name=task.name, classes=classes,
        accuracy_mean=float(np.mean(accs)), accuracy_sd=float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
        balanced_accuracy_mean=float(np.mean(baccs)),
        balanced_accuracy_sd=float(np.std(baccs, ddof=1)) if len(baccs) > 1 else 0.0,
        accuracies=accs, confusion=conf.tolist(),
        n_sites=dict(zip(vals.tolist(), counts.tolist())), n_wells=int(len(np.unique(groups))),
        n_splits=len(accs),
        test_size=test_size if split == "well" else float(np.mean([len(te) / len(y) for _, te in splits])),
        solver=used_solver, seconds=time.perf_counter() - t0, description=task.description,
        split=split, excluded=excluded)


# ------------------------------------------------------------------ zero-shot RxRx1

def zero_shot_cell_types(table: EmbeddingTable, column: str = "cell_type", **kw) -> TaskResult:
    """Multi-class linear SVM on RxRx1 cell types (HEPG2, HUVEC, RPE, U2OS)."""
    task = define_task(table.meta, column, None, None, name=f"zero-shot {column}")
    return evaluate_task(table.X, task, **kw)

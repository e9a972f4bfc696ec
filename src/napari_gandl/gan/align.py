"""Domain-adversarial alignment (DANN): features that keep biology and lose the batch.

A small head predicts each site's batch (plate or experiment) from features
passed through a gradient-reversal layer: the head learns to tell batches
apart while the features upstream receive the *negated* gradient, so they
are pushed to make batches indistinguishable.  The reversal weight ramps up
as in Ganin et al. (2016), ``w(p) = 2 / (1 + exp(-10 p)) - 1`` with ``p`` the
fraction of training done, so the features first learn something before
they are asked to forget the batch.

Used twice: on the discriminator's embedding during GAN-DL training
(:class:`TrainingAligner`, ``gandl train --align``), and post hoc on any
embedding table (:mod:`napari_gandl.analysis.align`, ``gandl align``).

Confounding.  When every batch holds one cell type (RxRx19a: one experiment
per cell type), removing what tells batches apart would remove the cell type.
:func:`plan_alignment` detects this from the site table: aligning experiments
is refused, and plates are aligned *within* each experiment -- the head only
has to tell a plate from the other plates of its own experiment (its other
logits are masked), so the experiment, and with it the cell type, is left
alone.  No biology label enters the loss; ``cell_type`` is read only to
detect the confounding.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from napari_gandl.columns import BATCHES
from napari_gandl.config import Config
from napari_gandl.gan.heads import AuxiliaryHead

ALIGN_MODES = ("none", *BATCHES)


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight):
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad.neg() * ctx.weight, None


def reverse_gradient(x: torch.Tensor, weight: float) -> torch.Tensor:
    """Identity forward; multiplies the gradient by ``-weight`` backward."""
    return _ReverseGradient.apply(x, float(weight))


def dann_weight(progress: float, max_weight: float = 1.0) -> float:
    """Reversal weight at training fraction ``progress`` (0 -> 0, 1 -> ~max_weight)."""
    p = min(max(float(progress), 0.0), 1.0)
    return max_weight * (2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0)


# ---------------------------------------------------------------- what to align


@dataclass
class AlignPlan(Config):
    """The batches the adversary tells apart and which of them it compares."""

    by: str                       # "plate" or "experiment"
    classes: list[str]            # batch names; a site's label indexes this list
    groups: list[str]             # per class, the experiment it is compared within ("" = all)
    note: str = ""                # what was detected (confounding), for the user
    labels: np.ndarray = field(default=None, repr=False)   # per site: class index

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("labels")
        return d

    def same_group(self) -> torch.Tensor:
        """``[n_classes, n_classes]`` bool: which batches the head may confuse with which."""
        g = np.asarray(self.groups, dtype=object)
        return torch.from_numpy(g[:, None] == g[None, :])


def _cell_type_per(meta: pd.DataFrame, groups: np.ndarray) -> bool:
    """True when every group holds a single cell type and there are several cell types."""
    if "cell_type" not in meta.columns:
        return False
    ct = meta["cell_type"].astype(str).to_numpy()
    per = pd.Series(ct).groupby(groups).nunique()
    return bool((per <= 1).all()) and len(set(ct)) > 1


def plan_alignment(meta: pd.DataFrame, by: str, source: str = "the site table") -> AlignPlan:
    """Batch labels for ``by`` ('plate' or 'experiment') from a site table, with confounding checks.

    Raises ``ValueError`` (naming ``source`` and the column) when the batch
    column is missing, has a single value, or is confounded with the cell type.
    """
    from napari_gandl.tables import as_str

    if by not in BATCHES:
        raise ValueError(f"--align/--batch must be {' or '.join(map(repr, BATCHES))}, got {by!r}")
    if by not in meta.columns:
        raise ValueError(f"{source}: alignment by {by} needs a {by!r} column, which is missing "
                         f"(columns: {', '.join(map(str, meta.columns))})")
    values = as_str(meta, by)
    if len(set(values)) < 2:
        raise ValueError(f"{source}: column {by!r} has a single value ({values[0]!r}); "
                         f"alignment needs at least two batches")
    has_exp = by == "plate" and "experiment" in meta.columns
    exps = as_str(meta, "experiment") if has_exp else np.full(len(meta), "", dtype=object)
    batches = (pd.Series(exps) + "_" + pd.Series(values)).to_numpy() if has_exp else values
    note = ""
    if by == "experiment" and _cell_type_per(meta, values):
        raise ValueError(
            f"{source}: every experiment holds a single cell type, so aligning experiments would "
            f"erase the cell type; use plate alignment, which aligns the plates within each "
            f"experiment")
    conditioned = has_exp and len(set(exps)) > 1 and _cell_type_per(meta, exps)
    if conditioned:
        note = ("every experiment holds a single cell type (the experiment is confounded with "
                "biology): plates are aligned within each experiment, experiments are left apart")
    elif by == "plate" and _cell_type_per(meta, batches):
        raise ValueError(f"{source}: every plate holds a single cell type and there is no "
                         f"'experiment' column to align plates within; plate alignment would "
                         f"erase the cell type")
    classes = sorted(set(batches))
    index = {c: i for i, c in enumerate(classes)}
    groups = []
    for c in classes:
        groups.append(str(exps[np.flatnonzero(batches == c)[0]]) if conditioned else "")
    if conditioned:
        sizes = pd.Series(groups).value_counts()
        if (sizes < 2).all():
            raise ValueError(f"{source}: every experiment holds a single plate; there are no "
                             f"plates to align within an experiment")
        lonely = sorted(sizes.index[sizes < 2])
        if lonely:
            note += f"; experiment(s) {', '.join(lonely)} hold one plate and are not aligned"
    labels = np.array([index[b] for b in batches], dtype=np.int64)
    return AlignPlan(by=by, classes=classes, groups=groups, note=note, labels=labels)


# ---------------------------------------------------------------- the adversary


class BatchHead(nn.Module):
    """Features -> batch logits (a one-hidden-layer perceptron, or linear with ``hidden=None``),
    bounded to ``±bound``.

    Bounded logits keep the head from ever being certain, so the reversed
    gradient does not vanish once the head separates the batches (with
    unbounded logits it did, and the features stopped changing).
    """

    def __init__(self, in_dim: int, n_batches: int, hidden: int | None = 128, bound: float = 2.0):
        super().__init__()
        self.bound = float(bound)
        self.net = (nn.Linear(in_dim, n_batches) if not hidden else
                    nn.Sequential(nn.Linear(in_dim, hidden), nn.LeakyReLU(0.2),
                                  nn.Linear(hidden, n_batches)))

    def forward(self, x):
        return self.bound * torch.tanh(self.net(x) / self.bound)

    def penalty(self) -> torch.Tensor:
        """Squared norm of the weights (an L2 term that keeps the head smooth)."""
        return sum(p.square().sum() for p in self.parameters())


HEAD_STEPS = 4        # extra head-only updates per feature update: the head stays near its best response
HEAD_DECAY = 1e-3     # weight of the head's L2 penalty


def train_head(head: BatchHead, opt, z: torch.Tensor, labels: torch.Tensor, same_group: torch.Tensor,
               steps: int = HEAD_STEPS, sync: Callable[[nn.Module], None] | None = None):
    """``steps`` updates of the head alone on detached features ``z`` (``sync``
    averages its gradients across processes under DDP)."""
    z = z.detach().float()
    for _ in range(steps):
        loss, _ = batch_loss(head(z), labels, same_group)
        opt.zero_grad()
        (loss + HEAD_DECAY * head.penalty()).backward()
        if sync is not None:
            sync(head)
        opt.step()


def batch_loss(logits: torch.Tensor, labels: torch.Tensor, same_group: torch.Tensor,
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy over the batches of each site's own group; (loss, accuracy)."""
    allowed = same_group.to(logits.device)[labels]
    logits = logits.float().masked_fill(~allowed, float("-inf"))
    loss = F.cross_entropy(logits, labels)
    acc = (logits.argmax(dim=1) == labels).float().mean()
    return loss, acc


class TrainingAligner(AuxiliaryHead):
    """The batch head on the discriminator's embedding during GAN-DL training.

    ``loss(D, reals, sites, progress)`` is added to D's loss: the head first
    takes a few steps of its own on the detached features, then learns the
    batch jointly while D's embedding (the layer ``gandl embed`` uses by
    default) gets the reversed gradient.  The head trains beside D
    (:class:`~napari_gandl.gan.heads.AuxiliaryHead`); ``sync`` averages its
    gradients across DDP processes in its own steps too.
    """

    def __init__(self, plate, by: str, max_weight: float, D, device,
                 sync: Callable[[nn.Module], None] | None = None):
        self.plan = plan_alignment(plate.sites, by, source=f"plate {plate.root}")
        super().__init__(BatchHead(D.cfg.feature_dim, len(self.plan.classes)), device, sync=sync)
        self.max_weight = float(max_weight)
        self.layer = D.embedding_layer
        self.site_labels = torch.from_numpy(self.plan.labels)
        self.same_group = self.plan.same_group()

    def loss(self, D, reals: torch.Tensor, sites: np.ndarray, progress: float) -> tuple[torch.Tensor, dict]:
        weight = dann_weight(progress, self.max_weight)
        feats = D.features(reals, self.layer).float()
        labels = self.site_labels[torch.as_tensor(sites)].to(reals.device)
        train_head(self.head, self.opt, feats, labels, self.same_group, sync=self.sync)
        loss, acc = batch_loss(self.head(reverse_gradient(feats, weight)), labels, self.same_group)
        loss = loss + HEAD_DECAY * self.head.penalty()
        return loss, {"align_loss": float(loss.detach()), "align_acc": float(acc),
                      "align_weight": weight}

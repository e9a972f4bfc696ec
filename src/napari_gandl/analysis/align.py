"""Post-hoc domain-adversarial alignment of an embedding table (``gandl align``).

For embeddings that are already computed -- any method's, including the
RxRx19a ``embeddings.csv`` -- a per-batch gain and offset of every feature,

``z = x * exp(s_b) + t_b``   (``x``: globally standardised features)

starts by giving every batch the mean and standard deviation (over all its
sites) of the sites it is aligned with: all sites, or its experiment's when
plates are aligned within experiments (below).  A batch head behind a
gradient-reversal layer (:mod:`napari_gandl.gan.align`) then refines the
gains and offsets so that it can no longer tell the batches apart.  Unlike
centre-scaling, no control wells are needed and every site counts, which
assumes every plate carries a similar mix of conditions.

Measured on the synthetic suite's GAN-DL embeddings (docs/analysis.md): with
a few hundred sites per experiment and 512 features a head separates the
plates by over-fitting, and the reversed gradient then shifts the plates
apart along the head's direction -- even a refinement of 0.03 standard
deviations made the plate linearly predictable again.  The refinement is
therefore held close to its start (``keep``: weight of the squared distance
from it, default 10; refinements of about 0.01 sd).  The reversal weight
ramps up as in DANN, the head takes a few extra steps per update and has
bounded logits, and the correction returned is the running (Polyak) average
over the second half of training.  The output has the input's columns, back
in the input's units.

Plates are aligned within each experiment when every experiment holds a
single cell type (see :func:`napari_gandl.gan.align.plan_alignment`).
"""

from __future__ import annotations

import copy
from typing import Callable

import numpy as np
import torch
from torch import nn

from napari_gandl.gan.align import (
    HEAD_DECAY, BatchHead, batch_loss, dann_weight, plan_alignment, reverse_gradient, train_head,
)
from napari_gandl.torch_utils.optim import Adam

from napari_gandl.tables import EmbeddingTable


class BatchAffine(nn.Module):
    """Per-batch log-gain and offset of every feature."""

    def __init__(self, n_batches: int, dim: int):
        super().__init__()
        self.log_gain = nn.Parameter(torch.zeros(n_batches, dim))
        self.offset = nn.Parameter(torch.zeros(n_batches, dim))

    @torch.no_grad()
    def standardise_batches(self, x: torch.Tensor, batch: torch.Tensor, groups: list[str]):
        """Start by giving each batch the mean and standard deviation (over all
        sites) of the group it is aligned within (``groups[b]``; "" = all sites),
        so an experiment confounded with the cell type keeps its own."""
        names = np.asarray(groups, dtype=object)
        for b in range(self.offset.shape[0]):
            in_group = torch.from_numpy(names == names[b])[batch]
            xb, xg = x[batch == b], x[in_group]
            gain = xg.std(dim=0).clamp_min(1e-3) / xb.std(dim=0).clamp_min(1e-3)
            self.log_gain[b] = gain.log()
            self.offset[b] = xg.mean(dim=0) - xb.mean(dim=0) * gain

    def forward(self, x: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        return x * torch.exp(self.log_gain[batch]) + self.offset[batch]


def align_embeddings(table: EmbeddingTable, by: str = "plate", steps: int = 1000,
                     batch_size: int = 256, weight: float = 1.0, keep: float = 10.0,
                     lr: float = 1e-3, seed: int = 0,
                     progress: Callable[[int, int], None] | None = None,
                     ) -> tuple[EmbeddingTable, dict]:
    """Align ``table``'s features against ``by`` ('plate' or 'experiment').

    Returns the aligned table (same metadata and feature names) and a summary
    dict (``plan``: the batches and any confounding note; ``head_accuracy``:
    the head's accuracy over the last 10 % of steps; ``mean_shift``: mean
    ``|z - x|`` in standard deviations; ``refinement``: mean distance of the
    result from the per-batch standardisation it started from).
    """
    for option, value in (("--steps", steps), ("batch_size", batch_size)):
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise ValueError(f"{option} must be an integer >= 1, got {value!r}")
    plan = plan_alignment(table.meta, by, source=table.source)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    X = np.asarray(table.X, np.float64)
    mu, sd = X.mean(axis=0), X.std(axis=0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    x_all = torch.from_numpy(((X - mu) / sd).astype(np.float32))
    labels_all = torch.from_numpy(plan.labels)
    n, d = x_all.shape
    correction = BatchAffine(len(plan.classes), d)
    correction.standardise_batches(x_all, labels_all, plan.groups)
    start = copy.deepcopy(correction).requires_grad_(False)
    average = copy.deepcopy(correction).requires_grad_(False)
    head = BatchHead(d, len(plan.classes))
    opt = Adam(correction.parameters(), lr=lr, betas=(0.9, 0.999))
    head_opt = Adam(head.parameters(), lr=lr, betas=(0.9, 0.999))
    same = plan.same_group()
    accs = []
    for step in range(steps):
        idx = torch.from_numpy(rng.integers(0, n, min(batch_size, n)))
        x, y = x_all[idx], labels_all[idx]
        z = correction(x, y)
        train_head(head, head_opt, z, y, same)
        adv, acc = batch_loss(head(reverse_gradient(z, dann_weight(step / steps, weight))), y, same)
        loss = adv + HEAD_DECAY * head.penalty() + keep * (z - start(x, y)).square().mean()
        opt.zero_grad()
        head_opt.zero_grad()
        loss.backward()
        opt.step()
        head_opt.step()
        if step >= steps // 2:   # Polyak average over the second half
            with torch.no_grad():
                frac = 1.0 / (step - steps // 2 + 1)
                for pa, p in zip(average.parameters(), correction.parameters()):
                    pa.lerp_(p, frac)
        if step >= steps * 0.9:
            accs.append(float(acc))
        if progress is not None and (step + 1) % max(1, steps // 100) == 0:
            progress(step + 1, steps)
    with torch.no_grad():
        z = average(x_all, labels_all)
    summary = {"by": by, "plan": plan.to_dict(), "steps": steps, "weight": weight, "keep": keep,
               "head_accuracy": float(np.mean(accs)) if accs else None,
               "mean_shift": float((z - x_all).abs().mean()),
               "refinement": float((z - start(x_all, labels_all)).abs().mean())}
    Z = z.numpy().astype(np.float64) * sd + mu
    return table.with_features(Z.astype(np.float32), table.features), summary

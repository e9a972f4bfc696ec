"""Post-hoc domain-adversarial alignment of an embedding table (``gandl align``).

For embeddings that are already computed -- any method's, including the
RxRx19a ``embeddings.csv`` -- a per-batch gain and offset of every feature
is learned so that a batch head behind a gradient-reversal layer
(:mod:`napari_gandl.gan.align`) can no longer tell the plates (or
experiments) apart:

``z = x * exp(s_b) + t_b``

on globally standardised features ``x``, with ``s_b, t_b`` the log-gain and
offset of batch ``b`` (starting at the identity).  Plate effects in images
are mostly gains and offsets per stain, which this form can undo; a freer
correction (a perceptron on ``x`` and the batch) chased the head round in
circles in our tests and left the plate linearly readable.  Unlike
centre-scaling it needs no control wells and matches whole distributions,
not only control means and deviations -- which assumes every plate carries
a similar mix of conditions.  A small penalty on ``|z - x|^2`` keeps the
correction minimal; no label other than the batch is used.  The reversal
weight ramps up as in DANN; the head takes a few extra steps per update so it
stays near its best response; the correction returned is the running
(Polyak) average over the second half of training.  The output has the
input's columns, back in the input's units.

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
from napari_gandl.gan.training import Adam

from .tables import EmbeddingTable


class BatchAffine(nn.Module):
    """Per-batch log-gain and offset of every feature; the identity at start."""

    def __init__(self, n_batches: int, dim: int):
        super().__init__()
        self.log_gain = nn.Parameter(torch.zeros(n_batches, dim))
        self.offset = nn.Parameter(torch.zeros(n_batches, dim))

    def forward(self, x: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        return x * torch.exp(self.log_gain[batch]) + self.offset[batch]


def align_embeddings(table: EmbeddingTable, by: str = "plate", steps: int = 1000,
                     batch_size: int = 256, weight: float = 1.0, keep: float = 0.01,
                     lr: float = 3e-3, seed: int = 0,
                     progress: Callable[[int, int], None] | None = None,
                     ) -> tuple[EmbeddingTable, dict]:
    """Align ``table``'s features against ``by`` ('plate' or 'experiment').

    Returns the aligned table (same metadata and feature names) and a summary
    dict (``plan``: the batches and any confounding note; ``head_accuracy``:
    the head's accuracy over the last 10 % of steps; ``mean_shift``: mean
    ``|z - x|`` in standard deviations).
    """
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
        loss = adv + HEAD_DECAY * head.penalty() + keep * (z - x).square().mean()
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
               "mean_shift": float((z - x_all).abs().mean())}
    Z = z.numpy().astype(np.float64) * sd + mu
    return table.with_features(Z.astype(np.float32), table.features), summary

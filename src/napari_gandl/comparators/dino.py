"""DINO: self-distillation without labels on the plate's tiles (Caron et al., ICCV 2021).

A student and a teacher network of the same shape each end in a projection
head whose last layer scores a feature against ``out_dim`` learned prototypes
(cosine, i.e. DINO's weight-normalised layer with unit norm).  Every batch of
tiles is cut into two *global* crops (40-100 % of the tile, at the training
resolution) and a few *local* crops (10-40 %, at half of it), each augmented
on its own in ways that keep fluorescence meaningful: flips, 90 degree
rotations, per-stain gain and offset, blur; stains are never mixed.  The
teacher sees only the global crops; its outputs, centred by a running mean
(against collapse onto one prototype) and sharpened by a low temperature,
are the targets the student's outputs for every *other* crop must match
(cross-entropy).  Only the student is trained; the teacher follows it as an
exponential moving average whose momentum rises from 0.996 to 1 over the run
(cosine schedule).

The backbone is a small ViT (its CLS token), or the residual CNN the other
comparators use (globally pooled): at 2 minutes on two suite screens the ViT
was well ahead on C+/C- accuracy and compound ranking, level on dose ranking,
behind on copairs mAP (docs/benchmarks.md, bench_dino_backbone.py).  The
embedding of a tile is the teacher backbone's output, averaged over a site's
tiles as GAN-DL's are.
``losses.csv`` also logs the teacher's mean per-tile entropy and the entropy
of its batch-mean output: collapse shows as both near 0 (one prototype wins)
or both near ``log(out_dim)`` (uniform outputs).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from napari_gandl.comparators.tiles import ResEncoder, TileTrainConfig
from napari_gandl.comparators.vit import ViT, init_weights
from napari_gandl.preprocessing.augment import random_resized_crops

DEFAULTS = dict(
    resolution=64, batch=32, lr=5e-4,
    network=dict(backbone="vit", widths=[16, 32, 64, 128, 256], patch=8, dim=192, depth=4, heads=3,
                 out_dim=1024, hidden=256, bottleneck=64, local_crops=4, global_scale=[0.4, 1.0],
                 local_scale=[0.1, 0.4], student_temp=0.1, teacher_temp=0.04, center_momentum=0.9,
                 momentum=0.996),
    # its own: crops replace the shifts, blur is added (GAN-DL's ADA adapts its p from 0)
    augment=dict(p=0.5, translate=0.0, blur=1.0))
BACKBONES = ("cnn", "vit")


class _Pooled(nn.Module):
    """The residual CNN, globally average-pooled: ``(n, C, r, r)`` -> ``(n, widths[-1])``."""

    def __init__(self, in_ch: int, widths):
        super().__init__()
        self.encoder = ResEncoder(in_ch, widths)
        self.out_dim = widths[-1]

    def forward(self, x):
        return self.encoder(x).mean(dim=(2, 3))


class Head(nn.Module):
    """DINO's projection head: a 3-layer MLP to a bottleneck, L2-normalised, then cosine scores
    against ``out_dim`` prototypes."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int, bottleneck: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, bottleneck))
        self.prototypes = nn.Parameter(torch.empty(out_dim, bottleneck))
        init_weights(self)
        nn.init.trunc_normal_(self.prototypes, std=0.02)

    def forward(self, x):
        return F.normalize(self.mlp(x), dim=-1) @ F.normalize(self.prototypes, dim=-1).T


class DINO(nn.Module):
    LOG_FIELDS = ["teacher_entropy", "batch_entropy", "momentum"]

    def __init__(self, in_ch: int, resolution: int, backbone: str = "vit", widths=(16, 32, 64, 128, 256),
                 patch: int = 8, dim: int = 192, depth: int = 4, heads: int = 3, out_dim: int = 1024,
                 hidden: int = 256, bottleneck: int = 64, local_crops: int = 4, global_scale=(0.4, 1.0),
                 local_scale=(0.1, 0.4), student_temp: float = 0.1, teacher_temp: float = 0.04,
                 center_momentum: float = 0.9, momentum: float = 0.996):
        super().__init__()
        if backbone == "cnn":
            net = _Pooled(in_ch, widths)
        elif backbone == "vit":
            net = ViT(in_ch, resolution, patch, dim, depth, heads)
        else:
            raise ValueError(f"DINO backbone must be one of {', '.join(BACKBONES)}, got {backbone!r}")
        self.student = nn.ModuleDict({"backbone": net, "head": Head(net.out_dim, out_dim, hidden, bottleneck)})
        self.teacher = copy.deepcopy(self.student).requires_grad_(False)
        self.register_buffer("center", torch.zeros(1, out_dim))
        self.dim = net.out_dim
        self.resolution, self.local_size = int(resolution), int(resolution) // 2
        self.local_crops = int(local_crops)
        self.global_scale, self.local_scale = tuple(global_scale), tuple(local_scale)
        self.student_temp, self.teacher_temp = float(student_temp), float(teacher_temp)
        self.center_momentum, self.base_momentum = float(center_momentum), float(momentum)
        self.log = {"momentum": self.base_momentum}

    def embed(self, x):
        return self.teacher["backbone"](x)

    def views(self, x, aug):
        """Two global crops, then the local ones, each augmented on its own."""
        crops = [random_resized_crops(x, self.resolution, self.global_scale) for _ in range(2)]
        crops += [random_resized_crops(x, self.local_size, self.local_scale) for _ in range(self.local_crops)]
        return [aug(c) for c in crops]

    def scores(self, views):
        """The student's prototype scores of crops of one size (one batch through the backbone)."""
        return self.student["head"](self.student["backbone"](torch.cat(views)))

    def loss(self, x, aug):
        views = self.views(x, aug)
        n = len(x)
        with torch.no_grad():
            t = self.teacher["head"](self.teacher["backbone"](torch.cat(views[:2])))
            targets = F.softmax((t - self.center) / self.teacher_temp, dim=-1)
        s = [self.scores(views[:2])] + ([self.scores(views[2:])] if self.local_crops else [])
        log_p = torch.cat(s).div(self.student_temp).log_softmax(dim=-1).split(n)
        terms = [-(targets[i * n:(i + 1) * n] * log_p[v]).sum(-1).mean()
                 for i in range(2) for v in range(len(log_p)) if v != i]
        with torch.no_grad():
            self.center.mul_(self.center_momentum).add_(t.mean(0, keepdim=True), alpha=1 - self.center_momentum)
            mean = targets.mean(0)
            self.log["teacher_entropy"] = float(-(targets * targets.clamp_min(1e-12).log()).sum(-1).mean())
            self.log["batch_entropy"] = float(-(mean * mean.clamp_min(1e-12).log()).sum())
        return sum(terms) / len(terms)

    @torch.no_grad()
    def after_step(self, fraction: float):
        """The teacher moves towards the student; the momentum follows a cosine from its base to 1."""
        m = 1 - (1 - self.base_momentum) * (math.cos(math.pi * min(fraction, 1.0)) + 1) / 2
        for t, s in zip(self.teacher.parameters(), self.student.parameters()):
            t.mul_(m).add_(s.detach(), alpha=1 - m)
        self.log["momentum"] = m


def build(n_stains: int, cfg: TileTrainConfig) -> DINO:
    return DINO(n_stains, cfg.resolution, **cfg.network)

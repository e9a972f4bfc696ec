"""The ``densenet-collapsed`` and ``densenet-concat`` methods: ImageNet DenseNet-121
(:mod:`napari_gandl.comparators.densenet`) features of whole sites, the paper's comparators.

* ``densenet-collapsed``: every stain is scaled to [0, 1] with the plate's
  per-stain percentiles, the stains are averaged into one grey image and the
  grey image is repeated into the three RGB channels: 1024 features per site.
* ``densenet-concat``: each stain goes through the network alone as a grey
  image (repeated to RGB) and the per-stain 1024 features are concatenated:
  ``1024 x n_stains`` features per site.

Sites larger than 512 px (the paper's input size) are box-downsampled by the
smallest integer factor that brings them to <= 512.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import torch

from napari_gandl.comparators.densenet import WEIGHTS_URL, DenseNet121, load_densenet121
from napari_gandl.embedding.base import Embedder, check_stains
from napari_gandl.embedding.registry import MethodSpec, register
from napari_gandl.preprocessing.normaliser import fit_normalizer
from napari_gandl.preprocessing.sampling import DataConfig, downsample
from napari_gandl.torch_utils.checkpoint import CheckpointError
from napari_gandl.torch_utils.device import resolve_device

MAX_SIDE = 512
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MODES = ("collapsed", "concat")


class DenseNetEmbedder(Embedder):
    """Whole-site DenseNet-121 features in ``collapsed`` or ``concat`` mode."""

    def __init__(self, net: DenseNet121, mode: str, normalizer, stains, device="cpu",
                 batch_size: int = 8):
        if mode not in MODES:
            raise ValueError(f"DenseNet mode must be one of {MODES}, got {mode!r}")
        self.net, self.mode, self.normalizer = net, mode, normalizer
        self.name = f"densenet-{mode}"
        self.stains = list(stains)
        self.dim = net.feature_dim * (len(self.stains) if mode == "concat" else 1)
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self._mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)

    def _grey(self, images: np.ndarray) -> torch.Tensor:
        """Raw ``(b, C, H, W)`` -> ``(b, C, h, w)`` stains in [0, 1], at most MAX_SIDE px."""
        scale = max(1, math.ceil(max(images.shape[-2:]) / MAX_SIDE))
        x = np.stack([downsample(np.asarray(img), scale) for img in images])
        x = np.clip((self.normalizer(x) + 1.0) / 2.0, 0.0, 1.0)
        return torch.from_numpy(x).to(self.device)

    @torch.no_grad()
    def embed_sites(self, images: np.ndarray) -> np.ndarray:
        images = check_stains(self, images)
        out = []
        for s in range(0, len(images), self.batch_size):
            v = self._grey(images[s:s + self.batch_size])
            b, c, h, w = v.shape
            grey = v.mean(1, keepdim=True) if self.mode == "collapsed" else v.reshape(b * c, 1, h, w)
            feats = self.net.pooled((grey.expand(-1, 3, h, w) - self._mean) / self._std)
            out.append(feats.reshape(b, -1).float().cpu().numpy())
        if not out:
            return np.zeros((0, self.dim), np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)


def _load(mode: str, source, plate, device="cpu") -> DenseNetEmbedder:
    if source is None:
        raise CheckpointError(
            f"densenet-{mode} needs the ImageNet DenseNet-121 weights file, and nothing is "
            f"downloaded at run time: on a machine with internet run `curl -LO {WEIGHTS_URL}` "
            f"(torchvision's densenet121 ImageNet weights) and pass --weights densenet121-a639ec97.pth")
    device = resolve_device(device)
    net = load_densenet121(source, device)
    return DenseNetEmbedder(net, mode, fit_normalizer(plate, DataConfig()), plate.channel_names, device)


for _mode, _what in (("collapsed", "stains averaged to one grey image, 1024 features"),
                     ("concat", "each stain through the network, 1024 features per stain")):
    register(MethodSpec(
        f"densenet-{_mode}", load=partial(_load, _mode), needs_weights=True,
        help=f"ImageNet DenseNet-121 ({_what}); weights file: {WEIGHTS_URL} (never downloaded "
             f"at run time: fetch it once and pass it)"))

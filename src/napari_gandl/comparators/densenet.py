"""ImageNet DenseNet-121 features: the paper's "collapsed" and "concatenated" comparators.

An RGB network meets N-stain fluorescence in one of two ways (Mascolini et
al. 2022, Table 1):

* ``densenet-collapsed``: every stain is scaled to [0, 1] with the plate's
  per-stain percentiles, the stains are averaged into one grey image and the
  grey image is repeated into the three RGB channels: 1024 features per site.
* ``densenet-concat``: each stain goes through the network alone as a grey
  image (repeated to RGB) and the per-stain 1024 features are concatenated:
  ``1024 x n_stains`` features per site.

Both use ImageNet mean/std normalisation and the global average of the last
dense block (after its batch norm and ReLU), as torchvision's classifier
sees it.  The paper's collapsed variant learns a 1x1 input convolution on the
downstream labels; we keep every method annotation-free, so the collapse is
the fixed average.  Sites larger than 512 px (the paper's input size) are
box-downsampled by the smallest integer factor that brings them to <= 512.

Nothing is downloaded: the weights come from a local file (``--weights``),
torchvision's ImageNet file ``densenet121-a639ec97.pth``.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from napari_gandl.torch_utils.checkpoint import CheckpointError, read_tensors

__all__ = ["DenseNet121", "load_densenet121", "WEIGHTS_URL"]

WEIGHTS_URL = "https://download.pytorch.org/models/densenet121-a639ec97.pth"


# DenseNet-121 (Huang et al. 2017) written out in plain torch because
# torchvision cannot be imported here: its PyPI wheel is built against CUDA
# torch and fails on the CPU torch we ship ("operator torchvision::nms does not
# exist").  Module names follow torchvision's densenet121 exactly
# (features.conv0 ... features.denseblockK.denselayerL.norm1 ...
# features.transitionK ... features.norm5, classifier), so its state_dict -- and
# the ImageNet weights file -- load unchanged.


class _DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int, bn_size: int):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(cin)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(cin, bn_size * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = self.conv1(self.relu1(self.norm1(torch.cat(features, 1))))
        return self.conv2(self.relu2(self.norm2(x)))


class _DenseBlock(nn.ModuleDict):
    def __init__(self, n_layers: int, cin: int, growth: int, bn_size: int):
        super().__init__()
        for i in range(n_layers):
            self.add_module(f"denselayer{i + 1}", _DenseLayer(cin + i * growth, growth, bn_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class _Transition(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(cin)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)
        self.pool = nn.AvgPool2d(2, 2)


class DenseNet121(nn.Module):
    """DenseNet-121 with torchvision's layout; :meth:`pooled` gives the 1024-d features."""

    def __init__(self, growth: int = 32, blocks=(6, 12, 24, 16), init_features: int = 64,
                 bn_size: int = 4, num_classes: int = 1000):
        super().__init__()
        self.features = nn.Sequential(OrderedDict([
            ("conv0", nn.Conv2d(3, init_features, 7, stride=2, padding=3, bias=False)),
            ("norm0", nn.BatchNorm2d(init_features)),
            ("relu0", nn.ReLU(inplace=True)),
            ("pool0", nn.MaxPool2d(3, stride=2, padding=1)),
        ]))
        ch = init_features
        for i, n in enumerate(blocks):
            self.features.add_module(f"denseblock{i + 1}", _DenseBlock(n, ch, growth, bn_size))
            ch += n * growth
            if i < len(blocks) - 1:
                self.features.add_module(f"transition{i + 1}", _Transition(ch, ch // 2))
                ch //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(ch))
        self.classifier = nn.Linear(ch, num_classes)  # unused; kept for the key layout
        self.feature_dim = ch
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.constant_(m.bias, 0)

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, 3, H, W)`` ImageNet-normalised images -> ``(n, 1024)`` pooled features."""
        return F.relu(self.features(x)).mean(dim=(2, 3))


# torchvision's ImageNet file predates PyTorch 0.4 module naming: its keys read
# "denselayer1.norm.1.weight" where the module is now "denselayer1.norm1";
# torchvision renames them with this pattern when loading, and so do we.
_OLD_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def load_densenet121(path, device="cpu") -> DenseNet121:
    """A DenseNet-121 (eval mode) with the weights of a local torchvision-layout file.

    The classifier head in the file is ignored (any number of classes).
    Errors name the file: missing, unreadable/corrupt, or not DenseNet-121.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"DenseNet-121 weights file {path} does not exist; "
                              f"get it with: curl -LO {WEIGHTS_URL}")
    state = read_tensors(path, "DenseNet-121 weights file")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} is not a DenseNet-121 state_dict (expected a dict of tensors "
                              f"with torchvision's densenet121 keys)")
    state = {_OLD_KEY.sub(r"\1\2", k): v for k, v in state.items() if not k.startswith("classifier.")}
    net = DenseNet121()
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatch
        first = str(exc).strip().splitlines()[-1].strip()
        raise CheckpointError(f"{path} does not hold DenseNet-121 weights: {first}") from None
    missing = [k for k in missing if not k.startswith("classifier.")]
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not hold DenseNet-121 weights in torchvision's layout: "
            f"{len(missing)} missing keys (e.g. {', '.join(missing[:3]) or '-'}), "
            f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3]) or '-'})")
    return net.to(device).eval().requires_grad_(False)

"""A trained GAN-DL run, loaded for embedding, generation and projection.

The file format (state_dicts + JSON, ``torch.load(weights_only=True)``) is
:mod:`napari_gandl.torch_utils.checkpoint`; this module names the GAN's own.
"""

from __future__ import annotations

import torch

from napari_gandl.gan.networks import Discriminator, Generator, NetworkConfig
from napari_gandl.preprocessing.normaliser import Normalizer
from napari_gandl.preprocessing.sampling import DataConfig
from napari_gandl.torch_utils import checkpoint as files
from napari_gandl.torch_utils.checkpoint import Checkpoint, CheckpointError

FORMAT = "napari-gandl-gan/1"
WHAT = "GAN checkpoint"


def load_checkpoint(path, map_location="cpu") -> Checkpoint:
    """A GAN-DL run folder (or its checkpoint.pt), safely: a one-line
    :class:`CheckpointError` names the file when it is missing, corrupt, unsafe or not a GAN run."""
    return files.load_checkpoint(path, FORMAT, WHAT, map_location)


class GANModel:
    """Networks and settings of a trained run, ready for inference.

    Attributes: ``G`` (the EMA generator), ``D`` (discriminator, eval mode),
    ``config`` (training config dict), ``normalizer``, ``resolution``,
    ``scale`` (downsampling factor used for training), ``channel_names``,
    ``cur_nimg``, ``path``.
    """

    def __init__(self, ckpt: "Checkpoint", device="cpu"):
        cfg = ckpt["config"]
        self.config = cfg
        self.path = ckpt.path
        self.device = torch.device(device)
        net = NetworkConfig.from_dict(cfg["network"])
        self.net_config = net
        try:
            self.G = Generator(net).to(self.device)
            self.G.load_state_dict(ckpt["G_ema"])
            self.D = Discriminator(net).to(self.device)
            self.D.load_state_dict(ckpt["D"])
        except (RuntimeError, KeyError) as exc:
            raise CheckpointError(f"{ckpt.path} does not match its own network config: {exc}") from None
        self.G.eval().requires_grad_(False)
        self.D.eval().requires_grad_(False)
        self.normalizer = Normalizer.from_dict(cfg["normalizer"])
        self.resolution = int(net.resolution)
        self.scale = int(DataConfig.from_dict(cfg.get("data", {})).scale)
        self.channel_names = list(cfg.get("channel_names", []))
        self.img_channels = net.img_channels
        self.cur_nimg = int(ckpt.get("cur_nimg", 0))


def load_model(path, device="cpu") -> GANModel:
    """Load a run directory / checkpoint file for embedding, generation, projection."""
    return GANModel(load_checkpoint(path, map_location="cpu"), device=device)

"""GAN-DL: StyleGAN2 on raw N-stain tiles (networks, losses, config, trainer, loop, checkpoints, latent space).

Qt-free: imports neither napari nor Qt.

Public API::

    from napari_gandl.gan import train, iterate_training, load_checkpoint
    from napari_gandl.gan import load_model, generate, project, interpolate, interpolate_noise

Embedding with a trained run is the ``gandl`` method of
:mod:`napari_gandl.embedding`.  Command line: ``gandl train``
(:mod:`napari_gandl.cli.train`).
"""

from napari_gandl.gan.checkpoint import GANModel, load_checkpoint, load_model
from napari_gandl.gan.latent import Projection, generate, interpolate, interpolate_noise, project, to_raw
from napari_gandl.gan.networks import Discriminator, Generator, NetworkConfig
from napari_gandl.gan.config import PRESETS, make_config
from napari_gandl.gan.loop import iterate_training, train

__all__ = [
    "Discriminator",
    "GANModel",
    "Generator",
    "NetworkConfig",
    "PRESETS",
    "Projection",
    "generate",
    "interpolate",
    "interpolate_noise",
    "iterate_training",
    "load_checkpoint",
    "load_model",
    "make_config",
    "project",
    "to_raw",
    "train",
]

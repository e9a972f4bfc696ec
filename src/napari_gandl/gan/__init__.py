"""GAN-DL backend: StyleGAN2 on raw N-stain tiles (networks, losses, training, checkpoints, latent space).

Qt-free: imports neither napari nor Qt.

Public API::

    from napari_gandl.gan import train, iterate_training, load_checkpoint
    from napari_gandl.gan import load_model, generate, project, interpolate, interpolate_noise

Embedding with a trained run is the ``gandl`` method of
:mod:`napari_gandl.embedding`.  Command line: ``gandl train`` (see
``napari_gandl.gan.cli``).
"""

from .checkpoint import CheckpointError, GANModel, load_checkpoint, load_model
from .latent import Projection, generate, interpolate, interpolate_noise, project, to_raw
from .networks import Discriminator, Generator, NetworkConfig
from .training import PRESETS, TrainingDiverged, iterate_training, make_config, train

__all__ = [
    "CheckpointError",
    "Discriminator",
    "GANModel",
    "Generator",
    "NetworkConfig",
    "PRESETS",
    "Projection",
    "TrainingDiverged",
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

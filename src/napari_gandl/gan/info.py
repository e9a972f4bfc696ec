"""Code recovery: a self-supervised term that asks GAN-DL's discriminator to read what the generator varies.

The adversarial loss asks D only for what tells the current generator's
images from real ones.  With ``--info W`` (InfoGAN, Chen et al. 2016) the
first ``--codes N`` (default :data:`CODES`) of G's latent inputs are *codes*: a small head on D's
embedding (the layer ``gandl embed`` reads) regresses them from every fake
D sees, and G is trained to make them readable.  The loss is the mean
squared error, InfoGAN's Gaussian log-likelihood with a fixed variance,
times ``W``; D and the head learn it in D's step, G in its own.  The codes
are drawn like the rest of the latent (standard normal), so sampling,
metrics and the latent dock are unchanged; they enter G's styles past the
mapping, loud (:attr:`~napari_gandl.gan.networks.NetworkConfig.codes`), and
a style-mixed image keeps its codes in both of its latents, so a code steers
every layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from napari_gandl.gan.heads import AuxiliaryHead, mlp

CODES = 8  # as many as InfoGAN's continuous codes for faces, a few


class CodeRecovery(AuxiliaryHead):
    """``loss(embedding, z)``: how badly the head reads the codes of ``z`` (the first ``codes`` of
    its inputs, :attr:`~napari_gandl.gan.networks.NetworkConfig.codes`) from D's embedding of its image."""

    def __init__(self, D, codes: int, device, sync=None):
        super().__init__(mlp(D.cfg.feature_dim, codes), device, sync=sync)
        self.codes = codes

    def loss(self, embedding: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(self.head(embedding.float()), z[:, : self.codes].float())

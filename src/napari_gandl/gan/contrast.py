"""Site contrast: a self-supervised term on GAN-DL's discriminator that keeps its embedding about the site.

A GAN's discriminator only needs the features that tell the current
generator's images from real ones; as training goes on it can drop what
told sites apart (Chen et al. 2019, "Self-supervised GANs via auxiliary
rotation loss", measured this forgetting; ContraD, Jeong & Shin 2021, kept
the discriminator's representation with a contrastive loss).  With
``--contrastive W`` every discriminator step also sees a second crop of
each real crop's site: the embedding the embedder reads (``stats``, else
``pool``) of the two crops, after a small projection head, is pulled
together and pushed away from the batch's other sites' crops by the NT-Xent
loss (weight ``W``).  Positives are two places of one site, so the
embedding learns what a site's crops share -- the cells' state -- rather
than where the cells lie.  Each crop gets its own random flips, 90 degree
turns and shifts, and no intensity change, as a stain's brightness is part
of the phenotype.

With ``--contrast-pairs well`` the partner is a crop of *another site of
the same well* instead (the same site only where the well has no other),
and a crop's negatives are only the batch's crops from other wells of the
same plate: what a well's sites share is its treatment's effect on the
cells, and within one plate the plate's own look cannot tell wells apart,
so the loss cannot be lowered by reading the plate.

The projection head trains beside D (:class:`~napari_gandl.gan.heads.AuxiliaryHead`);
it is not part of the embedding.
"""

from __future__ import annotations

import numpy as np
import torch

from napari_gandl.gan.heads import AuxiliaryHead, mlp
from napari_gandl.preprocessing.augment import AugmentConfig, augment
from napari_gandl.torch_utils.contrastive import nt_xent

TEMPERATURE = 0.2  # SimCLR's for small batches (and our SimCLR comparator's)
PROJECTION_DIM = 128
VIEWS = AugmentConfig(p=0.5, gain=0.0, offset=0.0, blur=0.0)  # geometric only
PAIRS = ("site", "well")  # what a crop's positive is cut from: its own site, or another site of its well


def same_well_or_other_plate(plates: np.ndarray, wells: np.ndarray) -> torch.Tensor:
    """``n x n`` bool over a batch's crops (their plate and well codes): the pairs that are no negatives
    of each other under the well contrast."""
    return torch.from_numpy((plates[:, None] != plates[None, :]) | (wells[:, None] == wells[None, :]))


class SiteContrast(AuxiliaryHead):
    """``loss(D, reals, partners, exclude)``: NT-Xent of D's embedding of each crop and its partner
    (``exclude``: the pairs of crops that are no negatives, see :func:`nt_xent`)."""

    def __init__(self, D, device, sync=None):
        super().__init__(mlp(D.cfg.feature_dim, PROJECTION_DIM), device, sync=sync)
        self.layer = D.embedding_layer

    def loss(self, D, reals: torch.Tensor, partners: torch.Tensor,
             exclude: torch.Tensor | None = None) -> torch.Tensor:
        views = augment(torch.cat([reals, partners.to(reals.device)]), VIEWS)
        return nt_xent(self.head(D.features(views, self.layer).float()), TEMPERATURE, exclude)

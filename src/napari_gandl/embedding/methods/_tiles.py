"""Embedders over trained tile networks (ConvAE, SimCLR, DINO, MAE): a site's embedding is its
tiles' features averaged, tiles at the training resolution covering the site, as GAN-DL's."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from napari_gandl.comparators.tiles import TileTrainConfig, load_tile_checkpoint
from napari_gandl.embedding.base import Embedder, check_stains
from napari_gandl.preprocessing.normaliser import Normalizer
from napari_gandl.preprocessing.sampling import DataConfig, downsample, site_tiles
from napari_gandl.torch_utils.checkpoint import CheckpointError
from napari_gandl.torch_utils.device import resolve_device


class TileEmbedder(Embedder):
    """A trained tile network as an :class:`Embedder` (tile features averaged per site)."""

    def __init__(self, name: str, net: nn.Module, cfg: TileTrainConfig, device, tile_batch: int = 64):
        self.name, self.net, self.cfg = name, net.eval().requires_grad_(False), cfg
        self.dim = int(net.dim)
        self.stains = list(cfg.channel_names)
        self.normalizer = Normalizer.from_dict(cfg.normalizer)
        self.scale = DataConfig.from_dict(cfg.data).scale
        self.device = torch.device(device)
        self.tile_batch = int(tile_batch)

    @torch.no_grad()
    def embed_sites(self, images) -> np.ndarray:
        images = check_stains(self, images)
        out = np.zeros((len(images), self.dim), np.float32)
        for i, img in enumerate(images):
            tiles = torch.from_numpy(site_tiles(self.normalizer(downsample(img, self.scale)),
                                                self.cfg.resolution))
            feats = [self.features(tiles[s:s + self.tile_batch].to(self.device)).double().cpu()
                     for s in range(0, len(tiles), self.tile_batch)]
            out[i] = torch.cat(feats).mean(0).numpy()
        return out

    def features(self, tiles: torch.Tensor) -> torch.Tensor:
        """``(t, len(stains), r, r)`` normalised tiles -> ``(t, dim)``."""
        return self.net.embed(tiles)


def load_tile_run(name: str, build: Callable[[int, TileTrainConfig], nn.Module], source, device="auto",
                  embedder: type[TileEmbedder] = TileEmbedder) -> TileEmbedder:
    """Load a run folder (or its checkpoint.pt) written by :func:`iterate_tile_training` as an
    ``embedder``."""
    if source is None:
        raise CheckpointError(
            f"{name} embeds with a model trained on a plate: pass its run folder (written by "
            f"`gandl train --method {name}` or `gandl compare`)")
    ckpt = load_tile_checkpoint(name, source)
    cfg = TileTrainConfig.from_dict(ckpt["config"])
    device = resolve_device(device)
    net = build(len(cfg.channel_names), cfg)
    try:
        net.load_state_dict(ckpt["net"])
    except (RuntimeError, KeyError) as exc:
        raise CheckpointError(f"{ckpt.path} does not match its own network config: {exc}") from None
    return embedder(name, net.to(device), cfg, device)

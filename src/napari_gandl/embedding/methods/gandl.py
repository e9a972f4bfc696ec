"""GAN-DL: discriminator features of a trained StyleGAN2 run (``--method gandl``).

A site's feature vector is computed over the whole tile: the tile is
normalised and downsampled exactly as for training, cut into
training-resolution squares covering it, each square goes through the
discriminator (eval mode: the minibatch-stddev statistic is the running
average, so an image never depends on its batch mates) and the square
features are averaged.

With ``sampling="crops"`` (the default for a run trained on cell crops) the
site's cells are found in its nuclear stain, each cell-centred crop goes
through D, and the site's vector is its cells' mean
(:func:`napari_gandl.preprocessing.crops.aggregate_cells`).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from napari_gandl.embedding.base import Embedder
from napari_gandl.embedding.registry import MethodSpec, register
from napari_gandl.preprocessing.sampling import SAMPLINGS, downsample, site_tiles

LAYERS = ("stats", "pool", "fc")
ORIENTATIONS = (1, 8)  # each square as it is, or also turned by 90, 180 and 270 degrees and mirrored


def resolve_layer(model, layer: str | None = None) -> str:
    """Which D activations form the embedding: "stats" when D is wide enough for it, else "pool"."""
    if layer is None:
        return model.D.embedding_layer
    if layer not in LAYERS:
        raise ValueError(f"layer must be 'stats', 'pool' or 'fc', got {layer!r}")
    return layer


def _oriented(x, i: int):
    """The ``i``-th of the eight orientations of a ``(N, C, H, W)`` batch: turned ``i % 4`` times
    by 90 degrees, then mirrored when ``i >= 4``."""
    import torch

    turned = torch.rot90(x, i % 4, dims=(-2, -1))
    return turned.flip(-1) if i >= 4 else turned


def _piece_features(model, pieces: list[np.ndarray], layer: str, tile_batch: int, orientations: int = 1):
    """D's features (float32 tensor, one row per piece) of every site's pieces (tiles or cell
    crops), in batches of ``tile_batch``, and the index of the site each row belongs to.  With
    ``orientations`` 8 a piece's row is the mean of its eight orientations' features."""
    import torch

    owner = np.repeat(np.arange(len(pieces)), [len(p) for p in pieces])
    if len(owner) == 0:
        return torch.zeros((0, model.net_config.feature_dim)), owner
    x = torch.from_numpy(np.concatenate(pieces))
    feats = []
    with torch.no_grad():
        for s in range(0, len(x), tile_batch):
            batch = x[s:s + tile_batch].to(model.device)
            f = sum(model.D.features(_oriented(batch, i), layer).double() for i in range(orientations))
            feats.append((f / orientations).float().cpu())
    return torch.cat(feats), owner


def site_features(model, images, tile_batch: int = 64, layer: str | None = None,
                  orientations: int = 1) -> np.ndarray:
    """Features ``(len(images), feature_dim)`` float32 of raw ``(C, H, W)`` sites: the mean over
    the training-resolution squares covering each (and over their orientations)."""
    import torch

    tiles = [site_tiles(model.normalizer(downsample(img, model.scale)), model.resolution) for img in images]
    f, owner = _piece_features(model, tiles, resolve_layer(model, layer), tile_batch, orientations)
    if not len(images):
        return np.zeros((0, model.net_config.feature_dim), np.float32)
    owner_t = torch.from_numpy(owner)
    out = torch.zeros(len(images), f.shape[1], dtype=torch.float64)
    out.index_add_(0, owner_t, f.double())
    counts = torch.bincount(owner_t, minlength=len(images)).clamp(min=1).double()
    return (out / counts[:, None]).float().numpy()


MAX_CELLS = 64  # cells per site in a crops embedding (evenly spread over those found)


def cell_features(model, images, layer: str, nuclear: int, tile_batch: int = 64,
                  orientations: int = 1) -> list[np.ndarray]:
    """Per site, the D features ``(n_cells, feature_dim)`` of its cell-centred crops."""
    from napari_gandl.preprocessing.crops import site_crops

    crops = [site_crops(model.normalizer(downsample(img, model.scale)), model.resolution, nuclear,
                        max_cells=MAX_CELLS) for img in images]
    f, owner = _piece_features(model, crops, layer, tile_batch, orientations)
    f = f.numpy()
    return [f[owner == i] for i in range(len(images))]


class GANDLEmbedder(Embedder):
    """A trained run's discriminator as an embedder."""

    name = "gandl"

    def __init__(self, model, layer: str | None = None, sampling: str | None = None, orientations: int = 1):
        self.model = model
        self.layer = resolve_layer(model, layer)
        if orientations not in ORIENTATIONS:
            raise ValueError(f"orientations must be 1 or 8, got {orientations!r}")
        self.orientations = orientations
        if self.layer == "stats" and not model.D.stats_available:
            raise ValueError(f"{model.path}: the 'stats' embedding needs {model.net_config.feature_dim // 2} "
                             f"discriminator channels at <= 1/4 of the resolution; this D has fewer "
                             f"(use layer 'pool' or 'fc')")
        self.dim = int(model.net_config.feature_dim)
        self.stains = list(model.channel_names) or [f"w{i + 1}" for i in range(model.img_channels)]
        self.source = Path(model.path)
        self.normalizer = model.normalizer
        # tiles (whole site) or cell crops: the run's own training sampling unless given
        self.sampling = sampling or model.config.get("data", {}).get("sampling", "tiles")
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"--sampling must be one of {', '.join(SAMPLINGS)}, got {self.sampling!r}")
        if self.sampling == "crops":
            from napari_gandl.preprocessing.crops import nuclear_channel

            self.nuclear = nuclear_channel(self.stains)

    @property
    def options(self) -> dict:
        return {"layer": self.layer, "sampling": self.sampling, "orientations": self.orientations}

    def embed_sites(self, images: np.ndarray) -> np.ndarray:
        if self.sampling == "crops":
            from napari_gandl.preprocessing.crops import aggregate_cells

            cells = cell_features(self.model, list(images), self.layer, self.nuclear,
                                  orientations=self.orientations)
            return np.stack([aggregate_cells(f) for f in cells])
        return site_features(self.model, list(images), layer=self.layer, orientations=self.orientations)


def load(source: Path, plate=None, device: str = "auto", layer: str | None = None,
         sampling: str | None = None, orientations: int = 1) -> GANDLEmbedder:
    from napari_gandl.gan.checkpoint import load_model
    from napari_gandl.gan.metrics import run_divergence_note
    from napari_gandl.torch_utils.device import resolve_device

    model = load_model(source, resolve_device(device))
    run = Path(model.path).parent
    note = run_divergence_note(run)
    if note:  # said again here: the run may have been trained long before, or by someone else
        warnings.warn(f"{run}: {note}", stacklevel=2)
    return GANDLEmbedder(model, layer, sampling, orientations)


def train(plate, out_dir, minutes=None, kimg=None, device="auto", resume=False, seed=0, preset="quick",
          should_stop=None, **options):
    """GAN-DL's training generator; ``options`` are :func:`~napari_gandl.gan.config.make_config`
    overrides of the ``preset`` (``gandl train``'s GAN-only options). ``should_stop()`` turning true
    ends training after the step, with a checkpoint (on every process of a torchrun at the same step)."""
    from napari_gandl.gan.config import make_config
    from napari_gandl.gan.loop import iterate_training

    cfg = make_config(preset, minutes=minutes, kimg=kimg, device=device, seed=seed, **options)
    return iterate_training(plate, out_dir, cfg, resume=resume, should_stop=should_stop)


register(MethodSpec("gandl", load=load, train=train, needs_weights=True, gan_options=True,
                    help="GAN-DL: features of a trained StyleGAN2 discriminator (run folder from gandl train)"))

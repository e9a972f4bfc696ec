"""GAN-DL's discriminator before any training (``gandl-untrained``): the control for GAN-DL.

The same networks as ``gandl`` (the quick preset, the same seed), initialised
and saved without a single training step, with the per-stain normaliser
fitted on the plate.  What ``gandl`` gains over this row is what training
taught the discriminator; what this row gains over ``handcrafted`` is the
architecture alone.
"""

from __future__ import annotations

from pathlib import Path

from napari_gandl.embedding.registry import MethodSpec, register
from napari_gandl.embedding.methods.gandl import load as load_gandl


def train(plate, out_dir, minutes=None, kimg=None, device="auto", resume=False, seed=0, preset="quick",
          should_stop=None, **options):
    """Write the initialised run (``minutes``/``kimg`` and ``should_stop`` are ignored: nothing is trained,
    there is no step to stop after). ``preset`` and
    ``options`` configure the networks as they do GAN-DL's training, so a run's untrained twin has its
    architecture and reads the site the same way."""
    from napari_gandl.torch_utils.checkpoint import CHECKPOINT_NAME
    from napari_gandl.gan.trainer import Trainer
    from napari_gandl.gan.config import make_config
    from napari_gandl.plate import open_plate

    path = Path(out_dir) / CHECKPOINT_NAME
    if not (resume and path.exists()):
        trainer = Trainer(open_plate(plate), out_dir, make_config(preset, kimg=1.0, device=device, seed=seed,
                                                                    **options))
        path = trainer.save(samples=False)
    yield {"kimg": 0.0, "nimg": 0, "fraction": 1.0, "elapsed_s": 0.0, "eta_s": 0.0,
           "checkpoint": str(path), "done": True}


def load(source, plate=None, device: str = "auto", layer: str | None = None, orientations: int = 1):
    embedder = load_gandl(source, plate, device, layer, orientations=orientations)
    embedder.name = "gandl-untrained"
    return embedder


register(MethodSpec("gandl-untrained", load=load, train=train, needs_weights=True, gan_options=True,
                    help="GAN-DL's discriminator untrained (the control: same networks, no training)"))

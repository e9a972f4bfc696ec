"""The options only GAN-DL's training has (``gandl train``, and ``gandl compare`` for its GAN-DL runs and
the same networks untrained): how they are declared and where each goes in the GAN's config."""

from __future__ import annotations

import argparse

from napari_gandl.gan.align import ALIGN_MODES
from napari_gandl.gan.config import PRESETS
from napari_gandl.gan.contrast import PAIRS
from napari_gandl.gan.info import CODES
from napari_gandl.gan.loss import LOSSES
from napari_gandl.preprocessing.sampling import SAMPLINGS

#: options only GAN-DL has: argparse dest -> where the value goes in the GAN's config
GAN_OPTIONS = {
    "preset": "preset", "resolution": "resolution", "batch": "batch", "loss": "loss",
    "snapshot_kimg": "snapshot_kimg", "r1_gamma": "r1_gamma", "g_lr": "g_lr", "d_lr": "d_lr", "ada": "ada",
    "ada_target": "ada_target", "align": "align",
    "align_weight": "align_weight", "contrastive": "contrastive",
    "contrast_pairs": "contrast_pairs", "info": "info", "codes": "network.codes",
    "scale": "data.scale", "sampling": "data.sampling",
    "augment_p": "augment.p", "augment_gain": "augment.gain", "augment_offset": "augment.offset",
    "channel_base": "network.channel_base", "channel_max": "network.channel_max",
    "d_channel_base": "network.d_channel_base", "d_channel_max": "network.d_channel_max",
}


def scale_factor(text: str):
    """``--scale``: ``auto`` or an integer (range-checked with the other options)."""
    return text if text == "auto" else int(text)


def gan_options(args) -> dict:
    """The GAN-only options given on the command line, as :func:`napari_gandl.gan.config.make_config`
    overrides (nested dicts for ``data``, ``augment`` and ``network``)."""
    options: dict = {}
    for dest, key in GAN_OPTIONS.items():
        value = getattr(args, dest)
        if value is None:
            continue
        if "." in key:
            group, name = key.split(".")
            options.setdefault(group, {})[name] = value
        else:
            options[key] = value
    return options


def add_gan_options(parser: argparse.ArgumentParser) -> None:
    """Declare every option of :data:`GAN_OPTIONS` on ``parser``, in a group of their own (all default to
    None: the preset's value)."""
    p = parser.add_argument_group("GAN-DL's networks and training (--method gandl, and gandl-untrained's "
                                  "networks)")
    p.add_argument("--preset", choices=list(PRESETS),
                   help="quick: CPU, 64px, minutes; paper: GPU, 256px, 512 widths (default quick)")
    p.add_argument("--resolution", type=int, help="training resolution, power of two 32..1024")
    p.add_argument("--batch", type=int, help="total batch size (multiple of 4 per process)")
    p.add_argument("--loss", choices=LOSSES, help="logistic + lazy R1 (StyleGAN2 default) or Wasserstein-GP")
    p.add_argument("--r1-gamma", type=float, metavar="G",
                   help="weight of the R1 penalty on D's gradient at the reals (logistic loss; quick preset "
                        "0.05, paper 1; larger keeps D smoother); with --resume it retunes the run from its "
                        "last checkpoint")
    p.add_argument("--g-lr", type=float, metavar="LR",
                   help="generator learning rate (default 0.0025 quick, 0.002 paper)")
    p.add_argument("--d-lr", type=float, metavar="LR",
                   help="discriminator learning rate (default as --g-lr); both may be retuned with --resume")
    p.add_argument("--scale", type=scale_factor, metavar="auto|N",
                   help="downsample tiles by this integer factor first; auto (the quick preset's default): "
                        "measure the plate's nuclei and take the factor that brings them closest to 22 px "
                        "(1, full resolution, for nuclei up to 33 px)")
    p.add_argument("--sampling", choices=SAMPLINGS,
                   help="training images: random tiles (default) or crops centred on cells, whose "
                        "nuclei are found in the Hoechst/DNA stain")
    p.add_argument("--augment-p", type=float, metavar="P",
                   help="probability of each augmentation (with ADA: its starting value; quick preset 0, "
                        "paper 0.3)")
    p.add_argument("--augment-gain", type=float, metavar="S",
                   help="per-stain intensity augmentation: gain exp(N(0, S)) (default 0.2; 0 turns it off)")
    p.add_argument("--augment-offset", type=float, metavar="S",
                   help="per-stain intensity augmentation: offset N(0, S), images in [-1, 1] (default 0.1; "
                        "0 turns it off)")
    p.add_argument("--ada", action=argparse.BooleanOptionalAction, default=None,
                   help="adaptive augmentation: steer P by D's overfitting on the reals (ADA; on by default "
                        "in the quick preset, --no-ada keeps P fixed)")
    p.add_argument("--ada-target", type=float, metavar="T",
                   help="ADA's target for the mean sign of D on the reals (default 0.6)")
    p.add_argument("--snapshot-kimg", type=float, help="checkpoint interval in kimg")
    p.add_argument("--align", choices=ALIGN_MODES,
                   help="make D's embedding blind to the plate or experiment (domain-adversarial head "
                        "with gradient reversal; batch labels from the site table; default none)")
    p.add_argument("--align-weight", type=float, help="final gradient-reversal weight (default 1)")
    p.add_argument("--contrastive", type=float, metavar="W",
                   help="weight of the site contrast: D's embedding of two crops of one site is pulled "
                        "together and away from other sites' (NT-Xent), so training keeps what tells "
                        "sites apart (default 0: off)")
    p.add_argument("--contrast-pairs", choices=PAIRS,
                   help="what the contrast pairs: two crops of one site (default), or crops of two sites "
                        "of one well, contrasted only with other wells of the same plate")
    p.add_argument("--info", type=float, metavar="W",
                   help="weight of code recovery: D's embedding learns to read the generator's first "
                        "latent inputs (its codes) from its images, and G to make them readable (InfoGAN; it ranks "
                        "compounds better, and the samples get far less realistic: 0 turns it off for "
                        "realistic samples; quick preset 10, paper 0)")
    p.add_argument("--codes", type=int, metavar="N",
                   help=f"how many of the generator's latent inputs code recovery asks D to read (default {CODES})")
    p.add_argument("--channel-base", type=int, help=argparse.SUPPRESS)
    p.add_argument("--channel-max", type=int, help=argparse.SUPPRESS)
    p.add_argument("--d-channel-base", type=int, help=argparse.SUPPRESS)
    p.add_argument("--d-channel-max", type=int, help=argparse.SUPPRESS)

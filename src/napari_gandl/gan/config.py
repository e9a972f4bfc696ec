"""GAN-DL training settings: the presets, the run's config (saved with every checkpoint) and its checks."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

from napari_gandl.config import Config
from napari_gandl.gan import loss as L
from napari_gandl.gan.align import ALIGN_MODES
from napari_gandl.gan.contrast import PAIRS
from napari_gandl.gan.networks import check_resolution
from napari_gandl.preprocessing.sampling import SAMPLINGS
from napari_gandl.preprocessing.scale import CellScale, measure_scale

# Presets: network widths, batch and schedule.  ``quick`` is sized for a
# laptop-class CPU (minutes); ``paper`` follows the GAN-DL setup (StyleGAN2
# widths of 512, 3-layer mapping) and wants a GPU.
PRESETS: dict[str, dict] = {
    "quick": dict(
        resolution=64,
        # slim generator; the discriminator is wider at 16x16 and below, where the
        # "stats" embedding taps it (see docs/gan.md, "What mattered")
        network=dict(channel_base=512, channel_max=256, d_channel_base=1024, d_channel_max=128,
                     d_pool_first=True, mapping_layers=3, mbstd_group=4),
        batch=16,
        g_lr=0.0025,
        d_lr=0.0025,
        r1_gamma=0.05,
        ema_kimg=2.0,
        minutes=10.0,
        snapshot_kimg=2.0,
        # the factor that brings the nuclei closest to 22 px, so full resolution up to 33 px
        # (preprocessing/scale.py): smaller factors scored better on the suite's large cells
        data=dict(scale="auto"),
        # adaptive augmentation from p = 0: on the 30-minute suite runs it stopped D from
        # overfitting where fixed p = 0.5 let training make the features worse (docs/gan.md)
        ada=True,
        augment=dict(p=0.0),
        # code recovery: D's embedding regresses G's first latent inputs; one such run ranked compounds
        # better than one run without it on the suite, and two read together better still (docs/gan.md)
        info=10.0,
    ),
    "paper": dict(
        resolution=256,
        network=dict(channel_base=32768, channel_max=512, d_pool_first=True, mapping_layers=3,
                     mbstd_group=4),
        batch=32,
        g_lr=0.002,
        d_lr=0.002,
        r1_gamma=1.0,
        ema_kimg=10.0,
        kimg=5000.0,
        snapshot_kimg=50.0,
        data=dict(scale=1),
        augment=dict(p=0.3),
    ),
}


#: how many runs ``gandl train`` splits a budget into by default, at consecutive seeds, read together by
#: ``gandl embed`` (torch_utils.runs.train_runs): on the suite two ``--info 10`` runs of half the budget
#: ranked compounds better than one run of all of it, at 16 and 32 kimg (docs/gan.md); not measured for
#: the paper preset, which trains one run
DEFAULT_RUNS = {"quick": 2, "paper": 1}


def default_runs(preset: str) -> int:
    """How many runs a budget of GAN-DL (or of its untrained control) with ``preset`` is split into."""
    return DEFAULT_RUNS.get(preset, 1)


@dataclass
class TrainConfig(Config):
    preset: str = "quick"
    resolution: int = 64
    batch: int = 16
    kimg: float | None = None  # stop after this many thousand real images
    minutes: float | None = None  # ... or after this much training time
    seed: int = 0
    loss: str = "logistic"  # or "wgan-gp"
    g_lr: float = 0.0025
    d_lr: float = 0.0025
    betas: tuple = (0.0, 0.99)
    r1_gamma: float = 0.05
    r1_interval: int = 16
    gp_weight: float = 10.0
    ema_kimg: float = 2.0
    ema_rampup: float = 0.05
    style_mixing: float = 0.9
    snapshot_kimg: float = 2.0  # checkpoint + sample grid interval
    snapshot_minutes: float = 5.0  # ... or this often in wall time, whichever first
    # adaptive augmentation (ADA): False keeps augment["p"] fixed; True steers p from augment["p"]
    # towards E[sign(D(real))] = ada_target, by up to 1 per ada_kimg thousand images
    ada: bool = False
    ada_target: float = 0.6
    ada_kimg: float = 10.0
    ada_interval: int = 4
    metrics_samples: int = 128  # samples (and held-out reals) for metrics.csv at every snapshot
    device: str = "auto"
    threads: int | None = None  # CPU threads for torch (None: torch's default)
    network: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    augment: dict = field(default_factory=dict)
    plate: str = ""
    channel_names: list = field(default_factory=list)
    normalizer: dict = field(default_factory=dict)
    align: str = "none"  # batch D's embedding is made blind to: none, plate or experiment (align.py)
    align_weight: float = 1.0  # final gradient-reversal weight
    contrastive: float = 0.0  # weight of the site-contrast term on D's embedding (contrast.py; 0: off)
    contrast_pairs: str = "site"  # a crop's positive: another crop of its site, or of another site of its well
    info: float = 0.0  # weight of code recovery: D's embedding regresses G's first latent inputs (info.py; 0: off)
    align_plan: dict = field(default_factory=dict)  # the batches aligned (filled by the trainer)
    cell_scale: dict = field(default_factory=dict)  # what --scale auto measured (filled by the trainer)

    def __post_init__(self):
        self.betas = tuple(self.betas)  # a list when read back from JSON


def make_config(preset="quick", **overrides) -> TrainConfig:
    """Preset values updated by non-None ``overrides`` (nested dicts merged).

    The config remembers the overrides (``cfg.given``, not saved with the run) so that a
    resumed run can refuse those that would change the model (:func:`resume_conflicts`)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    base = copy.deepcopy(PRESETS[preset])
    for k, v in overrides.items():
        if v is None:
            continue
        if k in ("network", "data", "augment") and isinstance(v, dict):
            base.setdefault(k, {}).update(v)
        else:
            base[k] = v
    if overrides.get("kimg") is not None and overrides.get("minutes") is None:
        base.pop("minutes", None)
    if overrides.get("minutes") is not None and overrides.get("kimg") is None:
        base.pop("kimg", None)
    cfg = TrainConfig(preset=preset, **base)
    validate_config(cfg)
    cfg.given = {k: v for k, v in overrides.items() if v is not None}
    return cfg


#: what a resumed run may set anew to steer the optimisation, so that a run that diverged can go on from
#: its last good checkpoint with a larger R1 gamma or smaller steps; saved as the run's own from then on
RESUME_RETUNES = ("r1_gamma", "g_lr", "d_lr")
#: what a resumed run may set anew: how long it trains, where, and those; everything else is the run's own
RESUME_MAY_CHANGE = ("kimg", "minutes", "device", "threads", "seed", "snapshot_kimg", "snapshot_minutes",
                     "metrics_samples") + RESUME_RETUNES


def resume_conflicts(saved: TrainConfig, given: dict) -> list[str]:
    """The options in ``given`` (``make_config`` overrides) that differ from the saved run's,
    as ``"resolution 32 (asked 64)"``; ``--scale auto`` matches a run whose factor it chose."""
    conflicts = []
    for key, value in given.items():
        if key in RESUME_MAY_CHANGE or not hasattr(saved, key):
            continue
        pairs = ([(f"{key}.{k}", (getattr(saved, key) or {}).get(k, v), v) for k, v in value.items()]
                 if isinstance(value, dict) else [(key, getattr(saved, key), value)])
        for name, was, asked in pairs:
            if asked is None or (name == "data.scale" and asked == "auto" and saved.cell_scale):
                continue
            if was != asked and not (isinstance(was, (list, tuple)) and list(was) == list(asked)):
                conflicts.append(f"{name} {was!r} (asked {asked!r})")
    return conflicts


def _number(value, option: str, *, minimum: float = 0.0, inclusive: bool = False,
            integer: bool = False, maximum: float | None = None):
    """Raise a one-line ValueError naming ``option`` unless ``value`` is in range."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and integer:
        ok = float(value).is_integer()
    if ok:
        ok = value >= minimum if inclusive else value > minimum
    if ok and maximum is not None:
        ok = value <= maximum
    if not ok:
        kind = "an integer" if integer else "a number"
        bound = f"{'>=' if inclusive else '>'} {minimum:g}"
        if maximum is not None:
            bound += f" and <= {maximum:g}"
        raise ValueError(f"{option} must be {kind} {bound}, got {value!r}")


def validate_config(cfg: TrainConfig) -> None:
    """Refuse a bad length or option with a one-line error naming it (before any work starts)."""
    if cfg.loss not in L.LOSSES:
        raise ValueError(f"--loss must be one of {', '.join(L.LOSSES)}, got {cfg.loss!r}")
    if cfg.kimg is None and cfg.minutes is None:
        raise ValueError("give a training length: --kimg or --minutes")
    if cfg.kimg is not None:
        _number(cfg.kimg, "--kimg")
    if cfg.minutes is not None:
        _number(cfg.minutes, "--minutes")
    try:
        check_resolution(cfg.resolution)
    except (TypeError, ValueError):
        raise ValueError(f"--resolution must be a power of two between 32 and 1024, "
                         f"got {cfg.resolution!r}") from None
    group = int(cfg.network.get("mbstd_group", 4))
    _number(cfg.batch, "--batch", integer=True)
    if cfg.batch % group:
        raise ValueError(f"--batch must be a multiple of {group} (the minibatch-stddev group), "
                         f"got {cfg.batch}")
    _number(cfg.snapshot_kimg, "--snapshot-kimg")
    _number(cfg.snapshot_minutes, "snapshot_minutes")
    _number(cfg.metrics_samples, "metrics_samples", inclusive=True, integer=True)
    if cfg.threads is not None:
        _number(cfg.threads, "--threads", minimum=1, inclusive=True, integer=True)
    _number(cfg.g_lr, "--g-lr")
    _number(cfg.d_lr, "--d-lr")
    _number(cfg.r1_gamma, "--r1-gamma", inclusive=True)
    _number(cfg.contrastive, "--contrastive", inclusive=True)
    _number(cfg.info, "--info", inclusive=True)
    codes = cfg.network.get("codes")
    if codes is not None and (codes or cfg.info):  # given with --codes, or saved by a run with code recovery
        if not cfg.info:
            raise ValueError(f"--codes {codes} needs code recovery on: give --info W with W > 0")
        z_dim = cfg.network.get("z_dim", 512)
        _number(codes, "--codes", minimum=1, inclusive=True, integer=True, maximum=z_dim - 1)
    if cfg.contrast_pairs not in PAIRS:
        raise ValueError(f"--contrast-pairs must be one of {', '.join(PAIRS)}, got {cfg.contrast_pairs!r}")
    if cfg.contrast_pairs != "site" and not cfg.contrastive:
        raise ValueError(f"--contrast-pairs {cfg.contrast_pairs} needs the contrast on: give --contrastive W "
                         f"with W > 0")
    for name in ("gp_weight", "ema_kimg"):
        _number(getattr(cfg, name), name, inclusive=True)
    if cfg.data.get("scale", 1) != "auto":
        _number(cfg.data.get("scale", 1), "--scale", minimum=1, inclusive=True, integer=True)
    if cfg.data.get("sampling", "tiles") not in SAMPLINGS:
        raise ValueError(f"--sampling must be one of {', '.join(SAMPLINGS)}, "
                         f"got {cfg.data['sampling']!r}")
    for key in ("channel_base", "channel_max", "d_channel_base", "d_channel_max"):
        if cfg.network.get(key) is not None:
            _number(cfg.network[key], "--" + key.replace("_", "-"), integer=True)
    _number(cfg.augment.get("p", 0.0), "--augment-p", inclusive=True, maximum=1.0)
    for key in ("gain", "offset"):
        if key in cfg.augment:
            _number(cfg.augment[key], "--augment-" + key, inclusive=True)
    if cfg.ada:
        _number(cfg.ada_target, "--ada-target", maximum=0.999)
        _number(cfg.ada_kimg, "ada_kimg")
        _number(cfg.ada_interval, "ada_interval", minimum=1, inclusive=True, integer=True)
    if cfg.align not in ALIGN_MODES:
        raise ValueError(f"--align must be one of {', '.join(ALIGN_MODES)}, got {cfg.align!r}")
    _number(cfg.align_weight, "--align-weight")


def resolve_cell_scale(config: TrainConfig, plate) -> TrainConfig:
    """``--scale auto``: measure the nuclei of ``plate`` and put the chosen downsampling factor in
    ``config.data`` and what was measured in ``config.cell_scale``; nothing to do for a given factor."""
    if config.data.get("scale") == "auto":
        measured = measure_scale(plate, config.resolution)
        config.data = {**config.data, "scale": measured.scale}
        config.cell_scale = measured.to_dict()
    return config


def describe_cell_scale(config: TrainConfig) -> str:
    """What ``--scale auto`` measured and chose, in words (empty for a factor given by the user)."""
    return CellScale.from_dict(config.cell_scale).describe() if config.cell_scale else ""

"""Training loop: G/D phases, lazy R1 (or WGAN-GP), G EMA, checkpoints, resume.

``iterate_training(...)`` is a generator yielding progress dicts after every
step, suitable for a GUI ``thread_worker``; closing the generator (or a
``should_stop`` callback returning True) stops training cleanly after writing
a checkpoint.  ``train(...)`` drives it to the end (optionally with a
progress callback) and returns the run directory.

Multi-process training (``torchrun``) is picked up from the usual environment
variables: gradients (and the few tracked statistics) are averaged across
ranks with ``all_reduce`` -- gloo on CPU, NCCL on CUDA -- and only rank 0
writes files.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import os
import random
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from . import loss as L
from ..embedding.augment import AugmentConfig, augment
from ..embedding.sampling import SAMPLINGS, DataConfig, Normalizer, TileSampler, fit_normalizer
from .ada import AdaptiveAugment
from .align import ALIGN_MODES, TrainingAligner
from .checkpoint import CHECKPOINT_NAME, CheckpointError, load_checkpoint, save_checkpoint
from .metrics import METRIC_NAMES, SampleQuality
from .networks import NetworkConfig, build_networks, noise_generators

__all__ = [
    "PRESETS",
    "TrainConfig",
    "TrainingDiverged",
    "Trainer",
    "iterate_training",
    "train",
    "resolve_device",
    "make_config",
    "validate_config",
]


class TrainingDiverged(RuntimeError):
    """A loss became NaN/inf; the last good checkpoint is left untouched."""


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
        data=dict(scale=1),
        # adaptive augmentation from p = 0: on the 30-minute suite runs it stopped D from
        # overfitting where fixed p = 0.5 let training make the features worse (docs/gan.md)
        ada=True,
        augment=dict(p=0.0),
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


@dataclass
class TrainConfig:
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
    align_plan: dict = field(default_factory=dict)  # the batches aligned (filled by the trainer)

    def to_dict(self):
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d):
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        return cls(**d)


def make_config(preset="quick", **overrides) -> TrainConfig:
    """Preset values updated by non-None ``overrides`` (nested dicts merged)."""
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
    return cfg


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
    from .networks import _check_resolution

    if cfg.loss not in L.LOSSES:
        raise ValueError(f"--loss must be one of {', '.join(L.LOSSES)}, got {cfg.loss!r}")
    if cfg.kimg is None and cfg.minutes is None:
        raise ValueError("give a training length: --kimg or --minutes")
    if cfg.kimg is not None:
        _number(cfg.kimg, "--kimg")
    if cfg.minutes is not None:
        _number(cfg.minutes, "--minutes")
    try:
        _check_resolution(cfg.resolution)
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
    for name in ("g_lr", "d_lr"):
        _number(getattr(cfg, name), name)
    for name in ("r1_gamma", "gp_weight", "ema_kimg"):
        _number(getattr(cfg, name), name, inclusive=True)
    _number(cfg.data.get("scale", 1), "--scale", minimum=1, inclusive=True, integer=True)
    if cfg.data.get("sampling", "tiles") not in SAMPLINGS:
        raise ValueError(f"--sampling must be one of {', '.join(SAMPLINGS)}, "
                         f"got {cfg.data['sampling']!r}")
    for key in ("channel_base", "channel_max", "d_channel_base", "d_channel_max"):
        if cfg.network.get(key) is not None:
            _number(cfg.network[key], "--" + key.replace("_", "-"), integer=True)
    _number(cfg.augment.get("p", 0.0), "--augment-p", inclusive=True, maximum=1.0)
    if cfg.ada:
        _number(cfg.ada_target, "--ada-target", maximum=0.999)
        _number(cfg.ada_kimg, "ada_kimg")
        _number(cfg.ada_interval, "ada_interval", minimum=1, inclusive=True, integer=True)
    if cfg.align not in ALIGN_MODES:
        raise ValueError(f"--align must be one of {', '.join(ALIGN_MODES)}, got {cfg.align!r}")
    _number(cfg.align_weight, "--align-weight")


def resolve_device(device: str = "auto") -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available")
    return dev


class Adam:
    """Adam (Kingma & Ba) with the ``torch.optim.Adam`` update and state layout.

    A small stand-alone implementation: constructing ``torch.optim`` optimisers
    imports TorchDynamo, which costs several seconds per process on a small
    CPU -- noticeable for every ``gandl train`` start and every torchrun rank.
    ``state_dict()`` holds tensors and plain numbers only.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.params = [p for p in params]
        self.lr, self.betas, self.eps = float(lr), tuple(float(b) for b in betas), float(eps)
        self.step_count = 0
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self, set_to_none: bool = True):
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self):
        self.step_count += 1
        b1, b2 = self.betas
        bc1 = 1 - b1**self.step_count
        bc2 = 1 - b2**self.step_count
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq):
            if p.grad is None:
                continue
            g = p.grad
            m.mul_(b1).add_(g, alpha=1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (v / bc2).sqrt_().add_(self.eps)
            p.addcdiv_(m, denom, value=-self.lr / bc1)

    def state_dict(self) -> dict:
        return {
            "state": {i: {"exp_avg": m, "exp_avg_sq": v}
                      for i, (m, v) in enumerate(zip(self.exp_avg, self.exp_avg_sq))},
            "step": self.step_count,
            "param_groups": [{"lr": self.lr, "betas": list(self.betas), "eps": self.eps}],
        }

    def load_state_dict(self, sd: dict):
        if len(sd["state"]) != len(self.params):
            raise ValueError("optimiser state does not match the network")
        self.step_count = int(sd["step"])
        g = sd["param_groups"][0]
        self.lr, self.betas, self.eps = float(g["lr"]), tuple(g["betas"]), float(g["eps"])
        for i, (m, v) in enumerate(zip(self.exp_avg, self.exp_avg_sq)):
            m.copy_(sd["state"][i]["exp_avg"])
            v.copy_(sd["state"][i]["exp_avg_sq"])


# ---------------------------------------------------------------------------
# Distributed helpers (torchrun)
# ---------------------------------------------------------------------------


def _dist():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def init_distributed(device: torch.device) -> tuple[int, int]:
    """Initialise the process group when launched by torchrun; (rank, world)."""
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size()


def save_rng_state(np_rng: np.random.Generator) -> dict:
    st = {
        "torch": torch.get_rng_state(),
        "numpy": json.dumps(np_rng.bit_generator.state),
        "python": json.dumps(random.getstate()),
    }
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def load_rng_state(st: dict, np_rng: np.random.Generator):
    torch.set_rng_state(st["torch"])
    np_rng.bit_generator.state = json.loads(st["numpy"])
    py = json.loads(st["python"])
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in st and torch.cuda.is_available():
        try:
            torch.cuda.set_rng_state_all(st["cuda"])
        except Exception:
            pass


# ---------------------------------------------------------------------------
# Sample grids
# ---------------------------------------------------------------------------

_STAIN_COLOURS = np.array(
    [[0, 0.4, 1], [0, 1, 0], [1, 0, 0], [1, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0.5, 0], [1, 1, 1]],
    np.float32,
)


def save_grid(imgs: np.ndarray, path: Path, cols: int = 8):
    """``(N, C, H, W)`` normalised images as one additive-composite PNG grid."""
    from PIL import Image

    from napari_gandl.plate.display import composite, tile_grid

    imgs = np.asarray(imgs, np.float32)
    c = imgs.shape[1]
    colours = _STAIN_COLOURS[np.arange(c) % len(_STAIN_COLOURS)]
    grid = composite(tile_grid(imgs, cols=min(cols, len(imgs)), pad=0), colours, [(-1.0, 1.0)] * c,
                     gain=1.0 / max(1.0, c / 2.5))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("." + path.name + ".tmp.png")
    Image.fromarray(grid).save(tmp)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------
# Trainer
# ---------------------------------------------------------------------------


class Trainer:
    """Holds networks, optimisers and state; ``step()`` runs one iteration."""

    LOSS_FIELDS = ["step", "kimg", "loss_G", "loss_D", "reg", "real_score", "fake_score",
                   "augment_p", "align_loss", "align_acc", "align_weight", "img_per_s",
                   "elapsed_s"]

    def __init__(self, plate, out_dir, config: TrainConfig, resume: bool = False):
        self.out_dir = Path(out_dir)
        self.device = resolve_device(config.device)
        if self.device.type == "cpu" and config.threads:
            torch.set_num_threads(int(config.threads))
        self.rank, self.world = init_distributed(self.device)
        ckpt = None
        ckpt_path = self.out_dir / CHECKPOINT_NAME
        if resume and ckpt_path.exists():
            ckpt = load_checkpoint(ckpt_path)
            saved = TrainConfig.from_dict(ckpt["config"])
            # the saved run defines the model and schedule; only the length may be extended
            if config.kimg is not None and (saved.kimg is None or config.kimg > saved.kimg):
                saved.kimg = config.kimg
            if config.minutes is not None and (saved.minutes is None or config.minutes > saved.minutes):
                saved.minutes = config.minutes
            saved.device = config.device
            saved.threads = config.threads
            config = saved
        elif not resume and ckpt_path.exists():
            raise FileExistsError(
                f"{ckpt_path} exists; pass resume=True (--resume) to continue that run "
                f"or choose another output folder"
            )
        self.cfg = config
        self.plate = plate
        if plate is None:
            raise ValueError("a plate is required for training")
        config.plate = str(getattr(plate, "root", ""))
        config.channel_names = list(plate.channel_names)

        self.net_cfg = NetworkConfig.from_dict(
            {**config.network, "img_channels": plate.n_channels, "resolution": config.resolution}
        )
        config.network = self.net_cfg.to_dict()
        self.data_cfg = DataConfig.from_dict(config.data)
        config.data = self.data_cfg.to_dict()
        self.aug_cfg = AugmentConfig.from_dict(config.augment)
        config.augment = self.aug_cfg.to_dict()  # the initial p; ADA then changes aug_cfg.p
        self.ada = None
        if config.ada:
            self.ada = AdaptiveAugment(self.aug_cfg.p, config.ada_target, config.ada_kimg,
                                       config.ada_interval)

        if self.world > 1 and config.batch % self.world:
            raise ValueError(f"batch {config.batch} is not divisible by {self.world} processes")
        self.batch_gpu = config.batch // self.world
        if self.batch_gpu % self.net_cfg.mbstd_group:
            raise ValueError(
                f"per-process batch {self.batch_gpu} must be a multiple of the minibatch-stddev "
                f"group size {self.net_cfg.mbstd_group}"
            )

        torch.manual_seed(config.seed + self.rank)
        random.seed(config.seed + self.rank)
        self.np_rng = np.random.default_rng([config.seed, self.rank])

        if ckpt is not None:
            self.normalizer = Normalizer.from_dict(config.normalizer)
        else:
            self.normalizer = fit_normalizer(plate, self.data_cfg)
            config.normalizer = self.normalizer.to_dict()
        train_sites, self.metric_sites = held_out_sites(plate)
        self.sampler = TileSampler(plate, config.resolution, self.data_cfg, self.normalizer,
                                   sites=train_sites)
        self.quality: SampleQuality | None = None  # fitted on the held-out reals when first needed

        cuda = self.device.type == "cuda"
        self.amp = cuda
        self.G, self.D, self.G_ema = build_networks(
            self.net_cfg, self.device, conv_clamp=256 if cuda else None
        )
        if cuda:
            for m in (self.G, self.D, self.G_ema):
                m.to(memory_format=torch.channels_last)
        r1_ratio = config.r1_interval / (config.r1_interval + 1) if config.loss == "logistic" else 1.0
        self.opt_G = Adam(self.G.parameters(), lr=config.g_lr, betas=tuple(config.betas), eps=1e-8)
        self.opt_D = Adam(
            self.D.parameters(), lr=config.d_lr * r1_ratio,
            betas=tuple(b**r1_ratio for b in config.betas), eps=1e-8,
        )
        self.aligner = None
        if config.align != "none":
            self.aligner = TrainingAligner(plate, config.align, config.align_weight, self.D, self.device,
                                           sync=self._allreduce_grads)
            plan = self.aligner.plan.to_dict()
            if ckpt is not None and config.align_plan.get("classes") != plan["classes"]:
                raise ValueError(f"{ckpt_path}: the run aligned batches {config.align_plan.get('classes')} "
                                 f"but the plate now has {plan['classes']}")
            config.align_plan = plan
            if plan["note"] and self.rank == 0:
                warnings.warn(f"--align {config.align}: {plan['note']}", stacklevel=2)
        self.cur_nimg = 0
        self.step_idx = 0
        self.elapsed_s = 0.0
        self.resumed_from_nimg = None
        if ckpt is not None:
            self.G.load_state_dict(ckpt["G"])
            self.D.load_state_dict(ckpt["D"])
            self.G_ema.load_state_dict(ckpt["G_ema"])
            self.opt_G.load_state_dict(ckpt["opt_G"])
            self.opt_D.load_state_dict(ckpt["opt_D"])
            if self.aligner is not None:
                self.aligner.load_state_dict(ckpt["align"])
            self.cur_nimg = int(ckpt["cur_nimg"])
            self.step_idx = int(ckpt["step"])
            self.elapsed_s = float(ckpt["elapsed_s"])
            if self.ada is not None and "ada" in ckpt:
                self.ada.load_state_dict(ckpt["ada"])
                self.aug_cfg.p = self.ada.p
            self.resumed_from_nimg = self.cur_nimg
            if self.rank == 0:
                load_rng_state(ckpt["rng"], self.np_rng)
            else:
                torch.manual_seed(config.seed + self.rank + self.step_idx * 7919)
                self.np_rng = np.random.default_rng([config.seed, self.rank, self.step_idx])
        if self.world > 1:
            self._broadcast_params()
        self.grid_z = torch.from_numpy(
            np.random.default_rng(123).standard_normal((16, self.net_cfg.z_dim)).astype(np.float32)
        ).to(self.device)

    # -- helpers -----------------------------------------------------------
    def _broadcast_params(self):
        dist = _dist()
        for m in (self.G, self.D, self.G_ema) + ((self.aligner.head,) if self.aligner else ()):
            for t in list(m.parameters()) + list(m.buffers()):
                dist.broadcast(t.data, src=0)

    def _allreduce_grads(self, module):
        dist = _dist()
        if dist is None:
            return
        params = [p for p in module.parameters() if p.grad is not None]
        bufs = list(module.buffers())
        flat = torch.cat([p.grad.flatten() for p in params] + [b.flatten().float() for b in bufs])
        dist.all_reduce(flat)
        flat /= self.world
        off = 0
        for p in params:
            n = p.numel()
            p.grad.copy_(flat[off : off + n].view_as(p.grad))
            off += n
        for b in bufs:
            n = b.numel()
            b.copy_(flat[off : off + n].view_as(b).to(b.dtype))
            off += n

    def _autocast(self):
        if self.amp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return torch.autocast("cpu", enabled=False)

    def _aug(self, x):
        return augment(x, self.aug_cfg)

    def _reals(self):
        x = self.sampler.sample(self.batch_gpu, self.np_rng).to(self.device)
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _check(self, name, value):
        if not torch.isfinite(value).all():
            raise TrainingDiverged(
                f"{name} became {value.item()} at step {self.step_idx} "
                f"({self.cur_nimg / 1000:.2f} kimg); the last good checkpoint "
                f"{self.out_dir / CHECKPOINT_NAME} was left untouched -- try a lower learning "
                f"rate or a larger R1 gamma"
            )

    # -- one iteration -----------------------------------------------------
    def step(self) -> dict:
        cfg = self.cfg
        G, D = self.G, self.D
        G.train()
        D.train()
        n = self.batch_gpu
        stats = {}

        # D phase
        reals = self._reals()
        z = torch.randn(n, self.net_cfg.z_dim, device=self.device)
        with torch.no_grad(), self._autocast():
            fakes = G(z, style_mixing_prob=cfg.style_mixing)
        D.requires_grad_(True)
        self.opt_D.zero_grad(set_to_none=True)
        if self.aligner is not None:
            self.aligner.opt.zero_grad()
        with self._autocast():
            real_logits = D(self._aug(reals)).float()
            fake_logits = D(self._aug(fakes.detach())).float()
        loss_D = L.d_loss(cfg.loss, real_logits, fake_logits)
        reg = torch.zeros((), device=self.device)
        if cfg.loss == "logistic":
            if cfg.r1_gamma > 0 and self.step_idx % cfg.r1_interval == 0:
                with self._autocast():
                    reg = L.r1_penalty(D, reals, cfg.r1_gamma, self._aug) * cfg.r1_interval
        else:
            with self._autocast():
                reg = L.gradient_penalty(D, reals, fakes.float(), cfg.gp_weight, self._aug)
        total_D = loss_D + reg
        if self.aligner is not None:  # D's embedding learns to hide the batch (gradient reversal)
            with self._autocast():
                align, align_stats = self.aligner.loss(D, reals, self.sampler.last_sites, self.fraction())
            total_D = total_D + align
            stats.update(align_stats)
        self._check("discriminator loss", total_D.detach())
        total_D.backward()
        self._allreduce_grads(D)
        self.opt_D.step()
        if self.ada is not None:
            self.ada.accumulate(real_logits)
        if self.aligner is not None:
            self._allreduce_grads(self.aligner.head)
            self.aligner.opt.step()
        stats["loss_D"] = float(loss_D.detach())
        stats["reg"] = float(reg.detach())
        stats["real_score"] = float(real_logits.mean().detach())
        stats["fake_score"] = float(fake_logits.mean().detach())

        # G phase
        D.requires_grad_(False)
        self.opt_G.zero_grad(set_to_none=True)
        z = torch.randn(n, self.net_cfg.z_dim, device=self.device)
        with self._autocast():
            fakes = G(z, update_w_avg=True, style_mixing_prob=cfg.style_mixing)
            gl = D(self._aug(fakes)).float()
        loss_G = L.g_loss(cfg.loss, gl)
        self._check("generator loss", loss_G.detach())
        loss_G.backward()
        self._allreduce_grads(G)
        self.opt_G.step()
        D.requires_grad_(True)
        stats["loss_G"] = float(loss_G.detach())

        # G EMA
        self.cur_nimg += cfg.batch
        ema_nimg = cfg.ema_kimg * 1000
        if cfg.ema_rampup:
            ema_nimg = min(ema_nimg, self.cur_nimg * cfg.ema_rampup)
        beta = 0.5 ** (cfg.batch / max(ema_nimg, 1e-8))
        with torch.no_grad():
            for pe, p in zip(self.G_ema.parameters(), G.parameters()):
                pe.copy_(p.detach().lerp(pe, beta))
            for be, b in zip(self.G_ema.buffers(), G.buffers()):
                be.copy_(b)
        self.step_idx += 1
        if self.ada is not None and self.step_idx % self.ada.interval == 0:
            dist = _dist()
            self.aug_cfg.p = self.ada.update(cfg.batch * self.ada.interval,
                                             reduce=dist.all_reduce if dist else None)
        stats["augment_p"] = self.aug_cfg.p
        return stats

    # -- persistence -------------------------------------------------------
    def checkpoint_payload(self) -> dict:
        return {
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "G_ema": self.G_ema.state_dict(),
            "opt_G": self.opt_G.state_dict(),
            "opt_D": self.opt_D.state_dict(),
            "cur_nimg": int(self.cur_nimg),
            "step": int(self.step_idx),
            "elapsed_s": float(self.elapsed_s),
            "rng": save_rng_state(self.np_rng),
            "config": self.cfg.to_dict(),
            **({"ada": self.ada.state_dict()} if self.ada is not None else {}),
            **({"align": self.aligner.state_dict()} if self.aligner is not None else {}),
        }

    def save(self, samples: bool = True) -> Path | None:
        dist = _dist()
        path = None
        if self.rank == 0:
            path = save_checkpoint(self.out_dir / CHECKPOINT_NAME, self.checkpoint_payload())
            (self.out_dir / "config.json").write_text(json.dumps(self.cfg.to_dict(), indent=2))
            if samples:
                self.save_samples()
        if dist is not None:
            dist.barrier()
        return path

    @torch.no_grad()
    def _grid(self, n: int = 16) -> np.ndarray:
        """The snapshot grid's first ``n`` images: fixed latents and fixed per-image noise."""
        self.G_ema.eval()
        return self.G_ema(self.grid_z[:n], noise_mode=noise_generators(range(n))).float().cpu().numpy()

    def save_samples(self):
        imgs = self._grid()
        save_grid(imgs, self.out_dir / "samples" / f"fakes{self.cur_nimg // 1000:06d}.png")
        save_grid(imgs, self.out_dir / "samples" / "fakes_latest.png")

    def sample_images(self, n: int = 16) -> np.ndarray:
        """``n`` fixed-seed EMA-generator images in raw intensity units, ``(n, C, H, W)``."""
        return self.normalizer.inverse(self._grid(n))

    @torch.no_grad()
    def generate(self, n: int, seed: int = 321) -> np.ndarray:
        """``n`` EMA-generator images from fixed seeds, raw intensity units ``(n, C, H, W)``.

        Latents and per-image noise come from their own seeds, so the training's
        random streams are untouched (resuming stays exact)."""
        self.G_ema.eval()
        z = np.random.default_rng(seed).standard_normal((n, self.net_cfg.z_dim)).astype(np.float32)
        out = [self.G_ema(torch.from_numpy(z[i : i + 64]).to(self.device),
                          noise_mode=noise_generators(seed * 100_003 + np.arange(i, min(i + 64, n))))
               .float().cpu().numpy() for i in range(0, n, 64)]
        return self.normalizer.inverse(np.concatenate(out))

    def measure(self) -> dict:
        """Sample-quality metrics of G_ema now (NaN, with a warning, if they fail)."""
        t0 = time.perf_counter()
        n = int(self.cfg.metrics_samples)
        try:
            if self.quality is None:
                sampler = TileSampler(self.plate, self.cfg.resolution, self.data_cfg,
                                      self.normalizer, sites=self.metric_sites)
                reals = sampler.sample(n, np.random.default_rng(2)).numpy()
                self.quality = SampleQuality(self.normalizer.inverse(reals))
            values = self.quality(self.generate(n))
        except Exception as exc:  # a metric must never stop training
            warnings.warn(f"sample-quality metrics failed at {self.cur_nimg / 1000:.2f} kimg "
                          f"(training goes on): {exc}", stacklevel=2)
            values = {k: float("nan") for k in METRIC_NAMES}
        return {"kimg": self.cur_nimg / 1000, **values, "augment_p": self.aug_cfg.p,
                "metrics_s": time.perf_counter() - t0}

    def done(self) -> bool:
        c = self.cfg
        if c.kimg is not None and self.cur_nimg >= c.kimg * 1000:
            return True
        if c.minutes is not None and self.elapsed_s >= c.minutes * 60:
            return True
        return False

    def fraction(self) -> float:
        c = self.cfg
        fr = []
        if c.kimg is not None:
            fr.append(self.cur_nimg / (c.kimg * 1000))
        if c.minutes is not None:
            fr.append(self.elapsed_s / (c.minutes * 60))
        return float(min(1.0, max(fr))) if fr else 0.0


METRICS_FIELDS = ["kimg", *METRIC_NAMES, "augment_p", "metrics_s"]


def held_out_sites(plate) -> tuple[np.ndarray, np.ndarray]:
    """(training sites, held-out sites for the sample-quality metrics).

    Every 10th usable site is held out when the plate has at least 20; a
    smaller plate trains on all its sites and the metrics use them too."""
    usable = np.asarray(plate.usable_sites)
    if len(usable) < 20:
        return usable, usable
    held = usable[::10]
    return np.setdiff1d(usable, held), held


def _append_row(path: Path, fields: list[str], row: dict):
    new = not path.exists()
    with open(path, "a", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow(row)


def _drop_rows_after(path: Path, kimg: float):
    """Forget rows of ``path`` written after the checkpoint a run resumes from."""
    if not path.exists():
        return
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    keep = [r for r in rows if float(r["kimg"]) <= kimg + 1e-9]
    if len(keep) < len(rows):
        path.unlink()
        for r in keep:
            _append_row(path, list(rows[0].keys()), r)


def iterate_training(plate, out_dir, config: TrainConfig | None = None, resume: bool = False,
                     should_stop: Callable[[], bool] | None = None,
                     samples_every_s: float | None = None, **overrides) -> Iterator[dict]:
    """Generator of progress dicts; training stops cleanly when closed.

    Each dict has ``step, kimg, nimg, loss_G, loss_D, reg, real_score,
    fake_score, img_per_s, elapsed_s, fraction, checkpoint`` (path written at
    this step or None) and ``done``.  With ``samples_every_s``, the first
    dict, the last one and one at most every that many seconds also carry
    ``samples``: 16 fixed-seed EMA-generator images ``(16, C, H, W)`` float32
    in the plate's intensity units (for a live preview).

    Sample quality (``nn1_accuracy, kid, diversity``; see
    :mod:`napari_gandl.gan.metrics`) is measured at the start of a new run,
    at every snapshot and at the end; each measurement is appended to
    ``metrics.csv`` and its values (plus ``metrics_s``, the seconds it took)
    are added to that step's dict.
    """
    if isinstance(plate, (str, os.PathLike)):
        from napari_gandl.plate import open_plate

        plate = open_plate(plate)
    if config is None:
        config = make_config(**overrides)
    tr = Trainer(plate, out_dir, config, resume=resume)
    out_dir = Path(out_dir)
    if tr.rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.json").write_text(json.dumps(tr.cfg.to_dict(), indent=2))
        if tr.resumed_from_nimg is None:
            reals = np.concatenate([tr.sampler.sample(16, np.random.default_rng(1)).numpy()])
            save_grid(reals, out_dir / "samples" / "reals.png")
    loss_csv = out_dir / "losses.csv"
    metrics_csv = out_dir / "metrics.csv"
    measuring = tr.rank == 0 and tr.cfg.metrics_samples > 0

    def measure() -> dict:
        if not measuring:
            return {}
        m = tr.measure()
        _append_row(metrics_csv, METRICS_FIELDS, m)
        return {k: v for k, v in m.items() if k != "kimg"}

    pending = {}
    if tr.rank == 0 and tr.resumed_from_nimg is not None:
        _drop_rows_after(metrics_csv, tr.cur_nimg / 1000)
    elif tr.rank == 0:
        metrics_csv.unlink(missing_ok=True)
        pending = measure()
    dist = _dist()
    last_snap_nimg = tr.cur_nimg
    last_snap_time = time.time()
    last_sample_time = None
    stopped = False
    try:
        while True:
            stop = tr.done() or (should_stop is not None and should_stop())
            if dist is not None:
                flag = torch.tensor([1.0 if stop else 0.0])
                dist.broadcast(flag, src=0)
                stop = bool(flag.item())
            if stop:
                break
            t0 = time.time()
            stats = tr.step()
            dt = time.time() - t0
            tr.elapsed_s += dt
            ckpt = None
            snap_due = (tr.cur_nimg - last_snap_nimg >= tr.cfg.snapshot_kimg * 1000) or (
                time.time() - last_snap_time >= tr.cfg.snapshot_minutes * 60
            )
            if dist is not None:
                flag = torch.tensor([1.0 if snap_due else 0.0])
                dist.broadcast(flag, src=0)
                snap_due = bool(flag.item())
            if snap_due and not tr.done():
                ckpt = tr.save()
                pending.update(measure())
                last_snap_nimg, last_snap_time = tr.cur_nimg, time.time()
            row = {
                "step": tr.step_idx,
                "kimg": tr.cur_nimg / 1000,
                "nimg": tr.cur_nimg,
                **stats,
                "img_per_s": tr.cfg.batch / max(dt, 1e-9),
                "elapsed_s": tr.elapsed_s,
                "fraction": tr.fraction(),
                "checkpoint": str(ckpt) if ckpt else None,
                "done": False,
                **pending,
            }
            pending = {}
            if tr.rank == 0:
                _append_row(loss_csv, Trainer.LOSS_FIELDS, row)
                if samples_every_s is not None and (
                    last_sample_time is None or time.time() - last_sample_time >= samples_every_s
                ):
                    row["samples"] = tr.sample_images()
                    last_sample_time = time.time()
            yield row
    except GeneratorExit:
        stopped = True
    finally:
        # final (or cancellation) checkpoint; skipped when a loss diverged
        import sys

        exc = sys.exc_info()[1]
        if exc is None or isinstance(exc, GeneratorExit):
            path = tr.save()
            if not stopped:
                last = {
                    "step": tr.step_idx, "kimg": tr.cur_nimg / 1000, "nimg": tr.cur_nimg,
                    "elapsed_s": tr.elapsed_s, "fraction": tr.fraction(),
                    "checkpoint": str(path) if path else None, "done": True,
                    **measure(),
                }
                if samples_every_s is not None and tr.rank == 0:
                    last["samples"] = tr.sample_images()
                yield last


def train(plate, out_dir, preset: str = "quick", resolution: int | None = None,
          minutes: float | None = None, kimg: float | None = None, batch: int | None = None,
          device: str = "auto", resume: bool = False, seed: int | None = None,
          progress: Callable[[dict], None] | None = None,
          should_stop: Callable[[], bool] | None = None, **overrides) -> Path:
    """Train a GAN-DL model on ``plate`` (a Plate or a folder) into ``out_dir``.

    Returns the run directory (holding ``checkpoint.pt``, ``config.json``,
    ``losses.csv`` and ``samples/``).
    """
    cfg = make_config(preset, resolution=resolution, minutes=minutes, kimg=kimg, batch=batch,
                      device=device, seed=seed, **overrides)
    for info in iterate_training(plate, out_dir, cfg, resume=resume, should_stop=should_stop):
        if progress is not None:
            progress(info)
    return Path(out_dir)

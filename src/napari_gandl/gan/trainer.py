"""The GAN-DL trainer: networks, optimisers and state of one run; ``step()`` is one G/D iteration.

Lazy R1 (or WGAN-GP), G EMA, adaptive augmentation, optional domain-adversarial
alignment, resume from the run's checkpoint, and torchrun: gradients are
averaged across ranks (gloo on CPU, NCCL on CUDA) and only rank 0 writes files.
"""

from __future__ import annotations

import json
import random
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from napari_gandl.files import write_text
from napari_gandl.gan import loss as L
from napari_gandl.gan.ada import AdaptiveAugment
from napari_gandl.gan.align import TrainingAligner
from napari_gandl.gan.checkpoint import FORMAT, load_checkpoint
from napari_gandl.gan.config import RESUME_RETUNES, TrainConfig, resolve_cell_scale, resume_conflicts
from napari_gandl.gan.contrast import SiteContrast, same_well_or_other_plate
from napari_gandl.gan.info import CODES, CodeRecovery
from napari_gandl.gan.metrics import METRIC_NAMES, SampleQuality
from napari_gandl.gan.networks import NetworkConfig, build_networks, noise_generators
from napari_gandl.plate.display import save_grid
from napari_gandl.preprocessing.augment import AugmentConfig, augment
from napari_gandl.preprocessing.normaliser import Normalizer, check_bit_depth, fit_normalizer
from napari_gandl.preprocessing.sampling import DataConfig, TileSampler
from napari_gandl.torch_utils.checkpoint import CHECKPOINT_NAME, save_checkpoint
from napari_gandl.torch_utils.device import resolve_device
from napari_gandl.torch_utils.distributed import (
    average_gradients, broadcast_modules, init_distributed, process_group,
)
from napari_gandl.torch_utils.optim import Adam
from napari_gandl.torch_utils.rng import load_rng_state, save_rng_state
from napari_gandl.torch_utils.runs import RunLength, TrainingDiverged


class Trainer:
    """Holds networks, optimisers and state; ``step()`` runs one iteration."""

    LOSS_FIELDS = ["step", "kimg", "loss_G", "loss_D", "reg", "real_score", "fake_score",
                   "augment_p", "contrast_loss", "info_loss", "align_loss", "align_acc", "align_weight", "img_per_s",
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
            check_resumable(saved, plate, config, ckpt_path)
            # the saved run defines the model and schedule; only the length may be extended
            if config.kimg is not None and (saved.kimg is None or config.kimg > saved.kimg):
                saved.kimg = config.kimg
            if config.minutes is not None and (saved.minutes is None or config.minutes > saved.minutes):
                saved.minutes = config.minutes
            saved.device = config.device
            saved.threads = config.threads
            for key in RESUME_RETUNES:
                if key in getattr(config, "given", {}):
                    setattr(saved, key, getattr(config, key))
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
        self.colours = [stain.color for stain in plate.stains]  # of the sample grids

        self.net_cfg = NetworkConfig.from_dict(
            {**config.network, "img_channels": plate.n_channels, "resolution": config.resolution,
             "codes": (config.network.get("codes") or CODES) if config.info > 0 else 0}
        )
        config.network = self.net_cfg.to_dict()
        resolve_cell_scale(config, plate)  # a new run's --scale auto (a resumed one has its factor)
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
                                           sync=average_gradients)
            plan = self.aligner.plan.to_dict()
            if ckpt is not None and config.align_plan.get("classes") != plan["classes"]:
                raise ValueError(f"{ckpt_path}: the run aligned batches {config.align_plan.get('classes')} "
                                 f"but the plate now has {plan['classes']}")
            config.align_plan = plan
            if plan["note"] and self.rank == 0:
                warnings.warn(f"--align {config.align}: {plan['note']}", stacklevel=2)
        self.contrast = None
        if config.contrastive > 0:
            self.contrast = SiteContrast(self.D, self.device, sync=average_gradients)
        self.info = None
        if config.info > 0:
            self.info = CodeRecovery(self.D, self.net_cfg.codes, self.device, sync=average_gradients)
        #: the small networks that train beside D, by their checkpoint key
        self.heads = {name: head for name, head in (("align", self.aligner), ("contrast", self.contrast),
                                                    ("info", self.info)) if head is not None}
        if config.contrast_pairs == "well" and self.rank == 0:
            single, wells = self.sampler.wells_with_one_site()
            if single:
                warnings.warn(f"--contrast-pairs well: {single} of the {wells} wells trained on have one "
                              f"site, so their crops are paired within the site", stacklevel=2)
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
            self.opt_G.lr, self.opt_D.lr = config.g_lr, config.d_lr * r1_ratio  # --g-lr/--d-lr on resume
            for name, head in self.heads.items():
                head.load_state_dict(ckpt[name])
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
            broadcast_modules((self.G, self.D, self.G_ema) + tuple(head.head for head in self.heads.values()))
        self.grid_z = torch.from_numpy(
            np.random.default_rng(123).standard_normal((16, self.net_cfg.z_dim)).astype(np.float32)
        ).to(self.device)

    # -- helpers -----------------------------------------------------------
    def _autocast(self):
        if self.amp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return torch.autocast("cpu", enabled=False)

    def _aug(self, x):
        return augment(x, self.aug_cfg)

    def _judge(self, fakes):
        """D's logits of the augmented fakes, with its embedding of them when code recovery is on."""
        if self.info is None:
            return self.D(self._aug(fakes)).float(), None
        logits, embedding = self.D.logits_and_embedding(self._aug(fakes))
        return logits.float(), embedding

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
                f"{self.out_dir / CHECKPOINT_NAME} was left untouched -- go on from it with a larger "
                f"--r1-gamma (now {self.cfg.r1_gamma:g}) or smaller --g-lr/--d-lr and --resume"
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
        for head in self.heads.values():
            head.zero_grad()
        with self._autocast():
            real_logits = D(self._aug(reals)).float()
            fake_logits, fake_embedding = self._judge(fakes.detach())
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
        if self.contrast is not None:  # D's embedding of a crop and its partner agree (contrast.py)
            partners = self.sampler.partners(self.np_rng, cfg.contrast_pairs)
            exclude = None
            if cfg.contrast_pairs == "well":
                plates, wells = (codes[self.sampler.last_sites] for codes in self.sampler.well_codes)
                exclude = same_well_or_other_plate(plates, wells)
            with self._autocast():
                contrast = self.contrast.loss(D, reals, partners, exclude)
            total_D = total_D + cfg.contrastive * contrast
            stats["contrast_loss"] = float(contrast.detach())
        if self.info is not None:  # D's embedding reads G's codes (info.py)
            info = self.info.loss(fake_embedding, z)
            total_D = total_D + cfg.info * info
            stats["info_loss"] = float(info.detach())
        if self.aligner is not None:  # D's embedding learns to hide the batch (gradient reversal)
            with self._autocast():
                align, align_stats = self.aligner.loss(D, reals, self.sampler.last_sites, self.fraction())
            total_D = total_D + align
            stats.update(align_stats)
        self._check("discriminator loss", total_D.detach())
        total_D.backward()
        average_gradients(D)
        self.opt_D.step()
        for head in self.heads.values():
            head.step()
        if self.ada is not None:
            self.ada.accumulate(real_logits)
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
            gl, embedding = self._judge(fakes)
        loss_G = L.g_loss(cfg.loss, gl)
        total_G = loss_G
        if self.info is not None:  # G makes its codes readable; the head learns only in D's step
            self.info.head.requires_grad_(False)
            total_G = total_G + cfg.info * self.info.loss(embedding, z)
            self.info.head.requires_grad_(True)
        self._check("generator loss", total_G.detach())
        total_G.backward()
        average_gradients(G)
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
            dist = process_group()
            self.aug_cfg.p = self.ada.update(cfg.batch * self.ada.interval,
                                             reduce=dist.all_reduce if dist else None)
        stats["augment_p"] = self.aug_cfg.p
        return stats

    # -- persistence -------------------------------------------------------
    def checkpoint_payload(self) -> dict:
        return {
            "format": FORMAT,
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
            **{name: head.state_dict() for name, head in self.heads.items()},
        }

    def save(self, samples: bool = True) -> Path | None:
        dist = process_group()
        path = None
        if self.rank == 0:
            path = save_checkpoint(self.out_dir / CHECKPOINT_NAME, self.checkpoint_payload())
            write_text(self.out_dir / "config.json", json.dumps(self.cfg.to_dict(), indent=2))
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
        save_grid(imgs, self.colours, self.out_dir / "samples" / f"fakes{self.cur_nimg // 1000:06d}.png")
        save_grid(imgs, self.colours, self.out_dir / "samples" / "fakes_latest.png")

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

    def held_out_crops(self, n: int, seed: int = 2) -> np.ndarray:
        """``n`` real crops of the sites held out from training, raw intensity units ``(n, C, H, W)``; at the
        default seed, those the sample-quality metrics compare the generator's images with."""
        sampler = TileSampler(self.plate, self.cfg.resolution, self.data_cfg, self.normalizer,
                              sites=self.metric_sites)
        return self.normalizer.inverse(sampler.sample(n, np.random.default_rng(seed)).numpy())

    def measure(self) -> dict:
        """Sample-quality metrics of G_ema now (NaN, with a warning, if they fail)."""
        t0 = time.perf_counter()
        n = int(self.cfg.metrics_samples)
        try:
            if self.quality is None:
                self.quality = SampleQuality(self.held_out_crops(n))
            values = self.quality(self.generate(n))
        except Exception as exc:  # a metric must never stop training
            warnings.warn(f"sample-quality metrics failed at {self.cur_nimg / 1000:.2f} kimg "
                          f"(training goes on): {exc}", stacklevel=2)
            values = {k: float("nan") for k in METRIC_NAMES}
        return {"kimg": self.cur_nimg / 1000, **values, "augment_p": self.aug_cfg.p,
                "metrics_s": time.perf_counter() - t0}

    def done(self) -> bool:
        return RunLength(self.cfg.kimg, self.cfg.minutes).done(self.cur_nimg, self.elapsed_s)

    def fraction(self) -> float:
        return RunLength(self.cfg.kimg, self.cfg.minutes).fraction(self.cur_nimg, self.elapsed_s)


def check_resumable(saved: TrainConfig, plate, config: TrainConfig, path: Path) -> None:
    """A one-line ValueError naming what differs when ``plate`` (its stains, their bit depth) or
    the options given to ``config`` cannot continue the run saved at ``path``."""
    if plate is not None:
        if saved.channel_names and list(plate.channel_names) != list(saved.channel_names):
            raise ValueError(f"{path} was trained on {len(saved.channel_names)} stains "
                             f"({', '.join(saved.channel_names)}) but {plate.root} has "
                             f"{plate.n_channels} ({', '.join(plate.channel_names)}); resume on the run's "
                             f"plate or train a new run in another folder")
        check_bit_depth(Normalizer.from_dict(saved.normalizer), plate, path)
    conflicts = resume_conflicts(saved, getattr(config, "given", {}))
    if conflicts:
        raise ValueError(f"{path}: a resumed run keeps its own settings, but these differ: "
                         f"{'; '.join(conflicts)}; drop them or train a new run in another folder")


def held_out_sites(plate) -> tuple[np.ndarray, np.ndarray]:
    """(training sites, held-out sites for the sample-quality metrics).

    Every 10th site not known to miss a file is held out when the plate has at least 20; a
    smaller plate trains on all its sites and the metrics use them too."""
    usable = plate.unflagged_sites
    if len(usable) < 20:
        return usable, usable
    held = usable[::10]
    return np.setdiff1d(usable, held), held

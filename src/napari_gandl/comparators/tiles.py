"""What the tile-trained methods (ConvAE, SimCLR, DINO, MAE) share: the residual encoder, the
run config, and the training loop with checkpoints, resume and ``losses.csv``.

A method supplies a network with ``loss(batch, aug) -> scalar`` (``aug``
augments a batch) and ``embed(tiles) -> (n, dim)``, and its own defaults,
augmentation included.  A network may also have

* ``after_step(fraction)``: called after every optimiser step with the share of
  the run done (DINO moves its teacher there);
* ``LOG_FIELDS`` and a ``log`` dict its ``loss`` fills: more columns of
  ``losses.csv`` and of the progress dicts;
* ``preview(tiles, generator) -> (n, C, r, r)``: normalised images that show
  what it learns (MAE's reconstructions), drawn into ``samples/`` at every
  checkpoint and sent with the progress when asked.

Only parameters that require a gradient are optimised (a teacher moved by
``after_step`` is not).  Training draws random training-resolution crops of
normalised sites, as GAN-DL does (:class:`TileSampler`, per-stain normaliser
fitted on the plate), and keeps a checkpoint of state_dicts + JSON
(:mod:`napari_gandl.torch_utils.checkpoint`: atomic write,
``torch.load(weights_only=True)``) every ``snapshot_seconds`` and at the end,
so a killed run resumes where its last checkpoint left it; the rows of
``losses.csv`` written after that checkpoint are dropped when it resumes.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from napari_gandl.config import Config
from napari_gandl.files import output_lock, write_text
from napari_gandl.preprocessing.augment import AugmentConfig, augment
from napari_gandl.plate import open_plate
from napari_gandl.plate.display import save_grid
from napari_gandl.preprocessing.normaliser import Normalizer, check_bit_depth, fit_normalizer
from napari_gandl.preprocessing.sampling import DataConfig, TileSampler
from napari_gandl.torch_utils.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from napari_gandl.torch_utils.device import resolve_device
from napari_gandl.torch_utils.optim import Adam
from napari_gandl.torch_utils.rng import load_rng_state, save_rng_state
from napari_gandl.torch_utils.runs import RunLength, TrainingDiverged, append_row, drop_rows_after

DEFAULT_MINUTES = 10.0  # GAN-DL's quick preset budget
LOSS_FIELDS = ["step", "kimg", "loss", "img_per_s", "elapsed_s"]  # of losses.csv, then the network's own
PREVIEW_TILES = 8  # fixed tiles whose preview is drawn


@dataclass
class TileTrainConfig(Config):
    """Everything a tile-trained run needs to be rebuilt and resumed (saved as JSON)."""

    method: str
    resolution: int = 64
    batch: int = 32
    lr: float = 1e-3
    minutes: float | None = None
    kimg: float | None = None
    seed: int = 0
    snapshot_seconds: float = 30.0
    network: dict = field(default_factory=dict)
    augment: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    normalizer: dict = field(default_factory=dict)
    channel_names: list = field(default_factory=list)
    plate: str = ""



class _ResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 3, padding=1), nn.GroupNorm(8, ch), nn.SiLU(),
                                  nn.Conv2d(ch, ch, 3, padding=1), nn.GroupNorm(8, ch))

    def forward(self, x):
        return nn.functional.silu(x + self.body(x))


class ResEncoder(nn.Module):
    """Residual conv encoder: ``(n, C, r, r)`` tiles -> ``(n, widths[-1], r/16, r/16)``.

    A stem at full resolution, then four stages of (2x average-pool, conv,
    residual block).  GroupNorm instead of BatchNorm: a tile's features never
    depend on its batch mates, in training or embedding.
    """

    def __init__(self, in_ch: int, widths=(16, 32, 64, 128, 256)):
        super().__init__()
        layers = [nn.Conv2d(in_ch, widths[0], 3, padding=1), nn.SiLU()]
        for cin, cout in zip(widths[:-1], widths[1:]):
            layers += [nn.AvgPool2d(2), nn.Conv2d(cin, cout, 3, padding=1), nn.GroupNorm(8, cout),
                       nn.SiLU(), _ResBlock(cout)]
        self.net = nn.Sequential(*layers)
        self.out_ch = widths[-1]
        self.reduction = 2 ** (len(widths) - 1)

    def forward(self, x):
        return self.net(x)


def checkpoint_format(method: str) -> str:
    return f"napari-gandl-{method}/1"


def load_tile_checkpoint(name: str, source):
    """The checkpoint of a ``name`` run folder (or file), checked to be one."""
    return load_checkpoint(source, checkpoint_format(name), f"{name} checkpoint")


def iterate_tile_training(name: str, build: Callable[[int, TileTrainConfig], nn.Module], defaults: dict,
                          plate, out_dir, minutes=None, kimg=None, device="auto", resume=False,
                          seed=0, samples_every_s: float | None = None,
                          should_stop: Callable[[], bool] | None = None) -> Iterator[dict]:
    """Train ``build(n_stains, cfg)`` on random tiles of ``plate``; yields progress dicts.

    Each dict: ``step, kimg, nimg, loss, img_per_s, elapsed_s, fraction,
    eta_s, checkpoint`` (path written at this step or None), ``done`` and the
    network's ``LOG_FIELDS``; every step is a row of ``losses.csv``.  With
    ``samples_every_s`` and a network that previews, the first dict, the last
    and one at most every that many seconds carry ``samples``: the preview in
    the plate's intensity units.
    Closing the generator, or ``should_stop()`` turning true, stops after writing a checkpoint.  With
    ``resume`` an existing run continues (its length may only grow).  The run folder is
    locked while it trains: a second run into it is refused, naming the first.
    """
    plate = open_plate(plate)
    with output_lock(out_dir, folder=True) as out_dir:
        return (yield from _train(name, build, defaults, plate, out_dir, minutes, kimg, device, resume, seed,
                                  samples_every_s, should_stop))


def _train(name, build, defaults, plate, out_dir: Path, minutes, kimg, device, resume, seed,
           samples_every_s, should_stop) -> Iterator[dict]:
    ckpt_path = out_dir / CHECKPOINT_NAME
    fmt = checkpoint_format(name)
    dev = resolve_device(device)
    ckpt = None
    if ckpt_path.exists():
        if not resume:
            raise FileExistsError(f"{ckpt_path} exists; pass resume=True (--resume) to continue that "
                                  f"run or choose another output folder")
        ckpt = load_tile_checkpoint(name, ckpt_path)
        cfg = TileTrainConfig.from_dict(ckpt["config"])
        if kimg is not None and (cfg.kimg is None or kimg > cfg.kimg):
            cfg.kimg = float(kimg)
        if minutes is not None and (cfg.minutes is None or minutes > cfg.minutes):
            cfg.minutes = float(minutes)
    else:
        if minutes is None and kimg is None:
            minutes = DEFAULT_MINUTES
        cfg = TileTrainConfig(method=name, minutes=minutes, kimg=kimg, seed=int(seed),
                              **{k: v for k, v in defaults.items() if k != "method"})
        cfg.channel_names = list(plate.channel_names)
        cfg.plate = str(plate.root)
        cfg.normalizer = fit_normalizer(plate, DataConfig.from_dict(cfg.data)).to_dict()
    if list(plate.channel_names) != list(cfg.channel_names):
        raise ValueError(f"{ckpt_path} was trained on the stains {cfg.channel_names}, "
                         f"but {plate.root} has {list(plate.channel_names)}")
    check_bit_depth(Normalizer.from_dict(cfg.normalizer), plate, ckpt_path)

    torch.manual_seed(cfg.seed)
    np_rng = np.random.default_rng(cfg.seed)
    sampler = TileSampler(plate, cfg.resolution, DataConfig.from_dict(cfg.data),
                          Normalizer.from_dict(cfg.normalizer))
    aug_cfg = AugmentConfig.from_dict(cfg.augment)
    net = build(plate.n_channels, cfg).to(dev)
    opt = Adam([p for p in net.parameters() if p.requires_grad], lr=cfg.lr, betas=(0.9, 0.999))
    nimg, step, elapsed = 0, 0, 0.0
    loss_csv = out_dir / "losses.csv"
    if ckpt is not None:
        net.load_state_dict(ckpt["net"])
        opt.load_state_dict(ckpt["opt"])
        nimg, step, elapsed = int(ckpt["nimg"]), int(ckpt["step"]), float(ckpt["elapsed_s"])
        load_rng_state(ckpt["rng"], np_rng)
        drop_rows_after(loss_csv, nimg / 1000)  # steps after the checkpoint are trained again
    else:
        loss_csv.unlink(missing_ok=True)  # of an earlier run killed before its first checkpoint
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / "config.json", json.dumps(cfg.to_dict(), indent=2))
    fields = LOSS_FIELDS + list(getattr(net, "LOG_FIELDS", ()))
    preview = getattr(net, "preview", None)
    if preview is not None:  # fixed tiles, from their own random streams: training's stay as they are
        preview_tiles = sampler.sample(PREVIEW_TILES, np.random.default_rng(1)).to(dev)
        colours = [stain.color for stain in plate.stains]

    def previewed() -> np.ndarray:
        net.eval()
        with torch.no_grad():
            return preview(preview_tiles, torch.Generator(dev).manual_seed(1)).float().cpu().numpy()

    def fraction() -> float:
        return RunLength(cfg.kimg, cfg.minutes).fraction(nimg, elapsed)

    def save() -> Path:
        path = save_checkpoint(ckpt_path, {
            "format": fmt, "net": net.state_dict(), "opt": opt.state_dict(), "nimg": nimg,
            "step": step, "elapsed_s": elapsed, "rng": save_rng_state(np_rng), "config": cfg.to_dict()})
        if preview is not None:
            images = previewed()
            save_grid(images, colours, out_dir / "samples" / f"preview{nimg // 1000:06d}.png", cols=PREVIEW_TILES)
            save_grid(images, colours, out_dir / "samples" / "preview_latest.png", cols=PREVIEW_TILES)
        return path

    def samples(row: dict, last_sent: list) -> dict:
        """``row`` with the preview (plate intensity units) when one is due."""
        if preview is not None and samples_every_s is not None and (
                row["done"] or not last_sent or time.time() - last_sent[0] >= samples_every_s):
            row["samples"] = Normalizer.from_dict(cfg.normalizer).inverse(previewed())
            last_sent[:] = [time.time()]
        return row

    last_save, last_sent = time.time(), []
    try:
        while fraction() < 1.0 and not (should_stop is not None and should_stop()):
            t0 = time.perf_counter()
            net.train()
            x = sampler.sample(cfg.batch, np_rng).to(dev)
            loss = net.loss(x, lambda b: augment(b, aug_cfg))
            if not torch.isfinite(loss):
                raise TrainingDiverged(f"{name} loss became {loss.item()} at step {step}; the last "
                                       f"good checkpoint {ckpt_path} was left untouched")
            opt.zero_grad()
            loss.backward()
            opt.step()
            dt = time.perf_counter() - t0
            nimg, step, elapsed = nimg + cfg.batch, step + 1, elapsed + dt
            if hasattr(net, "after_step"):
                net.after_step(fraction())
            written = None
            if time.time() - last_save >= cfg.snapshot_seconds and fraction() < 1.0:
                written, last_save = save(), time.time()
            frac = fraction()
            row = {"step": step, "kimg": nimg / 1000, "nimg": nimg, "loss": float(loss.detach()),
                   **getattr(net, "log", {}), "img_per_s": cfg.batch / max(dt, 1e-9), "elapsed_s": elapsed,
                   "fraction": frac, "eta_s": elapsed * (1 - frac) / max(frac, 1e-9),
                   "checkpoint": str(written) if written else None, "done": False}
            append_row(loss_csv, fields, row)
            yield samples(row, last_sent)
    except GeneratorExit:  # closed by the caller (a worker that quits, a caller's error): keep what was trained
        save()
        raise
    yield samples({"step": step, "kimg": nimg / 1000, "nimg": nimg, "elapsed_s": elapsed,
                   "fraction": min(fraction(), 1.0),
                   "eta_s": 0.0, "checkpoint": str(save()), "done": True}, last_sent)

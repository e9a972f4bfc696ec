"""Checkpoints: tensors only (state_dicts) plus a JSON config; never pickled code.

A checkpoint file holds a dict of state_dicts (G, D, G_ema, both optimisers),
plain integers / floats and JSON strings (configuration, RNG states that are
not tensors, package version).  It is written atomically (temporary file in
the same folder, fsync, rename) so a crash mid-write leaves the previous
checkpoint intact, and loaded with ``torch.load(weights_only=True)`` so a
file carrying pickled code is refused instead of executed.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import zipfile
from pathlib import Path

import torch

__all__ = [
    "CheckpointError",
    "CHECKPOINT_NAME",
    "save_checkpoint",
    "load_checkpoint",
    "resolve_checkpoint",
    "read_tensors",
    "Checkpoint",
    "GANModel",
    "load_model",
]

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT = "napari-gandl-gan/1"


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated, unsafe or not ours; names the file."""


def _package_version() -> str:
    try:
        from napari_gandl import __version__

        return str(__version__)
    except Exception:  # pragma: no cover
        return "unknown"


def resolve_checkpoint(path, what: str = "GAN checkpoint") -> Path:
    """A run directory (-> its checkpoint.pt) or a checkpoint file."""
    p = Path(path)
    if p.is_dir():
        p = p / CHECKPOINT_NAME
    if not p.exists():
        raise CheckpointError(f"no {what} at {p}")
    return p


def read_tensors(path: Path, what: str, map_location="cpu"):
    """``torch.load(weights_only=True)`` of ``path``; failures are one-line
    :class:`CheckpointError` messages naming the file and ``what`` it should be."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"refusing to load {path}: it contains pickled objects other than tensors "
            f"(possibly code), which a {what} never holds ({exc.__class__.__name__})"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, struct.error) as exc:
        # struct.error: a truncated file in the legacy (pre-1.6, non-zip) format
        raise CheckpointError(
            f"cannot read {what} {path}: the file is truncated or corrupt ({exc})"
        ) from None


def save_checkpoint(path, payload: dict) -> Path:
    """Atomically write ``payload`` (tensors, state_dicts, plain types)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = dict(payload)
    payload.setdefault("format", FORMAT)
    payload.setdefault("package_version", _package_version())
    for key in ("config", "extra"):
        if key in payload and not isinstance(payload[key], str):
            payload[key] = json.dumps(payload[key], sort_keys=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    try:  # make the rename durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return path


class Checkpoint(dict):
    """Loaded checkpoint: a dict with ``config``/``extra`` decoded from JSON."""

    @property
    def path(self) -> Path:
        return self["_path"]


def load_checkpoint(path, map_location="cpu", format: str = FORMAT,
                    what: str = "GAN checkpoint") -> Checkpoint:
    """Load a checkpoint file or run directory safely.

    Raises :class:`CheckpointError` (a ``ValueError``) naming the file when it
    is missing, truncated/corrupt, carries pickled objects other than tensors
    and plain containers, or is not a napari-gandl checkpoint of ``format``
    (other trained embedders save their own format through :func:`save_checkpoint`).
    """
    p = resolve_checkpoint(path, what)
    data = read_tensors(p, what, map_location)
    if not isinstance(data, dict) or data.get("format") != format:
        raise CheckpointError(f"{p} is not a napari-gandl {what}")
    out = Checkpoint(data)
    for key in ("config", "extra"):
        if isinstance(out.get(key), str):
            out[key] = json.loads(out[key])
    out["_path"] = p
    return out


class GANModel:
    """Networks and settings of a trained run, ready for inference.

    Attributes: ``G`` (the EMA generator), ``D`` (discriminator, eval mode),
    ``config`` (training config dict), ``normalizer``, ``resolution``,
    ``scale`` (downsampling factor used for training), ``channel_names``,
    ``cur_nimg``, ``path``.
    """

    def __init__(self, ckpt: "Checkpoint", device="cpu"):
        from ..embedding.sampling import DataConfig, Normalizer
        from .networks import Discriminator, Generator, NetworkConfig

        cfg = ckpt["config"]
        self.config = cfg
        self.path = ckpt.path
        self.device = torch.device(device)
        net = NetworkConfig.from_dict(cfg["network"])
        self.net_config = net
        try:
            self.G = Generator(net).to(self.device)
            self.G.load_state_dict(ckpt["G_ema"])
            self.D = Discriminator(net).to(self.device)
            self.D.load_state_dict(ckpt["D"])
        except (RuntimeError, KeyError) as exc:
            raise CheckpointError(f"{ckpt.path} does not match its own network config: {exc}") from None
        self.G.eval().requires_grad_(False)
        self.D.eval().requires_grad_(False)
        self.normalizer = Normalizer.from_dict(cfg["normalizer"])
        self.resolution = int(net.resolution)
        self.scale = int(DataConfig.from_dict(cfg.get("data", {})).scale)
        self.channel_names = list(cfg.get("channel_names", []))
        self.img_channels = net.img_channels
        self.cur_nimg = int(ckpt.get("cur_nimg", 0))


def load_model(path, device="cpu") -> GANModel:
    """Load a run directory / checkpoint file for embedding, generation, projection."""
    return GANModel(load_checkpoint(path, map_location="cpu"), device=device)

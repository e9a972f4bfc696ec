"""Checkpoint files: tensors only (state_dicts) plus JSON; never pickled code.

A checkpoint holds a dict of state_dicts, plain numbers and JSON strings
(configuration, RNG states that are not tensors, package version), tagged with
the ``format`` of the model that wrote it. It is written atomically (temporary
file in the same folder, fsync, rename) so a crash mid-write leaves the
previous checkpoint intact. Before loading, the CRC-32 that the zip archive
records for each of its members is checked, so a file whose bytes changed
after it was written (a bad disk, a partial copy, an edit in place) is named as
corrupt instead of loading as different numbers; it costs one read of the file
(docs/reliability.md). It is then loaded with ``torch.load(weights_only=True)``
so a file carrying pickled code is refused instead of executed.
"""

from __future__ import annotations

import json
import pickle
import pickletools
import struct
import zipfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

from napari_gandl.files import atomic_path

CHECKPOINT_NAME = "checkpoint.pt"


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated, unsafe or not ours; names the file."""


def _package_version() -> str:
    try:
        return version("napari-gandl")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def resolve_checkpoint(path, what: str) -> Path:
    """A run directory (-> its checkpoint.pt) or a checkpoint file."""
    p = Path(path)
    if p.is_dir():
        p = p / CHECKPOINT_NAME
    if not p.exists():
        raise CheckpointError(f"no {what} at {p}")
    return p


def _corrupt(path: Path, what: str, detail) -> CheckpointError:
    return CheckpointError(f"cannot read {what} {path}: the file is truncated or corrupt ({detail})")


def check_integrity(path: Path, what: str) -> None:
    """A :class:`CheckpointError` naming ``path`` as corrupt unless it is a zip archive whose
    members all match their recorded CRC-32 (torch's format), or a well-formed pickle stream
    (torch's legacy format, which records no checksum)."""
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise _corrupt(path, what, exc) from None
        if bad is not None:
            raise _corrupt(path, what, f"{bad} fails its CRC check: its bytes changed after it was written")
        return
    try:
        with open(path, "rb") as fh:
            ops = [op.name for op, _, _ in pickletools.genops(fh)]  # the first pickle; stops at its end
        if ops[0] != "PROTO":  # torch (and any pickle of protocol 2 or later) starts with it
            raise ValueError
    except Exception:  # any failure to parse means the bytes are not a pickle
        raise _corrupt(path, what, "neither a zip archive nor a pickle stream") from None


def read_tensors(path: Path, what: str, map_location="cpu"):
    """``torch.load(weights_only=True)`` of ``path`` after :func:`check_integrity`; failures are
    one-line :class:`CheckpointError` messages naming the file and ``what`` it should be."""
    check_integrity(path, what)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:  # the bytes are intact: the writer put more than tensors there
        raise CheckpointError(
            f"refusing to load {path}: it contains pickled objects other than tensors "
            f"(possibly code), which a {what} never holds ({exc.__class__.__name__})"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, struct.error) as exc:
        # struct.error: a truncated file in the legacy (pre-1.6, non-zip) format
        raise _corrupt(path, what, exc) from None


def save_checkpoint(path, payload: dict) -> Path:
    """Atomically write ``payload`` (tensors, state_dicts, plain types; ``format`` names the model)."""
    if "format" not in payload:
        raise ValueError("a checkpoint payload names its format")
    payload = dict(payload)
    payload.setdefault("package_version", _package_version())
    for key in ("config", "extra"):
        if key in payload and not isinstance(payload[key], str):
            payload[key] = json.dumps(payload[key], sort_keys=True)
    with atomic_path(path, durable=True) as tmp, open(tmp, "wb") as fh:
        torch.save(payload, fh)  # through a Python file, a full disk is an OSError (errno 28)
    return Path(path)


class Checkpoint(dict):
    """Loaded checkpoint: a dict with ``config``/``extra`` decoded from JSON."""

    @property
    def path(self) -> Path:
        return self["_path"]


def load_checkpoint(path, format: str, what: str, map_location="cpu") -> Checkpoint:
    """Load a checkpoint file or run directory of ``format`` safely.

    Raises :class:`CheckpointError` (a ``ValueError``) naming the file when it
    is missing, truncated/corrupt, carries pickled objects other than tensors
    and plain containers, or is not a napari-gandl checkpoint of ``format``.
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

"""The torch device a command asked for."""

from __future__ import annotations

import torch

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device="auto") -> torch.device:
    """``auto`` (or None): CUDA when there is a GPU, else the CPU; ``cpu``/``cuda``/a
    ``torch.device`` as given. A ValueError when CUDA is asked for and absent."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(str(device))
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available")
    return dev

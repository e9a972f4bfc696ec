"""Every random stream of a run (torch, CUDA, NumPy, Python) as checkpointable state."""

from __future__ import annotations

import json
import random

import numpy as np
import torch


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

"""Draw docs/images/architecture.png: the package's layers as pyproject.toml's import-linter contract
declares them (the same list tests/test_architecture.py checks), so the picture and the tree agree.

    .venv/bin/python docs/make_architecture_figure.py
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

#: what each part holds, in a few words
ROLES = {
    "cli": "the gandl command", "_view": "gandl view", "_widgets": "the docks (Qt)", "_reader": "napari reader",
    "_sample_data": "sample screen", "_viewer": "a plate in a viewer", "viewmodels": "docks' state and jobs",
    "analysis": "normalise, SVM, E2/C2, dose, report", "embedding": "registry, pipeline, methods",
    "gan": "StyleGAN2: networks, trainer", "comparators": "ConvAE, SimCLR, DenseNet",
    "preprocessing": "normalise, tiles, crops, scale", "features": "handcrafted",
    "torch_utils": "device, Adam, checkpoints", "plate": "RxRx / TIFF folders", "tables": "embedding tables",
    "synthetic": "synthetic screens", "columns": "site-table names", "files": "atomic writes, locks",
    "config": "saved settings", "palettes": "colours",
}


def layers() -> list[list[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contract = next(c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers")
    return [[m.strip() for m in layer.split("|")] for layer in contract["layers"]]


def main() -> Path:
    rows = layers()
    width = max(len(r) for r in rows)
    fig, ax = plt.subplots(figsize=(2.3 * width + 1.5, 0.78 * len(rows) + 0.6), dpi=110)
    for y, row in enumerate(reversed(rows)):
        for x, name in enumerate(row):
            left = x * (width / len(row)) + 0.05
            w = width / len(row) - 0.1
            ax.add_patch(FancyBboxPatch((left, y + 0.1), w, 0.8, boxstyle="round,pad=0.02",
                                        fc="#e8eef7" if not name.startswith("_") and name != "cli" else "#f7eee1",
                                        ec="#4a5a70", lw=1))
            ax.text(left + w / 2, y + 0.62, name, ha="center", va="center", fontsize=10, weight="bold")
            ax.text(left + w / 2, y + 0.32, ROLES.get(name, ""), ha="center", va="center", fontsize=7.5,
                    color="#333")
    ax.annotate("", xy=(width + 0.45, 0.1), xytext=(width + 0.45, len(rows) - 0.1),
                arrowprops=dict(arrowstyle="->", lw=1.2, color="#4a5a70"))
    ax.text(width + 0.6, len(rows) / 2, "imports go down only", rotation=270, va="center", fontsize=9)
    ax.set_xlim(-0.1, width + 1.0)
    ax.set_ylim(0, len(rows))
    ax.axis("off")
    out = ROOT / "docs" / "images" / "architecture.png"
    fig.savefig(out, bbox_inches="tight")
    return out


if __name__ == "__main__":
    print(main())

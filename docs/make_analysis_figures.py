"""Regenerate the figures of docs/analysis.md.

Writes the synthetic screen (demo preset), computes the handcrafted
features, runs ``analyse`` and copies the E2 scatter and the dose-response
curves to docs/images/.

    python docs/make_analysis_figures.py [--plate EXISTING_PLATE]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from napari_gandl.analysis import analyse
from napari_gandl.embedding.methods.handcrafted import handcrafted_features

IMAGES = Path(__file__).resolve().parent / "images"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--plate", type=Path)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        plate = args.plate
        if plate is None:
            from napari_gandl.synthetic import write_sample_plate
            plate = write_sample_plate(tmp / "plate", preset="demo", seed=0)
        feats = handcrafted_features(plate)
        rep = analyse(feats, out_dir=tmp / "report", normalise="centerscale",
                      ground_truth=plate / "ground_truth" / "compounds.csv")
        IMAGES.mkdir(exist_ok=True)
        for src, dst in (("e2.png", "analysis_e2.png"), ("dose_curves.png", "analysis_dose_curves.png")):
            shutil.copyfile(tmp / "report" / src, IMAGES / dst)
            print(IMAGES / dst)
        print("ground-truth AUC", rep.get("ground_truth", {}).get("auc"))


if __name__ == "__main__":
    main()

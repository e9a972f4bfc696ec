"""Writing a synthetic screen to disk in the RxRx layout, with its ground truth beside it."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from scipy.ndimage import gaussian_filter

from napari_gandl.columns import ACTIVE, MOCK, UV
from napari_gandl.synthetic.design import (
    CELL_TYPES, DOSES_UM, GENERATOR_VERSION, METADATA_COLUMNS, PRESETS, RXRX1_CELL_TYPES, RXRX1_METADATA_COLUMNS,
    SMILES, ScreenDesign,
)
from napari_gandl.synthetic.render import render_site, shading


def well_names(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` distinct inner wells of a 384-well plate (rows B-O, columns 2-23), shuffled."""
    inner = [f"{r}{c:02d}" for r in "BCDEFGHIJKLMNO" for c in range(2, 24)]
    if n > len(inner):
        raise ValueError(f"a 384-well plate has {len(inner)} inner wells, the design needs {n}")
    return list(rng.choice(inner, size=n, replace=False))


def design_wells(design: ScreenDesign, rng: np.random.Generator) -> pd.DataFrame:
    """One row per well of every plate: condition, compound, dose, expected infection."""
    rows = []
    for cell in CELL_TYPES:
        experiment = f"{cell.name}-1"
        for plate in range(1, design.plates_per_cell_type + 1):
            conditions = (
                [(MOCK, None, np.nan)] * design.mock_wells
                + [(UV, None, np.nan)] * design.uv_wells
                + [(ACTIVE, None, np.nan)] * design.active_wells
                + [(ACTIVE, c, d) for c in design.compounds for d in DOSES_UM]
            )
            wells = well_names(len(conditions), rng)
            for well, (condition, compound, dose) in zip(wells, conditions):
                rescue = compound.rescue(dose) if compound else (0.0 if condition == ACTIVE else 1.0)
                infected = design.healthy_infected_fraction + (
                    design.infected_fraction - design.healthy_infected_fraction
                ) * (1 - rescue)
                rows.append({
                    "well_id": f"{experiment}_{plate}_{well}",
                    "cell_type": cell.name,
                    "experiment": experiment,
                    "plate": plate,
                    "well": well,
                    "disease_condition": condition,
                    "treatment": compound.name if compound else None,
                    "treatment_conc": dose,
                    "SMILES": SMILES[design.compounds.index(compound) % len(SMILES)] if compound else None,
                    "true_rescue": rescue,
                    "infected_fraction": infected,
                    "toxicity": compound.toxicity(dose) if compound else 0.0,
                })
    return pd.DataFrame(rows)


def plate_effects(design: ScreenDesign, wells: pd.DataFrame, rng: np.random.Generator,
                  effects_rng: np.random.Generator) -> pd.DataFrame:
    """Per plate: per-stain gain and background, focus, cell density, illumination centre.

    Gain, background and focus come from the screen's own stream (as they
    always have); density and illumination from ``effects_rng``, so a design
    without them draws exactly the images it drew before they existed.
    """
    rows = []
    for experiment, plate in wells.groupby(["experiment", "plate"]).groups:
        gain = rng.lognormal(0, design.gain_sigma, 5)
        background = rng.uniform(*design.background, 5)
        blur = rng.uniform(*design.blur)
        rows.append({
            "experiment": experiment, "plate": plate, "blur": blur,
            "density": effects_rng.lognormal(0, design.density_sigma),
            "illumination_y": effects_rng.uniform(-0.25, 0.25), "illumination_x": effects_rng.uniform(-0.25, 0.25),
            **{f"gain_w{c + 1}": gain[c] for c in range(5)},
            **{f"background_w{c + 1}": background[c] for c in range(5)},
        })
    return pd.DataFrame(rows)


def write_sample_plate(dest, preset: str = "demo", seed: int = 0, **overrides) -> Path:
    """Write the named synthetic screen ``preset`` (a key of ``PRESETS``) under ``dest`` and return its root.

    ``"test"`` is tiny, for CI; ``"demo"`` (576 sites at 128 px) is the demo
    and napari sample; the names in ``SUITE`` are the fixed benchmark screens
    (docs/synthetic.md). Keyword overrides change fields of the design (for
    example ``tile_size=256``). Writes ``metadata.csv``,
    ``images/{experiment}/Plate{n}/{well}_s{site}_w{1..5}.png`` and
    ``ground_truth/{design.json,compounds.csv,wells.csv,plates.csv,sites.csv}``.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown synthetic screen {preset!r}; choose one of {', '.join(PRESETS)}")
    design = replace(PRESETS[preset], **overrides)
    root = Path(dest)
    rng = np.random.default_rng(seed)
    effects_rng = np.random.default_rng([seed, 1])
    wells = design_wells(design, rng)
    cells = {c.name: c for c in CELL_TYPES}
    compounds = {c.name: c for c in design.compounds}
    plates = plate_effects(design, wells, rng, effects_rng)
    by_plate = {(p.experiment, p.plate): p for p in plates.itertuples(index=False)}
    site_rows = []
    for _, well in wells.iterrows():
        folder = root / "images" / well["experiment"] / f"Plate{well['plate']}"
        folder.mkdir(parents=True, exist_ok=True)
        effects = by_plate[(well["experiment"], well["plate"])]
        gain = np.array([getattr(effects, f"gain_w{c + 1}") for c in range(5)])
        background = np.array([getattr(effects, f"background_w{c + 1}") for c in range(5)])
        light = shading(design, effects.illumination_y, effects.illumination_x)
        compound = compounds.get(well["treatment"])
        off_target = compound.off_target if compound else None
        strength = compound.off_target_strength(well["treatment_conc"]) if compound else 0.0
        for site in range(1, design.sites_per_well + 1):
            blur = effects.blur + effects_rng.uniform(0, design.focus_jitter)
            pixels, n_cells, n_infected = render_site(
                rng, design, cells[well["cell_type"]], well["infected_fraction"], well["toxicity"],
                gain, background, blur, effects.density, light, off_target, strength,
            )
            for c in range(5):
                Image.fromarray(pixels[c]).save(folder / f"{well['well']}_s{site}_w{c + 1}.png", compress_level=1)
            site_rows.append({**well.to_dict(), "site": site, "site_id": f"{well['well_id']}_{site}",
                              "n_cells": n_cells, "n_infected": n_infected, "blur": blur})
    sites = pd.DataFrame(site_rows)
    sites[METADATA_COLUMNS].to_csv(root / "metadata.csv", index=False)
    truth = root / "ground_truth"
    truth.mkdir(exist_ok=True)
    (truth / "design.json").write_text(json.dumps(
        {"screen": preset, "seed": seed, "generator_version": GENERATOR_VERSION, **asdict(design)}, indent=1))
    wells[["well_id", "cell_type", "experiment", "plate", "well", "disease_condition", "treatment",
           "treatment_conc", "true_rescue", "infected_fraction", "toxicity"]].to_csv(truth / "wells.csv", index=False)
    plates.to_csv(truth / "plates.csv", index=False)
    sites[["site_id", "well_id", "n_cells", "n_infected", "blur"]].to_csv(truth / "sites.csv", index=False)
    pd.DataFrame([
        {"compound": c.name, "active": c.active, "ec50_uM": c.ec50_um if c.active else np.nan,
         "hill": c.hill if c.active else np.nan, "max_rescue": c.max_rescue,
         "cytotoxic": c.toxic_ec50_um is not None, "off_target": c.off_target}
        for c in design.compounds
    ]).to_csv(truth / "compounds.csv", index=False)
    return root


def write_rxrx1_sample(dest, seed: int = 0, tile_size: int = 64, sirnas: int = 3, wells_per_sirna: int = 2,
                       control_wells: int = 3) -> Path:
    """Write a small RxRx1-like screen (six stains, four cell types) under ``dest``; returns its root.

    One plate per cell type (experiment ``{cell type}-01``) with ``control_wells``
    negative-control wells (siRNA ``EMPTY``), as many positive-control wells
    (a siRNA with a strong phenotype: the infection phenotype of the RxRx19a
    renderer) and ``sirnas`` x ``wells_per_sirna`` siRNA wells, one site each.
    Stains are RxRx1's ``w1`` Hoechst, ``w2`` ConA, ``w3`` Phalloidin,
    ``w4`` SYTO14, ``w5`` MitoTracker (punctate, in the cytoplasm) and
    ``w6`` WGA. For zero-shot tests: a model trained on an RxRx19a-like screen
    embeds it with ``--stain-map auto``.
    """
    design = replace(PRESETS["test"], tile_size=tile_size)
    root = Path(dest)
    rng = np.random.default_rng([seed, 1])
    conditions = ([("negative_control", "EMPTY", 0.0)] * control_wells
                  + [("positive_control", "s-pos", 0.9)] * control_wells
                  + [("treatment", f"s{k + 1:02d}", 0.0) for k in range(sirnas) for _ in range(wells_per_sirna)])
    sirna_ids = {name: i for i, name in enumerate(dict.fromkeys(c[1] for c in conditions))}
    rows = []
    for cell in RXRX1_CELL_TYPES:
        experiment = f"{cell.name}-01"
        folder = root / "images" / experiment / "Plate1"
        folder.mkdir(parents=True, exist_ok=True)
        gain, background = rng.lognormal(0, design.gain_sigma, 5), rng.uniform(*design.background, 5)
        for well, (well_type, sirna, phenotype) in zip(well_names(len(conditions), rng), conditions):
            pixels, _, _ = render_site(rng, design, cell, phenotype, 0.0, gain, background, rng.uniform(*design.blur))
            spots = gaussian_filter((rng.random(pixels.shape[1:]) < 0.05) * 255.0, 0.8) * 3
            mito = np.clip(pixels[1] * 0.5 * (spots > 20) + spots * (pixels[1] > 10) * 0.2
                           + rng.normal(background.mean(), 1.0, pixels.shape[1:]), 0, 255).astype(np.uint8)
            stains = [pixels[0], pixels[1], pixels[2], pixels[3], mito, pixels[4]]
            for c, image in enumerate(stains):
                Image.fromarray(image).save(folder / f"{well}_s1_w{c + 1}.png", compress_level=1)
            rows.append({"site_id": f"{experiment}_1_{well}_1", "well_id": f"{experiment}_1_{well}",
                         "cell_type": cell.name, "dataset": "train", "experiment": experiment, "plate": 1,
                         "well": well, "site": 1, "well_type": well_type, "sirna": sirna,
                         "sirna_id": sirna_ids[sirna]})
    pd.DataFrame(rows, columns=RXRX1_METADATA_COLUMNS).to_csv(root / "metadata.csv", index=False)
    return root

"""A seeded, RxRx19a-like synthetic screen: the project's test and demo data.

Five stains (Hoechst, ConA, Phalloidin, SYTO14, WGA) are rendered as cells of
two cell types (HRCE: small, cobblestone; VERO: large, elongated, with stress
fibres). Wells are Mock, UV-inactivated or active-virus controls, or active
virus plus a compound at one of six half-log doses. Infection is decided cell
by cell, so a well is a mixture. An infected cell moves things between
compartments: its RNA spots leave the nucleus and its Golgi cluster collapses
onto it, so each stain alone looks unchanged and only the relation between
stains tells. ``texture_strength`` adds per-stain changes on top (rounding,
condensed nucleus, vacuolated ER, lost stress fibres, RNA granules, scattered
Golgi). Each cell's total brightness per stain is drawn independently of its
state, so mean intensity does not tell infected from healthy. Some compounds rescue infection with a
known dose-response curve; one is inert; one is cytotoxic at high doses (a
strong phenotype along another axis). Plates get their own per-stain gain,
background and focus.

Ground truth lands beside the images in ``ground_truth/`` (ignored by the
reader): ``compounds.csv`` and ``wells.csv``.
"""

from napari_gandl.columns import ACTIVE, MOCK, UV
from napari_gandl.synthetic.design import (
    CELL_TYPES, DECOYS, DOSES_UM, GENERATOR_VERSION, HELDOUT, OFF_TARGETS, PRESETS, SUITE, SUITE_SCREENS, SUITE_V1,
    CellType, Compound, ScreenDesign,
)
from napari_gandl.synthetic.render import render_cell, render_site, shading
from napari_gandl.synthetic.write import design_wells, plate_effects, write_rxrx1_sample, write_sample_plate

__all__ = [
    "ACTIVE", "CELL_TYPES", "DECOYS", "DOSES_UM", "GENERATOR_VERSION", "HELDOUT", "MOCK", "OFF_TARGETS", "PRESETS", "SUITE", "SUITE_SCREENS", "SUITE_V1", "UV",
    "CellType", "Compound", "ScreenDesign", "design_wells", "plate_effects", "render_cell", "render_site",
    "shading", "write_rxrx1_sample", "write_sample_plate",
]

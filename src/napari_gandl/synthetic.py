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

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from scipy.ndimage import gaussian_filter

# Bumped whenever the generator draws different images, so caches of the sample screen refresh.
GENERATOR_VERSION = 2
DOSES_UM = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
MOCK, UV, ACTIVE = "Mock", "UV Inactivated SARS-CoV-2", "Active SARS-CoV-2"
METADATA_COLUMNS = [
    "site_id", "well_id", "cell_type", "experiment", "plate", "well", "site",
    "disease_condition", "treatment", "treatment_conc", "SMILES",
]
SMILES = (
    "CC(=O)Oc1ccccc1C(=O)O", "CN1C=NC2=C1C(=O)N(C(=O)N2C)C", "CC(C)Cc1ccc(cc1)C(C)C(=O)O",
    "OC(=O)c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "c1ccc2c(c1)cc[nH]2", "NC(=O)c1cccnc1",
    "CCN(CC)CCNC(=O)c1ccc(N)cc1", "COc1ccc2[nH]cc(CCNC(C)=O)c2c1", "CC1=CC(=O)C=CC1=O",
)


@dataclass(frozen=True)
class Compound:
    name: str
    ec50_um: float
    hill: float
    max_rescue: float  # 0 = no rescue, 1 = infected fraction back to healthy
    toxic_ec50_um: float | None = None  # cytotoxic above this dose

    @property
    def active(self) -> bool:
        return self.max_rescue > 0

    def rescue(self, dose: float) -> float:
        if not self.active:
            return 0.0
        return self.max_rescue / (1.0 + (self.ec50_um / dose) ** self.hill)

    def toxicity(self, dose: float) -> float:
        if self.toxic_ec50_um is None:
            return 0.0
        return 1.0 / (1.0 + (self.toxic_ec50_um / dose) ** 2)


@dataclass(frozen=True)
class ScreenDesign:
    tile_size: int = 128
    sites_per_well: int = 2
    plates_per_cell_type: int = 2
    mock_wells: int = 6
    uv_wells: int = 6
    active_wells: int = 12
    compounds: tuple[Compound, ...] = ()
    infected_fraction: float = 0.75  # untreated active-virus wells
    healthy_infected_fraction: float = 0.02
    # What infection changes in a cell, each from 0 (nothing) to 1 (in full):
    # per-stain textures and histograms (rounding, condensed nucleus, vacuolated
    # ER, lost fibres, RNA granules, scattered Golgi) ...
    texture_strength: float = 0.15
    # ... the cross-stain translocations (RNA spots out of the nucleus, Golgi onto it) ...
    translocation: float = 1.0
    # ... and morphology: swollen, ragged cells, syncytia (fused, multinucleate
    # cells) and large vacuoles that cut through every cytoplasmic stain.
    morphology: float = 0.0
    # Length scale of the cells: 0.5 gives HRCE cells ~11 px and VERO ~14 px
    # across, RxRx19a's 40-60 px cells in 1024^2 tiles rendered at 4x downscale.
    cell_scale: float = 1.0
    # Imaging: signal relative to the shot noise (>1: a binned downscale
    # has less relative noise); per plate: per-stain gain (log-normal sigma), background range,
    # focus (blur sigma range), illumination fall-off towards the tile corners
    # (0: flat field), cell density (log-normal sigma); per site: extra blur.
    exposure: float = 1.0
    gain_sigma: float = 0.18
    background: tuple[float, float] = (2.0, 10.0)
    blur: tuple[float, float] = (0.5, 1.0)
    illumination: float = 0.0
    density_sigma: float = 0.0
    focus_jitter: float = 0.0


# Rescuers with a spread of potencies, an inert compound, a cytotoxic one.
DEMO_COMPOUNDS = (
    Compound("rescue-potent", 0.03, 1.5, 0.95),
    Compound("rescue-mid", 0.15, 1.2, 0.85),
    Compound("rescue-weak", 0.8, 2.0, 0.75),
    Compound("rescue-partial", 0.1, 1.0, 0.5),
    Compound("inert-1", 1.0, 1.0, 0.0),
    Compound("inert-2", 1.0, 1.0, 0.0),
    Compound("inert-3", 1.0, 1.0, 0.0),
    Compound("cytotoxic", 1.0, 1.0, 0.0, toxic_ec50_um=0.5),
)
PRESETS = {
    # CI checks the pipeline's behaviour on a few sites, so the phenotype is
    # shown in full; the demo screen is the fair challenge.
    "test": ScreenDesign(
        tile_size=64, sites_per_well=1, mock_wells=2, uv_wells=2, active_wells=3,
        compounds=(DEMO_COMPOUNDS[0], DEMO_COMPOUNDS[4], DEMO_COMPOUNDS[7]), texture_strength=1.0,
    ),
    "demo": ScreenDesign(compounds=DEMO_COMPOUNDS),
    "large": ScreenDesign(tile_size=256, sites_per_well=4, compounds=DEMO_COMPOUNDS),
}
# The fixed benchmark suite (docs/synthetic.md "The benchmark suite"): RxRx19a
# sites at 4x downscale (256^2 tiles for 1024^2, cells 10-15 px across), 2 cell
# types x 2 plates x 64 wells x 2 sites = 512 sites each. Every screen varies
# focus (per plate and per site), illumination, cell density and per-plate gain.
# Frozen: tests/test_synthetic.py records each design's hash. Never change a
# screen after a method was scored on it; add a new one instead.
SUITE_BASE = ScreenDesign(
    tile_size=256, cell_scale=0.5, sites_per_well=2, mock_wells=4, uv_wells=4, active_wells=8,
    compounds=DEMO_COMPOUNDS, texture_strength=0.0, translocation=0.0, morphology=0.0,
    exposure=3.0, illumination=0.3, density_sigma=0.15, focus_jitter=0.3,
)
# mixed-weak's library: the demo's 8, a shallow partial rescuer, two more inert compounds and a
# second cytotoxic one
LIBRARY_12 = DEMO_COMPOUNDS + (
    Compound("rescue-shallow", 0.3, 0.7, 0.6),
    Compound("inert-4", 1.0, 1.0, 0.0),
    Compound("inert-5", 1.0, 1.0, 0.0),
    Compound("cytotoxic-2", 1.0, 1.0, 0.0, toxic_ec50_um=1.5),
)
SUITE_SCREENS = {
    # what infection changes:
    "texture": replace(SUITE_BASE, texture_strength=0.25),       # per-stain texture only
    "translocation": replace(SUITE_BASE, translocation=1.0),     # cross-stain relations only
    "morphology": replace(SUITE_BASE, morphology=0.5),           # size, shape, syncytia, vacuoles
    "partial": replace(SUITE_BASE, infected_fraction=0.25, texture_strength=0.5, translocation=1.0,
                       morphology=0.4),                         # a minority of cells, all cues
    # strong plate effects on the texture screen's wells (same ground truth):
    "plate-gain-blur": replace(SUITE_BASE, texture_strength=0.25, gain_sigma=0.6, blur=(0.4, 2.0)),
    "plate-background-density": replace(SUITE_BASE, texture_strength=0.25, background=(2.0, 40.0),
                                        density_sigma=0.5),
    # Added after the six screens above were scored (none of them changed): a
    # real screen at moderate MOI shows every cue at once, each one weak, in
    # about half of the cells, under stronger plate effects, with a bigger
    # library (12 compounds: a shallow partial rescuer, two more inert ones and
    # a second cytotoxic one). 704 sites.
    "mixed-weak": replace(SUITE_BASE, compounds=LIBRARY_12, infected_fraction=0.5, texture_strength=0.15,
                          translocation=0.5, morphology=0.2, gain_sigma=0.35, background=(2.0, 25.0),
                          blur=(0.5, 1.5), illumination=0.45, density_sigma=0.35, focus_jitter=0.5),
    # Added after mixed-weak was scored (no screen changed), because every screen so far left
    # handcrafted features at 92-100 % C+/C-, which separates no method: a low multiplicity of
    # infection (30 % of cells) with every cue fainter than on mixed-weak, imaged dimly and fast
    # (exposure 1, the demo's shot noise instead of the suite's binned x3), with the 12-compound
    # library and moderate plate effects. 704 sites.
    "low-moi-dim": replace(SUITE_BASE, compounds=LIBRARY_12, infected_fraction=0.3, texture_strength=0.1,
                           translocation=0.35, morphology=0.15, exposure=1.0, gain_sigma=0.25,
                           background=(2.0, 15.0), blur=(0.5, 1.5), illumination=0.35, density_sigma=0.25,
                           focus_jitter=0.4),
}
SUITE = tuple(SUITE_SCREENS)
PRESETS.update(SUITE_SCREENS)


@dataclass(frozen=True)
class CellType:
    name: str
    cell_radius: float
    aspect: tuple[float, float]
    nucleus_radius: float
    density: float  # cells per 1000 px^2
    fibres: float


CELL_TYPES = (
    CellType("HRCE", 11.0, (1.0, 1.35), 5.0, 1.5, 0.35),
    CellType("VERO", 14.0, (1.5, 2.2), 5.5, 0.9, 1.0),
)
# Mean total brightness of one cell per stain (same for infected and healthy cells).
CELL_TOTAL = np.array([9000.0, 14000.0, 9000.0, 7000.0, 9000.0])


def well_names(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` distinct inner wells of a 384-well plate (rows B-O, columns 2-23), shuffled."""
    inner = [f"{r}{c:02d}" for r in "BCDEFGHIJKLMNO" for c in range(2, 24)]
    if n > len(inner):
        raise ValueError(f"a 384-well plate has {len(inner)} inner wells, the design needs {n}")
    return list(rng.choice(inner, size=n, replace=False))


def _spots(yy, xx, centres, sigma, weights=None):
    """Sum of Gaussian spots at ``centres`` ((n, 2) y/x) on the grid."""
    if len(centres) == 0:
        return np.zeros_like(yy)
    d2 = (yy[None] - centres[:, 0, None, None]) ** 2 + (xx[None] - centres[:, 1, None, None]) ** 2
    sig = np.broadcast_to(np.asarray(sigma, float), (len(centres),))[:, None, None]
    w = np.ones(len(centres)) if weights is None else weights
    return np.tensordot(w, np.exp(-d2 / (2 * sig**2)), axes=1)


def render_cell(rng, cell: CellType, infected: bool, toxicity: float, texture: np.ndarray,
                design: ScreenDesign):
    """One cell's five stain patches ``(5, size, size)`` centred on the cell.

    What infection changes is set by the design, each part from 0 to 1:
    ``translocation`` moves things between compartments (RNA spots from the
    nucleus into the cytoplasm, the Golgi cluster from beside the nucleus onto
    it), so each stain alone looks the same and only its relation to the
    nucleus changes; ``texture_strength`` scales the changes a single stain
    shows (rounding, condensed nucleus, vacuoles, lost fibres, RNA granules,
    Golgi fragmentation); ``morphology`` swells the cell, makes its outline
    ragged, fuses it into a multinucleate syncytium and punches large vacuoles
    through its cytoplasm. Lengths scale with ``cell_scale``; fine structures
    stay at least 0.7 px wide (the optics).
    """
    ts = design.texture_strength if infected else 0.0
    tl = design.translocation if infected else 0.0
    m = design.morphology if infected else 0.0
    s = design.cell_scale

    def width(sigma):
        return max(sigma * s, 0.7)

    radius = cell.cell_radius * s * rng.uniform(0.85, 1.15)
    aspect = rng.uniform(*cell.aspect)
    radius *= 1 - 0.1 * ts  # infected cells round up and shrink a little
    aspect = 1.0 + (aspect - 1.0) * (1 - 0.65 * ts)
    n_syncytium = 1
    if m > 0:
        radius *= 1 + 0.3 * m * rng.uniform(0.5, 1.0)  # swollen
        if rng.random() < 0.45 * m:  # fused with its neighbours
            n_syncytium = int(rng.integers(2, 5))
            radius *= np.sqrt(n_syncytium) * 0.8
            aspect = 1.0 + (aspect - 1.0) * 0.5
    a, b = radius * np.sqrt(aspect), radius / np.sqrt(aspect)
    half = int(np.ceil(a * 1.25)) + 2
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1].astype(float)
    theta = rng.uniform(0, np.pi)
    u = xx * np.cos(theta) + yy * np.sin(theta)  # along the long axis
    v = -xx * np.sin(theta) + yy * np.cos(theta)
    phi = np.arctan2(v / b, u / a)
    ragged = 0.06 * (1 + 2.0 * m)
    wobble = 1 + sum(rng.normal(0, ragged) * np.cos(k * phi + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5))
    rho = np.hypot(u / a, v / b) / wobble
    cell_mask = 1 / (1 + np.exp((rho - 1) * 12))

    condense = (1 - 0.28 * ts) * (1 - 0.3 * toxicity)
    n_r = cell.nucleus_radius * s * rng.uniform(0.9, 1.1) * condense
    n_off = rng.normal(0, 0.15, 2) * radius / np.sqrt(n_syncytium)
    nu, nv = u - n_off[0], v - n_off[1]
    n_aspect = rng.uniform(1.0, 1.3)
    n_rho = np.hypot(nu / (n_r * np.sqrt(n_aspect)), nv / (n_r / np.sqrt(n_aspect)))
    nucleus = 1 / (1 + np.exp((n_rho - 1) * 10))
    for _ in range(n_syncytium - 1):  # the syncytium's other nuclei, around the first
        ang, dist = rng.uniform(0, 2 * np.pi), rng.uniform(1.8, 2.6) * n_r
        other = np.hypot(nu - dist * np.cos(ang), nv - dist * np.sin(ang)) / (n_r * rng.uniform(0.85, 1.1))
        nucleus = np.maximum(nucleus, 1 / (1 + np.exp((other - 1) * 10)) * (rho < 0.85))
    cytoplasm = np.clip(cell_mask - nucleus, 0, 1)
    n_centre = np.array([n_off[0] * np.sin(theta) + n_off[1] * np.cos(theta),
                         n_off[0] * np.cos(theta) - n_off[1] * np.sin(theta)])  # y, x

    tex = texture[:, : 2 * half + 1, : 2 * half + 1]

    def in_cytoplasm(n, inner=1.2, outer=0.9):
        ang = rng.uniform(0, 2 * np.pi, n)
        frac = rng.uniform(0, 1, n)
        dist = n_r * inner + frac * (radius * outer - n_r * inner)
        return np.stack([n_centre[0] + dist * np.sin(ang), n_centre[1] + dist * np.cos(ang)], 1)

    def towards(angle, distance):
        return n_centre + distance * np.array([np.sin(angle), np.cos(angle)])

    # w1 Hoechst: nucleus with chromatin texture.
    w1 = nucleus * (1 + 0.35 * tex[0])
    # w2 ConA: reticular ER, densest around the nucleus; infected cells get vacuoles.
    perinuclear = np.exp(-np.clip(n_rho - 1, 0, None) * 0.8)
    w2 = cytoplasm * perinuclear * np.clip(0.35 + np.abs(tex[1]) * 1.6, 0, None)
    if ts > 0:
        vac = _spots(yy, xx, in_cytoplasm(rng.integers(4, 8)), rng.uniform(1.2, 2.0) * s)
        w2 = w2 * np.clip(1 - 0.9 * ts * vac, 0, 1)
    # w3 Phalloidin: cortical ring plus stress fibres along the long axis.
    ring = np.exp(-(((rho - 0.93) / 0.09) ** 2)) * cell_mask
    period = rng.uniform(2.5, 3.5)
    fibres = (np.cos(2 * np.pi * v / period + rng.uniform(0, 6.3)) ** 8) * cell_mask * (rho < 0.9)
    w3 = ring + cell.fibres * (1 - 0.92 * ts) * fibres * 0.8
    # w4 SYTO14: a few RNA spots over a faint, even cell body; inside the
    # nucleus (nucleoli) when healthy, in the cytoplasm when infected.
    k = rng.integers(2, 5)
    # The same constellation of spots in both states; infection translates it
    # as a whole out of the nucleus, so this stain alone looks the same.
    angles = rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.arange(k) / k
    constellation = np.stack([towards(a, r * n_r) for a, r in zip(angles, rng.uniform(0.35, 0.6, k))])
    shift = (towards(rng.uniform(0, 2 * np.pi), 1.6 * n_r * tl) - n_centre) if infected else 0.0
    centres = constellation + shift
    spots = _spots(yy, xx, centres, width(0.9)) * cell_mask
    granules = _spots(yy, xx, in_cytoplasm(rng.integers(8, 14)), width(0.8)) * cell_mask if ts > 0 else 0.0
    w4 = spots + (0.45 * ts + 0.35 * ts**2) * granules + 0.12 * cell_mask
    # w5 WGA: plasma membrane plus a compact Golgi cluster, beside the nucleus
    # when healthy, collapsed over it when infected (and looser with ts).
    membrane = np.exp(-(((rho - 0.98) / 0.07) ** 2)) * 0.25
    golgi_at = towards(rng.uniform(0, 2 * np.pi), n_r * (0.25 * tl + 1.35 * (1 - tl)))
    # At full strength the Golgi is scattered through the cytoplasm; this is the
    # most visible single-stain cue, so it grows with the square of the strength.
    spread = (1.1 + 5.0 * ts**2) * s
    n_puncta = rng.integers(4, 7) + int(round(8 * ts**2))
    golgi = _spots(yy, xx, golgi_at[None] + rng.normal(0, spread, (n_puncta, 2)), width(1.0))
    w5 = membrane + golgi * cell_mask

    patches = np.stack([w1, w2, w3, w4, w5])
    if m > 0:  # large vacuoles: holes through every cytoplasmic stain
        holes = in_cytoplasm(int(rng.integers(1, 4)) + int(round(2 * m)), inner=1.5, outer=0.75)
        hole = np.clip(_spots(yy, xx, holes, radius * rng.uniform(0.12, 0.2)) * 1.5, 0, 1)
        patches[1:] *= 1 - 0.95 * m * hole * (1 - nucleus)
    totals = patches.reshape(5, -1).sum(1)
    target = CELL_TOTAL * (radius / cell.cell_radius) ** 2 * rng.lognormal(0, 0.2, 5)
    return patches * (target / np.maximum(totals, 1e-6))[:, None, None]


def place_cells(rng, n: int, size: int, min_dist: float) -> np.ndarray:
    """Up to ``n`` cell centres with a minimum spacing (dart throwing)."""
    centres = np.empty((n, 2))
    placed = 0
    for _ in range(n * 30):
        if placed == n:
            break
        p = rng.uniform(-min_dist * 0.3, size + min_dist * 0.3, 2)
        if np.all(np.hypot(*(p - centres[:placed]).T) >= min_dist):
            centres[placed] = p
            placed += 1
    return centres[:placed]


def render_site(rng, design: ScreenDesign, cell: CellType, infected_fraction: float, toxicity: float,
                gain: np.ndarray, background: np.ndarray, blur: float, density: float = 1.0,
                shading: np.ndarray | None = None) -> tuple[np.ndarray, int, int]:
    """One site as ``(5, size, size)`` uint8, with its numbers of cells and of infected cells.

    ``density`` multiplies the cell type's density, ``shading`` (size x size)
    the light reaching each pixel.
    """
    size, s = design.tile_size, design.cell_scale
    n_cells = rng.poisson(cell.density * size * size / 1000 * (1 - 0.6 * toxicity) * density / s**2)
    centres = place_cells(rng, max(n_cells, 1), size, cell.cell_radius * 1.5 * s)
    pad = int(cell.cell_radius * s * 2.5 * (1 + 1.1 * design.morphology)) + 4
    canvas = np.zeros((5, size + 2 * pad, size + 2 * pad))
    texture = gaussian_filter(rng.standard_normal((2, 4 * pad, 4 * pad)), (0, 1.0, 1.0)) * 2.2
    n_rendered = n_infected = 0
    for y, x in centres:
        infected = rng.random() < infected_fraction
        off = rng.integers(0, 2 * pad, 2)
        tex = texture[:, off[0]:, off[1]:]
        patch = render_cell(rng, cell, infected, toxicity, tex, design)
        h = patch.shape[1] // 2
        cy, cx = int(round(y)) + pad, int(round(x)) + pad
        y0, x0 = cy - h, cx - h
        if y0 < 0 or x0 < 0 or y0 + patch.shape[1] > canvas.shape[1] or x0 + patch.shape[2] > canvas.shape[2]:
            continue
        canvas[:, y0 : y0 + patch.shape[1], x0 : x0 + patch.shape[2]] += patch
        n_rendered += 1
        n_infected += infected
    image = canvas[:, pad : pad + size, pad : pad + size]
    image = gaussian_filter(image, (0, blur, blur))
    if shading is not None:
        image = image * shading
    image = image * gain[:, None, None] / 3.0 * design.exposure + background[:, None, None]
    image = rng.poisson(np.clip(image, 0, None) * 2.0) / 2.0 + rng.normal(0, 1.0, image.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8), n_rendered, n_infected


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


def shading(design: ScreenDesign, centre_y: float, centre_x: float) -> np.ndarray | None:
    """Fraction of the light reaching each pixel: falls off with the squared distance from an off-centre peak."""
    if design.illumination == 0:
        return None
    size = design.tile_size
    yy, xx = np.mgrid[0:size, 0:size] / size - 0.5
    return 1 - design.illumination * ((yy - centre_y) ** 2 + (xx - centre_x) ** 2) / 0.5


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
        for site in range(1, design.sites_per_well + 1):
            blur = effects.blur + effects_rng.uniform(0, design.focus_jitter)
            pixels, n_cells, n_infected = render_site(
                rng, design, cells[well["cell_type"]], well["infected_fraction"], well["toxicity"],
                gain, background, blur, effects.density, light,
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
         "cytotoxic": c.toxic_ec50_um is not None}
        for c in design.compounds
    ]).to_csv(truth / "compounds.csv", index=False)
    return root


# ---------------------------------------------------------------- RxRx1-like sample
# Four RxRx1 cell types, drawn with the RxRx19a cells' renderer: HEPG2 small and
# crowded, HUVEC elongated, RPE cobblestone, U2OS large and flat.
RXRX1_CELL_TYPES = (
    CellType("HEPG2", 9.0, (1.0, 1.25), 4.5, 2.0, 0.2),
    CellType("HUVEC", 13.0, (1.6, 2.4), 5.0, 1.0, 0.8),
    CellType("RPE", 11.0, (1.0, 1.3), 5.0, 1.4, 0.5),
    CellType("U2OS", 15.0, (1.2, 1.7), 6.0, 0.7, 1.0),
)
RXRX1_METADATA_COLUMNS = ["site_id", "well_id", "cell_type", "dataset", "experiment", "plate", "well", "site",
                          "well_type", "sirna", "sirna_id"]


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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dest", help="folder to write (with --suite: one subfolder per screen)")
    parser.add_argument("--preset", default="demo", choices=[*PRESETS, "rxrx1"],
                        help="which screen (default: demo; rxrx1: the RxRx1-like zero-shot sample)")
    parser.add_argument("--suite", action="store_true", help="write every benchmark screen: " + ", ".join(SUITE))
    parser.add_argument("--seed", type=int, default=0)


def write_screens(args: argparse.Namespace) -> int:
    for name in SUITE if args.suite else (args.preset,):
        dest = Path(args.dest) / name if args.suite else Path(args.dest)
        write = write_rxrx1_sample if name == "rxrx1" else lambda d, seed: write_sample_plate(d, name, seed)
        print(write(dest, seed=args.seed), flush=True)
    return 0


def register(sub) -> None:
    """``gandl synthetic DEST [--preset NAME | --suite]``."""
    p = sub.add_parser("synthetic", help="write a synthetic RxRx19a-layout screen (demo, test or a benchmark screen)")
    add_arguments(p)
    p.set_defaults(func=write_screens)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Write a synthetic RxRx19a-layout screen")
    add_arguments(parser)
    write_screens(parser.parse_args(argv))


if __name__ == "__main__":
    main()

"""Rendering the cells of one site: five stains, infection cues, toxicity, shot noise, focus and shading."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from napari_gandl.synthetic.design import CELL_TOTAL, OFF_TARGETS, CellType, ScreenDesign


def _spots(yy, xx, centres, sigma, weights=None):
    """Sum of Gaussian spots at ``centres`` ((n, 2) y/x) on the grid."""
    if len(centres) == 0:
        return np.zeros_like(yy)
    d2 = (yy[None] - centres[:, 0, None, None]) ** 2 + (xx[None] - centres[:, 1, None, None]) ** 2
    sig = np.broadcast_to(np.asarray(sigma, float), (len(centres),))[:, None, None]
    w = np.ones(len(centres)) if weights is None else weights
    return np.tensordot(w, np.exp(-d2 / (2 * sig**2)), axes=1)


def render_cell(rng, cell: CellType, infected: bool, toxicity: float, texture: np.ndarray,
                design: ScreenDesign, off_target: str | None = None, off_target_strength: float = 0.0):
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
    stay at least 0.7 px wide (the optics). A compound's ``off_target``
    phenotype (a key of ``OFF_TARGETS``, at ``off_target_strength`` from 0 to
    1) changes the cell whether it is infected or not.
    """
    if off_target is not None and off_target not in OFF_TARGETS:
        raise ValueError(f"unknown off-target phenotype {off_target!r}; choose from {', '.join(OFF_TARGETS)}")

    def off(name):
        return off_target_strength if off_target == name else 0.0

    spreading, swelling, dispersal, er_stress = (off(n) for n in (
        "spreading", "nuclear-swelling", "golgi-dispersal", "er-expansion"))
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
    radius *= 1 + 0.25 * spreading
    aspect = 1.0 + (aspect - 1.0) * (1 + 0.6 * spreading)
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

    condense = (1 - 0.28 * ts) * (1 - 0.3 * toxicity) * (1 + 0.35 * swelling)
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
    w1 = nucleus * (1 + 0.35 * (1 - 0.6 * swelling) * tex[0])
    # w2 ConA: reticular ER, densest around the nucleus; infected cells get vacuoles.
    perinuclear = np.exp(-np.clip(n_rho - 1, 0, None) * 0.8 * (1 - 0.5 * er_stress))
    w2 = cytoplasm * perinuclear * np.clip(0.35 + np.abs(tex[1]) * 1.6, 0, None)
    if ts > 0:
        vac = _spots(yy, xx, in_cytoplasm(rng.integers(4, 8)), rng.uniform(1.2, 2.0) * s)
        w2 = w2 * np.clip(1 - 0.9 * ts * vac, 0, 1)
    # w3 Phalloidin: cortical ring plus stress fibres along the long axis.
    ring = np.exp(-(((rho - 0.93) / 0.09) ** 2)) * cell_mask
    period = rng.uniform(2.5, 3.5)
    fibres = (np.cos(2 * np.pi * v / period + rng.uniform(0, 6.3)) ** 8) * cell_mask * (rho < 0.9)
    w3 = ring + cell.fibres * (1 - 0.92 * ts) * (1 + spreading) * fibres * 0.8
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
    spread = (1.1 + 5.0 * ts**2 + 4.0 * dispersal) * s
    n_puncta = rng.integers(4, 7) + int(round(8 * ts**2 + 6 * dispersal))
    golgi = _spots(yy, xx, golgi_at[None] + rng.normal(0, spread, (n_puncta, 2)), width(1.0))
    w5 = membrane + golgi * cell_mask

    patches = np.stack([w1, w2, w3, w4, w5])
    if m > 0:  # large vacuoles: holes through every cytoplasmic stain
        holes = in_cytoplasm(int(rng.integers(1, 4)) + int(round(2 * m)), inner=1.5, outer=0.75)
        hole = np.clip(_spots(yy, xx, holes, radius * rng.uniform(0.12, 0.2)) * 1.5, 0, 1)
        patches[1:] *= 1 - 0.95 * m * hole * (1 - nucleus)
    totals = patches.reshape(5, -1).sum(1)
    target = CELL_TOTAL * (radius / cell.cell_radius) ** 2 * rng.lognormal(0, 0.2, 5)
    target[1] *= 1 + 0.6 * er_stress
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
                shading: np.ndarray | None = None, off_target: str | None = None,
                off_target_strength: float = 0.0) -> tuple[np.ndarray, int, int]:
    """One site as ``(5, size, size)`` uint8, with its numbers of cells and of infected cells.

    ``density`` multiplies the cell type's density, ``shading`` (size x size)
    the light reaching each pixel; ``off_target`` is the well's compound's own
    phenotype at ``off_target_strength`` (see :func:`render_cell`).
    """
    size, s = design.tile_size, design.cell_scale
    n_cells = rng.poisson(cell.density * size * size / 1000 * (1 - 0.6 * toxicity) * density / s**2)
    centres = place_cells(rng, max(n_cells, 1), size, cell.cell_radius * 1.5 * s)
    spreads = 1 + 0.45 * off_target_strength * (off_target == "spreading")  # larger, longer cells
    pad = int(cell.cell_radius * s * 2.5 * (1 + 1.1 * design.morphology) * spreads) + 4
    canvas = np.zeros((5, size + 2 * pad, size + 2 * pad))
    texture = gaussian_filter(rng.standard_normal((2, 4 * pad, 4 * pad)), (0, 1.0, 1.0)) * 2.2
    n_rendered = n_infected = 0
    for y, x in centres:
        infected = rng.random() < infected_fraction
        off = rng.integers(0, 2 * pad, 2)
        tex = texture[:, off[0]:, off[1]:]
        patch = render_cell(rng, cell, infected, toxicity, tex, design, off_target, off_target_strength)
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


def shading(design: ScreenDesign, centre_y: float, centre_x: float) -> np.ndarray | None:
    """Fraction of the light reaching each pixel: falls off with the squared distance from an off-centre peak."""
    if design.illumination == 0:
        return None
    size = design.tile_size
    yy, xx = np.mgrid[0:size, 0:size] / size - 0.5
    return 1 - design.illumination * ((yy - centre_y) ** 2 + (xx - centre_x) ** 2) / 0.5

"""How far to downsample a screen whose cells are too large for GAN-DL's crops.

Screens come at many scales: RxRx19a's 1024^2 tiles hold cells 40-60 px across at full resolution,
a 4x-binned screen holds the same cells at 10-15 px, a 60x screen nuclei of 100 px and more. Before
training, the nuclei of a sample of sites are measured in the nuclear stain (scikit-image: Gaussian
smoothing, Otsu's threshold, connected components) and the tiles are box-downsampled by the integer
factor that brings the median nucleus closest to :data:`TARGET_NUCLEUS_PX` -- never below 1 (tiles
are not enlarged) and never so far that a tile becomes smaller than a crop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.filters import gaussian, threshold_otsu
from skimage.measure import label, regionprops

from napari_gandl.config import Config
from napari_gandl.preprocessing.crops import nuclear_channel
from napari_gandl.preprocessing.normaliser import read_spread

#: the nucleus diameter, in pixels, that downsampling aims for. Measured on the benchmark suite
#: (docs/benchmarks.md, the 16-kimg suite section): on the three screens with nuclei of 12-22 px,
#: full resolution scored better than downsampling the nuclei to about 6 px (the earlier target),
#: so only nuclei larger than the largest measured there are brought down, to about that size
TARGET_NUCLEUS_PX = 22.0
MIN_NUCLEUS_AREA = 6   # px: smaller objects are noise


@dataclass
class CellScale(Config):
    """What was measured, and the downsampling chosen from it (recorded with the run)."""

    nucleus_px: float = float("nan")   # median equivalent diameter of the nuclei found
    nuclei_per_site: float = 0.0       # median count per measured site
    sites: int = 0                     # sites measured
    stain: str = ""                    # the nuclear stain they were found in
    scale: int = 1                     # the chosen downsampling factor

    def describe(self) -> str:
        if self.nuclei_per_site == 0:
            return (f"no nuclei found in the {self.stain or 'nuclear'} stain of {self.sites} sites: "
                    f"tiles kept at full resolution")
        found = (f"nuclei {self.nucleus_px:.1f} px across ({self.nuclei_per_site:.0f} per site, "
                 f"{self.stain}, {self.sites} sites)")
        if self.scale == 1:
            return f"{found}: tiles kept at full resolution"
        return f"{found}: tiles downsampled {self.scale}x, to nuclei of {self.nucleus_px / self.scale:.1f} px"


def nucleus_diameters(dna: np.ndarray) -> np.ndarray:
    """Equivalent diameters (px) of the nuclei in a 2-D nuclear-stain image."""
    smooth = gaussian(np.asarray(dna, np.float32), sigma=1.0, preserve_range=True)
    if not np.isfinite(smooth).all() or np.ptp(smooth) <= 1e-6 * max(1.0, float(np.abs(smooth).max())):
        return np.zeros(0)
    objects = regionprops(label(smooth > threshold_otsu(smooth)))
    return np.array([p.equivalent_diameter_area for p in objects if p.area >= MIN_NUCLEUS_AREA])


def measure_scale(plate, resolution: int, n_sites: int = 24) -> CellScale:
    """Measure the nuclei of ``n_sites`` spread-out sites and choose the downsampling for crops of
    ``resolution`` px: the factor nearest to ``median diameter / TARGET_NUCLEUS_PX``, at least 1 and
    at most what keeps a tile at least ``resolution`` px on its shorter side."""
    stain = nuclear_channel(plate.channel_names)
    diameters = [nucleus_diameters(tile) for tile in read_spread(plate, n_sites, lambda s: plate.read_tile(s, stain))]
    counts = [len(d) for d in diameters]
    found = np.concatenate(diameters) if diameters else np.zeros(0)
    record = CellScale(sites=len(diameters), stain=str(plate.channel_names[stain]))
    if len(found) == 0:
        return record
    record.nucleus_px = float(np.median(found))
    record.nuclei_per_site = float(np.median(counts))
    largest = max(1, min(plate.tile_shape) // int(resolution))
    record.scale = int(np.clip(round(record.nucleus_px / TARGET_NUCLEUS_PX), 1, largest))
    return record

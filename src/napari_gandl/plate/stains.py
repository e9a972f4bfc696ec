"""Stain names and display colours for RxRx-style fluorescence channels.

Colours follow the convention of Recursion's rxrx1-utils (one RGB colour per
stain, blended additively). RxRx19a drops MitoTracker, so its fifth channel
(WGA) keeps the colour WGA has in RxRx1: the colour follows the stain, not the
channel number.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stain:
    """One imaging channel: its file index (``w{index}``), dye and target."""

    index: int
    dye: str
    target: str
    color: tuple[float, float, float]

    @property
    def name(self) -> str:
        return f"w{self.index} {self.dye}" if self.dye else f"w{self.index}"

    @property
    def label(self) -> str:
        return f"{self.name} ({self.target})" if self.target else self.name


def _rgb(r: int, g: int, b: int) -> tuple[float, float, float]:
    return (r / 255, g / 255, b / 255)


HOECHST = ("Hoechst", "nuclei", _rgb(19, 0, 249))
CONA = ("ConA", "endoplasmic reticulum", _rgb(42, 255, 31))
PHALLOIDIN = ("Phalloidin", "actin", _rgb(255, 0, 25))
SYTO14 = ("SYTO14", "nucleoli and cytoplasmic RNA", _rgb(45, 255, 252))
MITOTRACKER = ("MitoTracker", "mitochondria", _rgb(250, 0, 253))
WGA = ("WGA", "Golgi and plasma membrane", _rgb(254, 255, 40))

RXRX1_STAINS = (HOECHST, CONA, PHALLOIDIN, SYTO14, MITOTRACKER, WGA)
RXRX19A_STAINS = (HOECHST, CONA, PHALLOIDIN, SYTO14, WGA)

# Colours for channels of unknown stain, in the order a microscopist expects.
PALETTE = (
    HOECHST[2], CONA[2], PHALLOIDIN[2], SYTO14[2], MITOTRACKER[2], WGA[2],
    _rgb(255, 128, 0), _rgb(255, 255, 255),
)

# Dye names (lower case) recognised in channel names of TIFF files.
KNOWN_DYES = {
    "hoechst": HOECHST, "dapi": HOECHST, "nuclei": HOECHST, "dna": HOECHST,
    "cona": CONA, "concanavalin": CONA, "er": CONA,
    "phalloidin": PHALLOIDIN, "actin": PHALLOIDIN,
    "syto14": SYTO14, "syto": SYTO14, "rna": SYTO14,
    "mitotracker": MITOTRACKER, "mito": MITOTRACKER, "mitochondria": MITOTRACKER,
    "wga": WGA, "golgi": WGA, "membrane": WGA,
}


def known_dye(name: str) -> tuple | None:
    """The known dye (name, target, colour) a channel name such as 'w2 ConA' or 'MitoTracker' mentions."""
    words = str(name).lower().replace("-", " ").replace("_", " ").replace("(", " ").replace(")", " ").split()
    return next((KNOWN_DYES[w] for w in words if w in KNOWN_DYES), None)


def stains_for_channels(indices: list[int]) -> list[Stain]:
    """Stains for RxRx channel numbers: 6 channels are RxRx1, 5 are RxRx19a."""
    table = {6: RXRX1_STAINS, 5: RXRX19A_STAINS}.get(len(indices))
    if table is not None and list(indices) == list(range(1, len(indices) + 1)):
        return [Stain(i, *table[i - 1]) for i in indices]
    return [Stain(i, "", "", PALETTE[k % len(PALETTE)]) for k, i in enumerate(indices)]


def stains_from_names(names: list[str]) -> list[Stain]:
    """Stains for named channels (e.g. from OME metadata), matched by dye name."""
    stains = []
    for k, name in enumerate(names):
        known = known_dye(name)
        if known is None:
            stains.append(Stain(k + 1, name, "", PALETTE[k % len(PALETTE)]))
        else:
            stains.append(Stain(k + 1, name, known[1], known[2]))
    return stains

"""Colours that mean one thing in every plot and dock: the conditions of a screen, and every other category.

A condition keeps its colour wherever it is shown: the plate map, the
perturbation plot, the report's E2 and C2 plots, the dose-response plots'
C+ / C- levels. The two uninfected-like controls (C+) are blues, the
infected control (C-) is vermillion; compound-treated sites are grey. Any
other category (cell types, compounds, plates, a result column) takes the
colours no condition uses, so that blue never means a cell type in one plot
and Mock in the next. All are from the colour-blind-safe palette of Okabe &
Ito (2008); past :data:`CATEGORY_COLORS`, matplotlib's ``tab20``.

The stains' colours are :mod:`napari_gandl.plate.stains`'.
"""

from __future__ import annotations

from typing import Sequence

from napari_gandl import columns as cols

#: Okabe & Ito (2008): orange, sky blue, bluish green, yellow, blue, vermillion, reddish purple, grey
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#999999")
_ORANGE, _SKY_BLUE, _BLUISH_GREEN, _YELLOW, _BLUE, _VERMILLION, _REDDISH_PURPLE, _GREY = OKABE_ITO

#: RxRx19a's conditions
CONDITION_COLORS = {cols.MOCK: _BLUE, cols.UV: _SKY_BLUE, cols.ACTIVE: _VERMILLION}
#: the merged controls (``tables.control_labels``): C+ (Mock, UV) in Mock's blue, C- in active virus' vermillion
CONTROL_COLORS = {"C+": CONDITION_COLORS[cols.MOCK], "C-": CONDITION_COLORS[cols.ACTIVE]}
#: missing values, "other", and the compound-treated sites where conditions are shown
OTHER = "#8c8c8c"
#: what the compound-treated sites are called where conditions are shown (they take :data:`OTHER`)
TREATED = "compound-treated"
#: every other category, in this order: the Okabe-Ito colours that name no condition (its grey is
#: left out: it would read as :data:`OTHER`)
CATEGORY_COLORS = (_BLUISH_GREEN, _REDDISH_PURPLE, _ORANGE, _YELLOW)

_NAMED = {**CONDITION_COLORS, **CONTROL_COLORS, TREATED: OTHER}


def category_colors(names: Sequence) -> list[tuple[float, float, float, float]]:
    """One RGBA colour per category ``names``: a condition, C+ / C- or :data:`TREATED` its own
    colour, the other names the :data:`CATEGORY_COLORS` in the order they come (``tab20``
    when there are more of them)."""
    from matplotlib import colormaps
    from matplotlib.colors import to_rgba

    names = [str(n) for n in names]
    others = [n for n in dict.fromkeys(names) if n not in _NAMED]
    if len(others) <= len(CATEGORY_COLORS):
        free = list(CATEGORY_COLORS)
    else:
        cmap = colormaps["tab20"]
        free = [cmap(i % cmap.N) for i in range(len(others))]
    colour_of = {**_NAMED, **dict(zip(others, free))}
    return [to_rgba(colour_of[n]) for n in names]

"""One colour per condition in the plate map, the perturbation plot and the report's E2 / C2 plots."""

from __future__ import annotations

import numpy as np
from matplotlib.colors import to_hex, to_rgba

from napari_gandl import columns as cols
from napari_gandl.analysis.axes import color_groups, color_values, plot_space
from napari_gandl.palettes import CATEGORY_COLORS, CONDITION_COLORS, OKABE_ITO, OTHER, TREATED, category_colors
from napari_gandl.plate import open_plate
from napari_gandl.viewmodels import SiteTable
from napari_gandl.viewmodels.plate_map import PlateMap

CONDITIONS = {name: to_hex(color) for name, color in CONDITION_COLORS.items()}


def test_conditions_keep_their_colours_and_nothing_else_takes_them():
    assert set(CONDITION_COLORS.values()) | set(CATEGORY_COLORS) <= set(OKABE_ITO)
    assert not set(CONDITION_COLORS.values()) & set(CATEGORY_COLORS)
    for names in ([cols.ACTIVE, cols.MOCK, cols.UV], [cols.UV, "HRCE", cols.ACTIVE, "VERO", cols.MOCK]):
        colours = dict(zip(names, category_colors(names)))
        assert {n: to_hex(colours[n]) for n in CONDITION_COLORS} == CONDITIONS
    assert [to_hex(c) for c in category_colors(["HRCE", "VERO"])] == [to_hex(c) for c in CATEGORY_COLORS[:2]]
    compounds = [f"compound {i}" for i in range(30)]             # past the free colours: tab20
    assert not {to_hex(c) for c in category_colors(compounds)} & set(CONDITIONS.values())
    assert category_colors(["C+", "C-", TREATED]) == [to_rgba(CONDITION_COLORS[cols.MOCK]),
                                                       to_rgba(CONDITION_COLORS[cols.ACTIVE]), to_rgba(OTHER)]


def test_plate_map_perturbation_plot_and_report_plot_agree(sample_plate, tmp_path):
    table = SiteTable(open_plate(sample_plate))
    frame = table.frame

    plate_map = {label: to_hex(rgba) for label, rgba in PlateMap(table).colour_by(cols.CONDITION).legend}
    assert plate_map == CONDITIONS

    rows = np.arange(len(frame))
    values, kind = color_values(frame, rows, "condition")
    plot = {label: to_hex(rgba) for label, rgba, _ in color_groups(values, kind)}
    assert plot == {**CONDITIONS, TREATED: OTHER}

    # the report's E2 / C2 plots: colour by condition, marker by cell type
    coords = np.random.default_rng(0).normal(size=(len(frame), 2))
    figure = plot_space(coords, values, tmp_path / "e2.png", marker_by=frame[cols.CELL_TYPE])
    legend = figure.axes[0].get_legend()
    shown = {t.get_text().rsplit(" (", 1)[0]: (to_hex(h.get_color()), h.get_marker())
             for t, h in zip(legend.get_texts(), legend.legend_handles)}
    assert {k: colour for k, (colour, _) in shown.items() if k in plot} == plot
    assert shown["HRCE"][1] == "o" and shown["VERO"][1] == "^"
    assert (tmp_path / "e2.png").stat().st_size > 0

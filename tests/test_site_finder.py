"""The Site navigator's view-model: choices narrowed level by level, and search (no viewer)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from napari_gandl.viewmodels.navigator import SiteFinder

WELLS = [f"{r}{c:02d}" for r in "ABCDEFGHIJKLMNOP" for c in range(1, 25)]


def screen(experiments=("HRCE-1", "VERO-1"), plates=12, sites=2, categorical=True) -> pd.DataFrame:
    """A site table in slider order: experiments x plates x 384 wells x sites."""
    key = pd.MultiIndex.from_product([list(experiments), range(1, plates + 1), WELLS, range(1, sites + 1)],
                                     names=["experiment", "plate", "well", "site"]).to_frame(index=False)
    key.insert(0, "site_id", key.experiment + "_" + key.plate.astype(str) + "_" + key.well + "_" + key.site.astype(str))
    compounds = np.array(["Remdesivir", "GS-441524", None, "Aloxistatin"], dtype=object)
    key["treatment"] = compounds[np.arange(len(key)) // sites % 4]
    if categorical:
        for name in ("experiment", "well", "treatment"):
            key[name] = key[name].astype("category")
    return key


def test_choices_are_narrowed_by_the_levels_above():
    frame = screen()
    finder = SiteFinder(frame)
    assert finder.choices("experiment", {}) == ["HRCE-1", "VERO-1"]
    assert finder.choices("plate", {"experiment": "VERO-1"}) == [str(p) for p in range(1, 13)]  # numeric order
    wells = finder.choices("well", {"experiment": "VERO-1", "plate": "10"})
    assert wells == WELLS and len(wells) == 384  # never the 9,216 wells of the screen
    assert finder.choices("site", {"experiment": "VERO-1", "plate": "10", "well": "B02"}) == ["1", "2"]
    assert finder.choices("plate", {"experiment": "HEK-9"}) == []


def test_a_choice_leads_to_its_site_and_a_site_back_to_its_choices():
    frame = screen()
    finder = SiteFinder(frame)
    site = finder.site_of({"experiment": "VERO-1", "plate": "3", "well": "C05", "site": "2"})
    assert frame.iloc[site].site_id == "VERO-1_3_C05_2"
    assert finder.key_of(site) == {"experiment": "VERO-1", "plate": "3", "well": "C05", "site": "2"}
    assert finder.site_of({"experiment": "VERO-1", "plate": "3"}) == frame.index[
        (frame.experiment == "VERO-1") & (frame.plate == 3)][0]  # the plate's first site
    assert finder.site_of({"experiment": "VERO-1", "plate": "99"}) is None


def test_narrowing_keeps_finer_choices_that_still_exist():
    frame = screen().iloc[:-384 * 2 + 10]  # VERO-1 plate 12 has only its first five wells
    finder = SiteFinder(frame)
    chosen = {"experiment": "VERO-1", "plate": "3", "well": "P24", "site": "2"}
    assert finder.narrowed({**chosen, "plate": "4"}, "plate") == {**chosen, "plate": "4"}
    assert finder.narrowed({**chosen, "plate": "12"}, "plate") == {"experiment": "VERO-1", "plate": "12",
                                                                     "well": "A01", "site": "2"}


def test_search_matches_every_word_in_site_ids_and_compounds():
    for categorical in (True, False):
        frame = screen(categorical=categorical)
        finder = SiteFinder(frame)
        found = finder.search("VERO-1_3_C05")
        assert list(frame.site_id.iloc[found.sites]) == ["VERO-1_3_C05_1", "VERO-1_3_C05_2"]
        b02 = finder.search("b02")  # a well on every plate
        assert len(b02) == 2 * 12 * 2 and set(frame.well.iloc[b02.sites]) == {"B02"}
        both = finder.search("remdesivir vero-1_7_")  # a compound on one plate
        rows = frame.iloc[both.sites]
        assert len(rows) and (rows.treatment == "Remdesivir").all()
        assert rows.site_id.str.startswith("VERO-1_7_").all()
        assert len(finder.search("none")) == 0  # a missing compound is not the word "none"
        assert len(finder.search("   ")) == 0
        assert (np.diff(finder.search("aloxistatin").sites) > 0).all()  # slider order

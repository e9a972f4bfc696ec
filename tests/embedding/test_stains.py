"""Stain mapping by name: RxRx1 into an RxRx19a model, files, and the errors."""

import numpy as np
import pytest

from napari_gandl.embedding.stains import (
    RXRX1_STAIN_ORDER, RXRX19A_STAIN_ORDER, StainMapError, map_stains, resolve_stain_map,
)

RXRX1 = ["w1 Hoechst", "w2 ConA", "w3 Phalloidin", "w4 SYTO14", "w5 MitoTracker", "w6 WGA"]
RXRX19A = ["w1 Hoechst", "w2 ConA", "w3 Phalloidin", "w4 SYTO14", "w5 WGA"]


def test_rxrx1_into_rxrx19a_drops_mitotracker_and_moves_wga():
    index = map_stains(RXRX1, RXRX19A)
    assert index == [0, 1, 2, 3, 5]
    img = np.arange(6)[:, None, None] * np.ones((6, 2, 2))
    assert img[index][:, 0, 0].tolist() == [0, 1, 2, 3, 5]
    assert map_stains(RXRX1, RXRX19A_STAIN_ORDER) == index  # bare dye names match 'wN dye'
    assert map_stains(["DAPI", "concanavalin A", "actin", "RNA", "membrane"], RXRX19A) == [0, 1, 2, 3, 4]
    assert map_stains(list(reversed(RXRX19A)), RXRX19A) == [4, 3, 2, 1, 0]  # reordered


def test_unmappable_stains_are_named():
    with pytest.raises(StainMapError, match=r"'w5 MitoTracker'.*not found.*w5 WGA"):
        map_stains(RXRX19A, RXRX1)
    with pytest.raises(StainMapError, match=r"stains 'w1', 'w2'"):
        map_stains(["ch1", "ch2"], ["w1", "w2"])


def test_resolve_stain_map_modes(tmp_path):
    assert resolve_stain_map(RXRX19A, RXRX19A) is None  # same stains: used as they are
    assert resolve_stain_map(RXRX19A, RXRX19A, "auto") is None
    assert resolve_stain_map(RXRX1, RXRX19A, "auto") == [0, 1, 2, 3, 5]
    with pytest.raises(StainMapError, match=r"6 stains .* expects 5 .*--stain-map auto"):
        resolve_stain_map(RXRX1, RXRX19A)
    f = tmp_path / "map.csv"
    f.write_text("model_stain,plate_stain\nHoechst,w1 Hoechst\nConA,w2 ConA\nPhalloidin,w3 Phalloidin\n"
                 "SYTO14,w5 MitoTracker\nWGA,w6 WGA\n")
    assert resolve_stain_map(RXRX1, RXRX19A, str(f)) == [0, 1, 2, 4, 5]  # a deliberate substitution
    assert resolve_stain_map(RXRX1, RXRX19A, {m: p for m, p in zip(RXRX19A_STAIN_ORDER, RXRX1)}) == [0, 1, 2, 3, 4]
    assert resolve_stain_map(RXRX1, RXRX19A, [5, 4, 3, 2, 1]) == [5, 4, 3, 2, 1]


def test_bad_stain_map_files_are_named(tmp_path):
    with pytest.raises(StainMapError, match=r"nope\.csv: no such file"):
        resolve_stain_map(RXRX1, RXRX19A, tmp_path / "nope.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("model,plate\nHoechst,w1 Hoechst\n")
    with pytest.raises(StainMapError, match=r"bad\.csv: needs the columns model_stain,plate_stain"):
        resolve_stain_map(RXRX1, RXRX19A, bad)
    short = tmp_path / "short.csv"
    short.write_text("model_stain,plate_stain\nHoechst,w1 Hoechst\n")
    with pytest.raises(StainMapError, match=r"short\.csv: no plate stain given for the model's 'w2 ConA'"):
        resolve_stain_map(RXRX1, RXRX19A, short)
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("model_stain,plate_stain\n" + "".join(f"{m},{m}\n" for m in RXRX19A_STAIN_ORDER[:4])
                     + "WGA,Alexa 647\n")
    with pytest.raises(StainMapError, match=r"wrong\.csv: 'Alexa 647' not among the plate's stains"):
        resolve_stain_map(RXRX1, RXRX19A, wrong)
    with pytest.raises(StainMapError, match="needs 5 plate channel indices"):
        resolve_stain_map(RXRX1, RXRX19A, [0, 1, 2, 3, 6])
    assert len(RXRX1_STAIN_ORDER) == 6

"""The HTML report renders in a real browser (headless Chromium): images decode, tables lay out."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from napari_gandl.analysis import analyse
from napari_gandl.analysis.browser import find_browser, rendered, screenshot

from analysis_synth import rxrx_like

pytestmark = pytest.mark.skipif(find_browser() is None, reason="needs Chromium (apt-get install chromium)")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    analyse(rxrx_like(n_feat=6, plates=2, wells=3), out_dir=out, n_splits=2, ground_truth=False)
    return out / "report.html"


def test_report_renders_images_and_tables_in_chromium(report):
    page = rendered(report)
    assert page["title"] == "GAN-DL analysis"
    # every plot the report names is inlined and decodes to a real image
    assert {i["alt"] for i in page["images"]} >= {"E2 space", "C2 space", "Dose-response curves"}
    for image in page["images"]:
        assert image["complete"] and image["width"] > 100 and image["height"] > 100, image
    # the accuracy table (header + 4 tasks) and the dose-response table are laid out
    assert len(page["tables"]) >= 2
    assert page["tables"][0]["rows"] == 5 and all(t["width"] > 0 for t in page["tables"])


def test_broken_image_is_caught(report, tmp_path):
    broken = tmp_path / "report.html"
    broken.write_text(report.read_text().replace("data:image/png;base64,", "data:image/png;base64,AAAA", 1))
    widths = [i["width"] for i in rendered(broken)["images"]]
    assert widths[0] == 0 and min(widths[1:]) > 100


def test_screenshot_shows_the_page(report, tmp_path):
    png = screenshot(report, tmp_path / "shot.png", width=800, height=600)
    pixels = np.asarray(Image.open(png).convert("L"), dtype=float)
    assert pixels.shape == (600, 800)
    assert pixels.std() > 10 and (pixels < 100).mean() > 0.005  # text and plots drawn, not a blank page

"""The science (plate, synthetic, gan, analysis) and the command line stay Qt-free."""

from __future__ import annotations

import subprocess
import sys

GUI_PACKAGES = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "vispy")


def test_science_and_cli_import_neither_napari_nor_qt():
    code = (
        "import sys\n"
        "import napari_gandl.plate, napari_gandl.synthetic, napari_gandl.gan, napari_gandl.analysis\n"
        "from napari_gandl.cli import build_parser; build_parser()\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({GUI_PACKAGES!r})))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"

"""The package keeps its layers (pyproject.toml, [tool.importlinter]), the science, the view-models
and the command line stay Qt-free, and no private napari API is used."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

GUI_PACKAGES = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "vispy")
PACKAGE = Path(__file__).resolve().parents[1] / "src" / "napari_gandl"


def test_science_viewmodels_and_cli_import_neither_napari_nor_qt():
    code = (
        "import sys\n"
        "import napari_gandl.plate, napari_gandl.synthetic, napari_gandl.gan, napari_gandl.analysis\n"
        "import napari_gandl.columns, napari_gandl.viewmodels, napari_gandl.viewmodels.embedding_choice\n"
        "import napari_gandl.embedding, napari_gandl.embedding.methods, napari_gandl.comparators\n"
        "import napari_gandl.preprocessing, napari_gandl.features, napari_gandl.torch_utils\n"
        "from napari_gandl.cli import build_parser; build_parser()\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({GUI_PACKAGES!r})))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


ROOT = PACKAGE.parents[1]


def test_layers_and_no_cycles():
    """import-linter: no module imports from a layer above its own or from an independent sibling,
    every part of the package is in a layer, and no part imports another in a cycle."""
    result = subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "2 kept, 0 broken" in result.stdout


def test_lint_imports_catches_an_upward_import(tmp_path):
    """The contract is live: a copy of the package with one upward import breaks it."""
    import shutil

    copy = tmp_path / "src"
    shutil.copytree(PACKAGE, copy / "napari_gandl", ignore=shutil.ignore_patterns("__pycache__"))
    bad = copy / "napari_gandl" / "plate" / "model.py"
    bad.write_text(bad.read_text() + "\nfrom napari_gandl.analysis import normalise  # noqa\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    env = {**__import__("os").environ, "PYTHONPATH": str(copy)}
    result = subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
                            cwd=tmp_path, capture_output=True, text=True, env=env)
    assert result.returncode != 0
    assert "napari_gandl.plate is not allowed to import napari_gandl.analysis" in result.stdout


def test_architecture_doc_names_every_layer():
    """docs/architecture.md's table names every part the import-linter layers declare, bottom layer first."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contract = next(c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers")
    table = (ROOT / "docs" / "architecture.md").read_text().split("| layer | parts |")[1]
    positions = [[table.find(f"`{part.strip()}`") for part in layer.split("|")]
                 for layer in reversed(contract["layers"])]
    assert all(-1 not in layer for layer in positions), positions
    assert all(max(low) < min(high) for low, high in zip(positions, positions[1:]))


def test_no_source_file_over_600_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 600}
    assert long == {}


def test_no_private_napari_api():
    """Neither ``napari._…`` modules nor private attributes of napari objects (``window._…``)."""
    private = re.compile(r"napari\._|\b(?:window|viewer|_viewer|qt_viewer|layers|dims)\._[a-z]")
    found = [f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}"
             for path in PACKAGE.rglob("*.py")
             for n, line in enumerate(path.read_text().splitlines(), 1) if private.search(line)]
    assert found == []


def test_widgets_do_not_import_each_other():
    """Docks meet through the site table's columns and events; only the shared modules are imported."""
    # layers: montage layers, shown by montage and similar sites; _plate_canvas: the plate map's drawing
    shared = {"common", "_analysis", "layers", "_plate_canvas"}
    found = []
    for path in (PACKAGE / "_widgets").glob("*.py"):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            for name in re.findall(r"from \.(\w+) import|from napari_gandl\._widgets\.(\w+) import", line):
                module = next(m for m in name if m)
                if module not in shared and module != path.stem:
                    found.append(f"{path.name}:{n}: {line.strip()}")
    assert found == []

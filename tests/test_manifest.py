"""The npe2 manifest validates, and its docks are grouped under Data / Model / Analysis submenus."""

from __future__ import annotations

from importlib.resources import files

from npe2 import PluginManifest

MANIFEST = files("napari_gandl") / "napari.yaml"
GROUPS = {"napari-gandl.data": "GAN-DL: Data", "napari-gandl.model": "GAN-DL: Model",
          "napari-gandl.analysis": "GAN-DL: Analysis"}


def test_manifest_validates_and_every_dock_is_in_one_group():
    manifest = PluginManifest.from_file(str(MANIFEST))  # raises on an invalid manifest
    contributions = manifest.contributions
    assert {s.id: s.label for s in contributions.submenus} == GROUPS
    docks = {w.command for w in contributions.widgets}
    grouped = [item.command for group in GROUPS for item in contributions.menus[group]]
    assert sorted(grouped) == sorted(docks)  # each dock exactly once
    # sample data stays under File > Open Sample, not in the submenus
    samples = {s.command for s in contributions.sample_data}
    assert samples and not samples & set(grouped)


def _menu(parent, title: str):
    """The submenu of a QMenu / QMenuBar whose action text (without '&') is ``title``."""
    for action in parent.actions():
        if action.text().replace("&", "") == title and action.menu() is not None:
            return action.menu()
    raise AssertionError(f"no menu {title!r} in {[a.text() for a in parent.actions()]}")


def test_layers_menu_opens_a_dock_from_each_group(make_napari_viewer, qtbot):
    from qtpy.QtWidgets import QApplication, QMainWindow

    viewer = make_napari_viewer()
    window = next(w for w in QApplication.topLevelWidgets() if isinstance(w, QMainWindow) and w.menuBar())
    layers = _menu(window.menuBar(), "Layers")
    where = {"GAN-DL: Data": "Visualize", "GAN-DL: Model": "Measure", "GAN-DL: Analysis": "Classify"}
    for label, parent in where.items():
        group = _menu(_menu(layers, parent), label)
        titles = [a.text() for a in group.actions()]
        assert titles and all("GAN-DL" in t for t in titles), titles
    navigator = next(a for a in _menu(_menu(layers, "Visualize"), "GAN-DL: Data").actions()
                     if a.text().startswith("Site navigator"))
    navigator.trigger()
    assert any("Site navigator" in name for name in viewer.window.dock_widgets)

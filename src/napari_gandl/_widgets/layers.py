"""Montage layers: a :class:`~napari_gandl.viewmodels.montage.Montage` shown beside the plate.

One image layer per stain (the reader's colours, additive, the plate layers'
current contrast) and a points layer whose text labels each tile, placed to
the right of the plate at the plate's scale. Showing a montage under a name
already shown replaces it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from napari_gandl._viewer import plate_layers

if TYPE_CHECKING:
    import napari

    from napari_gandl.viewmodels import SiteTable
    from napari_gandl.viewmodels.montage import Montage

GAP_TILES = 0.25  # space between the plate and the montage, in plate tiles


def show_montage(viewer: napari.viewer.Viewer, table: SiteTable, montage: Montage, name: str,
                 where: str = "right") -> list:
    """Add (or replace) the layers of ``montage`` named ``name``, ``where`` ("right" or "below") of the
    plate, and point the camera at the plate's site and the montage; returns the layers, the labels last."""
    from napari_gandl._viewer import stain_colormap

    plate = table.plate
    stains = plate_layers(viewer)
    limits = [layer.contrast_limits for layer in stains] or [None] * plate.n_channels
    pixel = float(plate.pixel_size_um or 1.0)
    scale = (pixel * montage.downsample,) * 2
    translate = ((0.0, plate.tile_shape[1] * pixel * (1 + GAP_TILES)) if where == "right"
                 else (plate.tile_shape[0] * pixel * (1 + GAP_TILES), 0.0))
    for layer in [layer for layer in viewer.layers if layer.name.startswith(f"{name} · ")]:
        viewer.layers.remove(layer)
    layers = []
    for c, stain in enumerate(plate.stains):
        layers.append(viewer.add_image(
            montage.grid[c], name=f"{name} · {stain.label}", colormap=stain_colormap(stain), blending="additive",
            contrast_limits=limits[c], scale=scale, translate=translate,
            metadata={"napari_gandl": {"montage_sites": list(montage.sites)}}))
    # at the top-left corner of each tile, just inside it
    origins = np.asarray(montage.origins, float) + (0.09 * montage.tile_shape[0], 3)
    labels = viewer.add_points(
        origins, name=f"{name} · labels", size=1, face_color="transparent", border_color="transparent",
        features={"label": montage.labels, "site": montage.sites}, scale=scale, translate=translate,
        text={"string": "{label}", "anchor": "upper_left", "color": "white", "size": 9},
    )
    layers.append(labels)
    viewer.reset_view(layers=stains[:1] + layers)  # (napari fits 2-D layers only together with a 3-D one)
    return layers


def montage_colors_and_limits(viewer: napari.viewer.Viewer, table: SiteTable) -> tuple[list, list]:
    """Stain colours and the plate layers' contrast limits, for exporting a montage as it is shown."""
    colors = [stain.color for stain in table.plate.stains]
    layers = plate_layers(viewer)
    limits = [tuple(layer.contrast_limits) for layer in layers] if layers else table.plate.contrast_limits()
    return colors, limits

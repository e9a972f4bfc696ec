"""The latent-space dock's view-model (Qt-free): its worker jobs and how a path is laid out.

Endpoints are two seeds, or two sites of a plate first projected into w space
(``gan.project``, progress yielded). The path (``gan.interpolate``, lerp or
slerp) is rendered by the generator. :func:`path_strip` lays it out as one
row, ``A | path | B``: the real endpoints (the crops the projection
reconstructs, ``gan.target_crop``) at the same scale beside the generated
steps, with a label per part, for the dock to show where the user looks.
"""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

import numpy as np

from napari_gandl.plate.display import composite, tile_grid

STRIP_PAD = 6  # pixels (of the generated images) between the tiles of a path strip




def with_progress(function, *args, stage: str = "", min_interval_s: float = 0.1, **kwargs):
    """Generator: run ``function(*args, progress=cb, **kwargs)`` in a helper thread,
    yield ``(stage, done, total)`` as it reports (at most every ``min_interval_s``),
    and return its result (``result = yield from with_progress(...)``)."""
    updates: queue.Queue = queue.Queue()
    outcome: dict = {}

    def target():
        try:
            outcome["value"] = function(*args, progress=lambda d, t: updates.put((stage, d, t)), **kwargs)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = exc
        finally:
            updates.put(None)

    thread = threading.Thread(target=target, name=f"napari-gandl {stage}", daemon=True)
    thread.start()
    last = 0.0
    while (item := updates.get()) is not None:
        now = time.monotonic()
        if now - last >= min_interval_s or item[1] == item[2]:
            last = now
            yield item
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def write_tiff(stack: np.ndarray, path, channel_names=()) -> Path:
    """Multi-page ImageJ hyperstack: ``(T, C, H, W)`` as TCYX, ``(C, H, W)`` as CYX."""
    import tifffile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    axes = "TCYX" if stack.ndim == 4 else "CYX"
    metadata = {"axes": axes}
    if channel_names:
        metadata["Labels"] = list(channel_names)
    tifffile.imwrite(path, np.ascontiguousarray(stack, np.float32), imagej=True, metadata=metadata)
    return path


def write_gif(frames: np.ndarray, path, fps: float = 8.0) -> Path:
    """Animated GIF (looping) of ``(T, H, W, 3)`` uint8 frames."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(f) for f in np.asarray(frames, np.uint8).reshape((-1,) + frames.shape[-3:])]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return path


def gif_job(stack, colors, limits, path, fps: float = 8.0) -> Path:
    """Worker: composite ``(T, C, H, W)`` as shown (colours, contrast limits) and write the GIF."""
    return write_gif(composite(stack, colors, limits), path, fps)


def path_job(run_dir, device, mode, a, b, plate, projection_steps, steps, method, truncation,
             endpoint_labels=None):
    """Worker: endpoints (projected sites or seeds) -> interpolated w path -> generated stack.

    For two sites the result also holds ``targets``: the real crops the projection reconstructs
    (raw intensities, the generated images' scale), shown beside the path."""
    from napari_gandl.gan import generate, interpolate, interpolate_noise, load_model, project, to_raw
    from napari_gandl.gan.latent import seed_noise, seeds_to_w, target_crop
    from napari_gandl.gan.metrics import generator_note
    from napari_gandl.torch_utils.device import resolve_device

    model = load_model(run_dir, resolve_device(device))
    targets = None
    if mode == "two sites":
        if plate is None:
            raise ValueError("no plate is open: open one to project its sites, or choose 'two seeds'")
        if model.img_channels != plate.n_channels:
            raise ValueError(f"{model.path} was trained on {model.img_channels} stains but {plate.root} has "
                             f"{plate.n_channels}")
        ends, targets = [], []
        for name, site in (("A", a), ("B", b)):
            if not 0 <= site < plate.n_sites:
                raise ValueError(f"site {name} = {site} is outside the plate (0..{plate.n_sites - 1})")
            image = plate.read_site(int(site))
            fit = yield from with_progress(project, model, image, steps=int(projection_steps),
                                           stage=f"projecting site {name} ({plate.site_label(int(site))})")
            ends.append((fit.w, fit.noise))
            targets.append(target_crop(model, image))
        (w_a, noise_a), (w_b, noise_b) = ends
        targets = np.stack(targets)
        endpoint_labels = endpoint_labels or [plate.site_label(int(a)), plate.site_label(int(b))]
    else:
        w_a, w_b = seeds_to_w(model, [int(a), int(b)], truncation=float(truncation)).cpu().numpy()
        noise = seed_noise(model, [int(a), int(b)])
        noise_a, noise_b = [n[0] for n in noise], [n[1] for n in noise]
        endpoint_labels = [f"seed {int(a)}", f"seed {int(b)}"]
    ws = interpolate(w_a, w_b, int(steps), method)
    yield ("rendering the path", 0, 1)
    images = generate(model, w=ws, noise=interpolate_noise(noise_a, noise_b, int(steps)))
    return {
        "kind": "path", "mode": mode, "endpoints": (int(a), int(b)), "endpoint_labels": list(endpoint_labels),
        "method": method, "stack": to_raw(model, images), "targets": targets, "w": ws, "scale": model.scale,
        "channel_names": model.channel_names, "run": str(model.path), "note": generator_note(model),
    }


def grid_job(run_dir, device, first_seed, n, truncation):
    """Worker: ``n`` random cells (seeds ``first_seed``..) at ``truncation`` as one tiled grid."""
    from napari_gandl.gan import generate, load_model, to_raw
    from napari_gandl.gan.metrics import generator_note
    from napari_gandl.torch_utils.device import resolve_device

    model = load_model(run_dir, resolve_device(device))
    yield ("generating", 0, 1)
    seeds = list(range(int(first_seed), int(first_seed) + int(n)))
    images = to_raw(model, generate(model, seeds=seeds, truncation=float(truncation)))
    return {
        "kind": "grid", "stack": tile_grid(images), "cells": images, "seeds": seeds,
        "truncation": float(truncation), "scale": model.scale, "channel_names": model.channel_names,
        "run": str(model.path), "note": generator_note(model),
    }


def path_strip(result: dict) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """``A | step 1 .. step n | B`` as one ``(C, H, W)`` row, and its ``(y, x, text)`` caption in its
    pixels: below its left end (shown with its top-left corner there), one line naming the path
    and one per end."""
    stack = np.asarray(result["stack"], np.float32)
    n, _, h, _ = stack.shape
    ends = result.get("targets")
    tiles = stack if ends is None else np.concatenate([ends[:1], stack, ends[1:]])
    strip = tile_grid(tiles, cols=len(tiles), pad=STRIP_PAD)
    names = result.get("endpoint_labels") or [str(e) for e in result["endpoints"]]
    lines = [f"{n}-step {result['method']} path (generated)",
             f"A ({'real, ' if ends is not None else ''}left): {names[0]}",
             f"B ({'real, ' if ends is not None else ''}right): {names[1]}"]
    # napari centres a caption's lines on its point: 4 rows down keeps them clear of the row
    return strip, [(4.0 * h, 0.0, "\n".join(lines))]

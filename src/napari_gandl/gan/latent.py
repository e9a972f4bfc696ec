"""Generation, projection and interpolation in the generator's w space.

All functions take a :class:`~napari_gandl.gan.checkpoint.GANModel` (from
``load_model(run_dir)``) or a run directory.  Images are returned as float32
``(N, C, H, W)`` arrays in the normalised training range (about -1..1); use
``to_raw`` to map them back to the plate's intensity units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from napari_gandl.gan.checkpoint import GANModel, load_model
from napari_gandl.gan.networks import noise_generators, noise_maps

__all__ = ["Projection", "generate", "project", "interpolate", "interpolate_noise", "to_raw", "seeds_to_w",
           "seed_noise", "target_crop"]


def _model(model) -> GANModel:
    return model if isinstance(model, GANModel) else load_model(model)


def seeds_to_w(model, seeds, truncation: float = 1.0) -> torch.Tensor:
    """w vectors ``(N, w_dim)`` for integer seeds (z drawn from each seed)."""
    m = _model(model)
    z = np.stack([np.random.RandomState(int(s)).standard_normal(m.G.z_dim) for s in seeds])
    z = torch.from_numpy(z.astype(np.float32)).to(m.device)
    with torch.no_grad():
        return m.G.mapping(z, truncation_psi=truncation)


def seed_noise(model, seeds) -> list[np.ndarray]:
    """The noise maps integer ``seeds`` draw, one ``(N, r, r)`` array per noise layer (what
    :func:`generate` uses for those seeds)."""
    m = _model(model)
    draw = noise_generators(list(seeds))
    return [draw(layer)[:, 0].numpy() for layer in m.G.synthesis.noise_layers()]


def generate(model, seeds=None, w=None, noise=None, truncation: float = 1.0, batch: int = 16) -> np.ndarray:
    """N-stain images from integer ``seeds`` or from ``w`` (``(N, w_dim)`` or ``(N, num_ws, w_dim)``).

    A seed draws both z and the image's noise inputs (:func:`seed_noise`),
    and on cell images the noise is what places the cells, so seeds give
    different fields of cells.  With ``w``, ``noise`` gives each image's maps
    (one ``(N, r, r)`` array per noise layer: from :func:`seed_noise`,
    :class:`Projection` or :func:`interpolate_noise`); without it every image
    shares the generator's constant noise, and so its cells.

    ``truncation`` < 1 pulls w towards the average w (more typical images);
    with explicit ``w`` it is applied the same way.
    """
    m = _model(model)
    if (seeds is None) == (w is None):
        raise ValueError("give exactly one of seeds or w")
    if seeds is not None:
        if noise is not None:
            raise ValueError("noise goes with w; a seed draws its own")
        seeds = list(seeds)
        ws = seeds_to_w(m, seeds, truncation)
    else:
        ws = torch.from_numpy(np.ascontiguousarray(w, np.float32)).to(m.device)
        if ws.dim() == 1:
            ws = ws[None]
        if truncation != 1.0:
            avg = m.G.mapping.w_avg
            ws = avg.lerp(ws, truncation) if ws.dim() == 2 else avg[None, None].lerp(ws, truncation)
        if noise is not None:
            expected = [(len(ws), layer.resolution, layer.resolution) for layer in m.G.synthesis.noise_layers()]
            got = [np.shape(n) for n in noise]
            if got != expected:
                raise ValueError(f"noise must be one (N, r, r) map per noise layer, {expected}; got {got}")
    out = []
    with torch.no_grad():
        for i in range(0, len(ws), batch):
            if seeds is not None:
                mode = noise_generators(seeds[i : i + batch])
            elif noise is not None:
                mode = noise_maps([torch.from_numpy(np.ascontiguousarray(n[i : i + batch], np.float32))[:, None]
                                   for n in noise])
            else:
                mode = "const"
            out.append(m.G.synthesize(ws[i : i + batch], noise_mode=mode).float().cpu())
    return torch.cat(out).numpy()


def to_raw(model, images: np.ndarray) -> np.ndarray:
    """Normalised images back to the plate's intensity units (float32)."""
    return _model(model).normalizer.inverse(images)


def _slerp(a, b, t):
    an = a / np.linalg.norm(a)
    bn = b / np.linalg.norm(b)
    omega = np.arccos(np.clip(np.dot(an, bn), -1.0, 1.0))
    if omega < 1e-6:
        return (1 - t) * a + t * b
    so = np.sin(omega)
    # spherical path on the directions, norms interpolated linearly
    direction = (np.sin((1 - t) * omega) / so) * an + (np.sin(t * omega) / so) * bn
    norm = (1 - t) * np.linalg.norm(a) + t * np.linalg.norm(b)
    return direction / np.linalg.norm(direction) * norm


def interpolate(w_a, w_b, steps: int = 8, method: str = "slerp") -> np.ndarray:
    """``steps`` latents from ``w_a`` to ``w_b`` inclusive (``'slerp'`` or ``'lerp'``)."""
    a = np.asarray(w_a, np.float64).reshape(-1)
    b = np.asarray(w_b, np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"w_a and w_b differ in shape: {a.shape} vs {b.shape}")
    if steps < 2:
        raise ValueError("steps must be >= 2")
    ts = np.linspace(0.0, 1.0, steps)
    if method == "lerp":
        out = [(1 - t) * a + t * b for t in ts]
    elif method == "slerp":
        out = [_slerp(a, b, t) for t in ts]
    else:
        raise ValueError(f"method must be 'slerp' or 'lerp', got {method!r}")
    shape = np.asarray(w_a).shape
    return np.stack(out).astype(np.float32).reshape((steps,) + shape)


def interpolate_noise(noise_a, noise_b, steps: int = 8) -> list[np.ndarray]:
    """``steps`` noise maps per layer from ``noise_a`` to ``noise_b`` (lists of ``(r, r)`` maps),
    -> one ``(steps, r, r)`` array per layer.  The blend is rescaled to unit variance, so the
    middle of the path is as noisy as its ends."""
    if len(noise_a) != len(noise_b):
        raise ValueError(f"noise_a has {len(noise_a)} maps, noise_b {len(noise_b)}")
    t = np.linspace(0.0, 1.0, steps)[:, None, None]
    scale = np.sqrt((1 - t) ** 2 + t**2)
    return [(((1 - t) * np.asarray(a) + t * np.asarray(b)) / scale).astype(np.float32)
            for a, b in zip(noise_a, noise_b)]


@dataclass
class Projection:
    """What :func:`project` found: ``w`` ``(w_dim,)``, the noise maps (one ``(r, r)`` array per
    noise layer) and the loss at every step."""

    w: np.ndarray
    noise: list[np.ndarray]
    history: list[float]

    def image(self, model) -> np.ndarray:
        """The reconstruction, ``(C, R, R)`` in normalised units."""
        return generate(model, w=self.w[None], noise=[n[None] for n in self.noise])[0]


def _centre(images: torch.Tensor, r: int) -> torch.Tensor:
    """``(N, C, H, W)`` -> the centre ``r x r`` crop (bilinear resize when smaller)."""
    _, _, h, w = images.shape
    if h >= r and w >= r:
        y0, x0 = (h - r) // 2, (w - r) // 2
        return images[:, :, y0 : y0 + r, x0 : x0 + r]
    return F.interpolate(images, size=(r, r), mode="bilinear", align_corners=False)


def target_crop(model, image: np.ndarray) -> np.ndarray:
    """The part of a raw ``(C, H, W)`` site image that :func:`project` reconstructs, in raw
    intensities: downsampled to the model's scale, centre crop at its resolution."""
    from napari_gandl.preprocessing.sampling import downsample

    m = _model(model)
    img = downsample(np.asarray(image, np.float32), m.scale)
    return _centre(torch.from_numpy(np.ascontiguousarray(img))[None], m.resolution)[0].numpy()


def project(model, image: np.ndarray, steps: int = 200, lr: float = 0.05,
            feature_weight: float = 1.0, normalized: bool = False,
            seed: int = 0, progress=None) -> Projection:
    """Find the w and noise maps whose generated image reconstructs ``image``.

    ``image`` is one ``(C, H, W)`` site crop in raw intensities (or already
    normalised with ``normalized=True``); it is centre-cropped / resized to
    the training resolution.  The loss is pixel MSE plus ``feature_weight``
    times the squared distance between the discriminator features of target
    and reconstruction (no ImageNet/VGG networks, no RGB assumptions).
    w starts from the average w.  The noise maps, which place the cells, are
    optimised with it and renormalised to zero mean and unit variance after
    every step.  StyleGAN2's projector also penalises their autocorrelation;
    on the suite's texture run that raised the real crops' error at every
    weight tried (100 steps: 0.039 without, 0.045 at 10, 0.051 at 1e3), so it
    is left out.
    ``progress``, if given, is called as ``progress(step_done, steps)`` after
    every optimisation step.
    """
    m = _model(model)
    img = np.asarray(image, np.float32)
    if img.ndim != 3 or img.shape[0] != m.img_channels:
        raise ValueError(
            f"image must be (C, H, W) with C={m.img_channels} stains, got shape {img.shape}"
        )
    if not normalized:
        from napari_gandl.preprocessing.sampling import downsample

        img = downsample(img, m.scale)
    target = _centre(torch.from_numpy(img)[None].to(m.device), m.resolution)
    if not normalized:
        target = torch.from_numpy(m.normalizer(target[0].cpu().numpy()))[None].to(m.device)
    G, D = m.G, m.D
    torch.manual_seed(seed)
    with torch.no_grad():
        target_feat = D.features(target)
        # start from w_avg (or the mean of random w if the average was never tracked)
        w0 = G.mapping.w_avg.clone()
        if not torch.any(w0 != 0):
            w0 = G.mapping(torch.randn(256, G.z_dim, device=m.device)).mean(0)
    w_opt = w0.clone()[None].requires_grad_(True)
    noise = [torch.randn(1, 1, layer.resolution, layer.resolution, device=m.device).requires_grad_(True)
             for layer in G.synthesis.noise_layers()]
    opt = torch.optim.Adam([w_opt, *noise], lr=lr, betas=(0.9, 0.999))
    history = []
    for i in range(steps):
        t = i / max(steps - 1, 1)
        for g in opt.param_groups:  # cosine ramp-down of the step size
            g["lr"] = lr * (0.5 * (1 + np.cos(np.pi * t)) * 0.95 + 0.05)
        synth = G.synthesize(w_opt, noise_mode=noise_maps(noise))
        pix = F.mse_loss(synth, target)
        feat = (D.features(synth) - target_feat).square().mean()
        loss = pix + feature_weight * feat
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            for n in noise:
                n -= n.mean()
                n /= n.square().mean().sqrt()
        history.append(float(loss.detach()))
        if progress is not None:
            progress(i + 1, steps)
    return Projection(w=w_opt.detach()[0].cpu().numpy().astype(np.float32),
                      noise=[n.detach()[0, 0].cpu().numpy() for n in noise], history=history)

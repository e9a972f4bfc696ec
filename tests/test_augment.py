"""The self-supervised methods' augmentations: Gaussian blur per stain and random resized crops."""

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from napari_gandl.preprocessing.augment import AugmentConfig, augment, gaussian_blur, random_resized_crops


def test_blur_matches_scipy_and_never_mixes_stains():
    x = torch.zeros(2, 3, 33, 33, dtype=torch.float64)
    x[0, 1, 16, 16] = 1.0  # one bright pixel in stain 1 of image 0
    x[1, 2, 10, 20] = 1.0
    out = gaussian_blur(x, torch.tensor([1.5, 0.0], dtype=torch.float64))
    expected = gaussian_filter(x[0, 1].numpy(), 1.5, mode="reflect", truncate=3.0)
    np.testing.assert_allclose(out[0, 1].numpy(), expected, atol=1e-3)
    assert out[0, 0].abs().max() == 0 and out[0, 2].abs().max() == 0  # other stains untouched
    torch.testing.assert_close(out[1], x[1])  # sigma 0: unchanged
    torch.testing.assert_close(out.sum(dim=(2, 3)), x.sum(dim=(2, 3)))  # intensity kept


def test_augment_blur_is_differentiable_and_off_by_default():
    x = torch.randn(4, 5, 32, 32, requires_grad=True)
    cfg = AugmentConfig(p=1.0, flips=False, rot90=False, translate=0.0, gain=0.0, offset=0.0, blur=2.0)
    y = augment(x, cfg)
    assert y.std() < x.std()  # smoothed
    y.sum().backward()
    assert torch.isfinite(x.grad).all()
    torch.manual_seed(0)
    a = augment(x.detach(), AugmentConfig(p=1.0))
    torch.manual_seed(0)
    b = augment(x.detach(), AugmentConfig(p=1.0, blur=0.0))
    assert AugmentConfig().blur == 0 and torch.equal(a, b)  # GAN-DL's augmentation is unchanged


@pytest.mark.parametrize("scale", [(1.0, 1.0), (0.1, 0.4)])
def test_random_resized_crops(scale):
    torch.manual_seed(0)
    ramp = torch.linspace(-1, 1, 64)
    x = torch.stack([ramp.view(1, 64).expand(64, 64), ramp.view(64, 1).expand(64, 64)])  # x and y ramps
    x = torch.stack([x, -x])  # two images, two stains each
    out = random_resized_crops(x, 16, scale)
    assert out.shape == (2, 2, 16, 16)
    if scale == (1.0, 1.0):  # the whole image, downsampled
        torch.testing.assert_close(out, torch.nn.functional.interpolate(x, 16, mode="bilinear", antialias=False,
                                                                        align_corners=False))
        return
    for img in out:
        span_x = img[0, 0, -1] - img[0, 0, 0]  # the ramps' rise across the crop, proportional to its side
        span_y = img[1, -1, 0] - img[1, 0, 0]
        side = 60 * 2 / 63  # the rise over the whole image: 16 samples span 60 of its 64 pixels
        area = (span_x / side) * (span_y / side)
        assert torch.isclose(span_x, span_y, atol=1e-5)  # a square, the same for both stains
        assert 0.1 - 1e-3 <= area.abs() <= 0.4 + 1e-3
    assert not torch.allclose(out[0].abs(), out[1].abs())  # each image its own crop

"""GAN-DL's stain mismatch (--mismatch): real crops with one stain from elsewhere in their site, exact
resume, the same starting networks, refusals."""

import pytest
import torch

from napari_gandl.gan import iterate_training
from napari_gandl.gan.mismatch import mismatched
from napari_gandl.plate import open_plate

from gan_helpers import assert_resumes_exactly, tiny_config


def test_each_crop_takes_exactly_one_stain_from_its_partner():
    reals, partners = torch.zeros(64, 5, 8, 8), torch.ones(64, 5, 8, 8)
    out = mismatched(reals, partners, torch.Generator().manual_seed(0))
    from_partner = out.mean(dim=(2, 3))  # 1 where the stain is the partner's, 0 where it is the crop's own
    assert ((from_partner == 0) | (from_partner == 1)).all()
    assert (from_partner.sum(1) == 1).all()
    assert (from_partner.sum(0) > 0).all()  # every stain is swapped in some crop
    with pytest.raises(ValueError, match="at least two stains"):
        mismatched(reals[:, :1], partners[:, :1])


def test_training_with_stain_mismatch_resumes_exactly(gan_plate, tmp_path):
    assert_resumes_exactly(gan_plate, tmp_path, "mismatch", trains_a_head=False, kimg=0.048, seed=3, mismatch=1.0)
    with pytest.raises(ValueError, match=r"mismatch 1\.0 \(asked 0\.5\)"):
        list(iterate_training(gan_plate, tmp_path / "split", tiny_config(kimg=0.1, mismatch=0.5), resume=True))
    with pytest.raises(ValueError, match="--mismatch"):
        tiny_config(mismatch=-1)
    with pytest.raises(ValueError, match="sites larger than a training crop.*64x64 pixels at training scale, crops of 64"):
        list(iterate_training(gan_plate, tmp_path / "whole", tiny_config(kimg=0.1, mismatch=1.0, resolution=64)))


def test_stain_mismatch_leaves_the_starting_networks_alone(gan_plate, tmp_path):
    from napari_gandl.gan.trainer import Trainer

    plain, mismatch = (Trainer(open_plate(gan_plate), tmp_path / name, tiny_config(kimg=0.1, **kw))
                       for name, kw in (("plain", {}), ("mismatch", {"mismatch": 1.0})))
    for a, b in ((plain.D, mismatch.D), (plain.G, mismatch.G)):
        for x, y in zip(a.state_dict().values(), b.state_dict().values()):
            assert torch.equal(x, y)

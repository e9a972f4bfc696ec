"""GAN-DL's code recovery (--info): D's embedding learns to read the generator's codes, style mixing keeps
them, a run resumes exactly and says its samples are less realistic."""

import numpy as np
import pytest
import torch

from napari_gandl.gan import iterate_training, load_checkpoint, load_model
from napari_gandl.gan.info import CODES, CodeRecovery
from napari_gandl.gan.metrics import generator_note
from napari_gandl.gan.networks import NetworkConfig, build_networks
from napari_gandl.torch_utils.optim import Adam

from gan_helpers import TINY, assert_resumes_exactly, tiny_config


def tiny_networks():
    """G and D as a run with code recovery builds them."""
    torch.manual_seed(0)
    return build_networks(NetworkConfig.from_dict({**TINY["network"], "img_channels": 3, "resolution": 32,
                                                   "codes": CODES}))


@pytest.mark.parametrize("feature_dim,layer", [(64, "stats"), (512, "pool")])  # pool: too narrow for stats
def test_logits_and_embedding_are_those_of_forward_and_features(feature_dim, layer):
    net = {**TINY["network"], "img_channels": 3, "resolution": 32, "feature_dim": feature_dim}
    _, D, _ = build_networks(NetworkConfig.from_dict(net))
    img = torch.randn(4, 3, 32, 32)
    logits, embedding = D.logits_and_embedding(img)
    assert D.embedding_layer == layer
    torch.testing.assert_close(logits, D(img), rtol=0, atol=1e-6)
    torch.testing.assert_close(embedding, D.features(img, D.embedding_layer), rtol=0, atol=1e-6)


def test_codes_bypass_the_mapping_and_survive_style_mixing():
    G, _, _ = tiny_networks()
    G.train()
    z = torch.randn(6, G.z_dim)
    ws = G.map(z, style_mixing_prob=1.0)  # every image mixed from its second layer on at the latest
    loud = ((G.w_dim - CODES) / CODES) ** 0.5
    torch.testing.assert_close(ws[:, :, :CODES], loud * z[:, None, :CODES].expand(-1, G.num_ws, -1))
    assert not torch.allclose(ws[:, -1, CODES:], ws[:, 0, CODES:])  # the rest of w did mix


def test_code_recovery_teaches_d_to_read_the_codes():
    G, D, _ = tiny_networks()
    recovery = CodeRecovery(D, CODES, "cpu")
    opt = Adam(D.parameters(), lr=1e-3)
    z = torch.randn(16, G.z_dim, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        fakes = G(z, noise_mode="const")
    losses = []
    for _ in range(80):
        opt.zero_grad()
        recovery.zero_grad()
        loss = recovery.loss(D.logits_and_embedding(fakes)[1], z)
        loss.backward()
        opt.step()
        recovery.step()
        losses.append(float(loss.detach()))
    assert CODES == recovery.head[-1].out_features
    assert losses[0] > 0.5 and np.mean(losses[-10:]) < 0.3 * losses[0]  # chance: the codes' variance, 1


def test_training_with_code_recovery_resumes_exactly(gan_plate, tmp_path):
    assert_resumes_exactly(gan_plate, tmp_path, "info", kimg=0.048, seed=3, info=1.0)
    # whoever looks at its samples (the latent dock) is told they are less realistic
    assert "trained with --info 1 (code recovery)" in generator_note(load_model(tmp_path / "straight"))
    with pytest.raises(ValueError, match=r"info 1\.0 \(asked 0\.0\)"):
        list(iterate_training(gan_plate, tmp_path / "split", tiny_config(kimg=0.1, info=0.0), resume=True))


def test_the_number_of_codes_is_the_runs_and_a_resume_keeps_it(gan_plate, tmp_path):
    three = {**TINY["network"], "codes": 3}
    list(iterate_training(gan_plate, tmp_path / "run", tiny_config(kimg=0.008, info=1.0, network=three)))
    saved = load_checkpoint(tmp_path / "run")
    assert saved["config"]["network"]["codes"] == 3
    last_layer = [w for name, w in saved["info"]["head"].items() if name.endswith("weight")][-1]
    assert last_layer.shape[0] == 3
    with pytest.raises(ValueError, match=r"network\.codes 3 \(asked 8\)"):
        list(iterate_training(gan_plate, tmp_path / "run", tiny_config(kimg=0.016, info=1.0,
                                                                       network={**three, "codes": 8}),
                              resume=True))
    list(iterate_training(gan_plate, tmp_path / "default", tiny_config(kimg=0.008, info=1.0)))
    assert load_checkpoint(tmp_path / "default")["config"]["network"]["codes"] == CODES

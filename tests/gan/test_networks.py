"""Generator / discriminator architecture, augmentations and losses."""

import pytest
import torch

from napari_gandl.preprocessing.augment import AugmentConfig, augment
from napari_gandl.gan.networks import NetworkConfig, build_networks, noise_generators

TINY = dict(channel_base=256, channel_max=32)


@pytest.mark.parametrize("n_stains", [1, 5, 6])
def test_shapes_follow_stain_count(n_stains):
    cfg = NetworkConfig(img_channels=n_stains, resolution=32, **TINY)
    G, D, G_ema = build_networks(cfg)
    z = torch.randn(4, 512)
    img = G(z)
    assert img.shape == (4, n_stains, 32, 32)
    assert torch.isfinite(img).all()
    assert D(img).shape == (4, 1)
    assert D.features(img).shape == (4, 512)
    assert G.mapping.z_dim == 512 and G.mapping.w_dim == 512
    assert len(G.mapping.layers) == 3  # GAN-DL's shallow mapping network
    # G_ema starts identical to G
    for a, b in zip(G.parameters(), G_ema.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("res", [16, 48, 2048])
def test_resolution_must_be_power_of_two_in_range(res):
    with pytest.raises(ValueError, match="power of two"):
        NetworkConfig(resolution=res)


def test_widths_are_configurable():
    small = NetworkConfig(resolution=64, channel_base=512, channel_max=16)
    big = NetworkConfig(resolution=64, channel_base=32768, channel_max=512)
    assert [small.channels(r) for r in (4, 64)] == [16, 8]
    assert [big.channels(r) for r in (4, 64)] == [512, 512]
    _, D_small, _ = build_networks(small)
    assert D_small.features(torch.randn(4, 5, 64, 64)).shape == (4, 512)


def test_features_do_not_depend_on_batch_mates_in_eval():
    cfg = NetworkConfig(img_channels=5, resolution=32, **TINY)
    _, D, _ = build_networks(cfg)
    x = torch.randn(8, 5, 32, 32)
    D.train()
    D(x)  # updates the running minibatch-stddev statistic
    assert D.mbstd.running_std.abs().sum() > 0
    D.eval()
    with torch.no_grad():
        alone = D.features(x[:1])
        with_a = D.features(x[:4])[:1]
        with_b = D.features(torch.cat([x[:1], torch.randn(5, 5, 32, 32) * 3]))[:1]
    # equal up to float rounding of differently sized convolutions
    torch.testing.assert_close(alone, with_a, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(alone, with_b, rtol=1e-4, atol=1e-5)
    for layer in ("pool", "fc"):
        assert D.features(x[:2], layer).shape == (2, 512)


def test_minibatch_std_group_is_fixed_in_training():
    cfg = NetworkConfig(img_channels=5, resolution=32, mbstd_group=4, **TINY)
    _, D, _ = build_networks(cfg)
    D.train()
    with pytest.raises(ValueError, match="group size 4"):
        D(torch.randn(6, 5, 32, 32))


def test_seeded_noise_is_per_image_and_moves_what_const_noise_fixes():
    torch.manual_seed(0)
    cfg = NetworkConfig(img_channels=5, resolution=32, **TINY)
    G, _, _ = build_networks(cfg)
    for name, p in G.named_parameters():
        if name.endswith("noise_strength"):
            p.data.fill_(1.0)
    ws = G.mapping(torch.randn(1, 512)).repeat(3, 1)  # one style, three images
    with torch.no_grad():
        const = G.synthesize(ws, noise_mode="const")
        seeded = G.synthesize(ws, noise_mode=noise_generators([7, 8, 7]))
        alone = G.synthesize(ws[:1], noise_mode=noise_generators([8]))
    torch.testing.assert_close(const[0], const[1])  # shared noise: the same image
    assert not torch.allclose(seeded[0], seeded[1], atol=1e-3)  # own noise: another field
    torch.testing.assert_close(seeded[0], seeded[2])  # reproducible per seed ...
    # ... whatever the batch mates: a batch of 3 and a batch of 1 run other float32 kernels, which differ
    # by rounding (up to 1e-6 of the image's range over 40 draws), while another noise field moves the
    # image by about its whole range
    assert (seeded[1] - alone[0]).abs().max() < 1e-5 * alone.abs().max()


def test_truncation_pulls_towards_average_w():
    cfg = NetworkConfig(img_channels=5, resolution=32, **TINY)
    G, _, _ = build_networks(cfg)
    z = torch.randn(16, 512)
    G.mapping(z, update_w_avg=True)
    w1 = G.mapping(z)
    w0 = G.mapping(z, truncation_psi=0.0)
    torch.testing.assert_close(w0, G.mapping.w_avg.expand_as(w0))
    wh = G.mapping(z, truncation_psi=0.5)
    assert (wh - G.mapping.w_avg).norm() < (w1 - G.mapping.w_avg).norm()


def test_augment_is_differentiable_and_keeps_geometry_transforms_lossless():
    x = torch.randn(8, 5, 32, 32, requires_grad=True)
    cfg = AugmentConfig(p=1.0)
    y = augment(x, cfg)
    assert y.shape == x.shape
    y.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    # flips and rotations only permute pixels: each image keeps its sorted values
    geo = AugmentConfig(p=1.0, translate=0.0, gain=0.0, offset=0.0)
    z = torch.randn(8, 5, 32, 32)
    out = augment(z, geo)
    torch.testing.assert_close(out.flatten(2).sort(-1).values, z.flatten(2).sort(-1).values)
    assert not torch.equal(out, z)
    # p = 0 is the identity
    assert torch.equal(augment(z, AugmentConfig(p=0.0)), z)


def test_augment_jitter_is_per_stain():
    torch.manual_seed(0)
    z = torch.zeros(4, 5, 16, 16)
    out = augment(z, AugmentConfig(p=1.0, flips=False, rot90=False, translate=0.0))
    per_stain = out.mean(dim=(2, 3))
    assert per_stain.std(dim=1).min() > 0  # stains of one image jittered differently


def test_losses_are_finite_and_r1_positive():
    from napari_gandl.gan import loss as L

    cfg = NetworkConfig(img_channels=5, resolution=32, **TINY)
    G, D, _ = build_networks(cfg)
    reals = torch.randn(4, 5, 32, 32)
    fakes = G(torch.randn(4, 512))
    for kind in L.LOSSES:
        assert torch.isfinite(L.d_loss(kind, D(reals), D(fakes)))
        assert torch.isfinite(L.g_loss(kind, D(fakes)))
    r1 = L.r1_penalty(D, reals, gamma=1.0)
    gp = L.gradient_penalty(D, reals, fakes, weight=10.0)
    assert r1 > 0 and torch.isfinite(r1) and torch.isfinite(gp)
    with pytest.raises(ValueError, match="unknown loss"):
        L.d_loss("hinge", D(reals), D(fakes))


def test_stats_features_pool_mid_level_taps():
    cfg = NetworkConfig(img_channels=5, resolution=32, channel_base=256, channel_max=32,
                        d_channel_base=1024, d_channel_max=128)
    G, D, _ = build_networks(cfg)
    assert D.stats_available and D.stats_taps == [(1, 128), (2, 128)]  # 8x8 and 4x4 outputs
    assert G.synthesis.blocks[-1].conv1.conv.weight.shape[0] == 8  # G keeps its own widths
    D.eval()
    x = torch.randn(6, 5, 32, 32)
    with torch.no_grad():
        f = D.features(x, "stats")
        assert f.shape == (6, 512)
        assert (f[:, 256:] >= 0).all()  # second half: standard deviations
        torch.testing.assert_close(D.features(x[:1], "stats"), f[:1], rtol=1e-4, atol=1e-5)
        # the same image flipped: same statistics up to the network's (small) anisotropy
        assert torch.isfinite(D.features(x.flip(3), "stats")).all()
    narrow = NetworkConfig(img_channels=5, resolution=32, **TINY)
    _, Dn, _ = build_networks(narrow)
    assert not Dn.stats_available
    with pytest.raises(ValueError, match="stats"):
        Dn.features(x, "stats")


def test_a_network_config_saved_with_a_field_since_dropped_still_loads():
    # runs saved before its removal (2026-12-07) have a "d_init" field: how D's weights were drawn
    saved = {**NetworkConfig(img_channels=3, resolution=32).to_dict(), "d_init": "gaussian"}
    cfg = NetworkConfig.from_dict(saved)
    assert (cfg.img_channels, cfg.resolution) == (3, 32) and not hasattr(cfg, "d_init")

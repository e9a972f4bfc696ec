"""Generation, interpolation and projection API; the gandl train/embed command line."""

import numpy as np
import pytest

from napari_gandl.gan import generate, interpolate, interpolate_noise, load_model, project
from napari_gandl.gan.latent import seed_noise, seeds_to_w, target_crop
from napari_gandl.plate import open_plate


def test_generate_from_seeds_and_w(tiny_run):
    model = load_model(tiny_run)
    a = generate(model, seeds=[1, 2, 3])
    assert a.shape == (3, 5, 32, 32) and a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, generate(model, seeds=[1, 2, 3]))  # deterministic per seed
    assert not np.allclose(a[0], a[1])
    np.testing.assert_allclose(generate(model, seeds=[2]), a[1:2], rtol=1e-5, atol=1e-5)  # batch mates
    w = seeds_to_w(model, [1, 2, 3]).numpy()
    from_w = generate(model, w=w)  # the generator's constant noise instead of each seed's own
    assert from_w.shape == a.shape and not np.allclose(from_w, a, atol=1e-4)
    np.testing.assert_allclose(generate(model, w=w[::-1])[::-1], from_w, rtol=1e-5, atol=1e-5)
    t = seeds_to_w(model, [1, 2], truncation=0.0).numpy()
    np.testing.assert_allclose(t[0], t[1], atol=1e-5)  # psi=0: every seed's w is w_avg
    with pytest.raises(ValueError, match="exactly one"):
        generate(model)


def test_interpolate():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(512), rng.standard_normal(512)
    for method in ("slerp", "lerp"):
        path = interpolate(a, b, steps=5, method=method)
        assert path.shape == (5, 512)
        np.testing.assert_allclose(path[0], a, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(path[-1], b, rtol=1e-5, atol=1e-5)
    lerp = interpolate(a, b, 3, "lerp")
    np.testing.assert_allclose(lerp[1], (a + b) / 2, rtol=1e-5, atol=1e-5)
    slerp = interpolate(a, b, 3, "slerp")
    assert np.linalg.norm(slerp[1]) > np.linalg.norm(lerp[1])  # stays on the shell
    with pytest.raises(ValueError, match="slerp"):
        interpolate(a, b, 3, "cubic")


def test_project_fits_w_and_noise(tiny_run, gan_plate):
    model = load_model(tiny_run)
    plate = open_plate(gan_plate)
    site = plate.read_site(0)
    p = project(model, site, steps=25)
    assert p.w.shape == (512,) and np.isfinite(p.w).all()
    assert p.history[-1] < p.history[0]
    assert [n.shape for n in p.noise] == [n.shape[1:] for n in seed_noise(model, [0])]
    assert all(abs(n.mean()) < 1e-4 and abs(n.std() - 1) < 1e-3 for n in p.noise)  # renormalised
    img = p.image(model)
    assert img.shape == (5, 32, 32)
    np.testing.assert_allclose(generate(model, w=p.w[None], noise=[n[None] for n in p.noise])[0], img)
    # the fitted noise is part of the fit: the constant noise reconstructs the target worse
    target = model.normalizer(target_crop(model, site))
    with_const = generate(model, w=p.w[None])[0]
    assert np.mean((img - target) ** 2) < np.mean((with_const - target) ** 2)
    with pytest.raises(ValueError, match="C=5"):
        project(model, site[:3])


def test_noise_of_seeds_and_paths(tiny_run):
    model = load_model(tiny_run)
    noise = seed_noise(model, [5, 6])
    w = seeds_to_w(model, [5, 6]).numpy()
    np.testing.assert_allclose(generate(model, w=w, noise=noise), generate(model, seeds=[5, 6]), rtol=1e-5, atol=1e-5)
    path = interpolate_noise([n[0] for n in noise], [n[1] for n in noise], steps=5)
    for n, p in zip(noise, path):
        assert p.shape == (5, *n.shape[1:])
        np.testing.assert_allclose(p[0], n[0], atol=1e-6)
        np.testing.assert_allclose(p[-1], n[1], atol=1e-6)
        assert abs(p[2].std() - 1) < 0.35  # the middle is as noisy as the ends, not damped by 1/sqrt(2)
    with pytest.raises(ValueError, match="noise goes with w"):
        generate(model, seeds=[1], noise=noise)
    with pytest.raises(ValueError, match="one \\(N, r, r\\) map per noise layer"):
        generate(model, w=w[:1], noise=noise)  # maps for two images, one w


def test_cli_help_and_errors(tmp_path, capsys):
    from napari_gandl.cli import main

    for cmd in ("train", "embed"):
        with pytest.raises(SystemExit) as exc:
            main([cmd, "--help"])
        assert exc.value.code == 0
        assert "--out" in capsys.readouterr().out
    # a folder that is not a plate: clear error, exit status 2, no traceback
    rc = main(["train", str(tmp_path), "--out", str(tmp_path / "run"), "--kimg", "0.01"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "error" in err and str(tmp_path) in err


def test_cli_embed_writes_parquet(gan_plate, tiny_run, tmp_path):
    import pandas as pd

    from napari_gandl.cli import main

    out = tmp_path / "emb.parquet"
    assert main(["embed", str(gan_plate), "--checkpoint", str(tiny_run), "--out", str(out),
                 "--batch", "50", "--device", "cpu", "--threads", "1"]) == 0
    df = pd.read_parquet(out)
    assert len(df) == 100 and "f511" in df and df.columns[0] == "site_id"
    # --orientations reaches the embedder: each square read in its 8 orientations
    out8 = tmp_path / "emb8.parquet"
    assert main(["embed", str(gan_plate), "--checkpoint", str(tiny_run), "--out", str(out8), "--orientations", "8",
                 "--device", "cpu", "--threads", "1"]) == 0
    from napari_gandl.embedding.methods.gandl import site_features

    eight = pd.read_parquet(out8).filter(regex=r"^f\d+$").to_numpy()
    expected = site_features(load_model(tiny_run), [open_plate(gan_plate).read_site(0)], orientations=8)[0]
    np.testing.assert_allclose(eight[0], expected, rtol=1e-4, atol=1e-5)
    assert not np.allclose(eight[0], df.filter(regex=r"^f\d+$").to_numpy()[0], rtol=1e-4, atol=1e-5)

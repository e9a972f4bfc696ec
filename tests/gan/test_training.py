"""Training loop, checkpoints, resume (also after kill -9) and bad input."""

import csv
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from napari_gandl.torch_utils.checkpoint import CheckpointError
from napari_gandl.torch_utils.runs import TrainingDiverged
from napari_gandl.gan import iterate_training, load_checkpoint, make_config, train
from napari_gandl.gan.trainer import Trainer

from gan_helpers import TINY, subprocess_env, tiny_config


def test_losses_finite_over_a_few_steps(gan_plate, tmp_path):
    infos = list(iterate_training(gan_plate, tmp_path / "run", tiny_config(kimg=0.04)))
    steps = [i for i in infos if not i["done"]]
    assert len(steps) == 5  # 40 images / batch 8
    for i in steps:
        for k in ("loss_G", "loss_D", "real_score", "fake_score"):
            assert np.isfinite(i[k]), (k, i)
    assert infos[-1]["done"] and infos[-1]["nimg"] == 40
    run = tmp_path / "run"
    rows = list(csv.DictReader(open(run / "losses.csv")))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5]
    assert (run / "samples" / "reals.png").exists() and (run / "samples" / "fakes_latest.png").exists()


def test_wgan_gp_option_trains(gan_plate, tmp_path):
    infos = list(iterate_training(gan_plate, tmp_path / "w", tiny_config(kimg=0.024, loss="wgan-gp")))
    assert all(np.isfinite(i["loss_D"]) and i["reg"] > 0 for i in infos if not i["done"])


def test_checkpoint_round_trip(tiny_run):
    from napari_gandl import __version__
    from napari_gandl.gan import load_model

    ck = load_checkpoint(tiny_run)
    assert ck["cur_nimg"] == 48 and ck["package_version"] == __version__
    assert {"G", "D", "G_ema", "opt_G", "opt_D", "rng", "config"} <= set(ck)
    assert ck["config"]["network"]["img_channels"] == 5
    assert len(ck["config"]["normalizer"]["low"]) == 5
    model = load_model(tiny_run)
    for name in ("G", "D"):
        key = "G_ema" if name == "G" else "D"
        state = getattr(model, name).state_dict()
        for k, v in ck[key].items():
            assert torch.equal(state[k], v), k
    # a rebuilt trainer from the checkpoint reproduces the stored weights and optimiser state
    tr = Trainer(__import__("napari_gandl.plate", fromlist=["open_plate"]).open_plate(ck["config"]["plate"]),
                 tiny_run, make_config("quick", kimg=1.0, device="cpu"), resume=True)
    assert tr.cur_nimg == 48 and tr.step_idx == ck["step"]
    for k, v in ck["G"].items():
        assert torch.equal(tr.G.state_dict()[k], v)
    assert tr.opt_D.state_dict()["state"].keys() == ck["opt_D"]["state"].keys()


def test_resume_continues_exactly(gan_plate, tmp_path):
    # 6 steps straight vs 3 steps + resume for 3 more: identical weights and image count
    straight = tmp_path / "straight"
    train(gan_plate, straight, kimg=0.048, device="cpu", seed=5, **{**TINY})
    split = tmp_path / "split"
    train(gan_plate, split, kimg=0.024, device="cpu", seed=5, **{**TINY})
    assert load_checkpoint(split)["cur_nimg"] == 24
    infos = list(iterate_training(gan_plate, split, tiny_config(kimg=0.048, seed=5), resume=True))
    assert infos[0]["nimg"] == 32  # continues from 24 images, not from 0
    a, b = load_checkpoint(straight), load_checkpoint(split)
    assert a["cur_nimg"] == b["cur_nimg"] == 48
    for net in ("G", "D", "G_ema"):
        for k in a[net]:
            torch.testing.assert_close(a[net][k], b[net][k], rtol=0, atol=1e-6, msg=f"{net}.{k}")
    rows = list(csv.DictReader(open(split / "losses.csv")))
    assert [int(r["step"]) for r in rows] == list(range(1, 7))


def test_existing_run_needs_resume(tiny_run, gan_plate):
    with pytest.raises(FileExistsError, match="--resume"):
        train(gan_plate, tiny_run, kimg=0.1, device="cpu", **TINY)


def test_kill9_then_resume_completes(gan_plate, tmp_path, kill9_when):
    run = tmp_path / "killed"
    cmd = [sys.executable, "-m", "napari_gandl.cli", "train", str(gan_plate), "--out", str(run),
           "--resolution", "32", "--batch", "8", "--kimg", "0.2", "--snapshot-kimg", "0.016",
           "--channel-base", "256", "--channel-max", "32", "--d-channel-base", "256",
           "--d-channel-max", "32", "--device", "cpu", "--threads", "1", "--runs", "1"]  # one run (faults/: two)
    ckpt = run / "checkpoint.pt"
    kill9_when(cmd, lambda: ckpt.exists() and load_checkpoint(ckpt)["cur_nimg"] >= 32)
    killed_at = load_checkpoint(ckpt)["cur_nimg"]  # the atomic write left a loadable file
    assert 0 < killed_at < 200
    done = subprocess.run(cmd + ["--resume"], env=subprocess_env(), capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    final = load_checkpoint(ckpt)
    assert final["cur_nimg"] == 200
    steps = [int(r["step"]) for r in csv.DictReader(open(run / "losses.csv"))]
    assert steps[-1] == 25  # the resumed run's step counter continued


def test_truncated_checkpoint_is_a_clear_error(tiny_run, tmp_path):
    data = (tiny_run / "checkpoint.pt").read_bytes()
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated.pt.*truncated or corrupt"):
        load_checkpoint(bad)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_checkpoint_with_pickled_code_is_refused(tmp_path):
    bad = tmp_path / "evil.pt"
    torch.save({"format": "napari-gandl-gan/1", "G": _Exploit()}, bad)
    with pytest.raises(CheckpointError, match="evil.pt.*pickled"):
        load_checkpoint(bad)
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"x": _Exploit()}))
    with pytest.raises(CheckpointError, match="plain.pkl"):
        load_checkpoint(plain)


def test_foreign_or_missing_checkpoint(tmp_path):
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match="other.pt is not a napari-gandl"):
        load_checkpoint(other)
    with pytest.raises(CheckpointError, match="no GAN checkpoint"):
        load_checkpoint(tmp_path / "nowhere")


def test_nan_guard_keeps_last_good_checkpoint(gan_plate, tmp_path):
    from napari_gandl.plate import open_plate

    run = tmp_path / "nan"
    train(gan_plate, run, kimg=0.016, device="cpu", **TINY)
    before = (run / "checkpoint.pt").read_bytes()
    tr = Trainer(open_plate(gan_plate), run, tiny_config(kimg=0.1), resume=True)
    with torch.no_grad():
        tr.D.out.bias.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match="discriminator loss became nan.*checkpoint.pt.*--r1-gamma .now 0.05."):
        tr.step()
    ck = load_checkpoint(run)
    assert ck["cur_nimg"] == 16
    assert all(torch.isfinite(v).all() for v in ck["D"].values() if v.is_floating_point())
    assert (run / "checkpoint.pt").read_bytes() == before


def test_a_run_goes_on_with_a_new_r1_gamma_and_learning_rates(gan_plate, tmp_path):
    from napari_gandl.plate import open_plate

    run = tmp_path / "retuned"
    train(gan_plate, run, kimg=0.016, device="cpu", **TINY)
    retuned = Trainer(open_plate(gan_plate), run, tiny_config(kimg=0.032, r1_gamma=0.5, d_lr=0.001), resume=True)
    assert (retuned.cfg.r1_gamma, retuned.cfg.g_lr, retuned.cfg.d_lr) == (0.5, 0.0025, 0.001)
    assert retuned.opt_G.lr == 0.0025
    assert retuned.opt_D.lr == pytest.approx(0.001 * 16 / 17)  # lazy R1 every 16 steps rescales D's step
    list(iterate_training(gan_plate, run, tiny_config(kimg=0.032, r1_gamma=0.5, d_lr=0.001), resume=True))
    saved = load_checkpoint(run)
    assert saved["cur_nimg"] == 32 and saved["config"]["r1_gamma"] == 0.5 and saved["config"]["d_lr"] == 0.001
    # from then on they are the run's own: a plain resume keeps them
    plain = Trainer(open_plate(gan_plate), run, tiny_config(kimg=0.048), resume=True)
    assert (plain.cfg.r1_gamma, plain.cfg.d_lr) == (0.5, 0.001)
    assert plain.opt_D.lr == pytest.approx(0.001 * 16 / 17)


def test_cancellation_by_closing_the_generator_saves(gan_plate, tmp_path):
    run = tmp_path / "cancel"
    gen = iterate_training(gan_plate, run, tiny_config(kimg=10.0))
    for i, info in enumerate(gen):
        if i == 1:
            break
    gen.close()
    assert load_checkpoint(run)["cur_nimg"] == 16
    stop_after = iter([False, False, False, True])
    train(gan_plate, tmp_path / "stop", kimg=10.0, device="cpu",
          should_stop=lambda: next(stop_after), **TINY)
    assert load_checkpoint(tmp_path / "stop")["cur_nimg"] == 24

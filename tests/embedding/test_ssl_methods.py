"""DINO and the channel-agnostic MAE: what each network does, training through the registry's
loop (losses.csv, resume, kill -9), embedding, and the MAE's stain sets by name."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from napari_gandl.comparators import dino as dino_net, mae as mae_net
from napari_gandl.comparators.tiles import iterate_tile_training, load_tile_checkpoint
from napari_gandl.embedding.registry import get_method
from napari_gandl.embedding.stains import StainMapError
from napari_gandl.plate import open_plate
from napari_gandl.preprocessing.augment import AugmentConfig, augment

# small networks so that a training step takes a fraction of a second; the code path is the registry's
SMALL = dict(resolution=32, batch=8)
SMALL_NETS = {"dino": dict(backbone="vit", patch=8, dim=32, depth=1, heads=2, out_dim=64, hidden=32,
                           bottleneck=16, local_crops=2),
              "mae": dict(patch=8, dim=32, depth=1, heads=2, decoder_dim=32, decoder_depth=1, decoder_heads=2)}
MODULES = {"dino": dino_net, "mae": mae_net}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def plate(sample_plate):
    return open_plate(sample_plate)


@pytest.fixture(scope="module")
def sites(plate):
    return np.stack([plate.read_site(i) for i in range(4)])


def small_training(name, plate, out, snapshot_seconds=30.0, **kw):
    mod = MODULES[name]
    network = {**mod.DEFAULTS["network"], **SMALL_NETS[name]}
    defaults = {**mod.DEFAULTS, **SMALL, "network": network, "snapshot_seconds": snapshot_seconds}
    return iterate_tile_training(name, mod.build, defaults, plate, out, device="cpu", **kw)


def loss_rows(run: Path) -> list[dict]:
    with open(run / "losses.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def small_runs(plate, tmp_path_factory):
    return {name: _trained(name, plate, tmp_path_factory.mktemp(name) / "run") for name in MODULES}


def _trained(name, plate, out):
    infos = list(small_training(name, plate, out, kimg=0.04, seed=3))
    assert infos[-1]["done"] and infos[-1]["nimg"] == 40
    return out


# ------------------------------------------------------------------ DINO


def test_dino_views_targets_and_teacher():
    torch.manual_seed(0)
    net = dino_net.DINO(5, 32, **SMALL_NETS["dino"])
    x = torch.randn(6, 5, 32, 32)
    views = net.views(x, lambda b: augment(b, AugmentConfig(p=0.5, translate=0.0, blur=1.0)))
    assert [v.shape[-1] for v in views] == [32, 32, 16, 16] and all(len(v) == 6 for v in views)
    assert not torch.allclose(views[0], views[1])  # two different global crops

    trained = [p for p in net.parameters() if p.requires_grad]
    assert not any(p.requires_grad for p in net.teacher.parameters()) and len(trained) == len(
        list(net.student.parameters()))
    loss = net.loss(x, lambda b: b)
    assert torch.isfinite(loss) and loss > 0
    assert net.center.abs().sum() > 0  # the centre moved towards the teacher's outputs
    assert 0 < net.log["teacher_entropy"] <= np.log(64) + 1e-4 and 0 < net.log["batch_entropy"] <= np.log(64) + 1e-4
    loss.backward()
    assert all(p.grad is None for p in net.teacher.parameters())

    # the teacher is an exponential moving average of the student, its momentum rising to 1
    student = net.student["head"].prototypes
    teacher = net.teacher["head"].prototypes
    with torch.no_grad():
        student.add_(1.0)
    before = teacher.detach().clone()
    net.after_step(0.0)
    torch.testing.assert_close(teacher, 0.996 * before + 0.004 * student.detach())
    net.after_step(0.5)
    assert net.log["momentum"] == pytest.approx(0.998)
    frozen = teacher.detach().clone()
    net.after_step(1.0)
    torch.testing.assert_close(teacher, frozen)  # momentum 1 at the end of the run
    # the embedding is the teacher's backbone
    torch.testing.assert_close(net.embed(x), net.teacher["backbone"](x))


@pytest.mark.parametrize("backbone,dim", [("cnn", 16), ("vit", 32)])
def test_dino_backbones_embed_crops_of_any_size(backbone, dim):
    nets = {**SMALL_NETS["dino"], "backbone": backbone, "widths": [8, 8, 8, 16, 16]}
    net = dino_net.DINO(5, 32, **nets)
    assert net.dim == dim and net.embed(torch.randn(2, 5, 32, 32)).shape == (2, dim)
    assert net.embed(torch.randn(2, 5, 16, 16)).shape == (2, dim)
    with pytest.raises(ValueError, match="backbone must be one of cnn, vit"):
        dino_net.DINO(5, 32, backbone="resnet")


# ------------------------------------------------------------------ MAE


def test_mae_hides_three_quarters_and_scores_only_what_it_hid():
    torch.manual_seed(0)
    net = mae_net.MAE(5, 32, **SMALL_NETS["mae"])
    x = torch.randn(3, 5, 32, 32)
    prediction, hidden = net.reconstruct(x)
    assert prediction.shape == (3, 5 * 16, 64) and hidden.shape == (3, 80)
    assert (hidden.sum(1) == 60).all()  # 75 % of the tokens, over stains and positions
    torch.testing.assert_close(net.unpatch(net.patches(x), 5, 32, 32), x)
    # tokens it saw do not count: changing their prediction changes nothing
    torch.manual_seed(1)
    loss = net.loss(x, lambda b: b)
    loss.backward()
    assert torch.isfinite(loss) and net.to_pixels.weight.grad.abs().sum() > 0

    tiles = net.preview(x, torch.Generator().manual_seed(0))
    assert tiles.shape == (9, 5, 32, 32)
    torch.testing.assert_close(tiles[:3], x)
    seen, rebuilt = net.patches(tiles[3:6]), net.patches(tiles[6:])
    prediction, hidden = net.reconstruct(x, torch.Generator().manual_seed(0))
    shown = hidden == 0
    torch.testing.assert_close(seen[shown], net.patches(x)[shown])
    assert (seen[~shown] == -1).all()  # what it did not see is dark
    torch.testing.assert_close(rebuilt[~shown], prediction[~shown])


def test_mae_embedding_follows_stains_not_their_order():
    torch.manual_seed(0)
    net = mae_net.MAE(5, 32, **SMALL_NETS["mae"]).eval()
    x = torch.randn(2, 5, 32, 32)
    order = [4, 2, 0, 3, 1]
    with torch.no_grad():
        f = net.embed(x)
        torch.testing.assert_close(net.embed(x[:, order], order), f, rtol=1e-5, atol=1e-5)
        assert not torch.allclose(net.embed(x[:, order]), f, atol=1e-4)  # the stain embedding matters
        assert net.embed(x[:, [0, 1, 3]], [0, 1, 3]).shape == f.shape  # any subset, the same width


def test_mae_loss_falls_while_it_trains(plate, tmp_path):
    rows = list(small_training("mae", plate, tmp_path / "run", kimg=0.24, seed=0))
    losses = [r["loss"] for r in rows if not r["done"]]
    assert len(losses) == 30 and np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])


# ------------------------------------------------------------------ training loop: losses.csv, resume


@pytest.mark.parametrize("name", ["dino", "mae"])
def test_losses_csv_and_resume_give_the_uninterrupted_run(name, plate, tmp_path):
    straight = tmp_path / "straight"
    list(small_training(name, plate, straight, kimg=0.048, seed=3))
    split = tmp_path / "split"
    stopped = small_training(name, plate, split, kimg=0.048, seed=3)
    [next(stopped) for _ in range(3)]
    stopped.close()  # Stop (DINO's teacher schedule needs the run's length: the same run, stopped)
    list(small_training(name, plate, split, seed=3, resume=True))
    a, b = load_tile_checkpoint(name, straight), load_tile_checkpoint(name, split)
    assert a["nimg"] == b["nimg"] == 48 and a["step"] == b["step"] == 6
    for key, value in a["net"].items():  # the teacher and DINO's centre included
        torch.testing.assert_close(b["net"][key], value, rtol=1e-5, atol=1e-6)
    rows, again = loss_rows(straight), loss_rows(split)
    fields = ["step", "kimg", "loss", *(dino_net.DINO.LOG_FIELDS if name == "dino" else [])]
    assert [r["step"] for r in again] == [str(i) for i in range(1, 7)]
    for r, s in zip(rows, again):
        for field in fields:
            assert float(s[field]) == pytest.approx(float(r[field]), rel=1e-4), field
    if name == "mae":
        assert (split / "samples" / "preview_latest.png").is_file()


@pytest.mark.parametrize("name", ["dino", "mae"])
def test_kill9_then_resume_keeps_one_row_per_step(name, plate, tmp_path, kill9_when):
    run = tmp_path / "killed"
    ckpt = run / "checkpoint.pt"
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from test_ssl_methods import small_training;"
            "from napari_gandl.plate import open_plate;"
            f"[None for _ in small_training('{name}', open_plate(sys.argv[2]), sys.argv[3], kimg=0.8,"
            " snapshot_seconds=0.2)]")

    def ready():  # killed between checkpoints, after rows past the last one were written
        if not ckpt.exists() or not (run / "losses.csv").exists():
            return False
        saved = load_tile_checkpoint(name, ckpt)["step"]
        return saved >= 2 and len(loss_rows(run)) > saved

    kill9_when([sys.executable, "-c", code, str(Path(__file__).parent), str(plate.root), str(run)], ready)
    killed = load_tile_checkpoint(name, ckpt)
    assert 0 < killed["nimg"] < 800
    infos = list(small_training(name, plate, run, resume=True))
    assert infos[0]["step"] == killed["step"] + 1 and infos[-1]["done"] and infos[-1]["nimg"] == 800
    assert [int(r["step"]) for r in loss_rows(run)] == list(range(1, 101))  # no step twice, none missing


def test_closing_training_keeps_a_checkpoint_and_the_rows(plate, tmp_path):
    run = small_training("dino", plate, tmp_path / "run", kimg=1.0)
    next(run), next(run)
    run.close()  # what a GUI Stop button does
    assert load_tile_checkpoint("dino", tmp_path / "run")["nimg"] == 16
    assert [r["step"] for r in loss_rows(tmp_path / "run")] == ["1", "2"]


# ------------------------------------------------------------------ embedding


@pytest.mark.parametrize("name,dim", [("dino", 32), ("mae", 32)])
def test_embedder_is_deterministic_and_batch_independent(name, dim, small_runs, plate, sites):
    emb = get_method(name).load(small_runs[name], plate, "cpu")
    assert emb.stains == plate.channel_names and emb.dim == dim
    f = emb.embed_sites(sites)
    assert f.shape == (4, dim) and f.dtype == np.float32 and np.isfinite(f).all()
    np.testing.assert_array_equal(f, emb.embed_sites(sites))
    np.testing.assert_allclose(emb.embed_sites(sites[2:3])[0], f[2], rtol=1e-5, atol=1e-6)
    assert np.abs(f[0] - f[1]).max() > 1e-6


def test_mae_embeds_a_plate_by_stain_name(small_runs, plate, sites):
    run = small_runs["mae"]
    names = plate.channel_names
    reference = get_method("mae").load(run, plate, "cpu").embed_sites(sites)
    # the same stains in another order, under other names of the same dyes
    shuffled = SimpleNamespace(channel_names=["WGA", "DAPI", "SYTO14", "ConA", "Phalloidin"])
    emb = get_method("mae").load(run, shuffled, "cpu")
    assert emb.stains == shuffled.channel_names
    np.testing.assert_allclose(emb.embed_sites(sites[:, [4, 0, 3, 1, 2]]), reference, rtol=1e-4, atol=1e-5)
    # a stain the model never saw is left out; one the plate lacks is absent
    six = get_method("mae").load(run, SimpleNamespace(channel_names=[*names[:4], "MitoTracker", names[4]]), "cpu")
    assert six.stains == names and six.stain_ids == [0, 1, 2, 3, 4]
    four = get_method("mae").load(run, SimpleNamespace(channel_names=names[1:]), "cpu")
    assert four.stains == names[1:] and four.stain_ids == [1, 2, 3, 4]
    assert four.normalizer.low == six.normalizer.low[1:]
    f = four.embed_sites(sites[:, 1:])
    assert f.shape == (4, 32) and np.isfinite(f).all() and np.abs(f - reference).max() > 1e-5
    with pytest.raises(StainMapError, match=r"none of the plate's stains \['GFP'\] is one .*run was trained on"):
        get_method("mae").load(run, SimpleNamespace(channel_names=["GFP"]), "cpu")
    with pytest.raises(StainMapError, match="'DAPI' and 'w1 Hoechst' are both the model's 'w1 Hoechst'"):
        get_method("mae").load(run, SimpleNamespace(channel_names=["DAPI", "w1 Hoechst"]), "cpu")


def test_bad_sources_are_named(small_runs, plate):
    from napari_gandl.torch_utils.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="mae embeds with a model trained on a plate"):
        get_method("mae").load(None, plate, "cpu")
    with pytest.raises(CheckpointError, match="is not a napari-gandl dino checkpoint"):
        get_method("dino").load(small_runs["mae"], plate, "cpu")


def test_a_stop_request_ends_training_after_its_step_with_a_checkpoint(plate, tmp_path):
    rows = []
    run = small_training("dino", plate, tmp_path / "run", kimg=1.0, should_stop=lambda: len(rows) >= 2)
    rows.extend(run)  # what gandl train does on Ctrl-C or SIGTERM
    assert [r["done"] for r in rows] == [False, False, True]
    assert rows[-1]["nimg"] == 16 and rows[-1]["fraction"] == pytest.approx(16 / 1000)  # not said to be finished
    assert load_tile_checkpoint("dino", tmp_path / "run")["nimg"] == 16
    assert [r["step"] for r in loss_rows(tmp_path / "run")] == ["1", "2"]

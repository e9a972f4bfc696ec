"""Bad training lengths and options: one clear line, exit status 2, nothing written."""

import pytest

from napari_gandl.cli import main
from napari_gandl.gan import make_config

BAD = [
    (["--kimg", "0"], "--kimg must be a number > 0, got 0.0"),
    (["--kimg", "-3"], "--kimg must be a number > 0"),
    (["--kimg", "nan"], "--kimg must be a number > 0, got nan"),
    (["--minutes", "0"], "--minutes must be a number > 0"),
    (["--minutes", "inf"], "--minutes must be a number > 0, got inf"),
    (["--kimg", "1", "--resolution", "48"], "--resolution must be a power of two between 32 and 1024, got 48"),
    (["--kimg", "1", "--resolution", "2048"], "--resolution must be a power of two"),
    (["--kimg", "1", "--batch", "0"], "--batch must be an integer > 0, got 0"),
    (["--kimg", "1", "--batch", "6"], "--batch must be a multiple of 4"),
    (["--kimg", "1", "--scale", "0"], "--scale must be an integer >= 1, got 0"),
    (["--kimg", "1", "--threads", "-1"], "--threads must be an integer >= 1, got -1"),
    (["--kimg", "1", "--snapshot-kimg", "0"], "--snapshot-kimg must be a number > 0"),
    (["--kimg", "1", "--augment-p", "1.5"], "--augment-p must be a number >= 0 and <= 1, got 1.5"),
    (["--kimg", "1", "--augment-gain", "-0.2"], "--augment-gain must be a number >= 0, got -0.2"),
    (["--kimg", "1", "--augment-offset", "nan"], "--augment-offset must be a number >= 0, got nan"),
    (["--kimg", "1", "--ada", "--ada-target", "1"], "--ada-target must be a number > 0 and <= 0.999"),
    (["--kimg", "1", "--contrastive", "-1"], "--contrastive must be a number >= 0, got -1.0"),
    (["--kimg", "1", "--contrast-pairs", "well"], "--contrast-pairs well needs the contrast on: give --contrastive W"),
    (["--kimg", "1", "--info", "-1"], "--info must be a number >= 0, got -1.0"),
    (["--kimg", "1", "--info", "0", "--codes", "4"], "--codes 4 needs code recovery on: give --info W"),
    (["--kimg", "1", "--info", "1", "--codes", "0"], "--codes must be an integer >= 1 and <= 511, got 0"),
    (["--kimg", "1", "--info", "1", "--codes", "512"], "--codes must be an integer >= 1 and <= 511, got 512"),
    (["--kimg", "1", "--r1-gamma", "-0.1"], "--r1-gamma must be a number >= 0, got -0.1"),
    (["--kimg", "1", "--d-lr", "0"], "--d-lr must be a number > 0, got 0.0"),
]


@pytest.mark.parametrize("args,message", BAD)
def test_bad_option_is_one_line_and_exit_2(gan_plate, tmp_path, capsys, args, message):
    out = tmp_path / "run"
    code = main(["train", str(gan_plate), "--out", str(out), "--device", "cpu", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("gandl train: error: ")
    assert message in err
    assert "Traceback" not in err
    assert not out.exists()  # refused before anything was written


def test_python_api_refuses_the_same(tmp_path):
    with pytest.raises(ValueError, match="--kimg must be a number > 0"):
        make_config("quick", kimg=0)
    with pytest.raises(ValueError, match="--loss must be one of logistic, wgan-gp"):
        make_config("quick", kimg=1, loss="hinge")
    with pytest.raises(ValueError, match="--augment-p must be a number >= 0 and <= 1"):
        make_config("quick", kimg=1, augment=dict(p=1.5))


def test_cell_crops_for_training_are_saved_and_resumed(gan_plate, tmp_path):
    import numpy as np

    from gan_helpers import TINY
    from napari_gandl.gan import iterate_training, load_checkpoint
    from napari_gandl.preprocessing.sampling import DataConfig, TileSampler
    from napari_gandl.preprocessing.normaliser import fit_normalizer
    from napari_gandl.plate import open_plate

    plate = open_plate(gan_plate)
    cfg = DataConfig(sampling="crops", norm_sites=8)
    sampler = TileSampler(plate, 32, cfg, fit_normalizer(plate, cfg))
    batch = sampler.sample(24, np.random.default_rng(0)).numpy()
    # the Hoechst stain is brighter in the middle of a cell crop than at its border
    assert batch[:, 0, 14:18, 14:18].mean() > batch[:, 0, :4, :].mean() + 0.1
    tiles = TileSampler(plate, 32, DataConfig(norm_sites=8), sampler.norm)
    assert batch[:, 0, 12:20, 12:20].mean() > tiles.sample(24, np.random.default_rng(0)).numpy()[:, 0, 12:20, 12:20].mean()

    config = make_config("quick", device="cpu", kimg=0.016,
                         **{**TINY, "metrics_samples": 16, "data": dict(sampling="crops", norm_sites=8)})
    list(iterate_training(gan_plate, tmp_path / "run", config))
    assert load_checkpoint(tmp_path / "run")["config"]["data"]["sampling"] == "crops"
    # resumed with a plain config: the saved sampling wins
    longer = make_config("quick", device="cpu", kimg=0.024, **{**TINY, "metrics_samples": 16})
    infos = list(iterate_training(gan_plate, tmp_path / "run", longer, resume=True))
    assert infos[-1]["nimg"] == 24
    assert load_checkpoint(tmp_path / "run")["config"]["data"]["sampling"] == "crops"


def test_quick_preset_adapts_augmentation_unless_told_not_to():
    quick = make_config("quick", kimg=1)
    assert quick.ada and quick.augment["p"] == 0.0  # ADA from p = 0 (docs/gan.md: it won on the suite)
    fixed = make_config("quick", kimg=1, ada=False, augment=dict(p=0.5))  # --no-ada --augment-p 0.5
    assert not fixed.ada and fixed.augment["p"] == 0.5
    assert not make_config("paper", kimg=1).ada  # the paper preset was not measured with ADA


def test_intensity_augmentation_options_reach_the_config_and_the_augmentation():
    import torch

    from napari_gandl.cli import build_parser
    from napari_gandl.cli.gan_options import gan_options
    from napari_gandl.preprocessing.augment import AugmentConfig, augment

    args = build_parser().parse_args(["train", "P", "--out", "R", "--augment-gain", "0", "--augment-offset", "0"])
    cfg = make_config("quick", kimg=1, **gan_options(args))
    assert cfg.augment == {"p": 0.0, "gain": 0.0, "offset": 0.0}
    x = torch.rand(8, 3, 16, 16) * 2 - 1
    geometric = AugmentConfig(**{**cfg.augment, "p": 1.0, "translate": 0.0})
    out = augment(x, geometric, torch.Generator().manual_seed(0))
    # flips and rotations only: each image keeps its pixel values per stain, just moved
    values = x.flatten(2).sort(dim=-1).values
    assert torch.equal(out.flatten(2).sort(dim=-1).values, values)
    jittered = augment(x, AugmentConfig(p=1.0, translate=0.0), torch.Generator().manual_seed(0))
    assert not torch.allclose(jittered.flatten(2).sort(dim=-1).values, values)


def test_scale_auto_measures_the_nuclei_and_records_the_factor(tmp_path, capsys):
    """The quick preset keeps nuclei up to about 33 px at full resolution and downsamples larger
    ones to about 22 px, says so, records it with the run, and the embedding reads sites the same way."""
    from napari_gandl.gan import load_checkpoint, load_model
    from napari_gandl.preprocessing.scale import TARGET_NUCLEUS_PX, measure_scale
    from napari_gandl.plate import open_plate
    from napari_gandl.synthetic import write_sample_plate

    small = open_plate(write_sample_plate(tmp_path / "small", "test", tile_size=128))
    medium = open_plate(write_sample_plate(tmp_path / "medium", "test", tile_size=128, cell_scale=2.0))
    large = open_plate(write_sample_plate(tmp_path / "large", "test", tile_size=256, cell_scale=5.0))
    small_scale, medium_scale, large_scale = (measure_scale(p, 64) for p in (small, medium, large))
    assert medium_scale.nucleus_px == pytest.approx(2 * small_scale.nucleus_px, rel=0.2)  # cells drawn 2x larger
    assert small_scale.scale == medium_scale.scale == 1  # nuclei of about 8 and 16 px
    assert "kept at full resolution" in medium_scale.describe()
    assert large_scale.nucleus_px > 1.5 * TARGET_NUCLEUS_PX
    assert large_scale.scale == 2 == round(large_scale.nucleus_px / TARGET_NUCLEUS_PX)
    assert large_scale.nuclei_per_site >= 1 and large_scale.stain.startswith("w1")

    run = tmp_path / "run"
    assert main(["train", str(large.root), "--out", str(run), "--kimg", "0.016", "--device", "cpu",
                 "--batch", "8", "--runs", "1"]) == 0
    assert "downsampled 2x" in capsys.readouterr().err
    config = load_checkpoint(run)["config"]
    assert config["data"]["scale"] == 2 and config["cell_scale"]["scale"] == 2
    assert load_model(run).scale == 2

    assert main(["train", str(large.root), "--out", str(tmp_path / "given"), "--kimg", "0.016",
                 "--device", "cpu", "--batch", "8", "--runs", "1", "--scale", "3"]) == 0
    assert load_checkpoint(tmp_path / "given")["config"]["data"]["scale"] == 3


def test_a_training_warning_is_one_line_naming_the_command(gan_plate, tmp_path, capsys):
    code = main(["train", str(gan_plate), "--out", str(tmp_path / "run"), "--device", "cpu", "--kimg", "0.016",
                 "--threads", "1", "--contrastive", "1", "--contrast-pairs", "well"])
    err = capsys.readouterr().err
    assert code == 0
    warned = [line for line in err.splitlines() if ": warning: " in line]
    assert warned == ["gandl train: warning: --contrast-pairs well: 90 of the 90 wells trained on have one site, "
                      "so their crops are paired within the site"]

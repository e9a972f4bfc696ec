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
    (["--kimg", "1", "--ada", "--ada-target", "1"], "--ada-target must be a number > 0 and <= 0.999"),
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

"""Faults around checkpoints: bytes changed in place, random bytes, a resume on another plate or with
other settings, the run's logs after a resume."""

from __future__ import annotations

import csv
import shutil
import struct
import subprocess
import sys
import zipfile

import torch

from fault_helpers import TINY_TRAIN, child_env, one_line_error, to_16_bit
from napari_gandl.gan import load_checkpoint
from napari_gandl.plate import open_plate


def overwrite_in_place(path, n: int = 8) -> str:
    """Overwrite ``n`` bytes in the middle of the largest tensor of a torch zip file, keeping its
    size (what a bad disk or an edit in place does); returns the member's name."""
    with zipfile.ZipFile(path) as archive:
        member = max(archive.infolist(), key=lambda i: i.file_size)
    with open(path, "r+b") as fh:
        fh.seek(member.header_offset + 26)
        name_len, extra_len = struct.unpack("<HH", fh.read(4))
        fh.seek(member.header_offset + 30 + name_len + extra_len + member.file_size // 2)
        original = fh.read(n)
        fh.seek(-n, 1)
        fh.write(bytes(b ^ 0xFF for b in original))
    return member.filename


def test_checkpoint_changed_in_place_is_named_corrupt_not_loaded(sample_plate, run_copy, tmp_path, gandl):
    ckpt = run_copy / "checkpoint.pt"
    size = ckpt.stat().st_size
    member = overwrite_in_place(ckpt)
    assert ckpt.stat().st_size == size
    # what loading it unchecked would give: other weights, with no error
    assert torch.load(ckpt, weights_only=True) is not None
    expected = (f"cannot read GAN checkpoint {ckpt}: the file is truncated or corrupt ({member} fails its "
                "CRC check: its bytes changed after it was written)")
    out = tmp_path / "e.parquet"
    rc, err = gandl("embed", sample_plate, "--checkpoint", run_copy, "--out", out)
    assert rc == 2 and one_line_error(err, "embed") == expected
    assert not out.exists()
    rc, err = gandl("train", sample_plate, "--out", run_copy, "--resume", "--kimg", "0.024", *TINY_TRAIN)
    assert rc == 2 and one_line_error(err, "train") == expected


def test_random_bytes_are_corrupt_never_code(sample_plate, run_copy, tmp_path, gandl):
    ckpt = run_copy / "checkpoint.pt"
    for content in (bytes(range(256)) * 64, b"\x80\x05 then garbage", b"PK\x03\x04" + b"\x00" * 200):
        ckpt.write_bytes(content)
        rc, err = gandl("embed", sample_plate, "--checkpoint", run_copy, "--out", tmp_path / "e.parquet")
        message = one_line_error(err, "embed")
        assert rc == 2 and message.startswith(f"cannot read GAN checkpoint {ckpt}: the file is truncated or corrupt")
        assert "code" not in message


def test_resume_on_a_plate_with_other_stains_names_them(sample_plate, run_copy, tmp_path, gandl):
    four = shutil.copytree(sample_plate, tmp_path / "four_stains")
    for png in four.glob("images/*/*/*_w5.png"):
        png.unlink()
    before = (run_copy / "checkpoint.pt").read_bytes()
    rc, err = gandl("train", four, "--out", run_copy, "--resume", "--kimg", "0.024", *TINY_TRAIN)
    assert rc == 2
    assert one_line_error(err, "train") == (
        f"{run_copy / 'checkpoint.pt'} was trained on 5 stains (w1 Hoechst, w2 ConA, w3 Phalloidin, w4 SYTO14, "
        f"w5 WGA) but {four} has 4 (w1, w2, w3, w4); resume on the run's plate or train a new run in another folder")
    assert (run_copy / "checkpoint.pt").read_bytes() == before


def test_resume_with_another_resolution_or_width_names_it(sample_plate, run_copy, gandl):
    args = ["train", sample_plate, "--out", run_copy, "--resume", "--kimg", "0.024", *TINY_TRAIN]
    rc, err = gandl(*args, "--resolution", "64")  # the last of a repeated option wins
    assert rc == 2
    assert one_line_error(err, "train") == (
        f"{run_copy / 'checkpoint.pt'}: a resumed run keeps its own settings, but these differ: resolution 32 "
        "(asked 64); drop them or train a new run in another folder")
    rc, err = gandl(*args, "--channel-max", "64")
    assert rc == 2 and "network.channel_max 32 (asked 64)" in one_line_error(err, "train")


def test_resume_and_embed_on_a_plate_of_another_bit_depth_are_refused(sample_plate, run_copy, tmp_path, gandl):
    plate16 = shutil.copytree(sample_plate, tmp_path / "plate16")
    for png in plate16.glob("images/*/*/*.png"):
        to_16_bit(png)
    # the 16-bit plate reads as 16-bit, its values kept (x257), never wrapped
    eight, sixteen = open_plate(sample_plate), open_plate(plate16)
    assert sixteen.dtype == "uint16"
    assert (sixteen.read_site(5).astype(int) == 257 * eight.read_site(5).astype(int)).all()
    out = tmp_path / "e.parquet"
    rc, err = gandl("embed", plate16, "--checkpoint", run_copy, "--out", out)
    assert rc == 2 and not out.exists()
    assert one_line_error(err, "embed") == (f"{plate16} holds 16-bit tiles but {run_copy / 'checkpoint.pt'} was "
                                            "trained on 8-bit tiles; convert the plate to 8-bit or train a "
                                            "model on it")
    rc, err = gandl("train", plate16, "--out", run_copy, "--resume", "--kimg", "0.024", *TINY_TRAIN)
    assert rc == 2 and "holds 16-bit tiles but" in one_line_error(err, "train")
    # read together with a run of the plate's own bit depth, the other run is still named
    run16 = tmp_path / "run16"
    assert gandl("train", plate16, "--method", "gandl-untrained", "--out", run16)[0] == 0
    rc, err = gandl("embed", plate16, "--checkpoint", run16, "--checkpoint", run_copy, "--out", out)
    assert rc == 2 and not out.exists()
    assert one_line_error(err, "embed") == (f"{plate16} holds 16-bit tiles but {run_copy / 'checkpoint.pt'} was "
                                            "trained on 8-bit tiles; convert the plate to 8-bit or train a "
                                            "model on it")


def test_resume_after_kill_9_and_of_a_finished_run_duplicates_no_log_row(sample_plate, tmp_path, kill9_when):
    run = tmp_path / "run"
    ckpt = run / "checkpoint.pt"
    argv = [sys.executable, "-m", "napari_gandl.cli", "train", str(sample_plate), "--out", str(run), *TINY_TRAIN,
            "--kimg", "0.4", "--snapshot-kimg", "0.032"]  # two runs of 0.2 kimg (the default split)

    def steps(folder=run):
        with open(folder / "losses.csv", newline="") as fh:
            return [int(r["step"]) for r in csv.DictReader(fh)]

    def logged_after_checkpoint() -> bool:
        return ckpt.exists() and steps()[-1] > load_checkpoint(ckpt)["step"]

    # killed with steps logged after its last checkpoint (one every 4 steps), which the resumed run redoes
    kill9_when(argv, logged_after_checkpoint, env=child_env())
    assert logged_after_checkpoint()
    resumed = subprocess.run(argv + ["--resume"], env=child_env(), capture_output=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]
    # 200 images in batches of 8, each step once, in the run killed and in the second run it went on to
    assert steps() == steps(run / "run-2") == list(range(1, 26))
    again = subprocess.run(argv + ["--resume"], env=child_env(), capture_output=True, timeout=300)
    assert again.returncode == 0, again.stderr.decode()[-2000:]  # nothing left to train ...
    for folder in (run, run / "run-2"):
        with open(folder / "metrics.csv", newline="") as fh:
            kimg = [float(r["kimg"]) for r in csv.DictReader(fh)]
        assert len(kimg) == len(set(kimg)) and kimg[-1] == 0.2  # ... and its final measurement is not doubled

"""The `gandl` command: the demo end to end, and clear errors for bad input."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from napari_gandl.cli import build_parser, main
from napari_gandl.cli.common import COMMANDS


def test_demo_runs_the_whole_pipeline(sample_plate, tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", str(sample_plate), "--out", str(out), "--minutes", "0.05", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "$ gandl train" in printed and "$ gandl embed" in printed and "$ gandl analyse" in printed
    assert (out / "run" / "checkpoint.pt").is_file() and (out / "run" / "run-2" / "checkpoint.pt").is_file()
    table = pd.read_parquet(out / "embeddings.parquet")
    assert len(table) == 100 and "f1023" in table and "cell_type" in table  # the two runs read together
    report = json.loads((out / "report" / "report.json").read_text())
    assert "C+ vs C- (merged)" in " ".join(report["tasks"])
    assert (out / "report" / "report.html").is_file()
    assert f"gandl view {out}" in printed  # the demo ends by naming the command that opens it in napari

    # a second run reuses the trained model instead of training again
    assert main(["demo", str(sample_plate), "--out", str(out), "--device", "cpu"]) == 0
    assert "Using the model already trained" in capsys.readouterr().out
    # ... and finishes one that was interrupted between its two runs
    shutil.rmtree(out / "run" / "run-2")
    assert main(["demo", str(sample_plate), "--out", str(out), "--minutes", "0.05", "--device", "cpu"]) == 0
    assert "--resume" in capsys.readouterr().out and (out / "run" / "run-2" / "checkpoint.pt").is_file()


def test_bad_plate_is_a_clear_error_not_a_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "napari_gandl.cli", "demo", str(tmp_path / "nowhere")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "nowhere: no such folder" in result.stderr
    assert "Traceback" not in result.stderr


def imported_by(argv: list[str]) -> tuple[set[str], str]:
    """Which of torch, scikit-learn, scipy, scikit-image and napari ``gandl ARGV`` imports, and what it prints."""
    code = (f"import sys\nfrom napari_gandl.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'sklearn', 'scipy', 'skimage', 'napari'}),"
            " file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return set(ast.literal_eval(result.stderr.strip().splitlines()[-1])), result.stdout


def test_help_lists_every_command_without_importing_what_the_commands_run_on():
    imported, printed = imported_by(["--help"])
    assert imported == set()  # seconds of imports that only the command run needs
    for command, (_, summary) in COMMANDS.items():
        assert f"    {command} " in printed and summary.split()[0] in printed
    # gandl analyse reads tables: no torch (its --batch choices come from the columns, not the GAN)
    imported, printed = imported_by(["analyse", "--help"])
    assert "torch" not in imported and "napari" not in imported and "--normalise" in printed


@pytest.mark.parametrize("command", list(COMMANDS))
def test_the_command_named_has_the_options_it_has_beside_every_other(command, capsys):
    """``gandl COMMAND`` adds only that command's options; they are those of the whole parser."""
    helps = []
    for parser in (build_parser([command, "--help"]), build_parser()):
        with pytest.raises(SystemExit):
            parser.parse_args([command, "--help"])
        helps.append(capsys.readouterr().out)
    assert helps[0] == helps[1] and f"usage: gandl {command}" in helps[0]

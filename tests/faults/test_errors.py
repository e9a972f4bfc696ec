"""Faults in the options and inputs of a command: a batch size below 1, a table with no row left,
an analysis of a single plate."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fault_helpers import one_line_error


@pytest.mark.parametrize("batch", ["0", "-5"])
def test_embed_batch_below_one_is_refused(sample_plate, tmp_path, gandl, batch):
    out = tmp_path / "e.parquet"
    rc, err = gandl("embed", sample_plate, "--method", "handcrafted", "--out", out, "--batch", batch)
    assert rc == 2 and not out.exists()
    assert one_line_error(err, "embed") == f"the batch size (--batch) must be an integer >= 1, got {batch}"


@pytest.mark.parametrize("command, option, value", [("analyse", "--splits", "0"), ("align", "--steps", "-3")])
def test_other_counts_below_one_are_refused(handcrafted, tmp_path, gandl, command, option, value):
    """Found beside the batch size: no split scored NaN accuracies, no step "aligned" nothing, exit 0."""
    out = tmp_path / ("report" if command == "analyse" else "aligned.parquet")
    rc, err = gandl(command, handcrafted, "--out", out, option, value)
    assert rc == 2 and not (out / "report.json" if command == "analyse" else out).exists()
    assert one_line_error(err, command) == f"{option} must be an integer >= 1, got {value}"


def test_analyse_with_no_row_left_is_one_line(handcrafted, tmp_path, gandl):
    table = pd.read_parquet(handcrafted)
    nan = tmp_path / "all_nan.parquet"
    table.assign(f003=np.nan).to_parquet(nan)
    rc, err = gandl("analyse", nan, "--drop-nonfinite", "--out", tmp_path / "r1")
    assert rc == 2
    assert one_line_error(err, "analyse") == f"{nan}: no rows to analyse (all 100 had NaN or infinite features)"
    empty = tmp_path / "empty.parquet"
    table.iloc[:0].to_parquet(empty)
    rc, err = gandl("analyse", empty, "--out", tmp_path / "r2")
    assert rc == 2 and one_line_error(err, "analyse") == f"{empty}: no rows to analyse"


def test_analyse_of_one_plate_scores_it_and_says_why_plates_are_not_held_out(handcrafted, tmp_path, gandl):
    table = pd.read_parquet(handcrafted)
    one = tmp_path / "one_plate.parquet"
    table[(table["experiment"] == "HRCE-1") & (table["plate"] == 1)].to_parquet(one)
    rc, err = gandl("analyse", one, "--out", tmp_path / "report", "--quiet", "--splits", "3")
    assert rc == 0, err
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["n_sites"] == 25 and report["tasks_lopo"] == {}
    assert report["skipped"]["task C+ vs C- (merged) (leave-one-plate-out)"] == (
        "task 'C+ vs C- (merged)': leave-one-plate-out needs at least 2 plates; every site is on plate HRCE-1_1")
    task = report["tasks"]["C+ vs C- (merged)"]  # held-out wells: scored as on any plate
    assert task["n_splits"] == 3 and 0.5 < task["accuracy_mean"] <= 1.0

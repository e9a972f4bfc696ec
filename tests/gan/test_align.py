"""Domain-adversarial alignment: gradient reversal, batch plans, training with --align."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from napari_gandl.gan import iterate_training, load_checkpoint
from napari_gandl.gan.align import (
    BatchHead, batch_loss, dann_weight, plan_alignment, reverse_gradient,
)
from napari_gandl.plate import open_plate

from gan_helpers import stopped_and_resumed, subprocess_env, tiny_config


def test_reversal_negates_and_scales_the_gradient():
    x = torch.ones(3, requires_grad=True)
    (reverse_gradient(x, 0.5) * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert torch.equal(x.grad, torch.tensor([-0.5, -1.0, -1.5]))
    assert dann_weight(0.0) == 0.0 and 0.99 < dann_weight(1.0) < 1.0
    assert dann_weight(0.2) < dann_weight(0.5) < dann_weight(0.9)


def _toy_accuracies(weight: float) -> tuple[float, float]:
    """Learn 2-d features of 4-d inputs whose batch shows in dims 0-1 and the label
    in dims 2-3, with a label head and a batch head behind a reversal of ``weight``;
    returns how well fresh linear classifiers then predict (batch, label)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    g = torch.Generator().manual_seed(0)
    n = 600
    batch = torch.randint(0, 2, (n,), generator=g)
    label = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 4, generator=g)
    x[:, :2] += 3.0 * batch[:, None]
    x[:, 2:] += 3.0 * label[:, None]
    torch.manual_seed(0)
    encoder, task, head = torch.nn.Linear(4, 2), torch.nn.Linear(2, 2), BatchHead(2, 2, hidden=16)
    opt = torch.optim.Adam([*encoder.parameters(), *task.parameters(), *head.parameters()], lr=0.01)
    same = torch.ones(2, 2, dtype=torch.bool)
    steps = 1000
    for step in range(steps):
        z = encoder(x)
        adv, _ = batch_loss(head(reverse_gradient(z, weight * dann_weight(step / steps))), batch, same)
        loss = torch.nn.functional.cross_entropy(task(z), label) + adv
        opt.zero_grad()
        loss.backward()
        opt.step()
    z = encoder(x).detach().numpy()
    return tuple(float(cross_val_score(LogisticRegression(), z, y.numpy(), cv=3).mean())
                 for y in (batch, label))


def test_reversal_makes_features_batch_blind_on_a_toy_problem():
    # with the sign flipped (no reversal) the encoder helps the batch head ...
    helped_batch, _ = _toy_accuracies(-1.0)
    # ... with reversal it hides the batch (chance: 0.5) and keeps the label
    aligned_batch, aligned_label = _toy_accuracies(1.0)
    assert helped_batch > 0.9
    assert aligned_batch < 0.6 and aligned_label > 0.9


def _sites(**cols):
    return pd.DataFrame(cols)


def test_plan_errors_name_the_column():
    meta = _sites(experiment=["A"] * 4, plate=[1, 1, 2, 2], cell_type=["X"] * 4)
    with pytest.raises(ValueError, match="must be 'plate' or 'experiment', got 'well'"):
        plan_alignment(meta, "well")
    with pytest.raises(ValueError, match="needs a 'plate' column, which is missing"):
        plan_alignment(meta.drop(columns="plate"), "plate")
    with pytest.raises(ValueError, match="column 'experiment' has a single value"):
        plan_alignment(meta, "experiment")
    plan = plan_alignment(meta, "plate")
    assert plan.classes == ["A_1", "A_2"] and plan.labels.tolist() == [0, 0, 1, 1] and plan.note == ""


def test_confounded_experiments_are_detected():
    # each experiment is one cell type (RxRx19a): experiments are not aligned, plates within them are
    meta = _sites(experiment=["H"] * 4 + ["V"] * 4, plate=[1, 1, 2, 2] * 2,
                  cell_type=["HRCE"] * 4 + ["VERO"] * 4)
    with pytest.raises(ValueError, match="would erase the cell type"):
        plan_alignment(meta, "experiment")
    plan = plan_alignment(meta, "plate")
    assert "confounded" in plan.note and plan.groups == ["H", "H", "V", "V"]
    # the head is only asked to tell a plate from the plates of its own experiment
    logits = torch.tensor([[0.0, 0.0, 9.0, 9.0]])
    loss, acc = batch_loss(logits, torch.tensor([0]), plan.same_group())
    assert loss.item() == pytest.approx(np.log(2)) and acc.item() == 1.0
    # not confounded (both cell types in each experiment): plates are compared across experiments
    mixed = meta.assign(cell_type=["HRCE", "VERO"] * 4)
    assert plan_alignment(mixed, "plate").groups == [""] * 4


def test_training_with_alignment_resumes_exactly(gan_plate, tmp_path):
    cfg = dict(kimg=0.048, seed=3, align="plate")
    with pytest.warns(UserWarning, match="plates are aligned within each experiment"):
        straight = list(iterate_training(gan_plate, tmp_path / "straight", tiny_config(**cfg)))
    steps = [i for i in straight if not i["done"]]
    assert all(np.isfinite(i["align_loss"]) for i in steps)
    assert steps[0]["align_weight"] < steps[-1]["align_weight"] < 1.0  # the DANN ramp
    resumed = stopped_and_resumed(gan_plate, tmp_path / "split", **cfg)
    assert resumed[0]["step"] == 4
    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "split")
    assert a["config"]["align_plan"]["classes"] == ["HRCE-1_1", "HRCE-1_2", "VERO-1_1", "VERO-1_2"]
    assert "confounded" in a["config"]["align_plan"]["note"]
    for k in a["align"]["head"]:
        torch.testing.assert_close(a["align"]["head"][k], b["align"]["head"][k], rtol=0, atol=1e-6)
    for k in a["D"]:
        torch.testing.assert_close(a["D"][k], b["D"][k], rtol=0, atol=1e-6)
    rows = list(csv.DictReader(open(tmp_path / "split" / "losses.csv")))
    assert [r["align_loss"] != "" for r in rows] == [True] * 6


def test_alignment_on_a_single_plate_is_a_clear_error(gan_plate, tmp_path):
    plate = open_plate(gan_plate)
    plate.sites = plate.sites.assign(experiment="E1", plate=1)
    from napari_gandl.gan.trainer import Trainer

    with pytest.raises(ValueError, match="column 'plate' has a single value"):
        Trainer(plate, tmp_path / "run", tiny_config(kimg=0.01, align="plate"))
    with pytest.raises(ValueError, match="--align must be one of none, plate, experiment"):
        tiny_config(kimg=0.01, align="well")


def test_alignment_and_site_contrast_under_ddp_keep_the_ranks_in_sync(gan_plate, tmp_path):
    report = tmp_path / "report"
    report.mkdir()
    worker = Path(__file__).with_name("ddp_worker.py")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(worker), str(gan_plate), str(tmp_path / "run"), str(report), "plate", "1"]
    res = subprocess.run(cmd, env=subprocess_env(), capture_output=True, timeout=240)
    assert res.returncode == 0, res.stderr.decode()[-3000:]
    r0, r1 = (json.loads((report / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["align_head"] and r0["contrast_head"] and r0["data"] != r1["data"]
    for net in ("D", "align_head", "contrast_head"):
        np.testing.assert_allclose(list(r0[net].values()), list(r1[net].values()),
                                   rtol=1e-6, atol=1e-6, err_msg=net)
    assert {"align", "contrast"} <= set(load_checkpoint(tmp_path / "run"))

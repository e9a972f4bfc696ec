"""Sample-quality metrics (1-NN two-sample test, KID, diversity) and metrics.csv."""

import csv
import json
import warnings

import numpy as np
import pytest

from napari_gandl.gan import iterate_training, make_config, train
from napari_gandl.gan.metrics import (
    SampleQuality, divergence_note, diversity, kid, kid_ratio, nn1_accuracy, run_divergence_note,
)

from gan_helpers import TINY


def _blobs(rng, n, shift=0.0, spread=1.0):
    return rng.normal(shift, spread, (n, 6))


def test_metrics_tell_equal_from_different_distributions():
    rng = np.random.default_rng(0)
    real = _blobs(rng, 200)
    same = _blobs(rng, 200)
    shifted = _blobs(rng, 200, shift=3.0)
    collapsed = _blobs(rng, 200, spread=0.05)
    assert 0.35 < nn1_accuracy(real, same) < 0.65
    assert nn1_accuracy(real, shifted) > 0.95
    assert nn1_accuracy(real, collapsed) > 0.8
    assert abs(kid(real, same)) * 20 < kid(real, shifted)
    assert 0.9 < diversity(real, same) < 1.1
    assert diversity(real, collapsed) < 0.1


def test_sample_quality_on_images():
    rng = np.random.default_rng(1)
    reals = rng.gamma(2.0, 100.0, (40, 2, 16, 16)).astype(np.float32)
    q = SampleQuality(reals)
    good = q(rng.gamma(2.0, 100.0, (40, 2, 16, 16)).astype(np.float32))
    flat = q(np.full((40, 2, 16, 16), 200.0, np.float32) + rng.normal(0, 1, (40, 2, 16, 16)))
    assert good["nn1_accuracy"] < flat["nn1_accuracy"] and flat["nn1_accuracy"] > 0.9
    assert good["kid"] < flat["kid"]
    assert flat["diversity"] < 0.5 < good["diversity"]
    with pytest.raises(ValueError, match="at least 4 real images"):
        SampleQuality(reals[:3])


def _tiny(**kw):
    return make_config("quick", device="cpu", **{**TINY, "metrics_samples": 32, **kw})


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_metrics_csv_at_every_snapshot_and_resumed(gan_plate, tmp_path):
    run = tmp_path / "run"
    infos = list(iterate_training(gan_plate, run, _tiny(kimg=0.032, snapshot_kimg=0.016)))
    rows = _rows(run / "metrics.csv")
    assert [float(r["kimg"]) for r in rows] == [0.0, 0.016, 0.032]
    assert {"kimg", "nn1_accuracy", "kid", "diversity"} <= set(rows[0])
    for r in rows:
        assert 0.0 <= float(r["nn1_accuracy"]) <= 1.0 and float(r["diversity"]) > 0
        assert np.isfinite(float(r["kid"]))
    # the progress dicts carry the same numbers
    measured = [i for i in infos if "nn1_accuracy" in i]
    assert len(measured) == 3 and measured[-1]["done"]
    assert measured[-1]["nn1_accuracy"] == pytest.approx(float(rows[-1]["nn1_accuracy"]))
    # resume: continues the file, no row repeated
    list(iterate_training(gan_plate, run, _tiny(kimg=0.048, snapshot_kimg=0.016), resume=True))
    assert [float(r["kimg"]) for r in _rows(run / "metrics.csv")] == [0.0, 0.016, 0.032, 0.048]


def test_resume_forgets_rows_after_the_checkpoint(gan_plate, tmp_path):
    run = tmp_path / "run"
    train(gan_plate, run, **{**TINY, "metrics_samples": 16, "kimg": 0.016, "device": "cpu"})
    with open(run / "metrics.csv", "a") as fh:  # written after the checkpoint by a killed run
        fh.write("0.5,0.9,0.1,0.5,1.0\n")
    list(iterate_training(gan_plate, run, _tiny(kimg=0.024, metrics_samples=16), resume=True))
    assert [float(r["kimg"]) for r in _rows(run / "metrics.csv")] == [0.0, 0.016, 0.024]


def test_divergence_note_only_for_a_late_blow_up():
    start = 2e7  # the untrained generator at 0 kimg is never the reference
    assert divergence_note([0, 2, 4, 6], [start, 900, 60, 80]) is None
    note = divergence_note([0, 2, 4, 6], [start, 900, 60, 6e5])
    assert "KID 6e+05 at 6 kimg against 60 at 4 kimg" in note and "--resume" in note and "--seed" in note
    assert divergence_note([0, 2, 4, 6, 8], [start, 900, 60, 6e5, 90]) is None  # went on and came back
    assert "KID 6e+05 at 8 kimg against 60 at 4" in divergence_note([0, 2, 4, 6, 8], [start, 900, 60, np.nan, 6e5])
    assert divergence_note([0, 2, 4, 6], [start, 3e5, 60, 900]) is None  # an early spike that recovered
    # an unbiased KID can be at or below 0: the reference is then 1
    assert divergence_note([0, 2, 4], [start, -0.5, 250]) is None
    assert divergence_note([0, 2, 4], [start, -0.5, 400]) is not None
    assert divergence_note([0, 2], [start, 1e9]) is None  # one measurement after the start: nothing to compare
    assert kid_ratio([0, 2, 4, 6], [start, 900, 60, 6e5]) == 1e4 and kid_ratio([0, 2, 4], [start, -0.5, 250]) == 250
    assert np.isnan(kid_ratio([0, 2], [start, 1e9]))


def test_a_missing_or_damaged_metrics_log_gives_no_note(tmp_path):
    assert run_divergence_note(tmp_path) is None
    for text in ("", "kimg,kid\n0,1\n2,x\n", "step,loss\n1,2\n", "kimg,kid\n0,1\n2,\"3\n"):
        (tmp_path / "metrics.csv").write_text(text)
        assert run_divergence_note(tmp_path) is None
    (tmp_path / "metrics.csv").write_text("kimg,kid\n0,2e7\n2,60\n4,6e5\n")
    assert "KID 6e+05 at 4 kimg" in run_divergence_note(tmp_path)


def test_a_run_with_code_recovery_is_not_sent_back_to_training(tmp_path):
    """With --info a late blow-up did not mark runs that embed worse on the suite: the note says so and
    points to the comparison with the untrained networks, not to --resume or another --seed."""
    (tmp_path / "metrics.csv").write_text("kimg,kid\n0,2e7\n2,60\n4,6e5\n")
    (tmp_path / "config.json").write_text(json.dumps({"info": 10.0}))
    note = run_divergence_note(tmp_path)
    assert "KID 6e+05 at 4 kimg" in note and "--info 10" in note and "gandl-untrained" in note
    assert "--resume" not in note and "--seed" not in note
    (tmp_path / "config.json").write_text("{not json")  # unreadable: the default's advice
    assert "--resume" in run_divergence_note(tmp_path)


def test_a_run_that_ends_far_worse_than_its_best_is_warned(gan_plate, tmp_path, capsys):
    from napari_gandl.cli import main

    run = tmp_path / "run"
    train(gan_plate, run, **{**TINY, "metrics_samples": 16, "kimg": 0.016, "device": "cpu"})
    rows = _rows(run / "metrics.csv")
    measured = float(rows[-1]["kid"])
    rows[-1]["kid"] = str(measured / 1e6)  # as if the generator had been far better at 0.016 kimg
    with open(run / "metrics.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    assert main(["train", str(gan_plate), "--out", str(run), "--kimg", "0.024", "--device", "cpu",
                 "--threads", "1", "--resume"]) == 0
    err = capsys.readouterr().err
    assert "gandl train: warning: the generator got much worse at the end" in err
    assert "at 0.016 kimg (metrics.csv)" in err


def test_a_failing_metric_never_stops_training(gan_plate, tmp_path, monkeypatch):
    from napari_gandl.gan import metrics

    def broken(*a, **k):
        raise RuntimeError("feature extractor exploded")

    monkeypatch.setattr(metrics, "site_features", broken)
    run = tmp_path / "run"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        infos = list(iterate_training(gan_plate, run, _tiny(kimg=0.016)))
    assert infos[-1]["done"] and infos[-1]["nimg"] == 16
    assert any("feature extractor exploded" in str(w.message) for w in caught)
    rows = _rows(run / "metrics.csv")
    assert len(rows) == 2 and all(r["nn1_accuracy"] == "nan" for r in rows)


def test_ada_p_follows_the_overfitting_signal():
    import torch

    from napari_gandl.gan.ada import AdaptiveAugment

    ada = AdaptiveAugment(p=0.2, target=0.6, speed_kimg=1.0, interval=4)
    confident = torch.ones(16)           # D says "real" for every real: r_t = 1 > 0.6
    for _ in range(4):
        ada.accumulate(confident)
    assert ada.update(images=64) == pytest.approx(0.2 + 64 / 1000) and ada.rt == 1.0
    unsure = torch.tensor([1.0, -1.0] * 8)  # r_t = 0 < 0.6: p falls, never below 0
    ps = []
    for _ in range(10):
        ada.accumulate(unsure)
        ps.append(ada.update(images=64))
    assert ps[0] == pytest.approx(0.2) and ps[-1] == 0.0 and ps == sorted(ps, reverse=True)


def test_ada_in_training_logs_p_and_resumes_it(gan_plate, tmp_path):
    from napari_gandl.gan import load_checkpoint

    cfg = dict(ada=True, ada_kimg=0.1, ada_interval=1, augment=dict(p=0.0), metrics_samples=16)
    straight = list(iterate_training(gan_plate, tmp_path / "a", _tiny(kimg=0.048, seed=3, **cfg)))
    ps = [i["augment_p"] for i in straight if not i["done"]]
    assert len(set(ps)) > 1 and all(0.0 <= p <= 1.0 for p in ps)  # p moved
    losses = _rows(tmp_path / "a" / "losses.csv")
    assert [float(r["augment_p"]) for r in losses] == pytest.approx(ps)
    assert float(_rows(tmp_path / "a" / "metrics.csv")[-1]["augment_p"]) == pytest.approx(ps[-1])
    # half, then resume: p continues from the checkpoint, same end state
    list(iterate_training(gan_plate, tmp_path / "b", _tiny(kimg=0.024, seed=3, **cfg)))
    resumed = list(iterate_training(gan_plate, tmp_path / "b", _tiny(kimg=0.048, seed=3, **cfg),
                                    resume=True))
    assert [i["augment_p"] for i in resumed if not i["done"]] == pytest.approx(ps[3:])
    assert load_checkpoint(tmp_path / "b")["ada"]["p"] == pytest.approx(ps[-1])

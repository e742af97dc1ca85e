"""Tests for reading run folders (experiments/runner/rundir.py) and writing the curve figures (experiments/plots.py)."""

import json
import math
import os

import matplotlib
import pytest

from experiments import plots
from experiments.runner import rundir

HEADER = "epoch,learning_rate,loss,accuracy,val_loss,val_accuracy,epoch_seconds"


def _rows(num_epochs, lr=lambda e: 0.1, loss=lambda e: 2.0 / (e + 1)):
    return [
        {
            "epoch": float(e),
            "learning_rate": lr(e),
            "loss": loss(e),
            "accuracy": 0.3 + 0.01 * e,
            "val_loss": 1.5 - 0.02 * e,
            "val_accuracy": 0.25 + 0.02 * e,
            "epoch_seconds": 3.5,
        }
        for e in range(num_epochs)
    ]


def _write_history(run_dir, rows):
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, "history.csv"), "w") as f:
        f.write(HEADER + "\n")
        for r in rows:
            f.write(",".join(repr(r[c]) for c in rundir.HISTORY_COLUMNS) + "\n")


def _png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_read_history_round_trip_keeps_values_and_non_finite(tmp_path):
    rows = _rows(4, loss=lambda e: [2.25, 1.5, float("nan"), float("inf")][e])
    _write_history(tmp_path, rows)
    got = rundir.read_history(tmp_path)
    assert [r["epoch"] for r in got] == [0.0, 1.0, 2.0, 3.0]
    assert got[0]["loss"] == 2.25 and got[1]["val_accuracy"] == pytest.approx(0.27)
    assert math.isnan(got[2]["loss"]) and math.isinf(got[3]["loss"])
    assert all(isinstance(v, float) for r in got for v in r.values())


def test_read_history_missing_file_is_empty_and_bad_files_raise(tmp_path):
    assert rundir.read_history(tmp_path) == []
    (tmp_path / "history.csv").write_text("epoch,loss\n0,1.0\n")
    with pytest.raises(ValueError, match="read_history: .* must have the columns"):
        rundir.read_history(tmp_path)
    (tmp_path / "history.csv").write_text(HEADER + "\n0,0.1,abc,0.1,1,0.1,2\n")
    with pytest.raises(ValueError, match="line 2 must hold numbers"):
        rundir.read_history(tmp_path)


def test_read_run_reads_the_three_files(tmp_path):
    run_dir = tmp_path / "cosine_lr0.1"
    _write_history(run_dir, _rows(3))
    config = {"flags": {"schedule": "cosine", "lr": 0.1, "seed": 1}, "derived": {"steps_per_epoch": 7}}
    (run_dir / "config.json").write_text(json.dumps(config))
    run = rundir.read_run(str(run_dir) + os.sep)
    assert run.name == "cosine_lr0.1"
    assert run.config == config and run.flags == config["flags"]
    assert len(run.history) == 3
    assert run.summary is None and not run.finished
    assert rundir.is_run_dir(run_dir) and not rundir.is_run_dir(tmp_path)
    (run_dir / "summary.json").write_text(json.dumps({"status": "completed"}))
    assert rundir.read_run(run_dir).finished


@pytest.mark.parametrize(
    "values, expected",
    [
        ([0.1, 0.05, 0.001], True),  # two decades, all > 0
        ([0.1, 0.02], False),  # less than a decade
        ([0.1, 0.05, 0.0], False),  # reaches 0: log impossible
        ([0.1, float("nan"), 0.001], True),  # NaN ignored
        ([0.1, float("inf"), 0.001], False),
        ([], False),
    ],
)
def test_use_log_scale(values, expected):
    assert plots.use_log_scale(values) is expected


def test_plot_curves_writes_png_with_log_lr_only_where_useful(tmp_path):
    backend = matplotlib.get_backend()
    step = _rows(10, lr=lambda e: 0.1 * 0.1 ** (e >= 5) * 0.1 ** (e >= 8))
    cosine_to_zero = _rows(10, lr=lambda e: 0.05 * (1 + math.cos(math.pi * e / 9)))
    path = tmp_path / "sub" / "curves.png"
    scales = plots.plot_curves([("step", step)], str(path), title="step")
    assert (scales["loss"], scales["lr"]) == ("linear", "log")
    width, height = _png_size(path)
    assert width > 2 * height > 0
    scales = plots.plot_curves([("step", step), ("cosine", cosine_to_zero)], str(path))
    assert scales["lr"] == "linear"  # cosine reaches exactly 0
    # No pyplot figure left open, the user's backend untouched.
    assert matplotlib.get_backend() == backend
    if "matplotlib.pyplot" in __import__("sys").modules:
        assert matplotlib.pyplot.get_fignums() == []


def test_plot_curves_handles_diverged_and_empty_runs(tmp_path):
    diverged = _rows(4, loss=lambda e: [2.0, 50.0, 3e4, float("nan")][e])
    path = tmp_path / "c.png"
    scales = plots.plot_curves([("ok", _rows(4)), ("diverged", diverged), ("empty", [])], str(path))
    assert scales["loss"] == "log"  # 3e4 / 0.5 spans far more than 100x
    assert path.stat().st_size > 0


def test_plot_early_loss_keeps_only_first_epochs(tmp_path):
    path = tmp_path / "early.png"
    scales = plots.plot_early_loss([("a", _rows(20, loss=lambda e: 10.0**e))], str(path), num_epochs=3)
    # Epochs 0..2 span exactly 100x (linear); all 20 epochs would span 1e19 (log).
    assert (scales["loss"], scales["lr"]) == ("linear", "linear")
    xs, ys = scales["lr_lines"]["a" + plots.PER_EPOCH_NOTE]  # no schedule given: per-epoch staircase
    assert list(xs) == [0, 1, 2, 3] and list(ys) == [0.1] * 4
    assert _png_size(path)[0] > 0
    with pytest.raises(ValueError, match="num_epochs must be >= 1, received num_epochs=0"):
        plots.plot_early_loss([], str(path), num_epochs=0)


def test_plot_early_loss_cuts_the_applied_lr_at_the_window(tmp_path):
    import numpy as np

    from experiments.runner.applied_lr import AppliedLR

    steps = np.arange(40)  # 10 epochs of 4 steps, LR rising by 0.01 a step
    applied = AppliedLR(steps=steps, epochs=steps / 4, learning_rate=0.01 * (steps + 1), end_epoch=10.0)
    drawn = plots.plot_early_loss([("a", _rows(10), applied)], str(tmp_path / "e.png"), num_epochs=3)
    xs, ys = drawn["lr_lines"]["a"]
    assert xs == [s / 4 for s in range(12)] + [3.0]
    assert ys == pytest.approx([0.01 * (s + 1) for s in range(12)] + [0.12])

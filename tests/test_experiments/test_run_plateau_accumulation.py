"""The runner's --plateau_* and --gradient_accumulation_steps: LRs per update, kill -9 and resume, bad flags."""

import csv
import math
import os
import subprocess

import pytest
import hooked_run
from run_helpers import HOOKED_RUN, make_image_folder, read_history, read_json, run_quietly

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# 32 of the 40 training images, 4 epochs, cosine from 0.05.
BASE = ["--train_subset=32", "--epochs=4", "--lr=0.05", "--schedule=cosine"]
# val_accuracy on 20 test images stalls: reductions (tested below).
PLATEAU = ["--plateau_patience=1", "--plateau_monitor=val_accuracy", "--plateau_factor=0.5",
           "--batch_size=8"]
# Batches of 4, updates of 2 batches: 4 updates per epoch, as with batches of 8.
ACCUMULATION = ["--batch_size=4", "--gradient_accumulation_steps=2"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="module")
def uninterrupted(folder, tmp_path_factory):
    """Run directories of the uninterrupted runs, by name."""
    return {name: train(folder, tmp_path_factory.mktemp(name), *flags)
            for name, flags in (("plateau", PLATEAU), ("accumulation", ACCUMULATION))}


def lr_rows(run_dir):
    with open(os.path.join(run_dir, "learning_rate.csv")) as f:
        return [(int(r["step"]), float(r["learning_rate"])) for r in csv.DictReader(f)]


def train(folder, log_dir, *flags, kill_at=None):
    argv = [f"--image_folder={folder}", f"--log_dir={log_dir}", "--run_name=r", *BASE, *flags]
    if kill_at is None:
        status, _, err = run_quietly(argv)
        assert status == 0, err
    else:
        env = {**os.environ, hooked_run.KILL_ENV: kill_at, "TF_CPP_MIN_LOG_LEVEL": "2"}
        result = subprocess.run([*HOOKED_RUN, *argv], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=180)
        assert result.returncode == -9, result.stderr[-2000:]
    return os.path.join(log_dir, "r")


def test_an_accumulated_run_applies_its_k1_twins_lr_at_every_update(folder, uninterrupted, tmp_path):
    accumulated = uninterrupted["accumulation"]
    twin = train(folder, tmp_path / "k1", "--batch_size=8")
    derived = read_json(os.path.join(accumulated, "config.json"))["derived"]
    assert (derived["steps_per_epoch"], derived["batches_per_epoch"], derived["total_steps"]) == (4, 8, 16)
    assert lr_rows(accumulated) == lr_rows(twin)
    assert [s for s, _ in lr_rows(accumulated)] == [0, 4, 8, 12]  # updates, not batches
    assert [lr for _, lr in lr_rows(accumulated)] == pytest.approx(
        [0.05, 0.05 * (1 + 0.5 ** 0.5) / 2, 0.025, 0.05 * (1 - 0.5 ** 0.5) / 2], rel=1e-6)
    # TensorBoard's learning_rate/step (--lr_log_freq=0: every step of a short run): one point per
    # update, the twin's values.
    from run_helpers import read_scalars

    per_update = read_scalars(os.path.join(accumulated, "tensorboard", "train"),
                              "learning_rate/step")
    assert [step for step, _ in per_update] == list(range(16))
    assert per_update == read_scalars(os.path.join(twin, "tensorboard", "train"),
                                      "learning_rate/step")
    assert per_update[5][1] == pytest.approx(0.05 * (1 + math.cos(math.pi * 5 / 16)) / 2, rel=1e-6)


def test_plateau_reductions_scale_the_schedule(uninterrupted):
    _, rows = read_history(uninterrupted["plateau"])
    cosine = [0.05 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)]
    ratios = [round(r["learning_rate"] / c, 4) for r, c in zip(rows, cosine)]
    assert ratios == [1.0, 1.0, 0.5, 0.5], ratios  # reduced after epoch 1


@pytest.mark.parametrize("name, flags, kill_at", [
    ("plateau", PLATEAU, "1:after_backup"),  # killed after the first reduction
    ("accumulation", ACCUMULATION, "1:after_backup"),
])
def test_kill_9_and_resume_applies_the_uninterrupted_lrs(folder, uninterrupted, tmp_path, name, flags,
                                                         kill_at):
    whole_dir = uninterrupted[name]
    run_dir = train(folder, tmp_path / "killed", *flags, kill_at=kill_at)
    assert not os.path.exists(os.path.join(run_dir, "summary.json"))
    train(folder, tmp_path / "killed", *flags)  # the same command again
    assert lr_rows(run_dir) == lr_rows(whole_dir)
    _, resumed = read_history(run_dir)
    _, whole = read_history(whole_dir)
    for column in ("learning_rate", "loss", "val_loss"):
        assert [r[column] for r in resumed] == pytest.approx([r[column] for r in whole], rel=1e-4), column
    assert read_json(os.path.join(run_dir, "summary.json"))["resumed_from_epoch"] == int(kill_at[0]) + 1


@pytest.mark.parametrize("flags, message", [
    (["--plateau_factor=0.5"], "--plateau_factor: is only used with --plateau_patience > 0"),
    (["--plateau_patience=-1"], "--plateau_patience: must be >= 0 (0: off), received -1"),
    (["--plateau_patience=2", "--plateau_factor=1"], "--plateau_factor: must be in (0, 1), received 1"),
    (["--plateau_patience=2", "--plateau_min_lr=0.05"],
     "--plateau_min_lr: must be in [0, --lr=0.05), received 0.05"),
    (["--plateau_patience=2", "--plateau_cooldown=-1"], "--plateau_cooldown: must be >= 0, received -1"),
    (["--lr_log_freq=-1"], "--lr_log_freq: must be >= 0 (0: automatic), received -1"),
    (["--gradient_accumulation_steps=0"], "--gradient_accumulation_steps: must be >= 1, received 0"),
    (["--batch_size=8", "--gradient_accumulation_steps=3"],
     "--gradient_accumulation_steps: must divide the 4 batches per epoch (--batch_size=8 over the "
     "training images), received 3"),
])
def test_bad_flags_are_one_line_exit_2_nothing_written(folder, tmp_path, flags, message):
    status, _, err = run_quietly([f"--image_folder={folder}", f"--log_dir={tmp_path / 'logs'}", *BASE, *flags])
    assert status == 2
    assert err == f"error: {message}\n"
    assert not os.path.exists(tmp_path / "logs")

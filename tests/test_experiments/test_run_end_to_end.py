"""experiments.run end to end on a tiny generated image folder: every file, resume, refusal, divergence."""

import csv
import glob
import math
import os
import re
import shutil
import subprocess
import sys
import time

import pytest
from run_helpers import (KILLS, REPO, TINY, TINY_LRS, check_completed_summary, read_history,
                         read_json, run_quietly, snapshot)

from experiments.runner import data, run
from experiments.runner.flags import RUNNER_FLAGS

HEADER = "epoch,learning_rate,loss,accuracy,val_loss,val_accuracy,epoch_seconds"
# TINY (run_helpers): 3 epochs of 3 steps, LR 0.01, 0.05, 0.025 at the epochs' starts.


@pytest.fixture(scope="module")
def folder(tiny_folder):
    return tiny_folder


@pytest.fixture(scope="module")
def finished(folder, tmp_path_factory):
    log_dir = str(tmp_path_factory.mktemp("logs"))
    argv = [f"--image_folder={folder}", f"--log_dir={log_dir}", "--run_name=tiny", *TINY]
    status, out, err = run_quietly(argv)
    assert status == 0, err
    return {"argv": argv, "dir": os.path.join(log_dir, "tiny"), "out": out, "log_dir": log_dir}


@pytest.fixture(scope="module")
def children(child_jobs, killed_runs, folder, tmp_path_factory):
    """The module's child processes, two at a time: the killed runs (run_helpers.KILLS) and the
    deterministic runs, {name: result}."""
    log_dir = tmp_path_factory.mktemp("deterministic")
    deterministic = (1.5, lambda: (_deterministic_runs(folder, log_dir), log_dir))
    return child_jobs.get({**killed_runs.jobs(*KILLS),
                           "test_run_end_to_end deterministic runs": deterministic})


def test_history_has_one_row_per_epoch_with_the_schedules_lr(finished):
    header, rows = read_history(finished["dir"])
    assert header == HEADER
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    assert [r["learning_rate"] for r in rows] == pytest.approx(TINY_LRS, rel=1e-6)
    for r in rows:
        assert math.isfinite(r["loss"]) and math.isfinite(r["val_loss"])
        assert 0 <= r["accuracy"] <= 1 and 0 <= r["val_accuracy"] <= 1
        assert r["epoch_seconds"] > 0
    # The logger's own file agrees, with the optimizer step of each epoch's start.
    with open(os.path.join(finished["dir"], "learning_rate.csv")) as f:
        logged = list(csv.DictReader(f))
    assert [int(r["step"]) for r in logged] == [0, 3, 6]
    assert [float(r["learning_rate"]) for r in logged] == [r["learning_rate"] for r in rows]


def test_one_readable_line_per_epoch(finished):
    lines = [line for line in finished["out"].splitlines() if line.startswith("epoch ")]
    _, rows = read_history(finished["dir"])
    assert len(lines) == 3
    # The LR of each epoch's first and last step (3 steps an epoch): the warmup from 0.01 to
    # 0.05 over steps 0-2, then the cosine over steps 3-8, 0.05 * (1 + cos(pi * t / 6)) / 2.
    last = [0.01 + 0.04 * 2 / 3, 0.05 * (1 + math.cos(math.pi * 2 / 6)) / 2,
            0.05 * (1 + math.cos(math.pi * 5 / 6)) / 2]
    for line, row, last_lr in zip(lines, rows, last):
        assert line.startswith(f"epoch {int(row['epoch']) + 1}/3  lr {row['learning_rate']:.4g}->"
                               f"{last_lr:.4g}  "
                               f"loss {row['loss']:.4f}  acc {row['accuracy']:.4f}  "
                               f"val_loss {row['val_loss']:.4f}  val_acc {row['val_accuracy']:.4f}")
    # An ETA on every epoch line but the last; Keras's own epoch lines not at all (not a terminal).
    for line in lines[:-1]:
        assert re.search(r"  \d+\.\ds  eta \d+:\d\d:\d\d$", line), line
    assert re.search(r"  \d+\.\ds$", lines[-1]), lines[-1]
    assert "Epoch 1/3" not in finished["out"]
    # The last line: epochs from 1 and accuracies rounded, as on the epoch lines.
    summary = read_json(os.path.join(finished["dir"], "summary.json"))
    assert finished["out"].splitlines()[-1] == (
        f"completed: best val_accuracy {summary['best_val_accuracy']:.4f} at epoch "
        f"{summary['best_epoch'] + 1}/3, final {summary['final_val_accuracy']:.4f}; {finished['dir']}")


def test_eta_is_the_epochs_left_at_the_mean_epoch_time_after_the_first():
    from experiments.runner import train

    recorder = train.EpochRecorder("history.csv", "learning_rate.csv", epochs=10, steps_per_epoch=3)
    assert train.clock(3725.4) == "1:02:05" and train.clock(59.6) == "0:01:00"
    recorder._seconds = [30.0]
    assert recorder.seconds_left(0) == 9 * 30.0  # one epoch timed: it is all there is
    recorder._seconds = [30.0, 10.0, 12.0]
    assert recorder.seconds_left(2) == 7 * 11.0  # the first (tracing, compiling) left out
    assert recorder.seconds_left(9) is None


def test_summary_agrees_with_history(finished):
    _, rows = read_history(finished["dir"])
    summary = read_json(os.path.join(finished["dir"], "summary.json"))
    assert len(rows) == 3
    check_completed_summary(summary, rows)
    assert summary["diverged_epoch"] is None
    assert summary["process_seconds"] >= summary["wall_seconds"]
    assert summary["resumed_from_epoch"] == 0


def test_config_json_records_flags_derived_values_and_the_schedule(finished):
    import keras

    record = read_json(os.path.join(finished["dir"], "config.json"))
    assert set(record["flags"]) == set(RUNNER_FLAGS)
    assert record["flags"]["lr"] == 0.05 and record["flags"]["run_name"] == "tiny"
    derived = record["derived"]
    assert derived["train_size"] == 24 and derived["val_size"] == 20
    assert (derived["steps_per_epoch"], derived["total_steps"]) == (3, 9)
    assert (derived["warmup_steps"], derived["decay_steps"]) == (3, 6)
    assert derived["per_replica_batch_size"] == 8
    assert derived["classes"] == [f"class{k}" for k in range(10)]
    schedule = keras.saving.deserialize_keras_object(derived["schedule"])
    assert [float(schedule(s)) for s in (0, 3, 6)] == pytest.approx(TINY_LRS, rel=1e-6)
    assert record["environment"]["backend"] == "tensorflow"
    assert record["environment"]["keras"] == keras.__version__
    assert "--train_subset=24" in record["command_line"]


def test_curves_tensorboard_and_no_backup_left(finished):
    import tensorflow as tf

    with open(os.path.join(finished["dir"], "curves.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert not os.path.exists(os.path.join(finished["dir"], "backup"))
    tb = os.path.join(finished["dir"], "tensorboard")
    assert glob.glob(os.path.join(tb, "train", "events.*"))
    assert glob.glob(os.path.join(tb, "validation", "events.*"))
    assert not glob.glob(os.path.join(tb, "events.*"))  # two TensorBoard runs, not three
    values = {}
    for path in glob.glob(os.path.join(tb, "train", "events.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == "learning_rate/epoch_start":
                    values[event.step] = float(tf.make_ndarray(value.tensor))
    assert [values[e] for e in range(3)] == pytest.approx(TINY_LRS, rel=1e-6)


def test_finished_run_is_not_touched_again(finished, capsys):
    before = snapshot(finished["dir"])
    status = run.run_command(["run", *finished["argv"]])
    assert status == 0
    assert "is complete" in capsys.readouterr().out
    assert snapshot(finished["dir"]) == before


def test_other_flags_in_an_existing_run_are_an_error(finished, capsys):
    before = snapshot(finished["dir"])
    status = run.run_command(["run", *finished["argv"], "--seed=1"])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("error: --run_name: ") and "--seed" in err, err
    assert err.count("\n") == 1
    assert snapshot(finished["dir"]) == before


def test_overwrite_reruns(finished, folder, tmp_path):
    shutil.copytree(finished["dir"], tmp_path / "tiny")  # a finished run, its files' times kept
    first = snapshot(tmp_path / "tiny")
    argv = [f"--image_folder={folder}", f"--log_dir={tmp_path}", "--run_name=tiny", *TINY]
    status, out, _ = run_quietly([*argv, "--overwrite"])
    assert status == 0 and "is complete" not in out
    second = snapshot(tmp_path / "tiny")
    assert second["summary.json"][1] > first["summary.json"][1]


def _matches_the_uninterrupted_run(rows, uninterrupted):
    """rows are the first epochs of the uninterrupted run: its LRs, and its losses."""
    assert [r["epoch"] for r in rows] == list(range(len(rows)))
    uninterrupted = uninterrupted[:len(rows)]
    assert [r["learning_rate"] for r in rows] == [r["learning_rate"] for r in uninterrupted]
    # Same batches and augmentation per epoch: the losses match the uninterrupted run too.
    for column in ("loss", "val_loss", "accuracy"):
        assert [r[column] for r in rows] == pytest.approx(
            [r[column] for r in uninterrupted], rel=1e-4, abs=1e-6), column


_THEN_KILLED = "0:before_backup, then 1:after_backup every 2 steps"


# Each case is one attempt of a run in run_helpers.KILLS (the subprocesses, made once); after
# it comes the same command again: the run's next attempt (killed in turn: that attempt's own
# case checks the rest) or, after its last, a resume here. The resume (and the uninterrupted
# run) use the defaults of `extra`: these flags may differ between attempts.
@pytest.mark.parametrize("kill_at,extra,rows_left,backup_left,run,attempt", [
    ("1:after_backup", [], 2, True, "1:after_backup", 0),  # between epochs: resume at epoch 2
    # History row written, backup not: epoch 0 again.
    ("0:before_backup", [], 1, False, _THEN_KILLED, 0),
    # The first backup comes after epoch 1 (of 0, 1, 2): epoch 0 again.
    ("0:after_backup", ["--backup_every=2"], 1, False, "0:after_backup every 2", 0),
    # 3 steps per epoch in calls of 2 then 1: the same steps, LRs and losses.
    ("1:after_backup", ["--steps_per_execution=2"], 2, True, _THEN_KILLED, 1),
], ids=["1:after_backup", "0:before_backup", "0:after_backup-backup_every=2",
        "1:after_backup-steps_per_execution=2"])
def test_resume_after_kill_9_matches_an_uninterrupted_run(finished, children, killed_runs, tmp_path,
                                                           kill_at, extra, rows_left, backup_left,
                                                           run, attempt):
    killed = children[run]
    attempts = killed["attempts"]
    assert len(attempts) > attempt, attempts[-1]["stderr"][-2000:]
    result = attempts[attempt]
    assert (result["kill_at"], result["extra"]) == (kill_at, extra)
    assert result["returncode"] == -9, result["stderr"][-2000:]
    assert len(result["rows"]) == rows_left
    assert result["backup"] == backup_left
    assert not result["summary"]
    resumed_from = rows_left - (0 if backup_left else 1)
    _, uninterrupted = read_history(finished["dir"])

    if attempt + 1 < len(KILLS[run]):  # the same command again, killed later
        assert len(attempts) > attempt + 1, result["stderr"][-2000:]
        again = attempts[attempt + 1]
        resume = f"resume at epoch {resumed_from + 1}/3"
        if not backup_left:
            resume += f"; no backup yet, so the {rows_left} recorded epoch(s) are trained again"
        assert f"({resume})" in again["stdout"], again["stdout"][-2000:]
        # It trains from that epoch on (its epoch lines), up to its own kill.
        trained = [int(line.split()[1].split("/")[0]) - 1 for line in again["stdout"].splitlines()
                   if line.startswith("epoch ")]
        assert trained == list(range(resumed_from, len(again["rows"]))), again["stdout"][-2000:]
        _matches_the_uninterrupted_run(again["rows"], uninterrupted)
        return
    log_dir = tmp_path / "logs"
    shutil.copytree(killed["log_dir"], log_dir)
    run_dir = str(log_dir / "r")
    status, out, err = run_quietly(killed_runs.argv(log_dir))  # the same command again
    assert status == 0, err
    _, resumed = read_history(run_dir)
    assert [r["epoch"] for r in resumed] == [0, 1, 2]
    _matches_the_uninterrupted_run(resumed, uninterrupted)
    summary = read_json(os.path.join(run_dir, "summary.json"))
    assert summary["epochs_completed"] == 3 and summary["status"] == "completed"
    assert summary["resumed_from_epoch"] == resumed_from
    assert not os.path.exists(os.path.join(run_dir, "backup"))


def test_divergence_is_recorded_and_exits_0(folder, tmp_path):
    argv = [f"--image_folder={folder}", f"--log_dir={tmp_path}", "--run_name=boom",
            "--train_subset=24", "--batch_size=8", "--epochs=4", "--schedule=constant",
            "--lr=1e12"]
    status, out, err = run_quietly(argv)
    assert status == 0, err
    run_dir = tmp_path / "boom"
    _, rows = read_history(run_dir)
    summary = read_json(run_dir / "summary.json")
    assert summary["status"] == "diverged" and summary["diverged"] is True
    epoch = summary["diverged_epoch"]
    assert epoch == len(rows) - 1 < 3  # stopped at the first non-finite epoch
    assert not math.isfinite(rows[-1]["loss"])
    assert all(math.isfinite(r["loss"]) for r in rows[:-1])
    assert summary["epochs_completed"] == len(rows) and summary["final_loss"] is None
    assert (run_dir / "curves.png").exists() and not (run_dir / "backup").exists()
    # Killed after diverging but before summary.json: the next start only finishes it.
    (run_dir / "summary.json").unlink()
    history_before = (run_dir / "history.csv").read_bytes()
    status, out, err = run_quietly(argv)
    assert status == 0, err
    assert (run_dir / "history.csv").read_bytes() == history_before
    again = read_json(run_dir / "summary.json")
    assert again["diverged_epoch"] == epoch and again["epochs_completed"] == len(rows)


def test_tfds_path_with_mock_data(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    monkeypatch.setattr(data, "_check_download_reachable", lambda *args: None)
    with tfds.testing.mock_data(num_examples=20):
        status, out, err = run_quietly([f"--data_dir={tmp_path / 'tfds'}",
                                        f"--log_dir={tmp_path / 'logs'}", "--run_name=m",
                                        "--train_subset=16", "--batch_size=8", "--epochs=1"])
    assert status == 0, err
    record = read_json(tmp_path / "logs" / "m" / "config.json")
    assert record["flags"]["dataset"] == "cifar10"
    assert record["derived"]["train_size"] == 16 and record["derived"]["val_size"] == 20
    assert len(read_history(tmp_path / "logs" / "m")[1]) == 1


def test_no_network_and_no_data_fails_fast_naming_both_ways_out(tmp_path, monkeypatch, capsys):
    # ".invalid" never resolves (RFC 2606): unreachable on any machine.
    monkeypatch.setitem(data._DOWNLOAD_HOSTS, "cifar10", "cifar.invalid")
    empty = tmp_path / "empty"
    empty.mkdir()
    start = time.monotonic()
    status = run.run_command(["run", f"--data_dir={empty}", f"--log_dir={tmp_path / 'logs'}"])
    err = capsys.readouterr().err
    assert time.monotonic() - start < 30
    assert status == 2 and err.startswith("error: --data_dir: ") and err.count("\n") == 1
    assert "--image_folder" in err and "--data_dir=" in err
    assert not (tmp_path / "logs").exists()


def test_mixed_bfloat16_with_xla_trains_with_the_same_lrs(folder, tmp_path):
    import keras

    argv = [f"--image_folder={folder}", f"--log_dir={tmp_path}", "--run_name=bf16", *TINY,
            "--precision=mixed_bfloat16", "--jit_compile"]
    try:
        status, out, err = run_quietly(argv)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert status == 0, err
    _, rows = read_history(tmp_path / "bf16")
    assert [r["learning_rate"] for r in rows] == pytest.approx(TINY_LRS, rel=1e-6)
    assert all(math.isfinite(r["loss"]) for r in rows)
    assert read_json(tmp_path / "bf16" / "config.json")["flags"]["jit_compile"] is True


def _deterministic_runs(folder, log_dir):
    """Runs a and b with --deterministic in one child: op determinism is process-wide."""
    script = (
        "import sys\n"
        "from experiments.runner import run\n"
        "for name in ('a', 'b'):\n"
        "    assert run.run_command(['run', '--run_name=' + name, '--deterministic', "
        "*sys.argv[1:]]) == 0\n")
    argv = [f"--image_folder={folder}", f"--log_dir={log_dir}", *TINY]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-c", script, *argv], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=180)


def test_deterministic_runs_repeat_exactly(children):
    result, log_dir = children["test_run_end_to_end deterministic runs"]
    assert result.returncode == 0, result.stderr[-2000:]
    _, a = read_history(log_dir / "a")
    _, b = read_history(log_dir / "b")
    for column in ("learning_rate", "loss", "accuracy", "val_loss", "val_accuracy"):
        assert [r[column] for r in a] == [r[column] for r in b], column


@pytest.mark.parametrize("extra,lrs", [
    # One-cycle over the 9 steps: up from 0.05/25 to the peak at step 0.3 * 9 - 1 = 1.7
    # (between steps 1 and 2), down to the end: epochs start at steps 0, 3 and 6.
    (["--schedule=onecycle"], None),
    # WSD: a 1-epoch linear warmup from --min_lr, 1 stable epoch, a 1-epoch cosine decay.
    (["--schedule=wsd", "--warmup_epochs=1", "--stable_epochs=1", "--min_lr=0.001"],
     [0.001, 0.05, 0.05]),
])
def test_a_new_schedule_trains_and_records_its_lr(folder, tmp_path, extra, lrs):
    import kschedules as ks

    argv = [f"--image_folder={folder}", f"--log_dir={tmp_path}", "--run_name=n",
            "--train_subset=24", "--epochs=3", "--batch_size=8", "--lr=0.05", *extra]
    status, _, err = run_quietly(argv)
    assert status == 0, err
    _, rows = read_history(tmp_path / "n")
    if lrs is None:
        lrs = [float(ks.OneCycle(0.05, 9)(step)) for step in (0, 3, 6)]
    assert [r["learning_rate"] for r in rows] == pytest.approx(lrs, rel=1e-6)
    config = read_json(tmp_path / "n" / "config.json")
    assert config["flags"]["schedule"] == extra[0].split("=")[1]

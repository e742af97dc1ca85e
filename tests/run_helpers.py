"""Shared helpers of the runner tests: tiny generated image folders, flag parsing, killed runs."""

import concurrent.futures
import contextlib
import csv
import functools
import glob
import hashlib
import io
import json
import os
import pathlib
import subprocess
import sys

import hooked_run
import numpy as np
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The runner with the fault hooks of tests/hooked_run.py (SIGKILL or a pause at an epoch's end,
# asked for by the environment: hooked_run.KILL_ENV, hooked_run.PAUSE_ENV).
HOOKED_RUN = [sys.executable, os.path.join(REPO, "tests", "hooked_run.py")]
# 24 of the 40 training images, batch 8: 3 steps per epoch, 9 steps in 3 epochs.
# Warmup 1 epoch (3 steps) from 0.01 to 0.05, then cosine over the 6 remaining steps:
# epoch 0 starts at step 0 (0.01), epoch 1 at step 3 (0.05), epoch 2 at step 6
# (cosine halfway: 0.025).
TINY = ["--train_subset=24", "--epochs=3", "--batch_size=8", "--lr=0.05", "--schedule=cosine",
        "--warmup_epochs=1", "--warmup_start_lr=0.01"]
TINY_LRS = [0.01, 0.05, 0.025]


def make_image_folder(root, classes=10, train_per_class=4, test_per_class=2, size=32,
                      formats=("png", "jpg"), seed=0):
    """Writes root/{train,test}/class<k>/<i>.<fmt>: class k is brighter with k.

    Returns `root` (a str).
    """
    rng = np.random.default_rng(seed)
    for split, count in (("train", train_per_class), ("test", test_per_class)):
        for k in range(classes):
            folder = os.path.join(root, split, f"class{k}")
            os.makedirs(folder, exist_ok=True)
            for i in range(count):
                base = 20 * k if classes <= 10 else (255 * k) // classes
                pixels = (rng.random((size, size, 3)) * 40 + base).clip(0, 255).astype(np.uint8)
                fmt = formats[i % len(formats)]
                Image.fromarray(pixels).save(os.path.join(folder, f"{i:04d}.{fmt}"),
                                             **({"quality": 95} if fmt == "jpg" else {}))
    return str(root)


def parse(*args):
    """Parses runner flags `args` into absl's FLAGS (reset first); returns FLAGS."""
    from experiments.runner.flags import FLAGS

    FLAGS.unparse_flags()
    FLAGS(["prog", *args])
    return FLAGS


def read_history(run_dir):
    """(header line, rows as dicts of floats) of a run's history.csv."""
    with open(os.path.join(run_dir, "history.csv"), newline="") as f:
        text = f.read()
    rows = list(csv.DictReader(io.StringIO(text)))
    return text.splitlines()[0], [{k: float(v) for k, v in r.items()} for r in rows]


def snapshot(run_dir):
    """{relative path: (sha256, mtime_ns)} of every file under run_dir."""
    result = {}
    for path in glob.glob(os.path.join(run_dir, "**"), recursive=True):
        if os.path.isfile(path):
            with open(path, "rb") as f:
                result[os.path.relpath(path, run_dir)] = (hashlib.sha256(f.read()).hexdigest(),
                                                          os.stat(path).st_mtime_ns)
    return result


def stderr_lines(text):
    """The lines of a runner's stderr without TensorFlow's and absl's start-up logging."""
    return [line for line in text.splitlines()
            if line and not line.startswith(("I0000", "W0000", "E0000", "WARNING: All log"))]


def read_json(path):
    with open(path) as f:
        return json.load(f)


def run_quietly(argv):
    """(exit status, stdout, stderr) of an in-process `experiments.run`."""
    from experiments.runner import run

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = run.run_command(["run", *argv])
    return status, out.getvalue(), err.getvalue()


def check_completed_summary(summary, rows):
    """summary.json of a completed run agrees with its history rows (recomputed here)."""
    best = max(range(len(rows)), key=lambda i: rows[i]["val_accuracy"])
    assert summary["status"] == "completed" and summary["diverged"] is False
    assert (summary["epochs_completed"], summary["epochs_planned"]) == (len(rows), len(rows))
    assert summary["final_val_accuracy"] == rows[-1]["val_accuracy"]
    assert summary["best_val_accuracy"] == rows[best]["val_accuracy"]
    assert summary["best_epoch"] == best
    assert summary["final_loss"] == rows[-1]["loss"]
    assert abs(summary["wall_seconds"] - sum(r["epoch_seconds"] for r in rows)) <= 2e-3


def two_at_a_time(jobs):
    """Calls the functions `jobs` (no arguments) two at a time, in threads; returns their results.

    For jobs that each wait on child processes of their own and do not depend on each other:
    a child spends most of its time on one core (importing TensorFlow, tracing), so on this
    2-core machine two at once take little longer than one.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda job: job(), jobs))


# Runs of TINY killed by SIGKILL (the runner's test hook, "<epoch>:before_backup" or
# "<epoch>:after_backup"). Each is a list of attempts in one run directory, each the same
# command again with its own extra flags (flags that may differ between attempts).
KILLS = {
    "1:after_backup": [("1:after_backup", [])],
    "0:after_backup every 2": [("0:after_backup", ["--backup_every=2"])],
    # Then the same command again, killed after epoch 1 in calls of 2 steps then 1.
    "0:before_backup, then 1:after_backup every 2 steps": [
        ("0:before_backup", []), ("1:after_backup", ["--steps_per_execution=2"])],
}


class ChildJobs:
    """Results of named jobs that wait on child processes of their own, each made once.

    `get({name: (weight, job)})`: {name: result}; the jobs not made yet run two at a time
    (`two_at_a_time`), the heaviest first (`weight`: about how many runs the job makes).
    """

    def __init__(self):
        self.made = {}

    def get(self, jobs):
        missing = sorted((name for name in jobs if name not in self.made),
                         key=lambda name: -jobs[name][0])
        self.made.update(zip(missing, two_at_a_time([jobs[name][1] for name in missing])))
        return {name: self.made[name] for name in jobs}


class KilledRuns:
    """The runs of KILLS, each made in subprocesses by a job for `ChildJobs`.

    A run: {"log_dir": the --log_dir of its run "r" (copy it before resuming it), "attempts":
    [{kill_at, extra, returncode, stdout, stderr, rows, backup, summary}]}, with the history
    rows and whether backup/ and summary.json existed right after each attempt.
    """

    def __init__(self, root, folder):
        self.root, self.folder = str(root), str(folder)

    def argv(self, log_dir, *extra):
        """The command's flags: run "r" of TINY on the folder, under `log_dir`."""
        return [f"--image_folder={self.folder}", f"--log_dir={log_dir}", "--run_name=r", *TINY,
                *extra]

    def jobs(self, *names):
        """{name: (weight, job)} of the runs `names`, for `ChildJobs.get`."""
        return {name: (len(KILLS[name]), functools.partial(self._make, name)) for name in names}

    def _make(self, name):
        log_dir = os.path.join(self.root, f"kill{list(KILLS).index(name)}")
        run_dir = os.path.join(log_dir, "r")
        attempts = []
        for kill_at, extra in KILLS[name]:
            env = {**os.environ, hooked_run.KILL_ENV: kill_at, "TF_CPP_MIN_LOG_LEVEL": "2",
                   "PYTHONUNBUFFERED": "1"}
            result = subprocess.run([*HOOKED_RUN, *self.argv(log_dir, *extra)], cwd=REPO, env=env,
                                    capture_output=True, text=True, timeout=180)
            rows = (read_history(run_dir)[1]
                    if os.path.exists(os.path.join(run_dir, "history.csv")) else [])
            attempts.append({"kill_at": kill_at, "extra": extra, "returncode": result.returncode,
                             "stdout": result.stdout, "stderr": result.stderr, "rows": rows,
                             "backup": os.path.exists(os.path.join(run_dir, "backup")),
                             "summary": os.path.exists(os.path.join(run_dir, "summary.json"))})
            if result.returncode != -9:
                break  # the next attempt would not be "the same command again" after a kill
        return {"log_dir": log_dir, "attempts": attempts}


def read_scalars(log_dir, tag):
    """(step, float32 value) of `tag` in the event files directly in log_dir,
    in the order they were written."""
    import tensorflow as tf  # only the tests that read TensorBoard files need it

    points = []
    for path in glob.glob(os.path.join(log_dir, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == tag:
                    array = tf.make_ndarray(value.tensor)
                    points.append((event.wall_time, event.step, np.float32(array)))
    # Summary events carry microsecond wall times (a file's first event and
    # its name only whole seconds), so they order points across files.
    return [(step, value) for _, step, value in sorted(points, key=lambda p: p[0])]


HISTORY_HEADER = "epoch,learning_rate,loss,accuracy,val_loss,val_accuracy,epoch_seconds"
# The flags a fake run records unless told others (`make_run`).
FAKE_RUN_FLAGS = {
    "schedule": "constant", "lr": 0.1, "batch_size": 128, "overwrite": False, "optimizer": "sgd",
    "milestones": None, "factor": 0.1, "warmup_epochs": 0,
}


def make_run(root, name, val_acc, loss, seed=0, diverged_epoch=None, wall=12.5, finished=True,
             defaults=FAKE_RUN_FLAGS, derived=None, history_lr=0.1, epoch_seconds=2.0,
             history=True, **flags):
    """Writes the run directory <root>/<name> following the contract; returns its path (str).

    The tests' one fake run: config.json records `defaults` updated with the run's own
    flags (epochs = len(val_acc), seed, run_name, log_dir) and `flags`; history.csv one row
    per epoch of `val_acc` and `loss` (unless not `history`), and, when `finished`,
    summary.json as the runner writes it (best epoch from `val_acc`).
    """
    root = pathlib.Path(root)
    run_dir = root / name
    run_dir.mkdir(parents=True, exist_ok=True)
    all_flags = {**defaults, "epochs": len(val_acc), "seed": seed, "run_name": name,
                 "log_dir": str(root), **flags}
    config = {"flags": all_flags,
              "derived": derived or {"train_size": 500, "val_size": 100, "steps_per_epoch": 4},
              "environment": {"keras": "3", "backend": "tensorflow"}}
    (run_dir / "config.json").write_text(json.dumps(config))
    if not history:
        return str(run_dir)
    lines = [HISTORY_HEADER] + [
        f"{e},{history_lr!r},{loss[e]!r},0.5,1.0,{val_acc[e]!r},{epoch_seconds!r}"
        for e in range(len(val_acc))]
    (run_dir / "history.csv").write_text("\n".join(lines) + "\n")
    if finished:
        best = max(range(len(val_acc)), key=lambda e: val_acc[e])
        summary = {
            "status": "diverged" if diverged_epoch is not None else "completed",
            "final_val_accuracy": val_acc[-1], "best_val_accuracy": val_acc[best], "best_epoch": best,
            "epochs_completed": len(val_acc), "epochs_planned": all_flags["epochs"],
            "diverged": diverged_epoch is not None, "diverged_epoch": diverged_epoch,
            "final_loss": loss[-1], "wall_seconds": wall,
        }
        (run_dir / "summary.json").write_text(json.dumps(summary))
    return str(run_dir)

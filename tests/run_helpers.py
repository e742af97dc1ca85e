"""Shared helpers of the runner tests: tiny generated image folders, flag parsing."""

import contextlib
import csv
import glob
import hashlib
import io
import json
import os

import numpy as np
from PIL import Image


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
    from experiments.flags import FLAGS

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
    from experiments import run

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

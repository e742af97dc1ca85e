"""benchmarks 2-4: each script, run as its command on a tiny generated image folder, prints its figures.

The scripts are absl programs (their flags would clash in one process), so each
runs as a subprocess, at the smallest sizes that exercise every measurement.
"""

import csv
import os
import re
import subprocess
import sys

import pytest
from run_helpers import make_image_folder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUMBER = r"[\d,]+\.?\d*"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("images"), classes=3, train_per_class=8,
                             test_per_class=2, formats=("png", "jpg"), size=16)


def run(module, *args, status=0):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    finished = subprocess.run([sys.executable, "-m", f"benchmarks.{module}", *args], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == status, finished.stdout + finished.stderr[-3000:]
    return finished.stdout, finished.stderr


def numbers(text):
    return [float(n.replace(",", "")) for n in re.findall(NUMBER, text)]


def spread_of(line, label):
    """(min, median, max) from a Markdown row `| label | a / b / c | ...`."""
    cells = [c.strip() for c in line.split("|")]
    index = next(i for i, c in enumerate(cells) if c.startswith(label))
    low, mid, high = numbers(cells[index + 1])
    assert 0 < low <= mid <= high, line
    return low, mid, high


def test_input_pipeline_prints_rates_and_their_ratio(folder):
    out, _ = run("input_pipeline", f"--image_folder={folder}", "--batch_size=4", "--batches=3",
                 "--model_steps=1", "--repeats=1")
    assert out.startswith("command: python -m benchmarks.input_pipeline --image_folder=")
    assert "data: 16x16x3 images, batch 4, model simple_cnn" in out
    assert re.search(rf"decode pass .*: 24 training \+ 6 test = 30 images in {NUMBER} s = "
                     rf"{NUMBER} images/s", out)
    rows = {label: next(line for line in out.splitlines() if line.startswith(f"| {label}"))
            for label in ("training pipeline, augmented", "training pipeline, no augmentation",
                          "model training, XLA", "model training, no XLA")}
    medians = {label: spread_of(line, label)[1] for label, line in rows.items()}
    ratio = float(re.search(rf"pipeline / faster model rate \(medians\): ({NUMBER})x", out)[1]
                  .replace(",", ""))
    # The rates are printed as whole numbers (a model at ~20 images/s is 5% off), the ratio to 0.1.
    pipeline = medians["training pipeline, augmented"]
    model = max(medians["model training, XLA"], medians["model training, no XLA"])
    assert (pipeline - 0.5) / (model + 0.5) - 0.05 <= ratio <= (pipeline + 0.5) / (model - 0.5) + 0.05
    low, mid, high = map(float, re.search(
        r"1 interleaved pairs: min (\S+), median (\S+), max (\S+)$", out, re.M).groups())
    assert 0 < low <= mid <= high


def test_input_pipeline_without_tensorflow_measures_the_model_on_jax(folder):
    # The GPU machine has Keras on JAX and no TensorFlow: tf.data parts say skipped.
    child = ("import runpy, sys; sys.modules['tensorflow'] = None; "
             "sys.argv = ['input_pipeline', *sys.argv[1:]]; "
             "runpy.run_module('benchmarks.input_pipeline', run_name='__main__')")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    finished = subprocess.run(
        [sys.executable, "-c", child, f"--image_folder={folder}", "--batch_size=4",
         "--model_steps=1", "--repeats=1"], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=300)
    out = finished.stdout
    assert finished.returncode == 0, out + finished.stderr[-3000:]
    assert "tensorflow not installed, backend jax" in out
    assert "training pipeline: skipped (TensorFlow: tf.io and tf.data" in out
    assert re.search(rf"^\| model training, XLA \(fit over 1 batches\) \| {NUMBER} / ",
                     out, re.M)
    assert "no XLA" not in out and "pipeline / faster" not in out


def test_runner_overhead_prints_epoch_times_and_ratio(folder):
    out, _ = run("runner_overhead", f"--image_folder={folder}", "--train_images=12",
                 "--val_images=3", "--batch_size=4", "--repeats=1", "--epochs=2")
    assert out.startswith("command: python -m benchmarks.runner_overhead --image_folder=")
    assert "data: 12 training, 3 validation images; 2 epochs per run" in out
    assert "runner flags: --batch_size=4" in out
    line = next(line for line in out.splitlines() if line.startswith("| median epoch seconds"))
    runner, plain, ratio = (float(c.split(" / ")[1]) for c in line.split("|")[2:5])
    assert runner > 0 and plain > 0
    # One pair: the ratio is exactly runner / plain, up to the printed rounding of the seconds.
    half = 0.005 + 1e-9  # Seconds are printed with 2 decimals.
    assert (runner - half) / (plain + half) - 0.001 <= ratio <= (runner + half) / max(plain - half, 1e-9) + 0.001
    hooks = next(line for line in out.splitlines() if line.startswith("| seconds per epoch inside"))
    seconds, share = spread_of(hooks, "seconds per epoch")[1], numbers(hooks.split("|")[4])[1]
    # The share is a median of per-epoch shares, the test's a ratio of medians of rounded seconds.
    assert 0 < share < 1 and share == pytest.approx(seconds / runner, rel=0.25, abs=2e-4)
    for callback in ("AtomicBackupAndRestore", "EpochRecorder", "LearningRateLogger", "TensorBoard"):
        assert f"| of which {callback} (min / median / max over epochs) | " in out
    assert re.search(r"^runner / plain Keras epoch time: min (\S+), median \1, max \1 "
                     r"\(target <= 1\.03\)$", out, re.M)


def test_time_to_accuracy_reads_the_runs_history(folder, tmp_path):
    out, _ = run("time_to_accuracy", f"--image_folder={folder}", "--train_subset=12",
                 "--epochs=2", "--target_accuracy=0.01", "--runner_flags=--batch_size=4",
                 f"--keep_dir={tmp_path}")
    with open(tmp_path / "time_to_accuracy" / "history.csv", newline="") as f:
        history = list(csv.DictReader(f))
    assert len(history) == 2
    assert "runner: python -m experiments.run " in out and "--train_subset=12" in out
    rows = [line for line in out.splitlines() if re.match(r"\| \d+ \|", line)]
    assert [row.split("|")[1].strip() for row in rows] == ["1", "2"]  # one row per epoch
    assert numbers(rows[1].split("|")[4]) == [round(float(history[1]["val_accuracy"]), 4)]
    first = float(history[0]["epoch_seconds"])
    seconds = float(re.search(r"reached at the end of epoch 1 of 2, after (\S+) s", out)[1])
    assert seconds == pytest.approx(first, abs=0.06)


def test_time_to_accuracy_rejects_a_bad_target_in_one_line(folder):
    _, err = run("time_to_accuracy", f"--image_folder={folder}", "--target_accuracy=1.5",
                 status=2)
    assert err.strip() == "error: --target_accuracy: must be in (0, 1], received 1.5"

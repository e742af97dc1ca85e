"""benchmarks 2-4: each script, run as its command on a tiny generated image folder, prints its figures.

The scripts are absl programs (their flags would clash in one process), so each
runs as a subprocess, at the smallest sizes that exercise every measurement. The
tests check what the figures say about each other, never how fast this machine is,
so the slow ones run two at a time (`commands`); runner_overhead runs alone (its
hooks' share of an epoch is compared across epochs).
"""

import csv
import os
import re
import subprocess
import sys

import pytest
from run_helpers import make_image_folder, two_at_a_time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NUMBER = r"[\d,]+\.?\d*"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("images"), classes=3, train_per_class=8,
                             test_per_class=2, formats=("png", "jpg"), size=16)


def start(argv, env=None):
    """The finished subprocess `argv` (a benchmark's command) in the repository."""
    env = env or {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def benchmark(module, *args):
    return [sys.executable, "-m", f"benchmarks.{module}", *args]


def outputs_of(finished, status=0):
    assert finished.returncode == status, finished.stdout + finished.stderr[-3000:]
    return finished.stdout, finished.stderr


def run(module, *args, status=0):
    return outputs_of(start(benchmark(module, *args)), status)


# The model on JAX without TensorFlow (the GPU machine has Keras on JAX and no TensorFlow).
WITHOUT_TENSORFLOW = ("import runpy, sys; sys.modules['tensorflow'] = None; "
                      "sys.argv = ['input_pipeline', *sys.argv[1:]]; "
                      "runpy.run_module('benchmarks.input_pipeline', run_name='__main__')")


@pytest.fixture(scope="module")
def commands(folder, tmp_path_factory):
    """{name: finished subprocess} of the slow commands below, run two at a time."""
    keep_dir = tmp_path_factory.mktemp("time_to_accuracy")
    jobs = {  # the longest first
        "input_pipeline": lambda: start(benchmark(
            "input_pipeline", f"--image_folder={folder}", "--batch_size=4", "--batches=3",
            "--model_steps=1", "--repeats=1")),
        "time_to_accuracy": lambda: start(benchmark(
            "time_to_accuracy", f"--image_folder={folder}", "--train_subset=12", "--epochs=2",
            "--target_accuracy=0.01", "--runner_flags=--batch_size=4", f"--keep_dir={keep_dir}")),
        "input_pipeline on jax": lambda: start(
            [sys.executable, "-c", WITHOUT_TENSORFLOW, f"--image_folder={folder}",
             "--batch_size=4", "--model_steps=1", "--repeats=1"],
            env={**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}),
    }
    results = dict(zip(jobs, two_at_a_time(list(jobs.values()))))
    results["keep_dir"] = keep_dir
    return results


def numbers(text):
    return [float(n.replace(",", "")) for n in re.findall(NUMBER, text)]


def spread_of(line, label):
    """(min, median, max) from a Markdown row `| label | a / b / c | ...`."""
    cells = [c.strip() for c in line.split("|")]
    index = next(i for i, c in enumerate(cells) if c.startswith(label))
    low, mid, high = numbers(cells[index + 1])
    assert 0 < low <= mid <= high, line
    return low, mid, high


def test_input_pipeline_prints_rates_and_their_ratio(commands):
    out, _ = outputs_of(commands["input_pipeline"])
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


def test_input_pipeline_without_tensorflow_measures_the_model_on_jax(commands):
    # The GPU machine has Keras on JAX and no TensorFlow: tf.data parts say skipped.
    out, _ = outputs_of(commands["input_pipeline on jax"])
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
    for callback in ("AtomicBackupAndRestore", "EpochRecorder", "LearningRateLogger",
                     "TensorBoardWithoutLR"):
        assert f"| of which {callback} (min / median / max over epochs) | " in out
    assert re.search(r"^runner / plain Keras epoch time: min (\S+), median \1, max \1 "
                     r"\(target <= 1\.03\)$", out, re.M)


def test_time_to_accuracy_reads_the_runs_history(commands):
    out, _ = outputs_of(commands["time_to_accuracy"])
    with open(commands["keep_dir"] / "time_to_accuracy" / "history.csv", newline="") as f:
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

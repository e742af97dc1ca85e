"""Benchmark 4: time to a stated validation accuracy, for later comparison.

Runs the runner once, as a subprocess (`python -m experiments.run`), on
`--train_subset` training images of `--image_folder` for `--epochs` epochs with
its defaults otherwise (simple_cnn, SGD, cosine schedule; the schedule spans
those epochs), validating on the whole test split, into a temporary
`--log_dir`. It then reads the run's history.csv and summary.json and prints:
the first epoch whose validation accuracy reaches `--target_accuracy`, the
training seconds up to the end of that epoch (the sum of history.csv's
`epoch_seconds`, validation included, start-up excluded), the process wall
time, and the per-epoch table. A run that never reaches the target says so
(exit status 1), with the best accuracy it reached.

Extra runner flags go through `--runner_flags` (space-separated). The
subprocess inherits the environment (KERAS_BACKEND among it).

    python -m benchmarks.time_to_accuracy --image_folder=PATH/cifar10
"""

import csv
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time

from absl import app, flags

flags.DEFINE_string("image_folder", None, "Image folder of the run (train/<class>/*, test/<class>/*).")
flags.DEFINE_integer("train_subset", 5000, "Training images (the runner's --train_subset); "
                     "0: all.")
flags.DEFINE_integer("epochs", 10, "Epochs of the run (the schedule spans them all).")
flags.DEFINE_float("target_accuracy", 0.45, "Validation accuracy to reach.")
flags.DEFINE_integer("seed", 0, "The runner's --seed.")
flags.DEFINE_string("runner_flags", "", "More runner flags, space-separated, e.g. "
                    "'--model=resnet20 --batch_size=256'.")
flags.DEFINE_string("keep_dir", None, "Keep the run in this --log_dir (default: a temporary folder, "
                    "deleted).")
FLAGS = flags.FLAGS


def fail(message):
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def runner_command(log_dir):
    command = [sys.executable, "-m", "experiments.run", f"--image_folder={FLAGS.image_folder}",
               f"--epochs={FLAGS.epochs}", f"--seed={FLAGS.seed}", f"--log_dir={log_dir}",
               "--run_name=time_to_accuracy", "--overwrite"]
    if FLAGS.train_subset:
        command.append(f"--train_subset={FLAGS.train_subset}")
    return command + shlex.split(FLAGS.runner_flags)


def read_history(run_dir):
    with open(os.path.join(run_dir, "history.csv"), newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def first_reaching(history, target):
    """(epoch index, seconds up to its end) of the first row reaching `target`, else None."""
    seconds = 0.0
    for row in history:
        seconds += row["epoch_seconds"]
        if row["val_accuracy"] >= target:
            return int(row["epoch"]), seconds
    return None


def train(log_dir):
    """Runs the runner; returns (history, summary, wall seconds, the command)."""
    command = runner_command(log_dir)
    start = time.perf_counter()
    finished = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if finished.returncode != 0:
        fail(f"the runner exited with status {finished.returncode}: "
             f"{(finished.stderr or finished.stdout).strip()[-1500:]}")
    run_dir = os.path.join(log_dir, "time_to_accuracy")
    with open(os.path.join(run_dir, "summary.json")) as f:
        summary = json.load(f)
    with open(os.path.join(run_dir, "config.json")) as f:
        environment = json.load(f)["environment"]
    return read_history(run_dir), summary, environment, wall, command


def main(argv):
    if len(argv) > 1:
        fail(f"unexpected arguments {argv[1:]}: every option is a --flag")
    if FLAGS.image_folder is None:
        fail("--image_folder: required (a train/<class>/*, test/<class>/* folder)")
    if not 0 < FLAGS.target_accuracy <= 1:
        fail(f"--target_accuracy: must be in (0, 1], received {FLAGS.target_accuracy}")
    if FLAGS.keep_dir is not None:
        history, summary, environment, wall, command = train(FLAGS.keep_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="time_to_accuracy_") as log_dir:
            history, summary, environment, wall, command = train(log_dir)
    reached = first_reaching(history, FLAGS.target_accuracy)

    print("command: python -m benchmarks.time_to_accuracy " + shlex.join(sys.argv[1:]))
    print("runner: python " + shlex.join(command[1:]))
    print(f"machine: {os.cpu_count()} CPU cores; keras {environment['keras']}, tensorflow "
          f"{environment['tensorflow']}, backend {environment['backend']}\n")
    print("| epoch | learning_rate | loss | val_accuracy | epoch_seconds |")
    print("|---|---|---|---|---|")
    for row in history:
        print(f"| {int(row['epoch']) + 1} | {row['learning_rate']:.4g} | {row['loss']:.3f} "
              f"| {row['val_accuracy']:.4f} | {row['epoch_seconds']:.1f} |")
    print(f"\nbest val_accuracy {summary['best_val_accuracy']:.4f} (epoch "
          f"{summary['best_epoch'] + 1}); training {summary['wall_seconds']:.1f} s; "
          f"process wall {wall:.1f} s")
    if reached is None:
        print(f"target val_accuracy >= {FLAGS.target_accuracy} NOT reached in "
              f"{len(history)} epochs")
        raise SystemExit(1)
    epoch, seconds = reached
    print(f"time to val_accuracy >= {FLAGS.target_accuracy}: reached at the end of epoch "
          f"{epoch + 1} of {FLAGS.epochs}, after {seconds:.1f} s of training")


if __name__ == "__main__":
    app.run(main)

"""The learning-rate curve of a planned run, without training or reading data.

    python -m experiments.preview --schedule=step --epochs=30 --warmup_epochs=2

Takes the runner's command line (every `experiments.run` flag, checked the same
way) plus `--train_size` and `--preview_dir`, builds the run's schedule and evaluates it
at every optimizer step 0 .. total_steps - 1 (one vectorised call), writing
`<preview_dir>/<run_name>.csv` (`step,epoch,learning_rate`; epoch = step /
steps_per_epoch) and `<preview_dir>/<run_name>.png`.

Steps per epoch need the number of training images; it comes from
`--train_size` if given, else `--train_subset`, else the number of images in
`--image_folder/train` (listed, not read), else 50,000 (CIFAR-10's training set).
"""

import csv
import os

import numpy as np
from absl import app, flags

from experiments import cli
from experiments.runner import config as config_lib
from experiments.runner import flags as flag_defs
from experiments.runner import run
from experiments.runner.flags import FLAGS
from experiments.runner.run import parse_flags

flag_defs.define_preview_flags()
flags.adopt_module_key_flags(flag_defs)  # --help lists the runner's flags too


def main(argv):
    if len(argv) > 1:
        cli.fail(f"unexpected arguments {argv[1:]}: every option is a --flag")
    try:
        config = config_lib.build_config(FLAGS, train_size=FLAGS.train_size)
    except config_lib.FlagError as error:
        cli.fail(error)
    steps, values = evaluate(config)
    base = os.path.join(FLAGS.preview_dir, config.flags["run_name"])
    os.makedirs(FLAGS.preview_dir, exist_ok=True)
    write_csv(base + ".csv", steps, values, config.steps_per_epoch)
    plot(base + ".png", steps / config.steps_per_epoch, values, config)
    for line in describe(config, values):
        print(line)
    print(f"wrote {base}.csv and {base}.png")
    return 0


def evaluate(config):
    """(steps, learning rates) of the run's schedule at every optimizer step."""
    import keras

    from experiments.runner.schedules import build_schedule

    schedule = build_schedule(config)
    steps = np.arange(config.total_steps)
    values = keras.ops.convert_to_numpy(keras.ops.vectorized_map(schedule, steps))
    return steps, values.astype(np.float32)


def write_csv(path, steps, values, steps_per_epoch):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "epoch", "learning_rate"])
        for step, value in zip(steps.tolist(), values):
            # str of a float32: the shortest text that reads back to the same float32.
            writer.writerow([step, repr(step / steps_per_epoch), str(value)])


def describe(config, values):
    """A few lines: the step arithmetic and the LR at the points that matter."""
    warmup = config.warmup_steps
    lines = [f"{config.flags['run_name']}: {config.flags['epochs']} epochs x "
             f"{config.steps_per_epoch} steps (train_size {config.train_size}, batch "
             f"{config.flags['batch_size']}"
             + (f", updates of {k} batches" if (k := config.flags["gradient_accumulation_steps"]) > 1 else "")
             + f") = {config.total_steps} steps, warmup {warmup} steps",
             f"lr: first step {values[0]:.6g}, max {values.max():.6g} at step "
             f"{int(values.argmax())}, min {values.min():.6g}, last step {values[-1]:.6g}"]
    if config.boundaries:
        drops = [b + warmup for b in config.boundaries]
        lines.append("drops at steps " + ", ".join(
            f"{s} (epoch {s // config.steps_per_epoch}): {values[s]:.6g}" for s in drops))
    if config.flags["plateau_patience"]:
        lines.append(f"plateau reductions (x{config.flags['plateau_factor']:g} after "
                     f"{config.flags['plateau_patience']} epochs without improvement of "
                     f"{config.flags['plateau_monitor']}) depend on training: not shown")
    return lines


def plot(path, epochs, values, config):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    axes.plot(epochs, values, linewidth=1.2)
    if config.warmup_steps:
        axes.axvline(config.warmup_steps / config.steps_per_epoch, color="grey",
                     linestyle=":", label="end of warmup")
        axes.legend()
    axes.set_xlabel("epoch")
    axes.set_ylabel("learning rate")
    axes.set_xlim(0, config.flags["epochs"])
    axes.set_title(config.flags["run_name"], fontsize=9)
    axes.grid(alpha=0.3)
    figure.savefig(path, dpi=110)


def run_command(argv):
    """In-process entry (tests): parse `argv` (program name first), run; returns the exit status."""
    return run.run_command(argv, entry=main)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)

"""The learning-rate curve of a planned run, without training or reading data.

    python -m experiments.preview --schedule=step --epochs=30 --warmup_epochs=2

Takes the runner's command line (every `experiments.run` flag, checked the same
way, `--log_dir` the folder written under) plus `--train_size`, builds the run's schedule and evaluates it
at every optimizer step 0 .. total_steps - 1 (one vectorised call), writing
`<log_dir>/preview/<run_name>.csv` (`step,epoch,learning_rate`; epoch = step /
steps_per_epoch) and `<log_dir>/preview/<run_name>.png` (log-scale LR axis with `--log_y`, by
default for `--schedule=step`; `--nolog_y` turns it off). It prints the step
arithmetic, the LR at its extremes, and the steps of every drop and restart.

    python -m experiments.preview --epochs=30 --compare=--schedule=step \
        --compare="--schedule=cosine_restarts --t0=5"

overlays several schedules: each `--compare` value is the command's other flags
plus its own (runner flags only), checked like a command line (a bad one is
`error: --compare: ...`, exit 2, nothing written); it writes
`<log_dir>/preview/compare.png` and `compare.csv` (`<run_name>.*` with `--run_name`),
one row per schedule and step: `compare,step,epoch,learning_rate`.

Steps per epoch need the number of training images; it comes from
`--train_size` if given, else `--train_subset`, else the number of images in
`--image_folder/train` (listed, not read), else 50,000 (CIFAR-10's training set).
"""

import copy
import csv
import os
import shlex

import numpy as np
from absl import app, flags

from experiments import cli
from experiments.runner import applied_lr
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
    if FLAGS.compare:
        return compare(FLAGS.compare)
    try:
        config = config_lib.build_config(FLAGS, train_size=FLAGS.train_size)
    except config_lib.FlagError as error:
        cli.fail(error)
    steps, values = evaluate(config)
    folder = cli.flag_folder(FLAGS, "preview_dir", "preview")
    base = os.path.join(folder, config.flags["run_name"])
    os.makedirs(folder, exist_ok=True)
    write_csv(base + ".csv", steps, values, config.steps_per_epoch)
    curve = (config.flags["run_name"], steps, values, config.steps_per_epoch)
    scale = plot(base + ".png", [curve], config.flags["run_name"], log_y([config]),
                 config.flags["epochs"], warmup_end=config.warmup_steps / config.steps_per_epoch)
    for line in describe(config, values):
        print(line)
    print(f"wrote {base}.csv and {base}.png ({scale} LR axis)")
    return 0


def compare(values):
    """--compare: each value's schedule (the command's flags plus its own) in one PNG and CSV."""
    configs = [(value or "(the command's flags)", _compare_config(value)) for value in values]
    curves = []
    for label, config in configs:
        steps, lrs = evaluate(config)
        curves.append((label, steps, lrs, config.steps_per_epoch))
        for line in describe(config, lrs):
            print(f"{label}: {line}")
    name = FLAGS.run_name if FLAGS["run_name"].present else "compare"
    folder = cli.flag_folder(FLAGS, "preview_dir", "preview")
    base = os.path.join(folder, name)
    os.makedirs(folder, exist_ok=True)
    write_compare_csv(base + ".csv", curves)
    scale = plot(base + ".png", curves, f"{len(curves)} schedules compared", log_y([c for _, c in configs]),
                 max(c.flags["epochs"] for _, c in configs))
    print(f"wrote {base}.csv and {base}.png ({scale} LR axis)")
    return 0


def _compare_config(value):
    """The `Config` of one --compare value; a bad one is `error: --compare: ...`, exit 2."""
    try:
        tokens = shlex.split(value)
    except ValueError as error:
        cli.fail(f"--compare: cannot split {value!r}: {error}")
    for token in tokens:
        if not token.startswith("--"):
            cli.fail(f"--compare: every part must be a --flag, received {token!r} in {value!r}")
        name = token[2:].split("=", 1)[0]
        if name in flag_defs.PREVIEW_FLAGS or name.removeprefix("no") in flag_defs.PREVIEW_FLAGS:
            cli.fail(f"--compare: takes the runner's flags only, received {token!r} in {value!r}")
    variant = copy.deepcopy(FLAGS)
    try:
        variant(["preview", *tokens])
        return config_lib.build_config(variant, train_size=variant.train_size)
    except (flags.Error, config_lib.FlagError) as error:
        cli.fail(f"--compare: {value!r}: {' '.join(str(error).split())}")


def log_y(configs):
    """--log_y, or by default: on when every schedule is --schedule=step (its drops are factors)."""
    if FLAGS.log_y is not None:
        return FLAGS.log_y
    return all(c.flags["schedule"] == "step" for c in configs)


def evaluate(config):
    """(steps, learning rates) of the run's schedule at every optimizer step."""
    from experiments.runner.schedules import build_schedule

    steps = np.arange(config.total_steps)
    return steps, applied_lr.evaluate(build_schedule(config), steps)


def write_csv(path, steps, values, steps_per_epoch):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "epoch", "learning_rate"])
        for step, value in zip(steps.tolist(), values):
            # str of a float32: the shortest text that reads back to the same float32.
            writer.writerow([step, repr(step / steps_per_epoch), str(value)])


def write_compare_csv(path, curves):
    """One row per schedule and step: ``compare,step,epoch,learning_rate`` (compare: the --compare value)."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["compare", "step", "epoch", "learning_rate"])
        for label, steps, values, steps_per_epoch in curves:
            for step, value in zip(steps.tolist(), values):
                writer.writerow([label, step, repr(step / steps_per_epoch), str(value)])


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
    jumps = applied_lr.jump_steps(config.flags, config.derived())
    for kind in ("drops", "restarts"):
        if jumps[kind]:
            lines.append(f"{kind} at steps " + ", ".join(
                f"{s} (epoch {s / config.steps_per_epoch:g}): {values[s]:.6g}" for s in jumps[kind]))
    if config.flags["plateau_patience"]:
        lines.append(f"plateau reductions (x{config.flags['plateau_factor']:g} after "
                     f"{config.flags['plateau_patience']} epochs without improvement of "
                     f"{config.flags['plateau_monitor']}) depend on training: not shown")
    return lines


def plot(path, curves, title, log_y, x_end, warmup_end=None):
    """One PNG of `curves` ``[(label, steps, values, steps_per_epoch)]`` overlaid, against epochs.

    Step s's LR holds from epoch s / steps_per_epoch to the next step (steps-post);
    a legend for more than one curve; x in [0, x_end]. Returns the y-scale.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    for label, steps, values, steps_per_epoch in curves:
        epochs = np.append(steps, steps[-1] + 1) / steps_per_epoch
        axes.plot(epochs, np.append(values, values[-1]), linewidth=1.2, drawstyle="steps-post",
                  label=label if len(curves) > 1 else None)
    if warmup_end:
        axes.axvline(warmup_end, color="grey", linestyle=":", label="end of warmup")
    if log_y:
        axes.set_yscale("log")
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize="small")
    axes.set_xlabel("epoch")
    axes.set_ylabel("learning rate" + (" (log scale)" if log_y else ""))
    axes.set_xlim(0, x_end)
    axes.set_title(title, fontsize=9)
    axes.grid(alpha=0.3, which="both" if log_y else "major")
    figure.savefig(path, dpi=110)
    return axes.get_yscale()


def run_command(argv):
    """In-process entry (tests): parse `argv` (program name first), run; returns the exit status."""
    return run.run_command(argv, entry=main)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)

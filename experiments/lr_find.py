"""The LR range test (Smith 2017): find a good initial learning rate in one short run.

    python -m experiments.lr_find --image_folder=PATH --train_subset=5000 [--model=simple_cnn]
        [--optimizer=sgd] [--batch_size=128] [--start_lr=1e-5] [--stop_lr=10] [--num_steps=200]
        [--log_dir=logs] [--run_name=lr_find] [--overwrite]

Trains a copy of the runner's model (same data pipeline, model, optimizer,
weight decay and batch size as `experiments.run`, from the same flags) for
`--num_steps` steps while the learning rate rises exponentially from
`--start_lr` to `--stop_lr` (named so because `--end_lr` is the runner's
flag for poly and linear decay):

    lr_i = start_lr * (stop_lr / start_lr) ** (i / (num_steps - 1)),  i = 0 .. num_steps - 1

and records each step's batch loss. The smoothed loss is the bias-corrected
exponential moving average

    avg_i = beta * avg_{i-1} + (1 - beta) * loss_i,  avg_{-1} = 0
    smoothed_i = avg_i / (1 - beta ** (i + 1))        (beta = --smoothing)

The default beta = 0.95 averages over about 20 steps, a third of a decade at
the default 200 steps over six decades; a longer average (0.98 is also common)
lags behind the falling loss and moves the minimum towards higher LRs.

The test stops early once the smoothed loss exceeds `--divergence_factor`
(default 4) times its minimum so far, or a loss is not finite.

Suggestion (printed, and saved in lr_find.json with the curve): the learning
rate at the minimum of the smoothed loss divided by 10 (fastai's `lr_min`
rule), a decade below the point where the loss stops improving, on the falling
part of the curve. The minimum-loss LR itself, which Smith reads as the largest
LR that still trains, is saved too (`experiments.suite` builds its LR sweep
around it). The steepest descent of the smoothed loss
(most negative slope against log lr, between the first tenth of the steps,
where the average rests on a handful of batches, and the minimum) is reported
too.

Writes `<log_dir>/<run_name>/lr_find.json` (`--run_name` default: lr_find),
`lr_find.csv` (step, learning_rate, loss, smoothed_loss) and `lr_find.png` (the
deprecated `--out` names that folder itself); refuses to replace them without
`--overwrite`. The model and optimizer the test starts from are not modified:
it trains a clone.

References:
    Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017.
    Howard & Gugger, "Fastai: A Layered API for Deep Learning", Information 2020.
"""

import csv
import dataclasses
import json
import math
import os

import numpy as np

from experiments import cli
from experiments.runner import backends
from experiments.runner import flags as runner_flags

DEFAULT_START_LR = 1e-5
DEFAULT_END_LR = 10.0
DEFAULT_NUM_STEPS = 200
DEFAULT_SMOOTHING = 0.95
DEFAULT_DIVERGENCE_FACTOR = 4.0
METHOD = "LR at the minimum of the smoothed loss divided by 10"
# The range test writes into <log_dir>/<SUBFOLDER> (another --run_name: that folder).
SUBFOLDER = "lr_find"
# Runner flags the range test does not use (it sweeps the LR itself).
UNUSED_RUNNER_FLAGS = (
    "schedule", "lr", "epochs", *runner_flags.ALL_SCHEDULE_FLAGS,
    "warmup_epochs", "warmup_start_lr", "lr_update",
    # The range test runs on one device at the LRs it sweeps.
    "strategy", "lr_scaling", "reference_batch_size",
)
# The runner flags lr_find.json records (under "flags"), as the run resolved them.
RECORDED_FLAGS = ("optimizer", "momentum", "nesterov", "weight_decay", "model", "batch_size", "train_subset",
                  "image_folder", "dataset", "augment", "seed", "precision")


@dataclasses.dataclass
class RangeTestResult:
    """The curve and the suggestion of an LR range test.

    Attributes:
        learning_rates, losses, smoothed_losses: one entry per step run.
        suggested_lr: the suggestion (`METHOD`).
        min_loss_lr: LR at the minimum of the smoothed loss.
        steepest_lr: LR of the most negative slope of the smoothed loss against
            log(lr), after the first tenth of the steps and up to the minimum
            (None with fewer than 3 such points).
        stop_reason: why the test ended.
    """

    learning_rates: list
    losses: list
    smoothed_losses: list
    suggested_lr: float
    min_loss_lr: float
    steepest_lr: float | None
    stop_reason: str

    @property
    def steps_run(self):
        return len(self.losses)


def exponential_lrs(start_lr, end_lr, num_steps):
    """The LR of each step: start_lr * (end_lr / start_lr) ** (i / (num_steps - 1))."""
    i = np.arange(num_steps, dtype=np.float64)
    return start_lr * (end_lr / start_lr) ** (i / (num_steps - 1))


def smooth(losses, beta):
    """Bias-corrected exponential moving average of `losses` (see module doc)."""
    out, avg = [], 0.0
    for i, loss in enumerate(losses):
        avg = beta * avg + (1 - beta) * loss
        out.append(avg / (1 - beta ** (i + 1)))
    return out


def suggest(learning_rates, smoothed):
    """(suggested_lr, min_loss_lr, steepest_lr) from a smoothed loss curve."""
    finite = [i for i, v in enumerate(smoothed) if math.isfinite(v)]
    if not finite:
        raise ValueError("suggest: smoothed must hold a finite loss, received none")
    best = min(finite, key=lambda i: smoothed[i])
    min_lr = float(learning_rates[best])
    steepest = None
    skip = len(smoothed) // 10  # the first averages rest on a handful of batches
    if best - skip >= 2:
        window = slice(skip, best + 1)
        slopes = np.gradient(np.asarray(smoothed[window]), np.log(np.asarray(learning_rates[window])))
        steepest = float(learning_rates[skip + int(np.argmin(slopes))])
    return min_lr / 10, min_lr, steepest


def _check(name, condition, value):
    if not condition:
        raise ValueError(f"range_test: {name} must be {value}")


def _clone_optimizer(template, learning_rate):
    while hasattr(template, "inner_optimizer"):  # a LossScaleOptimizer: compile wraps the clone again
        template = template.inner_optimizer
    config = template.get_config()
    config["learning_rate"] = learning_rate
    return template.__class__.from_config(config)


def range_test(model, dataset, optimizer=None, loss=None, start_lr=DEFAULT_START_LR, end_lr=DEFAULT_END_LR,
               num_steps=DEFAULT_NUM_STEPS, smoothing=DEFAULT_SMOOTHING,
               divergence_factor=DEFAULT_DIVERGENCE_FACTOR, jit_compile="auto"):
    """Runs the LR range test on a clone of `model`; `model` is left untouched.

    Args:
        model: a Keras model (compiled or not). Its weights, and its optimizer's
            state if it has one, are not changed: the test trains a clone with
            a new optimizer.
        dataset: an iterable of (x, y) batches; a `tf.data.Dataset` is repeated
            as needed.
        optimizer: a Keras optimizer used as a template (its class and
            settings, never its state); None: `model.optimizer`.
        loss: the loss; None: sparse categorical cross-entropy on logits (the runner's).
        start_lr, end_lr: the LR range, 0 < start_lr < end_lr.
        num_steps: steps from start_lr to end_lr, >= 3.
        smoothing: beta of the moving average, in [0, 1).
        divergence_factor: stop once the smoothed loss exceeds this times its minimum, > 1.
        jit_compile: passed to `compile`.

    Returns:
        A `RangeTestResult`.

    Raises:
        ValueError: for bad arguments, or when no loss was finite.
    """
    keras = backends.import_keras()

    _check("start_lr", 0 < start_lr < end_lr, f"in (0, end_lr), received start_lr={start_lr}, end_lr={end_lr}")
    _check("num_steps", isinstance(num_steps, int) and num_steps >= 3, f">= 3, received num_steps={num_steps}")
    _check("smoothing", 0 <= smoothing < 1, f"in [0, 1), received smoothing={smoothing}")
    _check("divergence_factor", divergence_factor > 1, f"> 1, received divergence_factor={divergence_factor}")
    template = optimizer if optimizer is not None else getattr(model, "optimizer", None)
    if template is None:
        raise ValueError("range_test: optimizer must be given when the model is not compiled, received None")
    schedule = keras.optimizers.schedules.ExponentialDecay(
        start_lr, decay_steps=num_steps - 1, decay_rate=end_lr / start_lr)
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    clone.compile(optimizer=_clone_optimizer(template, schedule),
                  loss=loss or keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=jit_compile)
    lrs = exponential_lrs(start_lr, end_lr, num_steps)
    losses, smoothed, avg, best = [], [], 0.0, math.inf
    stop_reason = f"reached the last LR, {end_lr:g}, after {num_steps} steps"
    batches = dataset.repeat() if hasattr(dataset, "repeat") else dataset
    for step, (x, y) in enumerate(batches):
        if step == num_steps:
            break
        value = float(clone.train_on_batch(x, y))
        losses.append(value)
        if not math.isfinite(value):
            smoothed.append(math.nan)
            stop_reason = f"loss not finite at step {step} (lr {lrs[step]:.3g})"
            break
        avg = smoothing * avg + (1 - smoothing) * value
        smoothed.append(avg / (1 - smoothing ** (step + 1)))
        best = min(best, smoothed[-1])
        if smoothed[-1] > divergence_factor * best:
            stop_reason = (f"smoothed loss above {divergence_factor:g}x its minimum at step {step} "
                           f"(lr {lrs[step]:.3g})")
            break
    else:
        if len(losses) < num_steps:
            stop_reason = f"dataset exhausted after {len(losses)} steps"
    suggested, min_lr, steepest = suggest(lrs[: len(smoothed)], smoothed)
    return RangeTestResult([float(v) for v in lrs[: len(losses)]], losses, smoothed, suggested, min_lr,
                           steepest, stop_reason)


def save(result, out_dir, extra=None):
    """Writes lr_find.json, lr_find.csv and lr_find.png into `out_dir`."""
    from experiments import plots

    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "lr_find.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "learning_rate", "loss", "smoothed_loss"])
        for i, row in enumerate(zip(result.learning_rates, result.losses, result.smoothed_losses)):
            writer.writerow([i] + [repr(v) for v in row])
    marks = [("suggested", result.suggested_lr), ("min loss", result.min_loss_lr)]
    if result.steepest_lr is not None:
        marks.append(("steepest", result.steepest_lr))
    plots.plot_lr_find(result.learning_rates, result.losses, result.smoothed_losses,
                       os.path.join(out_dir, "lr_find.png"), marks=marks)
    summary = {
        "suggested_lr": result.suggested_lr, "method": METHOD, "min_loss_lr": result.min_loss_lr,
        "steepest_lr": result.steepest_lr, "steps_run": result.steps_run, "stop_reason": result.stop_reason,
        **(extra or {}),
    }
    with open(os.path.join(out_dir, "lr_find.json"), "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    return summary


def describe(result):
    """The lines the command prints."""
    lines = [
        f"suggested LR: {result.suggested_lr:.3g} ({METHOD}: {result.min_loss_lr:.3g} / 10)",
        f"steepest descent of the smoothed loss at LR {result.steepest_lr:.3g}"
        if result.steepest_lr is not None else "steepest descent: too few steps to tell",
        f"{result.steps_run} steps; stopped: {result.stop_reason}",
    ]
    if result.min_loss_lr >= result.learning_rates[-1] and math.isfinite(result.smoothed_losses[-1]):
        lines.append("warning: the loss was still falling at the last LR; raise --stop_lr")
    return lines


# ----------------------------------------------------------------------------
# Command line: the runner's data, model and optimizer flags, plus the test's own.


def define_flags():
    from absl import flags

    # experiments.runner.flags (imported above) defines the runner's flags.

    if "start_lr" in flags.FLAGS:
        return
    flags.DEFINE_float("start_lr", DEFAULT_START_LR, "LR of the first step, > 0.")
    flags.DEFINE_float("stop_lr", DEFAULT_END_LR, "LR of the last step, > --start_lr "
                       "(not --end_lr: that is the runner's poly/linear flag).")
    flags.DEFINE_integer("num_steps", DEFAULT_NUM_STEPS, "Steps from --start_lr to --stop_lr, >= 3.")
    flags.DEFINE_float("smoothing", DEFAULT_SMOOTHING, "beta of the loss moving average, in [0, 1).")
    flags.DEFINE_float("divergence_factor", DEFAULT_DIVERGENCE_FACTOR,
                       "Stop once the smoothed loss exceeds this times its minimum, > 1.")
    flags.DEFINE_string("out", None, "Deprecated: the folder for lr_find.json, .csv and .png itself; "
                        f"use --log_dir (files go to <log_dir>/{SUBFOLDER}).")


def _epochs_of_batches(pipelines):
    """The runner's training batches, epoch after epoch (each epoch its own order)."""
    epoch = 0
    while True:
        pipelines.set_epoch(epoch)
        yield from pipelines.train
        epoch += 1


def main(argv):
    from absl import flags

    from experiments.runner import config as config_lib
    from experiments.runner import data

    FLAGS = flags.FLAGS
    if len(argv) > 1:
        cli.fail(f"unexpected arguments {argv[1:]}: every option is a --flag")
    for name in UNUSED_RUNNER_FLAGS:
        if FLAGS[name].present:
            cli.fail(f"--{name}: not used by lr_find (it sweeps the LR from --start_lr to --stop_lr)")
    if not (FLAGS.start_lr > 0 and FLAGS.stop_lr > FLAGS.start_lr):
        cli.fail(f"--start_lr: must be in (0, --stop_lr={FLAGS.stop_lr:g}), received {FLAGS.start_lr:g}")
    if FLAGS.num_steps < 3:
        cli.fail(f"--num_steps: must be >= 3, received {FLAGS.num_steps}")
    if not 0 <= FLAGS.smoothing < 1:
        cli.fail(f"--smoothing: must be in [0, 1), received {FLAGS.smoothing:g}")
    if not FLAGS.divergence_factor > 1:
        cli.fail(f"--divergence_factor: must be > 1, received {FLAGS.divergence_factor:g}")
    if FLAGS["run_name"].present and FLAGS["out"].present:
        cli.fail("--run_name: names the folder under --log_dir; it cannot be given with the deprecated --out")
    out = cli.flag_folder(FLAGS, "out", FLAGS.run_name if FLAGS["run_name"].present else SUBFOLDER)
    existing = [n for n in ("lr_find.json", "lr_find.csv", "lr_find.png") if os.path.exists(os.path.join(out, n))]
    if existing and not FLAGS.overwrite:
        cli.fail(f"--log_dir: {out} already holds {', '.join(existing)}; pass --overwrite to replace them")
    try:
        config = config_lib.build_config(FLAGS)
        arrays = data.load(config)
    except config_lib.FlagError as error:
        cli.fail(str(error))
    except data.DataError as error:
        cli.fail(f"--{'image_folder' if FLAGS.image_folder else 'data_dir'}: {error}")

    from experiments.runner import models, train

    train.set_up(config)
    coupled = config.flags["optimizer"] != "adamw"
    model = models.build(config.flags["model"], arrays.x_train.shape[1:], len(arrays.classes),
                         weight_decay=config.flags["weight_decay"] / 2 if coupled else 0.0)
    pipelines = data.make_datasets(arrays, config)
    jit = config.flags["jit_compile"]
    try:
        result = range_test(model, _epochs_of_batches(pipelines), optimizer=train.make_optimizer(config, FLAGS.start_lr),
                            start_lr=FLAGS.start_lr, end_lr=FLAGS.stop_lr, num_steps=FLAGS.num_steps,
                            smoothing=FLAGS.smoothing, divergence_factor=FLAGS.divergence_factor,
                            jit_compile="auto" if jit is None else jit)
    except ValueError as error:  # no finite loss at all
        cli.fail(f"--start_lr: {error}; lower --start_lr={FLAGS.start_lr:g}")
    extra = {"start_lr": FLAGS.start_lr, "stop_lr": FLAGS.stop_lr, "num_steps": FLAGS.num_steps,
             "smoothing": FLAGS.smoothing, "divergence_factor": FLAGS.divergence_factor,
             "flags": {k: config.flags[k] for k in RECORDED_FLAGS}, "train_size": config.train_size,
             "steps_per_epoch": config.steps_per_epoch}
    save(result, out, extra)
    for line in describe(result):
        print(line)
    print(f"wrote {os.path.join(out, 'lr_find.json')}, lr_find.csv, lr_find.png")
    return 0


if __name__ == "__main__":
    from absl import app

    from experiments.runner import run

    define_flags()
    app.run(main, flags_parser=run.parse_flags)

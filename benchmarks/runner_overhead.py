"""Benchmark 3: what the runner's callbacks and logging cost per epoch.

Two ways of training the same model on the same data, in one process,
interleaved `--repeats` times (alternating which goes first):

* the runner, `experiments.run` called in-process (its flags, run directory,
  history.csv, backup, TensorBoard, learning-rate log, curves.png, summary.json);
* a minimal plain-Keras script: the same model (`experiments.runner.models.build`),
  optimizer and schedule, the same tf.data pipelines (`experiments.runner.data`), the
  same batch size, `model.fit(..., verbose=0)` with no callbacks.

The data is a temporary folder of links to `--train_images` training and
`--val_images` test images of `--image_folder` (stratified by class), so that
validation stays cheap on a CPU. Every run trains `--epochs` epochs (3 unless
given); the first (compilation, warm-up) is left out. An epoch's time is the
interval between two consecutive epoch ends, as seen by a timing callback
placed after all the runner's callbacks (so backups and logs written at an
epoch's end count), and in the same way for the plain script. Per pair: the
runner's median epoch time / the plain script's; target <= 1.03. On a noisy
machine that ratio spreads widely, so the time spent inside the runner's
callbacks (each hook timed) is printed too: the cost of the callbacks and
logging themselves, as a share of the epoch. Printed as Markdown with the
command that made them.

Runner flags (--batch_size, --model, --schedule, ...) apply to both sides.

    python -m benchmarks.runner_overhead --image_folder=PATH/cifar10
"""

import contextlib
import io
import os
import shlex
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from experiments import cli  # noqa: E402
from experiments.runner import config as config_lib  # noqa: E402
from experiments.runner import data, run  # noqa: E402
from experiments.runner import flags as runner_flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("train_images", 2000, "Training images linked into the temporary folder.")
flags.DEFINE_integer("val_images", 500, "Test images linked into the temporary folder.")
flags.DEFINE_integer("repeats", 5, "Interleaved pairs (runner run, plain run).")

# Flags the benchmark sets itself on the runner's command line.
_OWN = ("image_folder", "train_subset", "log_dir", "run_name", "overwrite", "epochs")


def link_subset(source, destination, train_images, val_images, seed):
    """Links a stratified subset of `source`'s images into `destination`; returns it."""
    folder = data.list_image_folder(source)
    for split, files, labels, size in (
            ("train", folder.train_files, folder.train_labels, train_images),
            ("test", folder.test_files, folder.test_labels, val_images)):
        for index in data.subset_indices(labels, size, seed):
            target = os.path.join(destination, split, folder.classes[labels[index]])
            os.makedirs(target, exist_ok=True)
            os.symlink(os.path.abspath(files[index]),
                       os.path.join(target, os.path.basename(files[index])))
    return destination


class EpochClock(keras.callbacks.Callback):
    """Records each epoch's end, and the time spent in other callbacks' hooks per epoch.

    `time_hooks(callback)` wraps that callback's per-epoch and per-batch hooks;
    the time inside them is summed per epoch (an epoch's hooks run between the
    previous epoch's end and this one's, this clock coming last).
    """

    HOOKS = ("on_epoch_begin", "on_epoch_end", "on_train_batch_begin", "on_train_batch_end",
             "on_test_begin", "on_test_end", "on_test_batch_begin", "on_test_batch_end")

    def __init__(self):
        super().__init__()
        self.ends = []
        self.hook_seconds = []  # Per epoch: {callback class: seconds in its hooks}.
        self._in_hooks = {}

    def time_hooks(self, callback):
        for name in self.HOOKS:
            method = getattr(callback, name)
            # Keras marks the hooks a callback leaves as they are (`_is_default`) and
            # dispatches batch ends asynchronously only if no callback overrides them:
            # wrapping those would change what is measured. They do nothing anyway.
            if not getattr(method, "_is_default", False):
                setattr(callback, name, self._timed(type(callback).__name__, method))

    def _timed(self, owner, method):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self._in_hooks[owner] = (self._in_hooks.get(owner, 0.0)
                                         + time.perf_counter() - start)

        return timed

    def on_epoch_end(self, epoch, logs=None):
        self.ends.append(time.perf_counter())
        self.hook_seconds.append(self._in_hooks)
        self._in_hooks = {}


def epoch_seconds(clock):
    """Seconds of each epoch after the first (interval between epoch ends)."""
    return list(np.diff(clock.ends))


@contextlib.contextmanager
def clock_appended_to_fit(clock):
    """Inside: every `keras.Model.fit` call gets `clock` last, timing the other callbacks."""
    original = keras.Model.fit

    def fit(self, *args, callbacks=None, **kwargs):
        callbacks = list(callbacks or [])
        for callback in callbacks:
            clock.time_hooks(callback)
        return original(self, *args, callbacks=[*callbacks, clock], **kwargs)

    keras.Model.fit = fit
    try:
        yield
    finally:
        keras.Model.fit = original


def runner_run(argv, log_dir, name):
    """(epoch seconds, wall seconds, callback seconds per epoch) of one `experiments.run` call."""
    clock = EpochClock()
    start = time.perf_counter()
    with clock_appended_to_fit(clock), contextlib.redirect_stdout(io.StringIO()) as printed:
        status = run.run_command(["experiments.run", *argv, f"--log_dir={log_dir}",
                                  f"--run_name={name}"])
    wall = time.perf_counter() - start
    if status != 0:
        raise RuntimeError(f"experiments.run exited with {status}:\n{printed.getvalue()[-2000:]}")
    return epoch_seconds(clock), wall, clock.hook_seconds[1:]


def plain_keras_run(argv):
    """(epoch seconds, wall seconds) of the minimal plain-Keras script."""
    start = time.perf_counter()
    run.parse_flags(["plain", *argv])
    config = config_lib.build_config(runner_flags.FLAGS)
    arrays = data.load(config)
    seconds = plain_keras_fit(config, arrays)
    return seconds, time.perf_counter() - start, None


def plain_keras_fit(config, arrays):
    from experiments.runner import models
    from experiments.runner.schedules import build_schedule
    from experiments.runner.train import make_optimizer

    keras.utils.set_random_seed(config.flags["seed"])
    l2 = config.flags["weight_decay"] / 2 if config.flags["optimizer"] != "adamw" else 0.0
    model = models.build(config.flags["model"], arrays.x_train.shape[1:], len(arrays.classes),
                         weight_decay=l2)
    model.compile(optimizer=make_optimizer(config, build_schedule(config)),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    pipelines = data.make_datasets(arrays, config)
    clock = EpochClock()
    model.fit(pipelines.train, validation_data=pipelines.val, epochs=config.flags["epochs"],
              verbose=0, callbacks=[clock], shuffle=False)
    return epoch_seconds(clock)


def forwarded_flags():
    """The runner flags given on this command line, minus those the benchmark sets."""
    return [FLAGS[name].serialize() for name in runner_flags.RUNNER_FLAGS
            if FLAGS[name].present and name not in _OWN]


def main(argv):
    if len(argv) > 1:
        cli.fail(f"unexpected arguments {argv[1:]}: every option is a --flag")
    source, epochs, repeats = FLAGS.image_folder, FLAGS.epochs, FLAGS.repeats
    train_images, val_images, seed = FLAGS.train_images, FLAGS.val_images, FLAGS.seed
    if source is None:
        cli.fail("--image_folder: required (a train/<class>/*, test/<class>/* folder)")
    if not FLAGS["epochs"].present:
        epochs = 3  # Not the runner's 100.
    for name, value, low in (("epochs", epochs, 2), ("repeats", repeats, 1),
                             ("train_images", train_images, 1), ("val_images", val_images, 1)):
        if value < low:
            cli.fail(f"--{name}: must be >= {low}, received {value}")
    command = shlex.join(sys.argv[1:])
    forwarded = forwarded_flags()
    with tempfile.TemporaryDirectory(prefix="runner_overhead_") as tmp:
        try:
            folder = link_subset(source, os.path.join(tmp, "images"), train_images, val_images,
                                 seed)
        except (data.DataError, ValueError) as error:
            cli.fail(f"--image_folder: {error}")
        argv = [f"--image_folder={folder}", f"--epochs={epochs}", *forwarded]
        results = {"runner": [], "plain": []}
        for repeat in range(repeats):
            order = ("plain", "runner") if repeat % 2 else ("runner", "plain")
            for kind in order:
                if kind == "runner":
                    results[kind].append(runner_run(argv, os.path.join(tmp, "logs"),
                                                    f"r{repeat}"))
                else:
                    results[kind].append(plain_keras_run(argv))
    report(command, forwarded, epochs, repeats, train_images, val_images, results)


def report(command, forwarded, epochs, repeats, train_images, val_images, results):
    medians = {k: [statistics.median(r[0]) for r in v] for k, v in results.items()}
    walls = {k: [r[1] for r in v] for k, v in results.items()}
    per_epoch = [epochs for r in results["runner"] for epochs in r[2]]
    hooks = [statistics.median(sum(e.values()) for e in r[2]) for r in results["runner"]]
    ratios = [r / p for r, p in zip(medians["runner"], medians["plain"])]
    wall_ratios = [r / p for r, p in zip(walls["runner"], walls["plain"])]
    shares = [h / e for h, e in zip(hooks, medians["runner"])]
    print("command: python -m benchmarks.runner_overhead " + command)
    print(f"machine: {os.cpu_count()} CPU cores; keras {keras.__version__}, "
          f"backend {keras.backend.backend()}")
    print(f"data: {train_images:,} training, {val_images:,} validation images; "
          f"{epochs} epochs per run, the first left out; runner flags: "
          f"{' '.join(forwarded) or '(defaults)'}\n")
    print(f"| min / median / max over {repeats} interleaved pairs | runner | plain Keras | ratio |")
    print("|---|---|---|---|")
    print(f"| median epoch seconds | {spread(medians['runner'])} | {spread(medians['plain'])} "
          f"| {spread(ratios, 3)} |")
    print(f"| whole run seconds (start-up, decode, compile, files) | {spread(walls['runner'])} "
          f"| {spread(walls['plain'])} | {spread(wall_ratios, 3)} |")
    print(f"| seconds per epoch inside the runner's callbacks | {spread(hooks, 3)} | none "
          f"| {spread(shares, 4)} of the runner's epoch |")
    for owner in sorted({name for epoch in per_epoch for name in epoch}):
        seconds = [epoch.get(owner, 0.0) for epoch in per_epoch]
        print(f"| of which {owner} (min / median / max over epochs) | {spread(seconds, 3)} | | |")
    print(f"\nrunner / plain Keras epoch time: min {min(ratios):.3f}, median "
          f"{statistics.median(ratios):.3f}, max {max(ratios):.3f} (target <= 1.03)")


def spread(values, digits=2):
    return " / ".join(f"{v:.{digits}f}" for v in
                      (min(values), statistics.median(values), max(values)))


if __name__ == "__main__":
    app.run(main, flags_parser=run.parse_flags)

"""Benchmark 2: is the runner's input pipeline ever the bottleneck?

The runner's data path (`experiments.runner.data`) has two stages:

1. Decode pass, once per run: every image the run uses (training images, or
   the `--train_subset`, and the test split) is read and decoded into uint8
   arrays in memory (`data.load`, Pillow in threads). This is the "cache":
   later epochs never touch the files again.
2. Per epoch (`data.make_datasets`): a seeded permutation, batching, gather,
   augmentation of whole batches (pad + random crop, flip), normalisation,
   prefetch, all in tf.data.

Measured, and printed as Markdown with the command that made them:

* the decode pass in images/s;
* the training pipeline alone in images/s, after one full warm-up epoch:
  `--repeats` timings of `--batches` batches each (min / median / max), with
  augmentation and without (what augmentation costs);
* the rate the model consumes images: the runner's model and optimizer
  (`experiments.runner.train.build_model`) trained by `model.fit` (no callbacks) on
  `--model_steps` copies of one synthetic batch per timing, with XLA and
  without (without is Keras's choice on a CPU-only machine, the runner's
  default);
* the ratio pipeline / the faster model rate (target >= 3);
* end to end: `model.fit` on the real pipeline against `model.fit` on one
  in-memory synthetic batch repeated, interleaved pairs of `--model_steps`
  steps: the time ratio shows directly whether training waits for data.

Where TensorFlow is not installed (the GPU machine runs Keras on JAX), the
tf.data measurements say "skipped" and the rest is measured: the model rate
on the Keras backend in use (XLA only: JAX always compiles).

Every flag of the runner applies (--image_folder, --train_subset, --batch_size,
--model, --augment, --seed, ...); the pipeline is built from the runner's own
validated `Config`. On a CPU the model is slow: keep --model_steps small.

    python -m benchmarks.input_pipeline --image_folder=PATH/cifar10
"""

import dataclasses
import os
import shlex
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from experiments import cli  # noqa: E402
from experiments.runner import config as config_lib  # noqa: E402
from experiments.runner import data  # noqa: E402
from experiments.runner.flags import FLAGS  # noqa: E402  (defines the runner's flags)

flags.DEFINE_integer("batches", 200, "Batches per timing of the pipeline alone.")
flags.DEFINE_integer("model_steps", 10, "Train steps per timing of the model.")
flags.DEFINE_integer("repeats", 5, "Timings of each kind (and interleaved end-to-end pairs).")


def spread(values, digits=0):
    """`min / median / max` of `values`."""
    return " / ".join(f"{v:,.{digits}f}" for v in
                      (min(values), statistics.median(values), max(values)))


def runner_config():
    """The runner's validated Config from the command-line flags (exit 2 on a bad flag)."""
    try:
        return config_lib.build_config(FLAGS)
    except config_lib.FlagError as error:
        cli.fail(error)


def decode_pass(config):
    """(arrays, seconds) of the runner's `data.load` (exit 2 on unreadable data)."""
    start = time.perf_counter()
    try:
        arrays = data.load(config)
    except data.DataError as error:
        cli.fail(f"--image_folder: {error}")
    return arrays, time.perf_counter() - start


def pipeline_rates(arrays, config, batches, repeats):
    """Images/s of the training pipeline: `repeats` timings of `batches` batches."""
    pipelines = data.make_datasets(arrays, config)
    iterator = iter(pipelines.train.repeat())
    for _ in range(config.steps_per_epoch):  # Warm-up: one full epoch.
        next(iterator)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        images = sum(int(next(iterator)[0].shape[0]) for _ in range(batches))
        rates.append(images / (time.perf_counter() - start))
    return rates


def with_flags(config, **values):
    return dataclasses.replace(config, flags={**config.flags, **values})


def synthetic_batch(config, image_shape, classes):
    rng = np.random.default_rng(0)
    shape = (config.flags["batch_size"], *image_shape)
    return (rng.standard_normal(shape).astype("float32"),
            rng.integers(0, classes, shape[0]).astype("int32"))


def model_rates(model, x, y, steps, repeats):
    """Images/s of `model.fit` over `steps` copies of one batch: `repeats` timings.

    `fit` with no callbacks of ours, as a training loop runs: steps are
    dispatched without waiting for each other (no per-step read-back, which on
    a GPU would stall it); the epoch's end waits for the last one.
    """
    xs, ys = np.concatenate([x] * steps), np.concatenate([y] * steps)

    def fit():
        model.fit(xs, ys, batch_size=len(x), epochs=1, verbose=0, shuffle=False)

    fit()  # Compile and warm up.
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        fit()
        rates.append(len(xs) / (time.perf_counter() - start))
    return rates


def fit_seconds(model, dataset, steps):
    start = time.perf_counter()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    return time.perf_counter() - start


def end_to_end_ratios(model, pipeline, synthetic, steps, repeats):
    """fit time on the pipeline / on synthetic data, per interleaved pair."""
    fit_seconds(model, pipeline, 1)  # Compile and warm both inputs.
    fit_seconds(model, synthetic, 1)
    ratios = []
    for repeat in range(repeats):
        # Alternate which goes first, so that drift does not favour one.
        if repeat % 2:
            real = fit_seconds(model, pipeline, steps)
            fake = fit_seconds(model, synthetic, steps)
        else:
            fake = fit_seconds(model, synthetic, steps)
            real = fit_seconds(model, pipeline, steps)
        ratios.append(real / fake)
    return ratios


def tensorflow_missing(error):
    return isinstance(error, ModuleNotFoundError) and (error.name or "").startswith("tensorflow")


def folder_shape(config):
    """(image shape, classes) from the folder's listing and first image (no TensorFlow)."""
    from PIL import Image

    folder = data.list_image_folder(config.flags["image_folder"])
    with Image.open(folder.train_files[0]) as image:
        shape = np.asarray(image.convert("RGB")).shape
    return shape, len(folder.classes)


def main(argv):
    if len(argv) > 1:
        cli.fail(f"unexpected arguments {argv[1:]}: every option is a --flag")
    batches, steps, repeats = FLAGS.batches, FLAGS.model_steps, FLAGS.repeats
    for name, value in (("batches", batches), ("model_steps", steps), ("repeats", repeats)):
        if value < 1:
            cli.fail(f"--{name}: must be >= 1, received {value}")
    config = runner_config()
    result = {"batches": batches, "steps": steps, "repeats": repeats}
    arrays = None
    try:  # The decode pass and the pipeline are TensorFlow (tf.io, tf.data).
        loaded, result["decode_seconds"] = decode_pass(config)
        result["sizes"] = (len(loaded.y_train), len(loaded.y_test))
        result["augmented"] = pipeline_rates(loaded, config, batches, repeats)
        result["plain"] = pipeline_rates(loaded, with_flags(config, augment=False), batches,
                                         repeats)
        arrays = loaded
    except ModuleNotFoundError as error:
        if not tensorflow_missing(error):
            raise
    shape, classes = ((arrays.x_train.shape[1:], len(arrays.classes)) if arrays is not None
                      else folder_shape(config))

    import keras

    from experiments.runner import train

    train.set_up(config)
    x, y = synthetic_batch(config, shape, classes)
    # Without XLA only on TensorFlow (Keras's choice there on a CPU); JAX always compiles.
    choices = (True, False) if keras.backend.backend() == "tensorflow" else (True,)
    auto = train.build_model(with_flags(config, jit_compile=None), shape, classes)
    result["model"] = {}
    for jit in choices:
        model = auto if auto.jit_compile == jit else train.build_model(
            with_flags(config, jit_compile=jit), shape, classes)
        result["model"][jit] = model_rates(model, x, y, steps, repeats)
    if arrays is not None:
        import tensorflow as tf

        synthetic = tf.data.Dataset.from_tensors((x, y)).repeat().prefetch(tf.data.AUTOTUNE)
        pipeline = data.make_datasets(arrays, config).train.repeat()
        result["end_to_end"] = end_to_end_ratios(auto, pipeline, synthetic, steps, repeats)
    report(config, shape, result)


def report(config, shape, result):
    import keras

    try:
        import tensorflow as tf

        tf_version = tf.__version__
    except ModuleNotFoundError:
        tf_version = "not installed"
    repeats, steps, batches = result["repeats"], result["steps"], result["batches"]
    print("command: python -m benchmarks.input_pipeline " + shlex.join(sys.argv[1:]))
    print(f"machine: {os.cpu_count()} CPU cores; keras {keras.__version__}, "
          f"tensorflow {tf_version}, backend {keras.backend.backend()}")
    size = "x".join(map(str, shape))
    print(f"data: {size} images, batch {config.flags['batch_size']}, "
          f"model {config.flags['model']}")
    skipped = "skipped (TensorFlow: tf.io and tf.data; TensorFlow is not installed)"
    if "sizes" in result:
        train_size, test_size = result["sizes"]
        decoded = train_size + test_size
        print(f"decode pass (data.load: read, decode, stats; once per run): {train_size:,} "
              f"training + {test_size:,} test = {decoded:,} images in "
              f"{result['decode_seconds']:.1f} s = "
              f"{decoded / result['decode_seconds']:,.0f} images/s")
    else:
        print(f"decode pass: {skipped}")
    if "augmented" not in result:
        print(f"training pipeline: {skipped}")
    print()
    print(f"| images/s (min / median / max of {repeats}) | |")
    print("|---|---|")
    if "augmented" in result:
        print(f"| training pipeline, augmented ({batches} batches after a warm-up epoch) "
              f"| {spread(result['augmented'])} |")
        print(f"| training pipeline, no augmentation | {spread(result['plain'])} |")
    model = result["model"]
    print(f"| model training, XLA (fit over {steps} batches) | {spread(model[True])} |")
    if False in model:
        print(f"| model training, no XLA (Keras's choice on CPU) | {spread(model[False])} |")
    if "augmented" in result:
        fastest = max(statistics.median(rates) for rates in model.values())
        print(f"\npipeline / faster model rate (medians): "
              f"{statistics.median(result['augmented']) / fastest:,.1f}x (target >= 3x)")
        ratios = result["end_to_end"]
        print(f"end to end, fit on the pipeline / fit on one synthetic batch, time of {steps} "
              f"steps (jit_compile auto), {repeats} interleaved pairs: min {min(ratios):.3f}, "
              f"median {statistics.median(ratios):.3f}, max {max(ratios):.3f}")


if __name__ == "__main__":
    app.run(main)

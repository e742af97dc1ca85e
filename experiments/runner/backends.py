"""The runner on Keras backends: TensorFlow, or JAX with no TensorFlow in the process.

On `KERAS_BACKEND=jax` the runner trains, records and resumes exactly as on
TensorFlow (history.csv, learning_rate.csv, summary.json, curves.png, backup/,
divergence), with the input path of `experiments.runner.data_jax` (images on the
device, augmentation in jit-compiled keras.ops) and without importing
TensorFlow. The TensorFlow-only parts are left out, each announced once on
stdout and listed in config.json under "skipped":

    tensorboard/          keras.callbacks.TensorBoard and LearningRateLogger's
                          learning_rate scalar write tf.summary event files
    --deterministic       tf.config.experimental.enable_op_determinism

and two are errors (exit status 2, nothing read or written): `--dataset` (it
reads tensorflow-datasets; pass `--image_folder`) and `--strategy` other than
default (tf.distribute; see `experiments.runner.distribute`).

This module imports Keras only when a function is called, so that importing
it stays cheap (`experiments.run` parses and checks its flags first).
"""

import platform
import sys

from experiments import cli
from experiments.runner.config import FlagError

BACKENDS = ("tensorflow", "jax")


def name():
    """Keras's backend: "tensorflow", "jax", ..."""
    import keras

    return keras.backend.backend()


def uses_tensorflow():
    """Whether Keras runs on TensorFlow (else JAX: no TensorFlow is imported)."""
    return name() == "tensorflow"


def prepare(config):
    """Checks the flags against the backend; on JAX keeps TensorFlow out, says what is skipped.

    On JAX, Keras is told that TensorFlow is not installed (`keep_out_tensorflow`):
    where it is, Keras would otherwise import it (seconds, hundreds of MB)
    only to probe for it.

    Raises:
        FlagError: a flag that needs TensorFlow (before anything is read or written).
    """
    backend = name()
    if backend not in BACKENDS:
        cli.fail(f"KERAS_BACKEND={backend}: the runner runs on the "
                 f"{' and '.join(BACKENDS)} backends")
    if backend == "tensorflow":
        return
    keep_out_tensorflow()
    if config.flags["dataset"] is not None:
        raise FlagError("dataset", f"reads tensorflow-datasets, which needs TensorFlow; on the "
                        f"{backend} backend pass --image_folder=PATH (PATH/train/<class>/*, "
                        "PATH/test/<class>/*) instead")
    strategy = config.flags["strategy"]
    if strategy != "default":
        raise FlagError("strategy", f"{strategy} is tf.distribute, which needs TensorFlow; on "
                        f"the {backend} backend the runner trains on one device (--strategy="
                        "default), else set KERAS_BACKEND=tensorflow")
    for part, reason in skipped(config).items():
        print(f"skipped on the {backend} backend: {part}: {reason}", flush=True)


def keep_out_tensorflow():
    """Makes Keras treat TensorFlow as not installed in this process (unless it is imported).

    Keras imports TensorFlow, where it is installed, only to probe for it:
    `keras.utils.set_random_seed` seeds it, `keras.saving.serialize_keras_object`
    checks for its types. Both ask one lazy module (a private Keras object, so
    this is checked by tests/test_experiments/test_runner_on_jax.py on a machine that has
    TensorFlow); its "not installed" answer is what a machine without
    TensorFlow gives. Python's import system is left alone: libraries that only
    look for TensorFlow (`importlib.util.find_spec`) still see it.
    """
    from keras.src.utils import module_utils

    if "tensorflow" not in sys.modules:
        module_utils.tensorflow._available = False


def skipped(config):
    """{part: why} of the TensorFlow-only parts this run leaves out ({} on TensorFlow)."""
    if uses_tensorflow():
        return {}
    parts = {"tensorboard/": "keras.callbacks.TensorBoard and the learning_rate scalar write "
             "TensorFlow event files (tf.summary); history.csv and learning_rate.csv hold the "
             "same values"}
    if config.flags["deterministic"]:
        parts["--deterministic"] = ("tf.config.experimental.enable_op_determinism is "
                                    "TensorFlow's; repeated runs are not guaranteed to agree "
                                    "bit for bit")
    return parts


def environment():
    """config.json's "environment" on JAX (TensorFlow's is `experiments.runner.train.environment`)."""
    import jax
    import keras

    return {"keras": keras.__version__, "tensorflow": None, "backend": keras.backend.backend(),
            "jax": jax.__version__, "devices": [str(d) for d in jax.devices()],
            "python": platform.python_version()}


def make_datasets(arrays, config):
    """The training and validation batches: tf.data on TensorFlow, else `data_jax`."""
    if uses_tensorflow():
        from experiments.runner import data

        return data.make_datasets(arrays, config)
    from experiments.runner import data_jax

    return data_jax.make_datasets(arrays, config)

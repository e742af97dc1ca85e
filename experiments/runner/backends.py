"""The runner on Keras backends: TensorFlow, or JAX with no TensorFlow in the process.

On `KERAS_BACKEND=jax` the runner trains, records and resumes exactly as on
TensorFlow (history.csv, learning_rate.csv, summary.json, curves.png, backup/,
divergence), with the input path of `experiments.runner.data_jax` (images on the
device, augmentation in jit-compiled keras.ops) and without importing
TensorFlow. The TensorFlow-only parts are left out, each announced once on
stdout and listed in config.json under "skipped":

    tensorboard/          keras.callbacks.TensorBoard, LearningRateLogger's
                          learning_rate scalars and `experiments.runner.hparams`
                          write tf.summary event files
    --deterministic       tf.config.experimental.enable_op_determinism

and two are errors (exit status 2, nothing read or written): `--dataset` (it
reads tensorflow-datasets; pass `--image_folder`) and `--strategy` other than
default (tf.distribute; see `experiments.runner.distribute`).

This module imports Keras only when a function is called, so that importing
it stays cheap (`experiments.run` parses and checks its flags first). That
first import (`name`, with TensorFlow on its backend) is where TensorFlow's C++
start-up lines come, on stderr, even with TF_CPP_MIN_LOG_LEVEL=3 (TF 2.21:
`python -c "import tensorflow"`): unless the user set TF_CPP_MIN_LOG_LEVEL,
`quiet_tensorflow_start` drops those it knows (`START_UP_NOISE`) and passes
every other line on.
"""

import contextlib
import glob
import os
import platform
import re
import sys
import tempfile

from experiments import cli
from experiments.runner.config import FlagError

BACKENDS = ("tensorflow", "jax")


# TensorFlow's start-up lines on stderr that say nothing about the run: absl's note, oneDNN,
# the CPU-instructions notice (two lines), CUDA/cuDNN/cuFFT/cuBLAS/TensorRT registration.
START_UP_NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IWE]\d{4} [\d:. ]+ +\d+ (port\.cc:\d+\] oneDNN custom operations are on"
    r"|cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized"
    r"|cuda_(dnn|fft|blas)\.cc:\d+\] Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation_placer\.cc:\d+\] computation placer already registered"
    r"|\S+\.cc:\d+\] TF-TRT Warning: Could not find TensorRT)"
    r"|To enable the following instructions: .*rebuild TensorFlow with the appropriate "
    r"compiler flags\.")
# ... and, on a machine without an NVIDIA device, the CUDA driver's absence.
NO_GPU_NOISE = re.compile(
    r"[IWE]\d{4} [\d:. ]+ +\d+ (cudart_stub\.cc:\d+\] Could not find cuda drivers"
    r"|cuda_platform\.cc:\d+\] failed call to cuInit)")


def name():
    """Keras's backend: "tensorflow", "jax", ..."""
    return import_keras().backend.backend()


def import_keras():
    """`keras`, its first import (and TensorFlow's) in `quiet_tensorflow_start`: every command's
    first `import keras` goes through here (the runner's, the report's figures, lr_find)."""
    with quiet_tensorflow_start():
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")  # the CUDA driver's lines come now, not later
    return keras


@contextlib.contextmanager
def quiet_tensorflow_start():
    """Around the first `import keras`: stderr (fd 2) without TensorFlow's start-up noise.

    What the block writes to fd 2 goes to a temporary file; afterwards every line
    but `START_UP_NOISE` (and `NO_GPU_NOISE` where no /dev/nvidia<N> exists) is
    written to stderr. Nothing is filtered when the user set TF_CPP_MIN_LOG_LEVEL
    or Keras is already imported.
    """
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ or "keras" in sys.modules:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = without_start_up_noise(captured.read().decode(errors="replace"),
                                          gpu=bool(glob.glob("/dev/nvidia[0-9]*")))
            if kept:
                os.write(2, kept.encode())


def without_start_up_noise(text, gpu):
    """`text` without its lines of TensorFlow's start-up noise (`gpu`: keep the CUDA driver's)."""
    def noise(line):
        return bool(START_UP_NOISE.match(line) or (not gpu and NO_GPU_NOISE.match(line)))

    return "".join(line for line in text.splitlines(keepends=True) if not noise(line.rstrip("\n")))


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
    parts = {"tensorboard/": "keras.callbacks.TensorBoard, the learning_rate scalars and the "
             "HParams write TensorFlow event files (tf.summary); history.csv, learning_rate.csv, "
             "config.json and summary.json hold the same values"}
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

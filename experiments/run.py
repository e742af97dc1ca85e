"""Train a CNN on CIFAR-10 (or any image folder) with a kschedules schedule.

    python -m experiments.run --schedule=poly --power=0.5 --epochs=30

flags -> config (every flag checked; nothing read or written before) -> run
directory state (finished: say so and exit 0; other flags: error) -> strategy
(--strategy other than default: `experiments.distribute`) -> data -> model ->
fit (resumes from <run>/backup) -> curves.png + summary.json. Only the chief of
a multi-worker run writes the run directory; the other workers write into
temporary directories that are removed.
On KERAS_BACKEND=jax the runner imports no TensorFlow: `experiments.backends`
says what it skips and `experiments.data_jax` is its input path.
See `experiments.flags` for the flags, `experiments.rundir` for the outputs.
A bad flag prints one line `error: --flag: reason` and exits with status 2.
"""

import contextlib
import dataclasses
import re
import time

from absl import app
from absl import flags as absl_flags

from experiments import config as config_lib
from experiments import backends, data, rundir
from experiments import flags as flag_defs
from experiments.flags import FLAGS

absl_flags.adopt_module_key_flags(flag_defs)  # --help lists the runner's flags


def main(argv):
    """Runs the command; `argv[1:]` must be empty (everything is a flag)."""
    started = time.perf_counter()
    if len(argv) > 1:
        config_lib.fail(f"unexpected arguments {argv[1:]}: every option is a --flag")
    config = _checked(config_lib.build_config, FLAGS)
    status = _checked(rundir.state, config)
    if status == "complete":
        print(f"{config.run_dir} is complete (summary.json exists); nothing to do "
              "(pass --overwrite to run it again)")
        return 0
    _checked(backends.prepare, config)  # JAX: TensorFlow-only flags, what is skipped
    config, distribution = _checked(_distribute, config, status)
    arrays = _load(config)
    config = dataclasses.replace(config, val_size=len(arrays.y_test))
    first_epoch = _train(config, arrays, status, distribution)
    if distribution is not None and not distribution.is_chief:
        print(f"{distribution.task} done; the chief writes {config.run_dir}")
        return 0
    summary = rundir.finish(config, first_epoch, time.perf_counter() - started)
    print(f"{summary['status']}: best val_accuracy {summary['best_val_accuracy']} at epoch "
          f"{summary['best_epoch']}, final {summary['final_val_accuracy']}; {config.run_dir}")
    return 0


def _train(config, arrays, status, distribution):
    """Builds, records config.json, fits; returns the first epoch trained (None: none left)."""
    from experiments import train  # Keras and TensorFlow only from here on

    train.set_up(config)
    with distribution.strategy.scope() if distribution else contextlib.nullcontext():
        model = train.build_model(config, arrays.x_train.shape[1:], len(arrays.classes))
    if distribution is None or distribution.is_chief:
        rundir.create(config, _record(config, arrays, train))
    print(f"run {config.run_dir} ({status}): {config.train_size} training images, "
          f"{config.val_size} test images, {config.steps_per_epoch} steps per epoch"
          + _batch_text(config, distribution))
    # Diverged, then killed: finish it only.
    if status == "resume" and rundir.diverged_epoch(config) is not None:
        return None
    pipelines = backends.make_datasets(arrays, config)
    if distribution is None:
        return train.fit(config, model, pipelines, config.run_dir).first_epoch
    from experiments import distribute

    return distribute.fit(distribution, config, model, pipelines, status).first_epoch


def _distribute(config, status):
    """Starts --strategy: (config with its replica counts, `Distribution` or None)."""
    if config.flags["strategy"] == "default":
        return config, None
    from experiments import distribute  # TensorFlow from here on

    distribution = distribute.create(config)
    distribute.check_agreement(distribution, config, status)
    return dataclasses.replace(config, num_replicas=distribution.num_replicas,
                               num_workers=distribution.num_workers), distribution


def _batch_text(config, distribution):
    if distribution is None:
        return ""
    text = (f", global batch {config.flags['batch_size']} = {config.num_replicas} replicas x "
            f"{config.flags['batch_size'] // config.num_replicas}")
    if distribution.num_workers > 1:
        text += (f" on {distribution.num_workers} workers (this process: {distribution.task}"
                 f"{', the chief' if distribution.is_chief else ''})")
    return text


def _checked(function, *args):
    """`function(*args)`, a FlagError becoming `error: --flag: reason` and exit status 2."""
    try:
        return function(*args)
    except config_lib.FlagError as error:
        config_lib.fail(error)


def _load(config):
    flag = "image_folder" if config.flags["image_folder"] is not None else "data_dir"
    try:
        arrays = data.load(config)
    except data.DataError as error:
        config_lib.fail(f"--{flag}: {error}")
    if len(arrays.y_train) != config.train_size:
        config_lib.fail(f"--{flag}: {len(arrays.y_train)} training images read, "
                        f"{config.train_size} expected")
    return arrays


def _record(config, arrays, train):
    from experiments.schedules import build_schedule
    import keras

    derived = {**config.derived(),
               "schedule": keras.saving.serialize_keras_object(build_schedule(config)),
               "classes": list(arrays.classes), "image_shape": list(arrays.x_train.shape[1:]),
               "normalization": {"mean": list(arrays.mean), "std": list(arrays.std),
                                 "source": "training images in use"}}
    return {"flags": config.flags, "derived": derived, "environment": train.environment(),
            "skipped": backends.skipped(config),
            "command_line": list(config.command_line)}


def parse_flags(argv):
    """absl's flags_parser: a bad flag -> `error: --flag: reason`, exit status 2."""
    try:
        return FLAGS(argv)
    except absl_flags.Error as error:
        config_lib.fail(_flag_error_text(error))


def _flag_error_text(error):
    if isinstance(error, absl_flags.UnrecognizedFlagError):
        return f"--{error.flagname}: unknown flag"
    text = " ".join(str(error).split())
    match = re.match(r"flag --(\w+)=(.*?): (.*)$", text)
    if match:
        return f"--{match[1]}: {match[3]} (received {match[2]!r})"
    return text


def run_command(argv, entry=None):
    """In-process entry (tests): parse `argv` (program name first), run; returns the exit status.

    `entry` is the program's `main` (default: this module's; `experiments.preview` passes its own).
    """
    FLAGS.unparse_flags()
    try:
        return (entry or main)(parse_flags(list(argv)))
    except SystemExit as exit_:
        return exit_.code


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)

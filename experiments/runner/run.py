"""The runner: a run's steps, in order (the command is `python -m experiments.run`).

How a run goes: flags -> config (every flag checked; nothing read or written
before) -> the run's lock (`experiments.runner.runlock`; also the probe that --log_dir
is writable) -> run directory state (finished: say so and exit 0; other flags
or damaged files: error; resuming: the files checked against the backup) ->
strategy (--strategy other than default: `experiments.runner.distribute`) -> data ->
model -> fit (resumes from <run>/backup) -> curves.png + summary.json. Only the
chief of a multi-worker run takes the lock and writes the run directory; the
other workers write into temporary directories that are removed. On
KERAS_BACKEND=jax the runner imports no TensorFlow: `experiments.runner.backends` says
what it skips and `experiments.runner.data_jax` is its input path. A run directory in
use or damaged is also a one-line error (exit 2); SIGTERM and SIGINT stop at the
next safe point (`experiments.runner.stopping`) with one line saying how to resume,
exit status 128 + the signal; a full disk, one line and exit status 1.
"""
import contextlib
import dataclasses
import errno
import os
import re
import sys
import time

from absl import flags as absl_flags

from experiments import cli
from experiments.runner import config as config_lib
from experiments.runner import backends, data, rundir, runlock, stopping
from experiments.runner.flags import FLAGS

# Writes that fail for want of room: a disk (or a quota) is full.
_NO_ROOM = (errno.ENOSPC, errno.EDQUOT)
# Set when h5py failed in mid-write: it may crash the interpreter's normal exit.
_exit_at_once = False


def main(argv):
    """Runs the command; `argv[1:]` must be empty (everything is a flag)."""
    started = time.perf_counter()
    if len(argv) > 1:
        cli.fail(f"unexpected arguments {argv[1:]}: every option is a --flag")
    config = _checked(config_lib.build_config, FLAGS)
    with stopping.handling(), _checked(_lock, config) as lock:
        try:
            return _run(config, started, writes=lock is not None)
        except stopping.Interrupted as stop:
            print(f"interrupted by {stop.name}: {_resume_text(config)}", file=sys.stderr)
            return stop.exit_status
        except rundir.RunDirDamaged as error:
            cli.fail(f"--run_name: {error}")
        except OSError as error:
            if error.errno not in _NO_ROOM:
                raise
            return _no_room(config, error)


def _no_room(config, error):
    """One line for a full disk (the backup in use is the last complete one); exit status 1."""
    global _exit_at_once
    _exit_at_once = getattr(error, "h5py_write_failed", False)
    print(f"error: no space left on {config.flags['log_dir']} (writing "
          f"{error.filename or 'the run directory'}); "
          f"{_resume_text(config, 'when there is room')}", file=sys.stderr)
    return 1


def _run(config, started, writes):
    """From the run directory's state to the summary; `writes`: this process holds the lock."""
    status = _checked(rundir.state, config)
    if status == "complete":
        removed = _checked(rundir.clean_finished, config)
        print(f"{config.run_dir} is complete (summary.json exists); nothing to do "
              "(pass --overwrite to run it again)"
              + ("; removed the backup/ its last attempt left" if removed else ""))
        return 0
    if status == "resume" and writes:
        _checked(runlock.check_writable, config.run_dir, "run_name")
    first_epoch = _checked(rundir.check_resume, config) if status == "resume" else 0
    _checked(backends.prepare, config)  # JAX: TensorFlow-only flags, what is skipped
    config, distribution = _checked(_distribute, config, status)
    stopping.check()
    arrays = _load(config)
    config = dataclasses.replace(config, val_size=len(arrays.y_test))
    stopping.check()
    first_epoch = _train(config, arrays, status, distribution, first_epoch)
    if distribution is not None and not distribution.is_chief:
        print(f"{distribution.task} done; the chief writes {config.run_dir}")
        return 0
    summary = rundir.finish(config, first_epoch, time.perf_counter() - started)
    print(f"{summary_line(summary, config.flags['epochs'])}; {config.run_dir}")
    return 0


def summary_line(summary, epochs):
    """`completed: best val_accuracy 0.4884 at epoch 9/10, final 0.4884` (epochs from 1, as
    on the epoch lines; summary.json's best_epoch counts from 0 like history.csv)."""
    def acc(value):
        return "none" if value is None else f"{value:.4f}"

    best = ("no finite val_accuracy" if summary["best_epoch"] is None else
            f"best val_accuracy {acc(summary['best_val_accuracy'])} at epoch "
            f"{summary['best_epoch'] + 1}/{epochs}")
    return f"{summary['status']}: {best}, final {acc(summary['final_val_accuracy'])}"


def _lock(config):
    """The run's `runlock.RunLock`; none for a multi-worker run's other workers."""
    if config.flags["strategy"] == "multi_worker":
        from experiments.runner import distribute  # TensorFlow from here on

        if not distribute.read_tf_config().is_chief:
            return contextlib.nullcontext()
    return runlock.acquire(config.flags["log_dir"], config.flags["run_name"])


def _resume_text(config, when="when the same command is run again"):
    """'the run resumes at epoch k/E when the same command is run again' (its backup's epoch)."""
    try:
        epoch = rundir.backup_epoch(config, check_weights=False)
    except config_lib.FlagError:
        return f"the run resumes from its last backup {when}"
    if epoch >= config.flags["epochs"]:
        return f"the run, fully trained, is finished {when}"
    return f"the run resumes at epoch {epoch + 1}/{config.flags['epochs']} {when}"


def _train(config, arrays, status, distribution, first_epoch):
    """Builds, records config.json, fits; returns the first epoch trained (None: none left).

    `first_epoch`: where a resume starts (the backup's epoch), else 0.
    """
    from experiments.runner import train  # Keras and TensorFlow only from here on
    from experiments.runner.schedules import build_schedule

    train.set_up(config)
    schedule = build_schedule(config)
    with distribution.strategy.scope() if distribution else contextlib.nullcontext():
        model = train.build_model(config, arrays.x_train.shape[1:], len(arrays.classes), schedule)
    if distribution is None or distribution.is_chief:
        rundir.create(config, _record(config, arrays, train, schedule))
    print(f"run {config.run_dir} ({_status_text(config, status, first_epoch)}): "
          f"{config.train_size} training images, {_val_text(config)}, "
          f"{config.steps_per_epoch} steps per epoch" + _accumulation_text(config)
          + _batch_text(config, distribution))
    stopping.check()
    # Diverged, then killed: finish it only.
    if status == "resume" and rundir.diverged_epoch(config) is not None:
        return None
    pipelines = backends.make_datasets(arrays, config)
    if distribution is None:
        return train.fit(config, model, pipelines, config.run_dir).first_epoch
    from experiments.runner import distribute

    return distribute.fit(distribution, config, model, pipelines, status).first_epoch


def _distribute(config, status):
    """Starts --strategy: (config with its replica counts, `Distribution` or None)."""
    if config.flags["strategy"] == "default":
        return config, None
    from experiments.runner import distribute  # TensorFlow from here on

    distribution = distribute.create(config)
    distribute.check_agreement(distribution, config, status)
    return dataclasses.replace(config, num_replicas=distribution.num_replicas,
                               num_workers=distribution.num_workers), distribution


def _status_text(config, status, first_epoch):
    """'new', 'overwrite', 'resume at epoch 3/10' (and epochs trained again without a backup)."""
    if status != "resume":
        return status
    if first_epoch >= config.flags["epochs"]:
        return f"resume: all {first_epoch} epochs trained, finishing"
    text = f"resume at epoch {first_epoch + 1}/{config.flags['epochs']}"
    recorded = rundir.complete_rows(os.path.join(config.run_dir, rundir.HISTORY),
                                    rundir.HISTORY_COLUMNS)
    if first_epoch == 0 and recorded:
        text += f"; no backup yet, so the {recorded} recorded epoch(s) are trained again"
    return text


def _val_text(config):
    """'1000 test images (--val_subset) evaluated every 2 epochs and after the last'."""
    text = f"{config.val_size} test images"
    if config.flags["val_subset"] is not None:
        text += " (--val_subset)"
    every = config.flags["eval_every"]
    if every > 1:
        text += f" evaluated every {every} epochs and after the last"
    return text


def _accumulation_text(config):
    k = config.flags["gradient_accumulation_steps"]
    return f" (updates of {k} batches of {config.flags['batch_size']})" if k > 1 else ""


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
        cli.fail(error)


def _load(config):
    flag = "image_folder" if config.flags["image_folder"] is not None else "data_dir"
    try:
        arrays = data.load(config)
    except data.DataError as error:
        cli.fail(f"--{flag}: {error}")
    if len(arrays.y_train) != config.train_size:
        cli.fail(f"--{flag}: {len(arrays.y_train)} training images read, "
                 f"{config.train_size} expected")
    return arrays


def _record(config, arrays, train, schedule):
    import keras

    derived = {**config.derived(),
               "schedule": keras.saving.serialize_keras_object(schedule),
               "classes": list(arrays.classes), "image_shape": list(arrays.x_train.shape[1:]),
               "normalization": {"mean": list(arrays.mean), "std": list(arrays.std),
                                 "source": "training images in use"}}
    return {"flags": config.flags, "derived": derived, rundir.DATA: _data_fingerprint(config),
            "environment": train.environment(), "skipped": backends.skipped(config),
            "command_line": list(config.command_line)}


def _data_fingerprint(config):
    """config.json's "data": what the images are, wherever they lie (`rundir.same_data`)."""
    if config.data is not None:
        return config.data
    return data.tfds_fingerprint(config.flags["dataset"], config.flags["data_dir"])


def parse_flags(argv):
    """absl's flags_parser: a bad flag -> `error: --flag: reason`, exit status 2."""
    try:
        return FLAGS(argv)
    except absl_flags.Error as error:
        cli.fail(_flag_error_text(error))


def _flag_error_text(error):
    if isinstance(error, absl_flags.UnrecognizedFlagError):
        return f"--{error.flagname}: unknown flag" + cli.did_you_mean(error.flagname, list(FLAGS))
    text = " ".join(str(error).split())
    if isinstance(error, absl_flags.CantOpenFlagFileError):
        # absl: "ERROR:: Unable to open flagfile: [Errno 2] No such file or directory: '/x'"
        match = re.search(r"\[Errno \d+\] (.*): (\S.*)$", text)
        return (f"--flagfile: cannot open {match[2]}: {match[1]}" if match
                else "--flagfile: " + text.removeprefix("ERROR:: "))
    if text == "--flagfile with no argument":
        return "--flagfile: needs a file name (--flagfile=PATH)"
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


def command_main(argv):
    """`main` for the command line: after an h5py write that failed, exit at once.

    Everything the run keeps is written and fsynced by then; only h5py's
    clean-up at the interpreter's exit is skipped, which can segfault.
    """
    status = main(argv)
    if _exit_at_once:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


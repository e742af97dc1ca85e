"""The run directory `<log_dir>/<run_name>/`: its state, config.json, summary.json, curves.png.

    config.json    {"flags", "derived", "environment", "command_line"}, written once
    history.csv    one row per completed epoch (experiments.runner.train.EpochRecorder)
    learning_rate.csv, tensorboard/   kschedules.LearningRateLogger, Keras TensorBoard
    backup/        the resume point while the run is unfinished
    model.keras    the model after the last epoch (a completed run; experiments.runner.saving)
    best.keras     --save_best: the model after the best evaluated epoch (summary.json's
                   best_model_epoch)
    curves.png     training loss, validation accuracy, LR against epoch (the LR of every
                   step, rebuilt from config.json: experiments.runner.applied_lr)
    summary.json   written last, atomically: its presence means "finished"

A finished run is never touched again without --overwrite (but for a backup/
that a kill between summary.json and its deletion left behind); an unfinished
one resumes only with the same flags (all but `flags.NOT_COMPARED`: where it is
written, steps per execution, backup interval), and only when its files agree
with its backup (`check_resume`). One process at a time: `experiments.runner.runlock`.
A damaged file is a one-line error naming it and saying what to do.
"""

import csv
import dataclasses
import json
import math
import os
import shutil
import statistics

from experiments import plots
from experiments.runner import applied_lr
from experiments.runner import flags as flag_defs
from experiments.runner import runlock
from experiments.runner.config import FlagError

CONFIG, HISTORY, LEARNING_RATE, SUMMARY, CURVES, BACKUP = (
    "config.json", "history.csv", "learning_rate.csv", "summary.json", "curves.png", "backup")
DATA = "data"  # config.json's key for the data's fingerprint (`same_data`)
METADATA = "training_metadata.json"  # in backup/: {"epoch", "batch", "weights"}
# The trained models (experiments.runner.saving); BEST_RECORD, in backup/: best.keras's epoch.
MODEL, BEST_MODEL, BEST_RECORD = "model.keras", "best.keras", "best.json"
LR_COLUMNS = ("epoch", "step", "learning_rate")  # kschedules.LearningRateLogger's CSV
HISTORY_COLUMNS = (
    "epoch",
    "learning_rate",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "epoch_seconds",
)
# What a kill while config.json was being written leaves: safe to start again.
_STARTUP_LEFTOVERS = (CONFIG + ".tmp",)
_START_AGAIN = "pass --overwrite to train the run again from the start"


# Reading a run.


@dataclasses.dataclass
class Run:
    """One run directory, as read from disk.

    Attributes:
        path: the run directory.
        name: its base name (the runner's ``--run_name``).
        config: ``config.json`` as a dict, or ``None`` when missing.
        history: ``history.csv`` rows (see `read_history`), ``[]`` when missing.
        summary: ``summary.json`` as a dict, or ``None`` while the run has not
            finished (interrupted or still running).
    """

    path: str
    name: str
    config: dict | None
    history: list
    summary: dict | None

    @property
    def finished(self):
        return self.summary is not None

    @property
    def flags(self):
        """The recorded flags, under their current names (`flags.canonical_flags`)."""
        return flag_defs.canonical_flags((self.config or {}).get("flags", {}))


def is_run_dir(path):
    """Returns True if `path` is a directory holding a run's ``config.json``."""
    return os.path.isfile(os.path.join(path, CONFIG))


def read_history(run_dir):
    """Reads ``<run_dir>/history.csv``.

    Args:
        run_dir: a run directory.

    Returns:
        A list of dicts, one per completed epoch in file order, each mapping
        every column of `HISTORY_COLUMNS` to a float (``nan``/``inf`` are kept
        as such). ``[]`` when the file does not exist yet.

    Raises:
        ValueError: if the header lacks a column or a row is not numeric.
    """
    path = os.path.join(run_dir, HISTORY)
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in HISTORY_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(
                f"read_history: {path} must have the columns {list(HISTORY_COLUMNS)}, "
                f"received header={reader.fieldnames}"
            )
        rows = []
        for line_number, raw in enumerate(reader, start=2):
            try:
                rows.append({c: float(raw[c]) for c in HISTORY_COLUMNS})
            except (TypeError, ValueError):
                raise ValueError(
                    f"read_history: {path} line {line_number} must hold numbers in every "
                    f"column, received {dict(raw)}"
                ) from None
    return rows


def read_json_object(path):
    """The JSON object in `path`, None when the file does not exist.

    Raises:
        ValueError: naming the file, when it is empty, not JSON or not an object.
    """
    try:
        with open(path, "rb") as f:
            text = f.read()
    except FileNotFoundError:
        return None
    if not text.strip():
        raise ValueError(f"{path} is empty")
    try:
        value = json.loads(text)
    except ValueError as error:  # also bytes that are not UTF-8
        raise ValueError(f"{path} is not valid JSON ({error})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path} must hold a JSON object, received {type(value).__name__}")
    return value


def read_summary(path):
    """A run's summary.json, checked to be one (None when it does not exist).

    Raises:
        ValueError: naming the file, when it is damaged: not a JSON object with a
            `status` of "completed" or "diverged" (and, if present, a whole
            `epochs_completed`).
    """
    summary = read_json_object(path)
    if summary is None:
        return None
    if summary.get("status") not in ("completed", "diverged"):
        raise ValueError(f"{path} is not a run summary (status {summary.get('status')!r}, "
                         "expected 'completed' or 'diverged')")
    epochs = summary.get("epochs_completed", 0)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"{path} is not a run summary (epochs_completed {epochs!r})")
    return summary


def read_run(run_dir):
    """Reads one run directory into a `Run` (missing files become None / []).

    Raises:
        ValueError: naming the file, when config.json or summary.json is damaged.
    """
    run_dir = os.path.normpath(run_dir)
    return Run(
        path=run_dir,
        name=os.path.basename(run_dir),
        config=read_json_object(os.path.join(run_dir, CONFIG)),
        history=read_history(run_dir),
        summary=read_summary(os.path.join(run_dir, SUMMARY)),
    )


# The runner's side.


class RunDirDamaged(RuntimeError):
    """A run file was changed or deleted while the run was training; one line."""


# The flags `compared_flags` leaves out, by question:
# - is it the same run (the runner's resume, the suite's reuse of a finished run)?
#   all but how it is carried out and where it is written: flags.NOT_COMPARED;
REPLICATE_FLAGS = flag_defs.NOT_COMPARED + ("seed", "run_name", "data_dir", "save_best")
# - is it the same configuration (experiments.report's groups)? also the seed, the
#   name, where tensorflow-datasets keeps its files and --save_best (one more file,
#   the same training): REPLICATE_FLAGS;
PATH_FLAGS = ("log_dir", "image_folder", "data_dir")
# - do the workers of one multi-worker run agree? all but the paths, which may
#   differ between machines: PATH_FLAGS.


def compared_flags(flags, ignore=flag_defs.NOT_COMPARED):
    """{flag: value} of a run's recorded (or current) flags that decide what it computes.

    Every runner flag but those in `ignore` (see above), under its current
    name (`flags.canonical_flags`): a flag missing from an older config.json takes
    the value that behaves as before (`flags.ADDED_FLAG_DEFAULTS`, else None),
    `--reference_batch_size` is None unless the LR is scaled (it is not read
    then), and values are normalised through JSON, so that two runs are the
    same exactly when their dicts are equal. The data's paths are not compared
    (a copy of the same images elsewhere is the same data): --image_folder is
    "PATH" when given, --data_dir always None; what the data holds is config.json's
    "data", compared by `same_data`.
    """
    flags = flag_defs.canonical_flags(flags)
    values = {name: flags.get(name, flag_defs.ADDED_FLAG_DEFAULTS.get(name)) for name in flag_defs.RUNNER_FLAGS
              if name not in ignore}
    if "reference_batch_size" in values and flags.get("lr_scaling", "none") == "none":
        values["reference_batch_size"] = None
    if values.get("image_folder") is not None:
        values["image_folder"] = "PATH"
    if "data_dir" in values:
        values["data_dir"] = None
    return json.loads(json.dumps(values, default=str))


def same_data(recorded, current):
    """Whether two data fingerprints (config.json's "data", `data.fingerprint`) agree.

    None on either side is not compared: a config.json written before
    fingerprints were recorded (its --image_folder path is not compared
    either, so that another user's copy of the data can continue it), or
    tensorflow-datasets before it is loaded (its --dataset is compared).
    """
    return recorded is None or current is None or recorded == current


def data_difference(recorded, current):
    """'' when `same_data`, else what differs, for an error message."""
    if same_data(recorded, current):
        return ""
    for key in ("source", "dataset", "version", "classes", "counts"):
        if recorded.get(key) != current.get(key):
            return f"{key} {recorded.get(key)} there, {current.get(key)} now"
    return "the same counts but other file names"


def state(config):
    """'new', 'overwrite', 'complete' or 'resume' (reads, never writes).

    A directory holding nothing but what a kill while config.json was being
    written leaves is 'new'.

    Raises:
        FlagError: (--run_name) the directory holds something else: another
            run's flags, or files without a config.json; or its config.json or
            summary.json is damaged.
    """
    path = config.run_dir
    if not os.path.exists(path):
        return "new"
    if not os.path.isdir(path):
        raise FlagError("run_name", f"{path!r} exists and is not a directory")
    if config.flags["overwrite"]:
        return "overwrite"
    if not os.path.exists(os.path.join(path, CONFIG)):
        others = [name for name in os.listdir(path) if not _startup_leftover(name)]
        if others:
            raise FlagError("run_name", f"{path!r} exists and is not a run directory (no "
                            f"{CONFIG}); choose another --run_name or pass --overwrite")
        return "new"  # empty, or killed while writing config.json: start again
    _check_same_flags(config, path)
    try:
        summary = read_summary(os.path.join(path, SUMMARY))
    except ValueError as error:
        raise FlagError("run_name", f"{error}; its epochs are in {HISTORY}; "
                        "pass --overwrite to train the run again") from None
    return "resume" if summary is None else "complete"


def _startup_leftover(name):
    return name in _STARTUP_LEFTOVERS or name.startswith(runlock.PROBE_PREFIX)


def _check_same_flags(config, path):
    try:
        stored = read_json_object(os.path.join(path, CONFIG)).get("flags")
        if not isinstance(stored, dict):
            raise ValueError(f"{os.path.join(path, CONFIG)} has no 'flags' object")
    except ValueError as error:
        raise FlagError("run_name", f"{error}; pass --overwrite to train the run again "
                        "from the start") from None
    data_there = read_json_object(os.path.join(path, CONFIG)).get(DATA)
    stored, current = compared_flags(stored), compared_flags(config.flags)
    differ = [name for name in sorted(current) if stored[name] != current[name]]
    if differ:
        shown = ", ".join(f"--{n}={stored.get(n)!r} there, {current.get(n)!r} now"
                          for n in differ[:3])
        raise FlagError("run_name", f"{path!r} holds a run with other flags ({shown}); choose "
                        "another --run_name or pass --overwrite to replace it")
    difference = data_difference(data_there, config.data)
    if difference:
        raise FlagError("image_folder", f"{path!r} holds a run trained on other images "
                        f"({difference}); choose another --run_name or pass --overwrite "
                        "to replace it")


def create(config, record):
    """Makes the directory (replacing it for 'overwrite') and writes config.json."""
    if config.flags["overwrite"] and os.path.exists(config.run_dir):
        shutil.rmtree(config.run_dir)
    os.makedirs(config.run_dir, exist_ok=True)
    if not os.path.exists(os.path.join(config.run_dir, CONFIG)):
        write_json_atomic(os.path.join(config.run_dir, CONFIG), record)
    for name in os.listdir(config.run_dir):
        if _startup_leftover(name):
            os.remove(os.path.join(config.run_dir, name))


def clean_finished(config):
    """Deletes the backup/ a finished run still has (killed before `finish` could); True if so."""
    backup = os.path.join(config.run_dir, BACKUP)
    if not os.path.exists(backup):
        return False
    shutil.rmtree(backup)
    return True


def check_resume(config):
    """The epoch a resumed run starts at: its backup's, after checking the run's files.

    The backup must be intact, and history.csv and learning_rate.csv must hold
    complete rows for exactly the epochs 0..k-1 it covers, before whatever an
    interrupted attempt wrote later (dropped when training starts). Reads only.

    Raises:
        FlagError: (--run_name) a damaged backup, or rows the backup covers
            missing or cut short: they cannot be recomputed from the backup.
    """
    epoch = backup_epoch(config)
    for name, columns in ((HISTORY, HISTORY_COLUMNS), (LEARNING_RATE, LR_COLUMNS)):
        problem = rows_problem(os.path.join(config.run_dir, name), columns, epoch)
        if problem:
            raise FlagError("run_name", f"{os.path.join(config.run_dir, name)} {problem}, but the "
                            f"backup is at epoch {epoch} and those epochs cannot be recomputed "
                            f"from it; {_START_AGAIN}")
    return epoch


def backup_epoch(config, check_weights=True):
    """Epochs the run's backup holds (0 when it has none yet).

    Raises:
        FlagError: (--run_name) the backup record or its weights file is damaged.
    """
    backup = os.path.join(config.run_dir, BACKUP)
    path = os.path.join(backup, METADATA)
    try:
        metadata = read_json_object(path)
        if metadata is None:
            return 0
        epoch, weights = metadata.get("epoch"), metadata.get("weights")
        if (isinstance(epoch, bool) or not isinstance(epoch, int)
                or not 1 <= epoch <= config.flags["epochs"] or not isinstance(weights, str)
                or os.path.basename(weights) != weights):
            raise ValueError(f"{path} is not a backup record (epoch {epoch!r}, weights {weights!r})")
    except ValueError as error:
        raise FlagError("run_name", f"the backup is damaged: {error}; {_START_AGAIN}") from None
    if check_weights:
        problem = _weights_problem(os.path.join(backup, weights))
        if problem:
            raise FlagError("run_name", f"the backup of epoch {epoch} is damaged: {problem} (no "
                            f"older backup is kept); {_START_AGAIN}")
    return epoch


def _weights_problem(path):
    if not os.path.isfile(path):
        return f"{path} is missing"
    import h5py  # Keras's weights format; checked before any data is read

    try:
        with h5py.File(path, "r"):
            pass
    except (OSError, ValueError) as error:
        return f"{path} cannot be read ({' '.join(str(error).split())})"
    return None


def rows_problem(path, columns, count, exact=False):
    """What is wrong with CSV `path` as the header `columns` then rows of epochs 0..count-1.

    Every one of those rows must be complete (all fields, numbers, a final newline);
    with `exact` nothing may follow them. A missing file is fine for count 0.
    Returns None when all is well, else a phrase such as "line 3 is cut short".
    """
    try:
        with open(path, newline="") as f:
            lines = f.read().splitlines(keepends=True)
    except FileNotFoundError:
        return None if count == 0 else f"is missing (rows of epochs 0-{count - 1} expected)"
    except (OSError, UnicodeDecodeError) as error:
        return f"cannot be read ({error})"
    if not lines and count == 0:
        return None
    header = ",".join(columns)
    if not lines or lines[0].rstrip("\r\n") != header or not lines[0].endswith("\n"):
        return f"does not start with the header line {header}"
    for epoch in range(count):
        if epoch + 1 >= len(lines):
            found = f"up to epoch {epoch - 1} only" if epoch else "no rows"
            return f"has {found} (epochs 0-{count - 1} expected)"
        problem = _row_problem(lines[epoch + 1], len(columns), epoch)
        if problem:
            return f"line {epoch + 2} {problem}"
    if exact and len(lines) > count + 1:
        return f"has {len(lines) - 1} rows, {count} expected"
    return None


def _row_problem(line, width, epoch):
    if not line.endswith("\n"):
        return f"(epoch {epoch}) is cut short"
    fields = next(csv.reader([line]), [])
    if len(fields) != width:
        return f"(epoch {epoch}) has {len(fields)} fields, {width} expected"
    if fields[0] != str(epoch):
        return f"is the row of epoch {fields[0]!r}, epoch {epoch} expected (a row is missing)"
    try:
        [float(value) for value in fields[1:]]
    except ValueError:
        return f"(epoch {epoch}) holds a field that is not a number"
    return None


def complete_rows(path, columns):
    """How many complete rows of epochs 0, 1, ... `path` starts with (0 if none or no file)."""
    if rows_problem(path, columns, 0) is not None:
        return 0
    try:
        with open(path, newline="") as f:
            lines = f.read().splitlines(keepends=True)[1:]
    except FileNotFoundError:  # stopped in its first epoch: no history.csv yet
        return 0
    count = 0
    while count < len(lines) and _row_problem(lines[count], len(columns), count) is None:
        count += 1
    return count


def diverged_epoch(config):
    """The first recorded epoch whose training loss is NaN or inf, else None.

    A run that diverged and was killed before its summary was written is
    finished on the next start without training further.
    """
    for row in read_history(config.run_dir):
        if not math.isfinite(row["loss"]):
            return int(row["epoch"])
    return None


def finish(config, first_epoch, process_seconds):
    """Writes curves.png then summary.json, then deletes backup/; returns the summary.

    `first_epoch`: the epoch this process started training at (0 unless it
    resumed), None if it had nothing left to train.
    """
    history = read_history(config.run_dir)
    applied = applied_lr.applied_lr(read_json_object(os.path.join(config.run_dir, CONFIG)), history)
    plots.plot_curves([(config.flags["run_name"], history, applied)],
                      os.path.join(config.run_dir, CURVES), title=config.flags["run_name"])
    summary = summarize(history, config.flags["epochs"], diverged_epoch(config))
    summary.update(resumed_from_epoch=len(history) if first_epoch is None else first_epoch,
                   process_seconds=round(process_seconds, 3))
    if config.flags["save_best"]:  # best.keras's epoch (best_epoch's; None: no best.keras)
        best = read_json_object(os.path.join(config.run_dir, BACKUP, BEST_RECORD))
        summary["best_model_epoch"] = None if best is None else best["epoch"]
    write_json_atomic(os.path.join(config.run_dir, SUMMARY), summary)
    shutil.rmtree(os.path.join(config.run_dir, BACKUP), ignore_errors=True)
    return summary


def summarize(history, epochs_planned, diverged_epoch):
    """summary.json's numbers from the history rows (non-finite values -> None).

    `wall_seconds` is the sum of `epoch_seconds` (training and validation of
    every recorded epoch, across resumed attempts; start-up excluded). The best
    val_accuracy is over the evaluated epochs (--eval_every: the others' are nan);
    the last epoch is always evaluated.
    """
    finite_val = [r for r in history if math.isfinite(r["val_accuracy"])]
    best = max(finite_val, key=lambda r: r["val_accuracy"]) if finite_val else None
    last = history[-1] if history else {}
    seconds = [r["epoch_seconds"] for r in history]
    diverged = diverged_epoch is not None
    return {
        "status": "diverged" if diverged else "completed",
        "final_val_accuracy": _finite(last.get("val_accuracy")),
        "best_val_accuracy": best["val_accuracy"] if best else None,
        "best_epoch": int(best["epoch"]) if best else None,
        "epochs_completed": len(history),
        "epochs_planned": epochs_planned,
        "diverged": diverged,
        "diverged_epoch": diverged_epoch,
        "final_loss": _finite(last.get("loss")),
        "final_accuracy": _finite(last.get("accuracy")),
        "final_val_loss": _finite(last.get("val_loss")),
        "wall_seconds": round(sum(seconds), 3),
        "median_epoch_seconds": round(statistics.median(seconds[1:] or seconds), 3)
        if seconds else None,
    }


def _finite(value):
    return value if value is not None and math.isfinite(value) else None


def write_json_atomic(path, obj):
    """Writes `obj` as JSON to `path` whole or not at all (fsynced temporary file, then a rename).

    A kill leaves at most `path + ".tmp"` beside the old file; an error
    (a full disk) removes it and propagates.
    """
    tmp = path + ".tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)

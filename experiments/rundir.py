"""The run directory `<log_dir>/<run_name>/`: its state, config.json, summary.json, curves.png.

    config.json    {"flags", "derived", "environment", "command_line"}, written once
    history.csv    one row per completed epoch (experiments.train.EpochRecorder)
    learning_rate.csv, tensorboard/   kschedules.LearningRateLogger, Keras TensorBoard
    backup/        the resume point while the run is unfinished
    curves.png     training loss, validation accuracy, LR against epoch
    summary.json   written last, atomically: its presence means "finished"

A finished run is never touched again without --overwrite; an unfinished one
resumes only with the same flags (all but `flags.NOT_COMPARED`: where it is written,
steps per execution, backup interval).
"""

import json
import math
import os
import shutil
import statistics

from experiments import flags as flag_defs
from experiments import plots
from experiments.config import FlagError

CONFIG, HISTORY, SUMMARY, CURVES, BACKUP = (
    "config.json", "history.csv", "summary.json", "curves.png", "backup")
# Flags added after runs were recorded, with the value that behaves as before
# (a config.json without them compares equal to these).
_ADDED_FLAGS = {"strategy": "default", "lr_scaling": "none", "reference_batch_size": None}


def state(config):
    """'new', 'overwrite', 'complete' or 'resume' (reads, never writes).

    Raises:
        FlagError: (--run_name) the directory holds something else: another
            run's flags, or files without a config.json.
    """
    path = config.run_dir
    if not os.path.exists(path):
        return "new"
    if not os.path.isdir(path):
        raise FlagError("run_name", f"{path!r} exists and is not a directory")
    if config.flags["overwrite"]:
        return "overwrite"
    if not os.path.exists(os.path.join(path, CONFIG)):
        if os.listdir(path):
            raise FlagError("run_name", f"{path!r} exists and is not a run directory (no "
                            f"{CONFIG}); choose another --run_name or pass --overwrite")
        return "new"
    _check_same_flags(config, path)
    return "complete" if os.path.exists(os.path.join(path, SUMMARY)) else "resume"


def _check_same_flags(config, path):
    with open(os.path.join(path, CONFIG)) as f:
        stored = json.load(f)["flags"]
    current = json.loads(json.dumps(config.flags))
    differ = [name for name in sorted(set(stored) | set(current))
              if name not in flag_defs.NOT_COMPARED
              and stored.get(name, _ADDED_FLAGS.get(name)) != current.get(name)]
    if differ:
        shown = ", ".join(f"--{n}={stored.get(n)!r} there, {current.get(n)!r} now"
                          for n in differ[:3])
        raise FlagError("run_name", f"{path!r} holds a run with other flags ({shown}); choose "
                        "another --run_name or pass --overwrite to replace it")


def create(config, record):
    """Makes the directory (replacing it for 'overwrite') and writes config.json."""
    if config.flags["overwrite"] and os.path.exists(config.run_dir):
        shutil.rmtree(config.run_dir)
    os.makedirs(config.run_dir, exist_ok=True)
    if not os.path.exists(os.path.join(config.run_dir, CONFIG)):
        write_json_atomic(os.path.join(config.run_dir, CONFIG), record)


def diverged_epoch(config):
    """The first recorded epoch whose training loss is NaN or inf, else None.

    A run that diverged and was killed before its summary was written is
    finished on the next start without training further.
    """
    for row in plots.read_history(config.run_dir):
        if not math.isfinite(row["loss"]):
            return int(row["epoch"])
    return None


def finish(config, first_epoch, process_seconds):
    """Writes curves.png then summary.json, then deletes backup/; returns the summary.

    `first_epoch`: the epoch this process started training at (0 unless it
    resumed), None if it had nothing left to train.
    """
    history = plots.read_history(config.run_dir)
    plots.plot_curves([(config.flags["run_name"], history)],
                      os.path.join(config.run_dir, CURVES), title=config.flags["run_name"])
    summary = summarize(history, config.flags["epochs"], diverged_epoch(config))
    summary.update(resumed_from_epoch=len(history) if first_epoch is None else first_epoch,
                   process_seconds=round(process_seconds, 3))
    write_json_atomic(os.path.join(config.run_dir, SUMMARY), summary)
    shutil.rmtree(os.path.join(config.run_dir, BACKUP), ignore_errors=True)
    return summary


def summarize(history, epochs_planned, diverged_epoch):
    """summary.json's numbers from the history rows (non-finite values -> None).

    `wall_seconds` is the sum of `epoch_seconds` (training and validation of
    every recorded epoch, across resumed attempts; start-up excluded).
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
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)

"""The trained models a run keeps: model.keras and, with --save_best, best.keras.

Both are Keras `.keras` files (architecture, weights, the compiled optimizer with
its kschedules schedule and state): `keras.models.load_model(path)` loads them
after `import kschedules` (whose schedules are registered serializables; for
--model=resnet20 also `import experiments.runner.models`, for its `ShortcutA`
layer). Each is written whole or not at all: to `partial-<name>` beside it,
fsynced, then renamed over it.

* model.keras: the model after the last epoch, written by `fit` once training
  ends (before summary.json, so a completed run has it; a resumed run writes it
  too). A diverged run has none.
* best.keras: the model after the first evaluated epoch with the highest
  val_accuracy (`BestModel`), which is summary.json's best_epoch and
  best_model_epoch.

best.keras across kill -9 and resume. A resumed run replays the epochs after
its backup, and whatever a killed attempt recorded for them is dropped; so is
its best.keras. `backup/best.json` ({"epoch", "val_accuracy"}) says which epoch
best.keras holds and is written before it. Before a new best replaces a
best.keras whose epoch the backup already covers, that file is copied to
`backup/best-epoch-<j>.keras`: the best of the epochs any resume keeps. On the
first epoch of a `fit` (epoch k, the backup's) a best.json epoch >= k belongs to
the dropped attempt, and that copy (or nothing, when there is none) becomes
best.keras again. backup/ goes when the run finishes.
"""

import math
import os
import re
import shutil

import keras

from experiments.runner import rundir

_FALLBACK = re.compile(r"^best-epoch-(\d+)\.keras$")


def save_model_atomic(model, path):
    """`model.save(path)`, whole or not at all (a partial file, fsynced, then renamed)."""
    partial = os.path.join(os.path.dirname(path), "partial-" + os.path.basename(path))
    try:
        model.save(partial)
        _fsync(partial)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def save_final_model(model, run_dir):
    """Writes <run_dir>/model.keras (see the module doc)."""
    save_model_atomic(model, os.path.join(run_dir, rundir.MODEL))


def best_model_callback(config, run_dir):
    """[`BestModel`] with --save_best, else []."""
    return [BestModel(run_dir)] if config.flags["save_best"] else []


class BestModel(keras.callbacks.Callback):
    """Keeps <run_dir>/best.keras: the model of the best val_accuracy so far.

    Runs after `train.EpochRecorder` (the epoch's history row is written) and before
    the backup. Epochs without validation (--eval_every) and non-finite values never
    count; a tie keeps the earlier epoch, as summary.json's best_epoch does.
    """

    def __init__(self, run_dir):
        super().__init__()
        self.run_dir = run_dir
        self.path = os.path.join(run_dir, rundir.BEST_MODEL)
        self.backup_dir = os.path.join(run_dir, rundir.BACKUP)
        self.record_path = os.path.join(self.backup_dir, rundir.BEST_RECORD)
        self.record = None  # best.json: {"epoch", "val_accuracy"} of best.keras
        self._started = False

    def on_epoch_begin(self, epoch, logs=None):
        if not self._started:
            self._started = True
            self.record = self._restore(epoch)

    def on_epoch_end(self, epoch, logs=None):
        value = float((logs or {}).get("val_accuracy", math.nan))
        if not math.isfinite(value) or (self.record and value <= self.record["val_accuracy"]):
            return
        if self.record and self.record["epoch"] < self._backup_epoch():
            self._keep_fallback(self.record["epoch"])
        record = {"epoch": epoch, "val_accuracy": value}
        os.makedirs(self.backup_dir, exist_ok=True)
        rundir.write_json_atomic(self.record_path, record)
        save_model_atomic(self.model, self.path)
        self.record = record

    def _backup_epoch(self):
        metadata = rundir.read_json_object(os.path.join(self.backup_dir, rundir.METADATA))
        return 0 if metadata is None else metadata["epoch"]

    def _keep_fallback(self, epoch):
        """Copies best.keras (epoch `epoch`, covered by the backup) to backup/best-epoch-<epoch>.keras."""
        name = f"best-epoch-{epoch}.keras"
        partial = os.path.join(self.backup_dir, "partial-" + name)
        shutil.copyfile(self.path, partial)
        _fsync(partial)
        os.replace(partial, os.path.join(self.backup_dir, name))
        for epoch_, other in self._fallbacks():
            if epoch_ != epoch:
                os.remove(os.path.join(self.backup_dir, other))

    def _fallbacks(self):
        if not os.path.isdir(self.backup_dir):
            return []
        found = [(_FALLBACK.match(n), n) for n in os.listdir(self.backup_dir)]
        return sorted((int(m[1]), n) for m, n in found if m)

    def _restore(self, first_epoch):
        """The record of best.keras once it holds the best of epochs < `first_epoch` (None: none)."""
        try:
            record = rundir.read_json_object(self.record_path)
        except ValueError as error:
            raise rundir.RunDirDamaged(f"{error}; pass --overwrite to train the run again "
                                       "from the start") from None
        if record is None or record["epoch"] < first_epoch:
            return record
        fallbacks = [(e, n) for e, n in self._fallbacks() if e < first_epoch]
        if not fallbacks:  # no evaluated epoch before first_epoch
            if os.path.exists(self.path):
                os.remove(self.path)
            os.remove(self.record_path)
            return None
        epoch, name = fallbacks[-1]
        rows = rundir.read_history(self.run_dir)
        record = {"epoch": epoch, "val_accuracy": rows[epoch]["val_accuracy"]}
        partial = os.path.join(self.run_dir, "partial-" + rundir.BEST_MODEL)
        shutil.copyfile(os.path.join(self.backup_dir, name), partial)
        _fsync(partial)
        os.replace(partial, self.path)
        rundir.write_json_atomic(self.record_path, record)
        return record


def _fsync(path):
    with open(path, "rb") as f:
        os.fsync(f.fileno())

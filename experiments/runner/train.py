"""Model, optimizer and `fit` with the runner's callbacks.

`build_model` creates and compiles the model and optimizer in one function, so
that a distribution strategy can wrap just that call in `strategy.scope()`.
`fit` trains with these callbacks, in this order (order matters for resume):

0. `StopOnSignal`: raises `stopping.Interrupted` before the next epoch or
   batch once SIGTERM or SIGINT has arrived (see `experiments.runner.stopping`).
   Keras's progress bar.
1. `EpochRecorder`: appends one row per epoch to history.csv (flushed and
   fsynced), prints one readable line, stops a diverged run. Before each row
   it checks that history.csv and learning_rate.csv still hold exactly the
   earlier epochs' complete rows (`rundir.RunDirDamaged` if not).
   `kschedules.ReduceLROnPlateau` with --plateau_patience > 0 (its state is in
   the optimizer, so the backup after it holds the epoch's reduction).
   `saving.BestModel` with --save_best: best.keras after an epoch that improves
   val_accuracy (after the history row, before the backup).
2. `AtomicBackupAndRestore` into <run>/backup: Keras's BackupAndRestore with
   files that are complete or absent after a `kill -9`, every --backup_every
   epochs; it runs after the recorder, so a backup never gets ahead of the
   history. A failed write (a full disk) leaves the previous backup current.
3. `tensorboard_callbacks`: Keras's TensorBoard into <run>/tensorboard (train/,
   validation/: two TensorBoard runs), without its `epoch_learning_rate` (the
   LR after the epoch); `kschedules.LearningRateLogger`: into train/ the
   `learning_rate/epoch_start` scalar (and `learning_rate/step` every
   `Config.lr_log_freq` steps), and <run>/learning_rate.csv, whose value for
   each epoch becomes history.csv's `learning_rate` (the LR applied at the
   epoch's first step); `hparams.HParamsWriter`: into train/ the run's hparams
   and summary metrics.

On Keras's JAX backend the TensorBoard parts of 3 are skipped: they need
TensorFlow (see `experiments.runner.backends`).

Validation runs after the epochs `Config.eval_epochs` names (--eval_every; the
last always), as `fit`'s `validation_freq`; once training ends, `fit` writes
model.keras (`experiments.runner.saving`), unless the run diverged.
"""

import csv
import errno
import json
import math
import os
import platform
import sys
import time

import keras
from kschedules import LearningRateLogger, PerUpdate, ReduceLROnPlateau

from experiments.runner import backends, models, rundir, saving, stopping
from experiments.runner.schedules import build_schedule

_RESTART = "pass --overwrite to train the run again from the start"


def set_up(config):
    """Process-wide settings: dtype policy, seeds, op determinism."""
    keras.mixed_precision.set_global_policy(config.flags["precision"])
    keras.utils.set_random_seed(config.flags["seed"])
    if config.flags["deterministic"] and backends.uses_tensorflow():  # else skipped (backends)
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def make_optimizer(config, schedule):
    """The optimizer; sgd/adam get weight decay as a model L2 term, adamw decoupled.

    With --gradient_accumulation_steps=k > 1 it applies one update every k
    batches, and Keras calls its schedule with the count of batches:
    `ks.PerUpdate` gives the schedule (in updates) the count of updates.
    """
    name = config.flags["optimizer"]
    k = config.flags["gradient_accumulation_steps"]
    common = {}
    if k > 1:
        schedule = PerUpdate(schedule, gradient_accumulation_steps=k)
        common = {"gradient_accumulation_steps": k}
    if name == "sgd":
        return keras.optimizers.SGD(schedule, momentum=config.flags["momentum"],
                                    nesterov=config.flags["nesterov"], **common)
    if name == "adam":
        return keras.optimizers.Adam(schedule, **common)
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=config.flags["weight_decay"], **common)
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return optimizer


def build_model(config, input_shape, num_classes, schedule=None):
    """Builds and compiles the model and its optimizer (wrap in `strategy.scope()`).

    `schedule`: the run's, when already built (default: `build_schedule(config)`).

    Under mixed_float16 Keras wraps the optimizer in a `LossScaleOptimizer`
    (dynamic loss scaling) at compile time.
    """
    coupled = config.flags["optimizer"] != "adamw"
    l2 = config.flags["weight_decay"] / 2 if coupled else 0.0
    model = models.build(config.flags["model"], input_shape, num_classes, weight_decay=l2)
    jit = config.flags["jit_compile"]
    model.compile(
        optimizer=make_optimizer(config, schedule or build_schedule(config)),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile="auto" if jit is None else jit,
        steps_per_execution=config.flags["steps_per_execution"],
    )
    return model


def fit(config, model, pipelines, run_dir, restore_dir=None):
    """Trains on `data.Pipelines` (resuming from <run>/backup); returns `EpochRecorder`.

    `restore_dir`: the backup to resume from, when not `run_dir`'s own (a
    multi-worker run's non-chief workers write into a temporary `run_dir` and
    resume from the chief's backup).
    """
    recorder = EpochRecorder(os.path.join(run_dir, rundir.HISTORY),
                             os.path.join(run_dir, rundir.LEARNING_RATE),
                             config.flags["epochs"], config.steps_per_epoch,
                             check_steps=config.flags["precision"] != "mixed_float16",
                             check_files=restore_dir is None)
    # Keras adds its progress bar last; listed first, it ends before the
    # recorder's epoch line.
    set_epoch = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs=None: pipelines.set_epoch(epoch))
    callbacks = [StopOnSignal(), keras.callbacks.ProgbarLogger(), set_epoch, recorder,
                 *plateau_callback(config),
                 *saving.best_model_callback(config, run_dir),
                 AtomicBackupAndRestore(os.path.join(run_dir, rundir.BACKUP), restore_dir,
                                        every=config.flags["backup_every"]),
                 *tensorboard_callbacks(config, run_dir)]
    # Keras's progress bar on a terminal; in a log file only the recorder's line per
    # epoch (Keras's own, verbose=2, would say the same again).
    try:
        model.fit(pipelines.train, validation_data=pipelines.val, epochs=config.flags["epochs"],
                  callbacks=callbacks, verbose=1 if sys.stdout.isatty() else 0, shuffle=False,
                  validation_freq=_validation_freq(config))
    except BaseException:
        _close_writers(callbacks)  # a stopped fit skips on_train_end
        raise
    if recorder.diverged_epoch is None:
        saving.save_final_model(model, run_dir)
    return recorder


def _validation_freq(config):
    """Keras's `validation_freq`: 1, or the epochs (from 1) --eval_every evaluates, the last
    included (an int N would skip the last epoch unless N divides --epochs)."""
    return 1 if config.flags["eval_every"] == 1 else config.eval_epochs


def tensorboard_callbacks(config, run_dir):
    """[TensorBoard, LearningRateLogger, HParamsWriter] into <run>/tensorboard (train/,
    validation/: the two runs Keras's callback makes; ours write into train/), or, on
    JAX, [LearningRateLogger] for learning_rate.csv alone (TensorBoard needs
    TensorFlow: `experiments.runner.backends`).
    """
    csv_path = os.path.join(run_dir, rundir.LEARNING_RATE)
    if not backends.uses_tensorflow():
        return [LearningRateLogger(csv_path=csv_path)]
    from experiments.runner import hparams

    tensorboard = os.path.join(run_dir, "tensorboard")
    train_dir = os.path.join(tensorboard, "train")
    return [TensorBoardWithoutLR(tensorboard, write_graph=False, profile_batch=0),
            LearningRateLogger(log_dir=train_dir, csv_path=csv_path,
                               update_freq=config.lr_log_freq, epoch_tag=LR_EPOCH_TAG,
                               step_tag=LR_STEP_TAG),
            hparams.HParamsWriter(run_dir, train_dir, config.flags)]


# The runner's LR scalars in TensorBoard's train run: the LR applied at each epoch's first
# step (x: epoch) and at every --lr_log_freq-th step (x: optimizer step).
LR_EPOCH_TAG, LR_STEP_TAG = "learning_rate/epoch_start", "learning_rate/step"


class TensorBoardWithoutLR(keras.callbacks.TensorBoard):
    """Keras's TensorBoard without its `epoch_learning_rate`: the rate after the epoch
    (the next epoch's first), which disagrees with the LR applied during it
    (`LR_EPOCH_TAG`). Keras 3.15 adds it in `_collect_learning_rate`, which this
    replaces (tests/test_experiments/test_tensorboard.py checks that no such tag is
    written)."""

    def _collect_learning_rate(self, logs):
        return {k: v for k, v in logs.items() if not k.startswith("learning_rate")}


def plateau_callback(config):
    """[kschedules.ReduceLROnPlateau] of --plateau_*, or [] (before the backup, which saves its state)."""
    if not config.flags["plateau_patience"]:
        return []
    return [ReduceLROnPlateau(
        monitor=config.flags["plateau_monitor"], factor=config.flags["plateau_factor"],
        patience=config.flags["plateau_patience"], cooldown=config.flags["plateau_cooldown"],
        min_lr=config.effective("plateau_min_lr"), verbose=1)]


def _close_writers(callbacks):
    for callback in callbacks:
        if isinstance(callback, (keras.callbacks.TensorBoard, LearningRateLogger)):
            try:
                callback.on_train_end()
            except Exception:  # closing after a failure: the failure is what matters
                pass


def environment():
    """Versions and devices, for config.json."""
    if not backends.uses_tensorflow():
        return backends.environment()
    import tensorflow as tf

    return {"keras": keras.__version__, "tensorflow": tf.__version__,
            "backend": keras.backend.backend(),
            "devices": [d.name for d in tf.config.list_logical_devices()],
            "python": platform.python_version()}


def _inner_optimizer(model):
    optimizer = model.optimizer
    while hasattr(optimizer, "inner_optimizer"):
        optimizer = optimizer.inner_optimizer
    return optimizer


def lr_of_update(model, update):
    """The LR `model`'s optimizer applies at optimizer update `update` (its schedule there).

    Under gradient accumulation (k batches an update) Keras calls the schedule with
    the batch count: update u is applied at batch u * k + k - 1.
    """
    optimizer = _inner_optimizer(model)
    # `_learning_rate`: the schedule itself (Keras 3.15 has no public getter; as in
    # kschedules.LearningRateLogger).
    schedule = getattr(optimizer, "_learning_rate", None)
    if not isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        return float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    k = optimizer.gradient_accumulation_steps or 1
    return float(keras.ops.convert_to_numpy(schedule(update * k + k - 1)))


class EpochRecorder(keras.callbacks.Callback):
    """Writes history.csv, prints one line per epoch, stops on a non-finite loss.

    On the first epoch of a `fit` (epoch k after a resume) rows for epochs >= k
    left by an interrupted attempt are dropped, so the file ends with exactly
    one row per epoch. With `check_files`, the rows of epochs 0..k-1 must be
    complete (`rundir.check_resume` has said so before), and before each row
    both CSV files must hold exactly the earlier epochs' rows: otherwise
    `rundir.RunDirDamaged`, never a row glued to a torn one or a file that
    silently lost epochs. (Off for a multi-worker run's other workers, whose
    throwaway files start at the chief's backup.) With `check_steps`, the
    optimizer's step count at the start of epoch k must be k * steps_per_epoch
    (else RuntimeError): the schedule's clock and the epoch agree. (Not checked
    under mixed_float16, where steps skipped for non-finite gradients do not
    count.)
    """

    def __init__(self, history_path, lr_path, epochs, steps_per_epoch, check_steps=True,
                 check_files=True):
        super().__init__()
        self.history_path, self.lr_path = history_path, lr_path
        self.epochs, self.steps_per_epoch = epochs, steps_per_epoch
        self.check_steps, self.check_files = check_steps, check_files
        self.first_epoch = None
        self.diverged_epoch = None
        self._start = None
        self._seconds = []  # of the epochs trained by this process

    def on_epoch_begin(self, epoch, logs=None):
        if self.first_epoch is None:
            self.first_epoch = epoch
            if self.check_files:
                _truncate_rows(self.history_path, rundir.HISTORY_COLUMNS, epoch)
        step = int(_inner_optimizer(self.model).iterations.numpy())  # also a MirroredVariable
        if self.check_steps and step != epoch * self.steps_per_epoch:
            raise RuntimeError(f"epoch {epoch} starts at optimizer step {step}, expected "
                               f"{epoch * self.steps_per_epoch} ({self.steps_per_epoch} per epoch)")
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        last_lr = lr_of_update(self.model, (epoch + 1) * self.steps_per_epoch - 1)
        row = {"epoch": epoch,
               "learning_rate": _lr_of_epoch(self.lr_path, epoch, self.check_files),
               **{k: float(logs.get(k, math.nan)) for k in rundir.HISTORY_COLUMNS[2:6]},
               "epoch_seconds": time.perf_counter() - self._start}
        _append_row(self.history_path, row, self.check_files)
        self._seconds.append(row["epoch_seconds"])
        print(format_epoch_line(row, self.epochs, self.seconds_left(epoch),
                                evaluated="val_loss" in logs, last_lr=last_lr), flush=True)
        if not math.isfinite(row["loss"]):
            self.diverged_epoch = epoch
            self.model.stop_training = True


    def seconds_left(self, epoch):
        """Estimated seconds for the epochs after `epoch` (None after the last).

        The mean time of the epochs this process trained, leaving out its first (which
        also traces and compiles) once there is another.
        """
        left = self.epochs - (epoch + 1)
        if left <= 0:
            return None
        timed = self._seconds[1:] or self._seconds
        return left * sum(timed) / len(timed)


def format_epoch_line(row, epochs, seconds_left=None, evaluated=True, last_lr=None):
    """`epoch 3/10  lr 0.0812->0.0655  loss 1.234  acc 0.551  val_loss 1.301  val_acc 0.532  12.3s  eta 0:01:26`.

    The LR of the epoch's first update (history.csv's) and, when it differs at 4
    significant digits, `->` that of its last (`last_lr`), so a warmup epoch reads
    `lr 0->0.0195`, not `lr 0`. The ETA (H:MM:SS, the epochs left at this process's
    mean epoch time) on every epoch but the last. An epoch --eval_every skips
    (`evaluated` False) says `not evaluated` instead of its val_loss and val_acc.
    """
    val = (f"val_loss {row['val_loss']:.4f}  val_acc {row['val_accuracy']:.4f}" if evaluated
           else "not evaluated")
    lr = f"{row['learning_rate']:.4g}"
    if last_lr is not None and f"{last_lr:.4g}" != lr:
        lr += f"->{last_lr:.4g}"
    line = (f"epoch {row['epoch'] + 1}/{epochs}  lr {lr}  "
            f"loss {row['loss']:.4f}  acc {row['accuracy']:.4f}  {val}  "
            f"{row['epoch_seconds']:.1f}s")
    return line if seconds_left is None else f"{line}  eta {clock(seconds_left)}"


def clock(seconds):
    """`H:MM:SS` of a duration in seconds (rounded to the second)."""
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"


def _check_rows(path, columns, count):
    """RunDirDamaged unless `path` holds exactly the complete rows of epochs 0..count-1."""
    problem = rundir.rows_problem(path, columns, count, exact=True)
    if problem:
        raise rundir.RunDirDamaged(f"{path} {problem}: it was changed or deleted while the run "
                                   f"was training; {_RESTART}")


def _lr_of_epoch(lr_path, epoch, check=True):
    if check:
        _check_rows(lr_path, rundir.LR_COLUMNS, epoch + 1)
    with open(lr_path, newline="") as f:
        for row in csv.DictReader(f):
            if int(row["epoch"]) == epoch:
                return float(row["learning_rate"])
    raise RuntimeError(f"{lr_path} has no learning rate for epoch {epoch}")


def _append_row(path, row, check=True):
    """Appends the row of epoch `row["epoch"]`; with `check`, only to a file that
    holds exactly the complete rows of the epochs before it (so never to one
    without a final newline).
    """
    if check:
        _check_rows(path, rundir.HISTORY_COLUMNS, row["epoch"])
    new = not os.path.exists(path) or os.path.getsize(path) == 0
    with open(path, "a", newline="") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(rundir.HISTORY_COLUMNS)
        writer.writerow([repr(row[c]) if isinstance(row[c], float) else row[c]
                         for c in rundir.HISTORY_COLUMNS])
        f.flush()
        os.fsync(f.fileno())


def _truncate_rows(path, columns, epoch):
    """Keeps the header and the rows of epochs < `epoch` (atomic rewrite; none: no file).

    Those rows must be complete (the runner checked them against the backup,
    `rundir.check_resume`); what follows them (rows of an interrupted attempt,
    one cut short by a kill in mid-write) is dropped.
    """
    if epoch == 0:
        if os.path.exists(path):
            os.remove(path)
        return
    problem = rundir.rows_problem(path, columns, epoch)
    if problem:
        raise rundir.RunDirDamaged(f"{path} {problem}, but training resumes at epoch {epoch}; "
                                   f"{_RESTART}")
    with open(path, newline="") as f:
        lines = f.read().splitlines(keepends=True)
    if len(lines) == epoch + 1:
        return
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        f.writelines(lines[:epoch + 1])
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """BackupAndRestore that survives `kill -9` at any moment.

    Keras writes `latest.weights.h5` and then `training_metadata.json` in place:
    a kill during the first leaves a truncated file, a kill between the two
    leaves weights one epoch ahead of the recorded epoch. Here each backup
    writes `epoch-<k>.weights.h5` in full, then replaces the metadata file
    atomically (it names the weights file), then deletes older weights: the
    metadata always points at complete weights of the epoch it states. The
    weights file holds the optimizer state too (step counter included). The
    backup is kept at the end of training; the runner deletes it once
    summary.json is written. `restore_dir` (default: `backup_dir`) is where a
    resumed run reads its backup from.

    A backup is written after every `every`-th epoch (counted from the first,
    so at the same epochs whether or not the run was resumed) and after the
    last; a resume replays the epochs since the last backup.

    The weights go to `partial-epoch-<k>.weights.h5` first, renamed once
    complete. When a write fails (OSError: ENOSPC on a full disk, say), the
    partial file is removed, h5py's handle on it closed (left open, h5py
    crashes the interpreter at exit), and the error raised again with the
    file's path: the previous backup stays the current one. A backup that
    cannot be restored raises `rundir.RunDirDamaged`.

    Keras 3.15 has no public hooks for this: it overrides BackupAndRestore's
    private `_save_model`/`_load_model` and sets the attributes they keep
    (`_current_epoch`, `_last_batch_seen`, `_training_metadata_path`) and the
    model's `_initial_epoch` (where `fit` resumes), as Keras's own does; the
    resume tests (tests/test_experiments/test_run_end_to_end.py) catch a Keras that changes them.
    """

    def __init__(self, backup_dir, restore_dir=None, every=1):
        super().__init__(backup_dir, delete_checkpoint=False)
        self.restore_dir = backup_dir if restore_dir is None else restore_dir
        self.every = every

    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch = epoch + 1
        self._last_batch_seen = 0
        if self._current_epoch % self.every == 0 or self._current_epoch == self.params["epochs"]:
            self._save_model()

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        name = f"epoch-{self._current_epoch}.weights.h5"
        partial = os.path.join(self.backup_dir, "partial-" + name)
        _check_room(self.backup_dir, self._backup_bytes(), partial)
        failure = None
        try:
            self.model.save_weights(partial, overwrite=True)
            _fsync_file(partial)
            os.replace(partial, os.path.join(self.backup_dir, name))
            rundir.write_json_atomic(self._training_metadata_path,
                               {"epoch": self._current_epoch, "batch": 0, "weights": name})
        except OSError as error:
            failure = error.errno or errno.EIO
            _empty(partial)  # h5py flushes when its objects go: give it the room
        if failure is not None:  # out of the except block: its traceback (h5py objects) freed
            _discard_partial_weights(partial)
            error = OSError(failure, os.strerror(failure), partial)
            error.h5py_write_failed = True  # see `_discard_partial_weights`
            raise error
        for other in os.listdir(self.backup_dir):
            if other.endswith(".weights.h5") and other != name:
                os.remove(os.path.join(self.backup_dir, other))

    def _backup_bytes(self):
        """About the size of a weights file: the last one's, else the variables' bytes."""
        sizes = [os.path.getsize(os.path.join(self.backup_dir, f))
                 for f in os.listdir(self.backup_dir) if f.startswith("epoch-")]
        if sizes:
            return max(sizes)
        variables = list(self.model.weights) + list(getattr(self.model.optimizer, "variables", []))
        return int(1.05 * sum(math.prod(v.shape) * _itemsize(v.dtype) for v in variables)) + 2**18

    def on_train_begin(self, logs=None):
        self._load_model()

    def _load_model(self):
        path = os.path.join(self.restore_dir, os.path.basename(self._training_metadata_path))
        if not os.path.exists(path):
            return
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        try:
            with open(path) as f:
                metadata = json.load(f)
            self.model.load_weights(os.path.join(self.restore_dir, metadata["weights"]))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise rundir.RunDirDamaged(
                f"the backup in {self.restore_dir} cannot be restored "
                f"({' '.join(str(error).split())[:300]}); {_RESTART}") from None
        self.model._initial_epoch = metadata["epoch"]
        self._current_epoch = metadata["epoch"]


def _itemsize(dtype):
    import numpy as np

    return np.dtype(keras.backend.standardize_dtype(dtype)).itemsize


def _check_room(directory, needed, path):
    """OSError(ENOSPC) before writing `needed` bytes that `directory` has no room for.

    h5py crashes the interpreter at exit after a write that ran out of space, so
    the usual case (a disk that filled up slowly) is caught before writing.
    """
    stats = os.statvfs(directory)
    if stats.f_bavail * stats.f_frsize < needed:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)


def _empty(path):
    try:
        os.truncate(path, 0)
    except OSError:
        pass


def _discard_partial_weights(path):
    """Removes a weights file whose write failed, closing h5py's handles on it first.

    Keras leaves the file open when a write fails; h5py would then crash the
    interpreter at exit (a segfault, seen with ENOSPC). The file is emptied
    first, so that closing (which flushes) has the room it needs.
    """
    import gc

    import h5py

    _empty(path)
    gc.collect()
    target = os.path.abspath(path)
    for handle in h5py.h5f.get_obj_ids(types=h5py.h5f.OBJ_FILE):
        try:
            if os.path.abspath(os.fsdecode(handle.name)) == target:
                handle.close()
        except Exception:  # closing what failed; the first error is what matters
            pass
    try:
        os.remove(path)
    except OSError:
        pass


def _fsync_file(path):
    with open(path, "rb") as f:
        os.fsync(f.fileno())


class StopOnSignal(keras.callbacks.Callback):
    """Raises `stopping.Interrupted` before the next epoch or batch once a signal arrived.

    Begin hooks only: Keras calls them synchronously, and a callback without
    batch-end hooks leaves Keras's asynchronous batch-end dispatch as it was.
    """

    def on_epoch_begin(self, epoch, logs=None):
        stopping.check()

    def on_train_batch_begin(self, batch, logs=None):
        stopping.check()

    def on_test_batch_begin(self, batch, logs=None):
        stopping.check()

"""Callbacks that record the learning rate the optimizer actually applies."""

import csv
import numbers
import os

import keras
import numpy as np

_CSV_HEADER = ["epoch", "step", "learning_rate"]
_EPOCH_DESCRIPTION = (
    "The learning rate applied at the first step of each epoch (x: epoch)."
)
_STEP_DESCRIPTION = (
    "The learning rate applied at every N-th optimizer step (x: optimizer step)."
)


class LearningRateLogger(keras.callbacks.Callback):
    """Logs the learning rate of every epoch (and step) to CSV and TensorBoard.

    Use it to plot the schedule a run really followed. Keras's own callbacks
    do not: `keras.callbacks.TensorBoard` logs `epoch_learning_rate` read
    after the epoch (the next epoch's first value), nothing per step, and
    `CSVLogger` / `History` never see the learning rate.

    What is recorded:

        epoch row e:  step   = optimizer.iterations when epoch e's first
                               training batch begins
                      value  = the learning rate the optimizer applies at
                               that step: schedule(step) for a
                               LearningRateSchedule, the current value for a
                               float learning rate
        per step s:   s      = 0, N, 2N, ... (optimizer steps, N = update_freq)
                      value  = the learning rate applied at step s

    Epoch 0 of a fresh run therefore shows the initial learning rate, and a
    drop that happens inside epoch e first shows in the row of epoch e + 1.
    The value is read when the epoch's first batch begins, after every
    callback's `on_epoch_begin` (so after `keras.callbacks.LearningRateScheduler`
    has set it) and after `BackupAndRestore` has restored the optimizer: the
    result does not depend on the callback's position in the list. A
    `LossScaleOptimizer` (mixed precision) is looked through: its inner
    optimizer's step and learning rate are logged, so steps skipped for
    non-finite gradients do not count. Under gradient accumulation
    (`gradient_accumulation_steps=k`), the step is the count of updates
    (`optimizer.iterations`) and the value that of the update: the schedule
    at the micro-step u * k + k - 1 where Keras applies update u (use
    `PerUpdate` for a schedule written in updates).

    Outputs:

    - `csv_path`: a CSV file with header `epoch,step,learning_rate`, one row
      per epoch, written when the epoch's first batch begins (so it also
      shows the epoch in progress). Values are written with the shortest
      text that reads back to the same float32 (or float64) number. Each row
      is written by an atomic rewrite of the file (rows of earlier epochs
      kept, rows cut short by a crash dropped), so the file always holds
      exactly one complete row per epoch, whoever writes to it.
    - Several `fit` calls on one file (one logger or several, one process or
      a later one) are told apart by the optimizer step, which only a restore
      takes back:
      * a `fit` whose first step is past the file's last row continues the
        record: if Keras counts its epochs from 0 again (a second
        `model.fit(...)` without `initial_epoch`), they are numbered on from
        the last row, in the CSV and in TensorBoard alike;
      * a `fit` that starts at a step the file already covers, or inside its
        last epoch (a `BackupAndRestore` resume, a restored checkpoint, a
        model trained again from scratch) replaces the rows from its first
        epoch on.
      Two loggers on one `csv_path` in one `fit` therefore write each row
      once.
    - `log_dir`: a TensorBoard scalar `epoch_tag` (`learning_rate`) at
      `step=epoch`, in a summary writer on `log_dir` itself. With
      `update_freq=N` also `step_tag` (`step_learning_rate`) at `step=s` for
      every optimizer step s that is a multiple of N. Points of a replayed
      epoch are written again at the same steps, in a new event file.
      TensorBoard shows each folder holding event files as a run of its own:
      beside `keras.callbacks.TensorBoard(log_dir=d)`, pass
      `log_dir=os.path.join(d, "train")` so that the values appear in its
      `train` run (not in a third run `d`), and drop or rename its
      `epoch_learning_rate`, which is the rate after the epoch (the next
      epoch's first value), not the one applied during it.

    Cost: with `update_freq="epoch"` the callback reads the optimizer once
    per epoch and adds no per-step host synchronisation (its per-batch hook
    is a Python integer check). With `update_freq=N` it reads the optimizer
    about once every N steps. With `steps_per_execution > 1`, Keras calls
    batch hooks once per execution; the values of steps inside an execution
    are then computed from the schedule.

    Args:
        log_dir: Folder for TensorBoard event files (str or os.PathLike), or
            None. Needs TensorFlow (`tf.summary`), imported only when
            `log_dir` is given. Defaults to None.
        csv_path: CSV file to write (str or os.PathLike), or None. Its folder
            is created if needed. An existing file must be a CSV written by
            this callback. Defaults to None.
        update_freq: `"epoch"` to log once per epoch, `"batch"` (every
            step, as `keras.callbacks.TensorBoard` reads it) or a positive int
            N to also log `step_learning_rate` to TensorBoard every N
            optimizer steps (needs `log_dir`). Defaults to `"epoch"`.
        epoch_tag: TensorBoard tag of the per-epoch values (x: epoch), a
            non-empty str. Defaults to `"learning_rate"`.
        step_tag: TensorBoard tag of the per-step values (x: optimizer
            step), a non-empty str other than `epoch_tag`. Defaults to
            `"step_learning_rate"`.

    Raises:
        ValueError: If neither `log_dir` nor `csv_path` is given, a path is
            empty, `update_freq` is neither `"epoch"` nor a positive int, or
            `update_freq` is per step without `log_dir`, a tag is empty or
            both tags are equal; when training starts,
            if `csv_path` is a directory, cannot be written, or holds a file
            with another header, or the model has no optimizer.
        TypeError: If a path is not a str or os.PathLike, `update_freq` is
            neither a str nor an int, or a tag is not a str.
        ImportError: If `log_dir` is given and TensorFlow is not installed.

    Example:

    A schedule that drops inside epoch 1 (after step 6, 4 steps per epoch):
    epoch 1 starts at 0.1, epoch 2 at 0.01.

    >>> import os, tempfile
    >>> import keras, numpy as np
    >>> from kschedules.callbacks import LearningRateLogger
    >>> schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
    ...     boundaries=[6], values=[0.1, 0.01])
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    >>> model.compile(optimizer=keras.optimizers.SGD(schedule), loss="mse")
    >>> x, y = np.ones((16, 3)), np.ones((16, 1))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "lr.csv")
    ...     _ = model.fit(x, y, batch_size=4, epochs=3, verbose=0,
    ...                   callbacks=[LearningRateLogger(csv_path=path)])
    ...     print(open(path).read())
    epoch,step,learning_rate
    0,0,0.1
    1,4,0.1
    2,8,0.01
    <BLANKLINE>
    """

    def __init__(self, log_dir=None, csv_path=None, update_freq="epoch",
                 epoch_tag="learning_rate", step_tag="step_learning_rate"):
        super().__init__()
        self.epoch_tag = _check_tag("epoch_tag", epoch_tag)
        self.step_tag = _check_tag("step_tag", step_tag)
        if self.step_tag == self.epoch_tag:
            raise ValueError(
                "LearningRateLogger: step_tag must differ from epoch_tag (their "
                f"x axes differ: steps, epochs), received step_tag={step_tag!r}, "
                f"epoch_tag={epoch_tag!r}"
            )
        self.log_dir = _check_path("log_dir", log_dir)
        self.csv_path = _check_path("csv_path", csv_path)
        if self.log_dir is None and self.csv_path is None:
            raise ValueError(
                "LearningRateLogger: at least one of log_dir and csv_path must "
                "be given, received log_dir=None, csv_path=None"
            )
        self.update_freq = _check_update_freq(update_freq)
        if self.update_freq != "epoch" and self.log_dir is None:
            raise ValueError(
                'LearningRateLogger: update_freq must be "epoch" when log_dir '
                "is None (per-step values go to TensorBoard only), received "
                f"update_freq={update_freq!r}"
            )
        self._tf = _import_tensorflow(self.log_dir) if self.log_dir else None
        self._writer = None
        self._epoch = None
        self._epoch_pending = False
        self._first_row_of_fit = True
        self._epoch_offset = 0
        self._last_row = None  # (epoch, step) last written, for a log_dir only logger
        self._step_offset = 0
        self._next_due_step = None
        self._steps_per_execution = 1

    # Keras hooks.

    def on_train_begin(self, logs=None):
        if self.csv_path is not None:
            _check_csv_path(self.csv_path)
        if self.log_dir is not None:
            if self._writer is not None:
                self._writer.close()
            self._writer = self._tf.summary.create_file_writer(self.log_dir)
        self._epoch = None
        self._epoch_pending = False
        self._first_row_of_fit = True
        self._next_due_step = None
        steps_per_execution = getattr(self.model, "steps_per_execution", 1)
        self._steps_per_execution = max(int(steps_per_execution or 1), 1)

    def on_epoch_begin(self, epoch, logs=None):
        # The value is read at the first batch instead: other callbacks'
        # on_epoch_begin (LearningRateScheduler) may still change it.
        self._epoch = epoch
        self._epoch_pending = True

    def on_train_batch_begin(self, batch, logs=None):
        current = None
        if self._epoch_pending:
            self._epoch_pending = False
            current = self._read_optimizer()
            step, value = current
            self._step_offset = step - batch
            self._write_epoch(self._epoch, step, value)
        if self.update_freq != "epoch":
            self._log_steps(batch, current)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    # Reading the optimizer.

    def _optimizer(self):
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None:
            raise ValueError(
                "LearningRateLogger: model.optimizer must be a Keras "
                "optimizer, received model.optimizer=None"
            )
        # LossScaleOptimizer keeps a dummy learning rate of 0.0 and its own
        # unused step counter; the inner optimizer holds the real ones.
        while hasattr(optimizer, "inner_optimizer"):
            optimizer = optimizer.inner_optimizer
        return optimizer

    def _read_optimizer(self):
        """Returns (step, learning rate applied at that step): one host sync."""
        # On JAX, fit() keeps the training state outside the variables until
        # the epoch ends; Keras's `Callback.model` property syncs it back, so
        # `self.model` is only touched here, never on every batch.
        optimizer = self._optimizer()
        step = int(_numpy(optimizer.iterations))
        # `_learning_rate`: the schedule itself (Keras 3.15 has no public getter).
        if getattr(optimizer, "gradient_accumulation_steps", None) and isinstance(
            getattr(optimizer, "_learning_rate", None),
            keras.optimizers.schedules.LearningRateSchedule,
        ):
            # optimizer.learning_rate is the schedule at the current
            # micro-step; the update `step` applies it at a later one.
            return step, self._value_at(step, None, None)
        value = _to_scalar(optimizer.learning_rate)
        return step, value

    def _value_at(self, step, current_step, current_value):
        """The learning rate the optimizer will apply at a later update `step`.

        Under gradient accumulation (k micro-steps an update), update u is
        applied at micro-step u * k + k - 1, whose value the schedule gives.
        """
        optimizer = self._optimizer()
        # Keras 3.15 has no public getter for the schedule itself
        # (`optimizer.learning_rate` is its value at the current step).
        schedule = getattr(optimizer, "_learning_rate", None)
        if step == current_step or not isinstance(
            schedule, keras.optimizers.schedules.LearningRateSchedule
        ):
            return current_value
        accumulation = getattr(optimizer, "gradient_accumulation_steps", None) or 1
        micro_step = step * accumulation + accumulation - 1
        micro_step = keras.ops.convert_to_tensor(
            micro_step, dtype=optimizer.iterations.dtype
        )
        return _to_scalar(schedule(micro_step))

    # Per-step logging (update_freq=N).

    def _log_steps(self, batch, current):
        """Logs the due multiples of N among the steps this call will run.

        The optimizer is only read when a due step may be near: the step is
        estimated from the batch index (exact unless a LossScaleOptimizer
        skipped steps, in which case the estimate is corrected and the due
        step waits for the optimizer to reach it).
        """
        freq = self.update_freq
        span = self._steps_per_execution
        steps_per_epoch = (self.params or {}).get("steps")
        if steps_per_epoch:
            span = max(min(span, steps_per_epoch - batch), 1)
        estimate = self._step_offset + batch
        if (
            self._next_due_step is not None
            and self._next_due_step >= estimate + span
        ):
            return
        step, value = current if current is not None else self._read_optimizer()
        self._step_offset = step - batch
        first = -(-step // freq) * freq
        if self._next_due_step is not None:
            first = max(first, self._next_due_step)
        self._next_due_step = first
        for due in range(first, step + span, freq):
            due_value = self._value_at(due, step, value)
            with self._writer.as_default(), self._tf.summary.record_if(True):
                self._tf.summary.scalar(
                    self.step_tag, float(due_value), step=due,
                    description=_STEP_DESCRIPTION,
                )
            self._next_due_step = due + freq

    # Writing.

    def _write_epoch(self, epoch, step, value):
        if self._first_row_of_fit:
            last = _last_row(self.csv_path) if self.csv_path else self._last_row
            steps_per_epoch = (self.params or {}).get("steps")
            self._epoch_offset = _continuing_offset(last, epoch, step, steps_per_epoch)
            self._first_row_of_fit = False
        epoch += self._epoch_offset
        if self.csv_path is not None:
            row = [str(epoch), str(step), _format_value(value)]
            _rewrite_csv(self.csv_path, keep_before_epoch=epoch, row=row)
        self._last_row = (epoch, step)
        if self._writer is not None:
            # record_if(True): Keras's TensorBoard(update_freq=N) leaves a
            # record_if(step % N == 0) context open during training.
            with self._writer.as_default(), self._tf.summary.record_if(True):
                self._tf.summary.scalar(
                    self.epoch_tag, float(value), step=epoch,
                    description=_EPOCH_DESCRIPTION,
                )
            self._writer.flush()


def _check_path(name, value):
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(
            f"LearningRateLogger: {name} must be a str or os.PathLike, "
            f"received {name}={value!r}"
        )
    path = os.fspath(value)
    if not isinstance(path, str):
        raise TypeError(
            f"LearningRateLogger: {name} must be a str or os.PathLike, "
            f"received {name}={value!r}"
        )
    if not path:
        raise ValueError(
            f"LearningRateLogger: {name} must be a non-empty path, "
            f"received {name}={value!r}"
        )
    return path


def _check_tag(name, value):
    if not isinstance(value, str):
        raise TypeError(
            f"LearningRateLogger: {name} must be a str, received {name}={value!r}"
        )
    if not value:
        raise ValueError(
            f"LearningRateLogger: {name} must be a non-empty str, "
            f"received {name}={value!r}"
        )
    return value


def _check_update_freq(update_freq):
    if isinstance(update_freq, str):
        if update_freq not in ("epoch", "batch"):
            raise ValueError(
                'LearningRateLogger: update_freq must be "epoch", "batch" or a '
                f"positive int, received update_freq={update_freq!r}"
            )
        return 1 if update_freq == "batch" else update_freq
    if isinstance(update_freq, bool) or not isinstance(
        update_freq, numbers.Integral
    ):
        raise TypeError(
            'LearningRateLogger: update_freq must be "epoch", "batch" or a '
            f"positive int, received update_freq={update_freq!r}"
        )
    if update_freq <= 0:
        raise ValueError(
            'LearningRateLogger: update_freq must be "epoch", "batch" or a '
            f"positive int, received update_freq={update_freq!r}"
        )
    return int(update_freq)


def _import_tensorflow(log_dir):
    try:
        import tensorflow as tf
    except ImportError as error:
        raise ImportError(
            "LearningRateLogger: log_dir needs TensorFlow (tf.summary writes "
            "the TensorBoard event files) and it could not be imported; "
            "install tensorflow or pass only csv_path, received "
            f"log_dir={log_dir!r}"
        ) from error
    return tf


def _numpy(value):
    tensor = keras.ops.convert_to_tensor(value)
    if keras.backend.backend() == "tensorflow":
        # keras.ops.convert_to_numpy calls np.array(tensor), which numpy 2
        # answers with a DeprecationWarning for TensorFlow tensors.
        return tensor.numpy()
    return keras.ops.convert_to_numpy(tensor)


def _to_scalar(value):
    """A learning rate (tensor, variable, float) as a 0-d numpy float."""
    array = np.asarray(_numpy(value))
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    return array.reshape(())[()]


def _format_value(value):
    # numpy prints the shortest text that reads back to the same number in
    # the value's own precision: float32 0.1 -> "0.1", not "0.100000001".
    return str(np.asarray(value).reshape(())[()])


def _check_csv_path(path):
    """A writable file path (its folder is created) holding nothing or our CSV."""
    if os.path.isdir(path):
        raise ValueError(
            "LearningRateLogger: csv_path must be a file path, received "
            f"csv_path={path!r}, a directory"
        )
    folder = os.path.dirname(os.path.abspath(path))
    probe = f"{path}.{os.getpid()}.probe"
    try:
        os.makedirs(folder, exist_ok=True)
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as error:
        raise ValueError(
            "LearningRateLogger: csv_path must be a writable file path, "
            f"received csv_path={path!r} ({error.strerror or error})"
        ) from None
    if not os.path.exists(path):
        return
    with open(path, newline="") as f:
        header = next(csv.reader(f), None)
    if header is not None and header != _CSV_HEADER:
        raise ValueError(
            "LearningRateLogger: csv_path must be a new file or a CSV written "
            f"by LearningRateLogger (header {','.join(_CSV_HEADER)}), "
            f"received csv_path={path!r} with header {','.join(header)}"
        )


def _read_rows(path):
    """The complete rows of our CSV at `path` ([] if there is none)."""
    if not os.path.exists(path):
        return []
    rows = []
    with open(path, newline="") as f:
        for old in list(csv.reader(f))[1:]:
            if len(old) != len(_CSV_HEADER):
                continue
            try:
                int(old[0])
                int(old[1])
                float(old[2])
            except ValueError:
                continue
            rows.append(old)
    return rows


def _last_row(path):
    """(epoch, step) of the last complete row of `path`, or None."""
    rows = _read_rows(path)
    return (int(rows[-1][0]), int(rows[-1][1])) if rows else None


def _continuing_offset(last, epoch, step, steps_per_epoch):
    """What to add to Keras's epoch numbers in a fit starting at (epoch, step).

    A fit past the last recorded step whose epochs do not follow the last
    recorded one (Keras counting from 0 again) is numbered on from it. A fit
    that starts inside the last recorded epoch (a `BackupAndRestore` resume
    from a mid-epoch backup) is not: it replaces that epoch's row.
    """
    if last is None:
        return 0
    last_epoch, last_step = last
    if step <= last_step or epoch > last_epoch:
        return 0
    inside_last_epoch = epoch == last_epoch and (
        steps_per_epoch is None or step < last_step + steps_per_epoch
    )
    return 0 if inside_last_epoch else last_epoch + 1 - epoch


def _rewrite_csv(path, keep_before_epoch, row):
    """Atomically rewrites `path`: rows of epochs < keep_before_epoch, then row.

    Rows from a replayed attempt (epoch >= keep_before_epoch) and rows cut
    short by a crash are dropped.
    """
    kept = [old for old in _read_rows(path) if int(old[0]) < keep_before_epoch]
    temp_path = path + ".tmp"
    try:
        with open(temp_path, "w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(_CSV_HEADER)
            writer.writerows(kept)
            writer.writerow(row)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp_path, path)
    finally:
        if os.path.exists(temp_path):
            os.remove(temp_path)

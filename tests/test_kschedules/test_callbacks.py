"""Tests for kschedules.callbacks.LearningRateLogger.

Every test fits a tiny model (Dense on 64 samples, batch 8: 8 optimizer steps
per epoch), reads the CSV and the TensorBoard event files back, and compares
the values with the schedule's own float32 values at the recorded steps and
with hand-written tables.
"""

import ast
import csv
import glob
import inspect
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from run_helpers import read_scalars

from kschedules import callbacks as callbacks_module
from kschedules.callbacks import LearningRateLogger

STEPS_PER_EPOCH = 8


class DropAt(keras.optimizers.schedules.LearningRateSchedule):
    """A user's schedule: `values[k]` from step `boundaries[k - 1]` on."""

    def __init__(self, boundaries, values):
        self.boundaries = boundaries
        self.values = values

    def __call__(self, step):
        step = keras.ops.cast(step, "int32")
        drops = keras.ops.sum(
            keras.ops.cast(
                keras.ops.greater_equal(step, keras.ops.array(self.boundaries)),
                "int32",
            )
        )
        return keras.ops.take(keras.ops.array(self.values, "float32"), drops)

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values}


class Interrupt(Exception):
    pass


class InterruptAt(keras.callbacks.Callback):
    """Raises when (epoch, batch) begins, like a pre-empted job."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.at = (epoch, batch)
        self.epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise Interrupt(f"interrupted at epoch {self.epoch}, batch {batch}")


class IterationsAtEpochEnd(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.iterations = []

    def on_epoch_end(self, epoch, logs=None):
        self.iterations.append(int(self.model.optimizer.iterations.numpy()))


def make_model(optimizer, **compile_kwargs):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=optimizer, loss="mse", **compile_kwargs)
    return model


def fit(model, callbacks, epochs, y_scale=1.0, **kwargs):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8 * STEPS_PER_EPOCH, 4)).astype("float32")
    y = y_scale * rng.normal(size=(8 * STEPS_PER_EPOCH, 1)).astype("float32")
    return model.fit(
        x, y, batch_size=8, epochs=epochs, callbacks=callbacks, verbose=0,
        shuffle=False, **kwargs,
    )


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["epoch", "step", "learning_rate"]
    return [(int(e), int(s), np.float32(v)) for e, s, v in rows[1:]]


def lr(schedule, step):
    return np.float32(keras.ops.convert_to_numpy(schedule(step)))


def last_per_step(points):
    """Keeps the last value written at each step (a replay writes again)."""
    return sorted(dict(points).items())


# Values read back against hand-written tables and the schedule itself.


def test_csv_and_tensorboard_record_the_first_step_of_each_epoch(tmp_path):
    # Drops AT step 12 (inside epoch 1) and AT step 16 (the start of epoch 2).
    schedule = DropAt([12, 16], [0.1, 0.03, 0.007])
    csv_path, log_dir = tmp_path / "lr.csv", tmp_path / "tb"
    logger = LearningRateLogger(log_dir=str(log_dir), csv_path=csv_path)
    fit(make_model(keras.optimizers.SGD(schedule)), [logger], epochs=4)

    rows = read_csv(csv_path)
    f32 = np.float32
    assert rows == [(0, 0, f32(0.1)), (1, 8, f32(0.1)), (2, 16, f32(0.007)),
                    (3, 24, f32(0.007))]
    assert [v for _, _, v in rows] == [lr(schedule, s) for _, s, _ in rows]
    # Shortest round-trip text, not 0.100000001.
    assert open(csv_path).read().splitlines()[1:3] == ["0,0,0.1", "1,8,0.1"]

    assert read_scalars(log_dir, "learning_rate") == [
        (e, v) for e, _, v in rows
    ]
    assert read_scalars(log_dir, "step_learning_rate") == []


def test_per_step_values_beside_keras_tensorboard(tmp_path):
    # Keras's PiecewiseConstantDecay switches one step after each boundary:
    # 0.1 up to step 11, 0.05 for steps 12..15, 0.02 from step 16 (epoch 2).
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
        [11, 15], [0.1, 0.05, 0.02]
    )
    log_dir = str(tmp_path / "tb")
    # Keras's TensorBoard(update_freq=3) keeps a record_if(step % 3 == 0)
    # context open during training; it must not filter our points.
    keras_tb = keras.callbacks.TensorBoard(log_dir, update_freq=3)
    logger = LearningRateLogger(log_dir=log_dir, update_freq=2)
    fit(make_model(keras.optimizers.SGD(schedule)), [keras_tb, logger], epochs=3)

    steps = read_scalars(log_dir, "step_learning_rate")
    assert [s for s, _ in steps] == list(range(0, 24, 2))
    assert [v for _, v in steps] == [lr(schedule, s) for s, _ in steps]
    assert dict(steps)[10] == np.float32(0.1)
    assert dict(steps)[12] == np.float32(0.05)
    assert dict(steps)[16] == np.float32(0.02)
    assert read_scalars(log_dir, "learning_rate") == [
        (0, np.float32(0.1)), (1, np.float32(0.1)), (2, np.float32(0.02))
    ]
    # Keras's own output stays in train/, ours sits beside it in log_dir.
    assert glob.glob(os.path.join(log_dir, "train", "events.out.tfevents.*"))
    assert read_scalars(os.path.join(log_dir, "train"), "learning_rate") == []


def test_tags_name_the_scalars_in_keras_train_run(tmp_path):
    # PiecewiseConstantDecay: 0.1 up to step 11, 0.02 from step 12 (epoch 1 starts at step 8).
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([11], [0.1, 0.02])
    log_dir = str(tmp_path / "tb")
    logger = LearningRateLogger(log_dir=os.path.join(log_dir, "train"), update_freq=4,
                                epoch_tag="learning_rate/epoch_start", step_tag="learning_rate/step")
    fit(make_model(keras.optimizers.SGD(schedule)),
        [keras.callbacks.TensorBoard(log_dir), logger], epochs=2)
    train = os.path.join(log_dir, "train")
    assert read_scalars(train, "learning_rate/epoch_start") == [
        (0, np.float32(0.1)), (1, np.float32(0.1))]
    assert read_scalars(train, "learning_rate/step") == [
        (0, np.float32(0.1)), (4, np.float32(0.1)), (8, np.float32(0.1)), (12, np.float32(0.02))]
    assert read_scalars(train, "learning_rate") == read_scalars(train, "step_learning_rate") == []
    assert not glob.glob(os.path.join(log_dir, "events.out.tfevents.*"))  # no third run


@pytest.mark.parametrize("loss_scale", [False, True])
def test_steps_inside_an_execution_come_from_the_schedule(tmp_path, loss_scale):
    # steps_per_execution=3: batch hooks only see steps 0, 3, 6 of an epoch.
    # Behind a LossScaleOptimizer the inner optimizer's schedule is used (the
    # wrapper's own learning rate is a dummy 0.0).
    # Drops at steps 4 and 10: inside executions [3, 4, 5] and [8, 9, 10].
    schedule = DropAt([4, 10], [0.4, 0.2, 0.1])
    optimizer = keras.optimizers.SGD(schedule)
    if loss_scale:
        keras.utils.set_random_seed(0)  # (imports TensorFlow when installed)
    optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    log_dir = str(tmp_path / "tb")
    logger = LearningRateLogger(log_dir=log_dir, csv_path=tmp_path / "lr.csv",
                                update_freq=2)
    model = make_model(optimizer, steps_per_execution=3)
    fit(model, [logger], epochs=3)

    steps = read_scalars(log_dir, "step_learning_rate")
    assert [s for s, _ in steps] == list(range(0, 24, 2))
    assert [v for _, v in steps] == [lr(schedule, s) for s, _ in steps]
    f32 = np.float32
    assert steps[:6] == [(0, f32(0.4)), (2, f32(0.4)), (4, f32(0.2)),
                         (6, f32(0.2)), (8, f32(0.2)), (10, f32(0.1))]
    assert read_csv(tmp_path / "lr.csv") == [
        (0, 0, f32(0.4)), (1, 8, f32(0.2)), (2, 16, f32(0.1))
    ]


def test_float_learning_rate_set_by_scheduler_whatever_the_position(tmp_path):
    # A float learning rate changed by LearningRateScheduler in on_epoch_begin:
    # a logger listed before the scheduler must still see the new value.
    before = LearningRateLogger(log_dir=str(tmp_path / "tb"),
                                csv_path=tmp_path / "before.csv", update_freq=4)
    scheduler = keras.callbacks.LearningRateScheduler(lambda e: 0.3 * 0.5**e)
    after = LearningRateLogger(csv_path=tmp_path / "after.csv")
    fit(make_model(keras.optimizers.SGD(0.3)), [before, scheduler, after],
        epochs=3)

    f32 = np.float32
    expected = [(0, 0, f32(0.3)), (1, 8, f32(0.15)), (2, 16, f32(0.075))]
    assert read_csv(tmp_path / "before.csv") == expected
    assert read_csv(tmp_path / "after.csv") == expected
    steps = read_scalars(str(tmp_path / "tb"), "step_learning_rate")
    assert steps == [(s, f32(0.3 * 0.5 ** (s // 8))) for s in range(0, 24, 4)]


def test_plain_float_learning_rate(tmp_path):
    logger = LearningRateLogger(log_dir=str(tmp_path / "tb"),
                                csv_path=tmp_path / "lr.csv")
    fit(make_model(keras.optimizers.Adam(0.0375)), [logger], epochs=2)
    expected = [(0, 0, np.float32(0.0375)), (1, 8, np.float32(0.0375))]
    assert read_csv(tmp_path / "lr.csv") == expected
    assert read_scalars(str(tmp_path / "tb"), "learning_rate") == [
        (0, np.float32(0.0375)), (1, np.float32(0.0375))
    ]


# Resume: exactly one row per epoch.


def test_initial_epoch_resume_replaces_replayed_rows(tmp_path):
    schedule = DropAt([6, 20], [0.5, 0.25, 0.125])
    csv_path, log_dir = tmp_path / "lr.csv", str(tmp_path / "tb")
    model = make_model(keras.optimizers.SGD(schedule))
    fit(model, [LearningRateLogger(log_dir=log_dir, csv_path=csv_path)],
        epochs=3)
    first_text = open(csv_path).read().splitlines()
    assert [(e, s) for e, s, _ in read_csv(csv_path)] == [(0, 0), (1, 8), (2, 16)]

    # Restore the optimizer to a checkpoint taken at step 4 and replay from
    # epoch 1: epochs 1 and 2 are logged again, from where training resumed.
    model.optimizer.iterations.assign(4)
    fit(model, [LearningRateLogger(log_dir=log_dir, csv_path=csv_path)],
        epochs=4, initial_epoch=1)

    rows = read_csv(csv_path)
    assert [(e, s) for e, s, _ in rows] == [(0, 0), (1, 4), (2, 12), (3, 20)]
    assert [v for _, _, v in rows] == [lr(schedule, s) for _, s, _ in rows]
    assert rows[1][2] == np.float32(0.5) and rows[2][2] == np.float32(0.25)
    assert open(csv_path).read().splitlines()[:2] == first_text[:2]
    assert sorted(os.listdir(tmp_path)) == ["lr.csv", "tb"]  # no temp file
    assert last_per_step(read_scalars(log_dir, "learning_rate")) == [
        (e, v) for e, _, v in rows
    ]

    # A later fit that continues (initial_epoch=4) only appends.
    fit(model, [LearningRateLogger(csv_path=csv_path)], epochs=5,
        initial_epoch=4)
    assert [(e, s) for e, s, _ in read_csv(csv_path)] == [
        (0, 0), (1, 4), (2, 12), (3, 20), (4, 28)
    ]


def test_backup_and_restore_resume_after_interruption(tmp_path):
    schedule = DropAt([10, 20], [0.2, 0.1, 0.05])
    csv_path, log_dir = tmp_path / "lr.csv", str(tmp_path / "tb")
    backup_dir = str(tmp_path / "backup")

    def attempt(callbacks):
        # A fresh process: new model and optimizer, state from the backup.
        model = make_model(keras.optimizers.SGD(schedule))
        logger = LearningRateLogger(log_dir=log_dir, csv_path=csv_path)
        backup = keras.callbacks.BackupAndRestore(backup_dir, save_freq=4)
        return fit(model, [logger, backup] + callbacks, epochs=4)

    # Pre-empted at batch 6 of epoch 2; the backup holds step 20 (saved after
    # batch 3 of epoch 2).
    with pytest.raises(Interrupt):
        attempt([InterruptAt(epoch=2, batch=6)])
    assert [(e, s) for e, s, _ in read_csv(csv_path)] == [(0, 0), (1, 8), (2, 16)]

    attempt([])
    rows = read_csv(csv_path)
    assert [(e, s) for e, s, _ in rows] == [(0, 0), (1, 8), (2, 20), (3, 28)]
    assert [v for _, _, v in rows] == [lr(schedule, s) for _, s, _ in rows]
    assert [v for _, _, v in rows] == list(np.float32([0.2, 0.2, 0.05, 0.05]))
    assert last_per_step(read_scalars(log_dir, "learning_rate")) == [
        (e, v) for e, _, v in rows
    ]


# Mixed precision.


def test_loss_scale_optimizer_with_skipped_steps(tmp_path):
    # A huge initial loss scale (and a large loss) overflows the first
    # gradients: the inner optimizer skips those steps (5 here), so its step
    # count lags the batch count.
    schedule = DropAt([3, 9], [0.01, 0.005, 0.0025])
    keras.utils.set_random_seed(0)  # (imports TensorFlow when installed)
    optimizer = keras.optimizers.LossScaleOptimizer(
        keras.optimizers.SGD(schedule), initial_scale=2.0**127
    )
    model = make_model(optimizer)
    probe = IterationsAtEpochEnd()
    log_dir = str(tmp_path / "tb")
    logger = LearningRateLogger(log_dir=log_dir, csv_path=tmp_path / "lr.csv",
                                update_freq=2)
    fit(model, [logger, probe], epochs=3, y_scale=30.0)

    assert probe.iterations[-1] < 3 * STEPS_PER_EPOCH  # steps were skipped
    rows = read_csv(tmp_path / "lr.csv")
    assert [s for _, s, _ in rows] == [0] + probe.iterations[:-1]
    assert [v for _, _, v in rows] == [lr(schedule, s) for _, s, _ in rows]
    assert all(v > 0 for _, _, v in rows)  # not the wrapper's dummy 0.0
    steps = read_scalars(log_dir, "step_learning_rate")
    assert [s for s, _ in steps] == list(range(0, probe.iterations[-1], 2))
    assert [v for _, v in steps] == [lr(schedule, s) for s, _ in steps]


def test_mixed_float16_policy(tmp_path):
    # compile() wraps the optimizer in a LossScaleOptimizer under this policy.
    schedule = keras.optimizers.schedules.ExponentialDecay(0.01, 8, 0.5)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = make_model(keras.optimizers.SGD(schedule))
    finally:
        keras.config.set_dtype_policy(previous)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    probe = IterationsAtEpochEnd()
    logger = LearningRateLogger(csv_path=tmp_path / "lr.csv")
    fit(model, [probe, logger], epochs=3)
    rows = read_csv(tmp_path / "lr.csv")
    # float16 overflows at the default loss scale (2**15) may skip steps.
    assert [s for _, s, _ in rows] == [0] + probe.iterations[:-1]
    assert [v for _, _, v in rows] == [lr(schedule, s) for _, s, _ in rows]
    np.testing.assert_allclose(
        [v for _, _, v in rows], [0.01 * 0.5 ** (s / 8) for _, s, _ in rows],
        rtol=1e-6,
    )


# Cost.


def test_reads_the_optimizer_once_per_epoch_or_every_n_steps(tmp_path, monkeypatch):
    reads = []
    original = LearningRateLogger._read_optimizer

    def counting(self):
        reads.append(self.update_freq)
        return original(self)

    monkeypatch.setattr(LearningRateLogger, "_read_optimizer", counting)
    schedule = DropAt([12], [0.1, 0.01])
    per_epoch = LearningRateLogger(log_dir=str(tmp_path / "a"))
    every_4 = LearningRateLogger(log_dir=str(tmp_path / "b"), update_freq=4)
    fit(make_model(keras.optimizers.SGD(schedule)), [per_epoch, every_4],
        epochs=3)
    assert reads.count("epoch") == 3
    assert reads.count(4) == 6  # steps 0 and 4 of each epoch
    # No on_train_batch_end override: Keras keeps dispatching batch-end
    # callbacks asynchronously.
    assert (LearningRateLogger.on_train_batch_end
            is keras.callbacks.Callback.on_train_batch_end)


# Arguments and files.


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({}, ValueError, "LearningRateLogger: at least one of log_dir and "
         "csv_path must be given, received log_dir=None, csv_path=None"),
        ({"csv_path": 3}, TypeError, "LearningRateLogger: csv_path must be a "
         "str or os.PathLike, received csv_path=3"),
        ({"log_dir": ""}, ValueError, "LearningRateLogger: log_dir must be a "
         "non-empty path, received log_dir=''"),
        ({"csv_path": "a.csv", "update_freq": 0}, ValueError,
         'LearningRateLogger: update_freq must be "epoch", "batch" or a positive int, '
         "received update_freq=0"),
        ({"csv_path": "a.csv", "update_freq": "hourly"}, ValueError,
         'LearningRateLogger: update_freq must be "epoch", "batch" or a positive int, '
         "received update_freq='hourly'"),
        ({"csv_path": "a.csv", "update_freq": "batch"}, ValueError,
         'LearningRateLogger: update_freq must be "epoch" when log_dir is '
         "None (per-step values go to TensorBoard only), received "
         "update_freq='batch'"),
        ({"csv_path": "a.csv", "update_freq": True}, TypeError,
         'LearningRateLogger: update_freq must be "epoch", "batch" or a positive int, '
         "received update_freq=True"),
        ({"csv_path": "a.csv", "update_freq": 2.0}, TypeError,
         'LearningRateLogger: update_freq must be "epoch", "batch" or a positive int, '
         "received update_freq=2.0"),
        ({"csv_path": "a.csv", "update_freq": 2}, ValueError,
         'LearningRateLogger: update_freq must be "epoch" when log_dir is '
         "None (per-step values go to TensorBoard only), received "
         "update_freq=2"),
        ({"csv_path": "a.csv", "epoch_tag": ""}, ValueError,
         "LearningRateLogger: epoch_tag must be a non-empty str, received epoch_tag=''"),
        ({"csv_path": "a.csv", "step_tag": 3}, TypeError,
         "LearningRateLogger: step_tag must be a str, received step_tag=3"),
        ({"csv_path": "a.csv", "step_tag": "lr", "epoch_tag": "lr"}, ValueError,
         "LearningRateLogger: step_tag must differ from epoch_tag (their x axes differ: "
         "steps, epochs), received step_tag='lr', epoch_tag='lr'"),
    ],
)
def test_bad_arguments(kwargs, error, message):
    with pytest.raises(error) as info:
        LearningRateLogger(**kwargs)
    assert str(info.value) == message


def test_update_freq_batch_logs_every_step(tmp_path):
    schedule = DropAt([5, 13], [0.4, 0.2, 0.1])
    log_dir = str(tmp_path / "tb")
    fit(make_model(keras.optimizers.SGD(schedule)),
        [LearningRateLogger(log_dir=log_dir, update_freq="batch")], epochs=2)
    steps = read_scalars(log_dir, "step_learning_rate")
    assert [s for s, _ in steps] == list(range(2 * STEPS_PER_EPOCH))
    assert [v for _, v in steps] == [lr(schedule, s) for s in range(2 * STEPS_PER_EPOCH)]


def test_a_second_fit_continues_the_epoch_count(tmp_path):
    """0.1 deleted the first fit's rows when a second fit counted from epoch 0
    again, while TensorBoard kept both: now both number on, the same way."""
    schedule = DropAt([12], [0.3, 0.03])
    csv_path, log_dir = tmp_path / "lr.csv", str(tmp_path / "tb")
    model = make_model(keras.optimizers.SGD(schedule))
    logger = LearningRateLogger(log_dir=log_dir, csv_path=csv_path)
    fit(model, [logger], epochs=2)
    fit(model, [logger], epochs=2)  # Keras counts 0, 1 again; the optimizer goes on.
    rows = read_csv(csv_path)
    assert [(e, s) for e, s, _ in rows] == [(0, 0), (1, 8), (2, 16), (3, 24)]
    assert [v for _, _, v in rows] == list(np.float32([0.3, 0.3, 0.03, 0.03]))
    assert last_per_step(read_scalars(log_dir, "learning_rate")) == [(e, v) for e, _, v in rows]
    # A new logger on the same file (a new notebook cell) continues it too.
    fit(model, [LearningRateLogger(csv_path=csv_path)], epochs=1)
    assert [(e, s) for e, s, _ in read_csv(csv_path)][-1] == (4, 32)


def test_two_loggers_on_one_file_write_each_row_once(tmp_path):
    """0.1 wrote every row twice."""
    csv_path = tmp_path / "lr.csv"
    model = make_model(keras.optimizers.SGD(DropAt([12], [0.3, 0.03])))
    fit(model, [LearningRateLogger(csv_path=csv_path), LearningRateLogger(csv_path=csv_path)],
        epochs=3)
    assert [(e, s) for e, s, _ in read_csv(csv_path)] == [(0, 0), (1, 8), (2, 16)]


def test_a_torn_last_row_is_dropped_not_appended_to(tmp_path):
    csv_path = tmp_path / "lr.csv"
    csv_path.write_text("epoch,step,learning_rate\n0,0,0.3\n1,8,0.")  # Killed mid-write.
    model = make_model(keras.optimizers.SGD(0.3))
    model.optimizer.iterations.assign(8)
    fit(model, [LearningRateLogger(csv_path=csv_path)], epochs=2, initial_epoch=1)
    assert csv_path.read_text() == "epoch,step,learning_rate\n0,0,0.3\n1,8,0.3\n"


@pytest.mark.parametrize("where", ["directory", "under_a_file"])
def test_unusable_csv_path_fails_at_train_begin_naming_it(tmp_path, where):
    """0.1 failed late with a raw OSError naming a .tmp file."""
    if where == "directory":
        path = tmp_path / "results"
        path.mkdir()
        expected = f"LearningRateLogger: csv_path must be a file path, received csv_path={str(path)!r}, a directory"
    else:
        (tmp_path / "a_file").write_text("x")
        path = tmp_path / "a_file" / "lr.csv"
        expected = (f"LearningRateLogger: csv_path must be a writable file path, received "
                    f"csv_path={str(path)!r} (")
    model = make_model(keras.optimizers.SGD(0.1))
    with pytest.raises(ValueError) as info:
        fit(model, [LearningRateLogger(csv_path=path)], epochs=1)
    assert str(info.value).startswith(expected)
    assert "\n" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["results"] if where == "directory" else ["a_file"])


def test_refuses_to_overwrite_a_foreign_csv(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text("a,b\n1,2\n")
    model = make_model(keras.optimizers.SGD(0.1))
    with pytest.raises(ValueError, match="csv_path must be a new file or a CSV"):
        fit(model, [LearningRateLogger(csv_path=path)], epochs=1)
    assert path.read_text() == "a,b\n1,2\n"


def test_tensorflow_is_needed_only_for_log_dir(tmp_path, monkeypatch):
    # No module-level TensorFlow import: kschedules must import on Keras's
    # JAX backend without TensorFlow installed.
    tree = ast.parse(inspect.getsource(callbacks_module))
    top_level = [
        alias.name
        for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    ] + [node.module for node in tree.body if isinstance(node, ast.ImportFrom)]
    assert not any(name and name.startswith("tensorflow") for name in top_level)

    monkeypatch.setitem(sys.modules, "tensorflow", None)  # "not installed"
    with pytest.raises(ImportError, match="log_dir needs TensorFlow"):
        LearningRateLogger(log_dir=str(tmp_path / "tb"))
    logger = LearningRateLogger(csv_path=tmp_path / "lr.csv")
    monkeypatch.undo()
    fit(make_model(keras.optimizers.SGD(0.25)), [logger], epochs=1)
    assert read_csv(tmp_path / "lr.csv") == [(0, 0, np.float32(0.25))]


JAX_CHILD = textwrap.dedent("""
    import json, os, sys
    import keras, numpy as np
    from kschedules.callbacks import LearningRateLogger
    assert keras.backend.backend() == "jax", keras.backend.backend()
    out, config = sys.argv[1], json.loads(sys.argv[2])
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = np.random.default_rng(1).normal(size=(64, 1)).astype("float32")

    def model_with(optimizer):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        model.compile(optimizer=optimizer, loss="mse")
        return model

    def schedule():
        return keras.saving.deserialize_keras_object(config)

    def count_state_syncs(model):
        # fit() on JAX syncs the training state back to the variables once
        # per epoch; a callback that touches `self.model` forces more.
        syncs, sync = [], model.jax_state_sync
        def counting():
            syncs.append(not model._jax_state_synced)
            sync()
        model.jax_state_sync = counting
        return syncs

    # CSV only: TensorFlow is never imported.
    csv_path = os.path.join(out, "lr.csv")
    model = model_with(keras.optimizers.SGD(schedule()))
    syncs = count_state_syncs(model)
    model.fit(x, y, batch_size=8, epochs=3, verbose=0,
              callbacks=[LearningRateLogger(csv_path=csv_path)])
    tensorflow_imported = "tensorflow" in sys.modules

    # Per-step TensorBoard values mid-epoch, with skipped steps (a huge loss
    # scale and a large loss overflow the first gradients).
    class Probe(keras.callbacks.Callback):
        iterations = []
        def on_epoch_end(self, epoch, logs=None):
            self.iterations.append(int(self.model.optimizer.iterations.numpy()))
    keras.utils.set_random_seed(0)  # (imports TensorFlow when installed)
    optimizer = keras.optimizers.LossScaleOptimizer(
        keras.optimizers.SGD(schedule()), initial_scale=2.0**127)
    logger = LearningRateLogger(log_dir=os.path.join(out, "tb"), update_freq=2)
    model_with(optimizer).fit(x, 30 * y, batch_size=8, epochs=3, verbose=0,
                              shuffle=False, callbacks=[logger, Probe()])
    print(json.dumps({"tensorflow_imported": tensorflow_imported,
                      "state_syncs": sum(syncs),
                      "iterations": Probe.iterations}))
""")


def test_jax_backend(tmp_path):
    # The GPU path runs Keras on JAX, where fit() keeps the optimizer state
    # outside its variables until the epoch ends.
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
        [11, 15], [0.1, 0.05, 0.02]
    )
    config = json.dumps(keras.saving.serialize_keras_object(schedule))
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run(
        [sys.executable, "-c", JAX_CHILD, str(tmp_path), config],
        capture_output=True, text=True, env=env, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    output = json.loads(result.stdout.strip().splitlines()[-1])

    assert not output["tensorflow_imported"]
    assert output["state_syncs"] == 3  # fit()'s own, one per epoch
    f32 = np.float32
    assert read_csv(tmp_path / "lr.csv") == [
        (0, 0, f32(0.1)), (1, 8, f32(0.1)), (2, 16, f32(0.02))
    ]
    iterations = output["iterations"]
    assert iterations[-1] < 3 * STEPS_PER_EPOCH  # steps were skipped
    assert read_scalars(str(tmp_path / "tb"), "learning_rate") == [
        (e, lr(schedule, s)) for e, s in enumerate([0] + iterations[:-1])
    ]
    steps = read_scalars(str(tmp_path / "tb"), "step_learning_rate")
    assert [s for s, _ in steps] == list(range(0, iterations[-1], 2))
    assert [v for _, v in steps] == [lr(schedule, s) for s, _ in steps]

"""kschedules.ReduceLROnPlateau: Keras's timing, on top of any schedule, saved with the model."""

import json
import os
import subprocess
import sys
import zlib

import keras
import numpy as np
import pytest

import kschedules as ks
import plateau_scenarios as scenarios

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/


def compiled(learning_rate):
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate), loss="mse")
    return model


def drive(callback, model, sequence, monitor="val_loss"):
    """The LR after each epoch's end, with `sequence` as the monitored values."""
    callback.set_model(model)
    callback.on_train_begin()
    lrs = []
    for epoch, value in enumerate(sequence):
        callback.on_epoch_end(epoch, {monitor: value})
        lrs.append(float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)))
    return lrs


def reductions(lrs, first):
    return [e for e, (a, b) in enumerate(zip([first] + lrs, lrs)) if b != a]


SETTINGS = [
    dict(patience=0), dict(patience=1), dict(patience=2, cooldown=1), dict(patience=3, cooldown=2),
    dict(patience=1, mode="max"), dict(patience=2, min_delta=0.5), dict(patience=1, min_lr=0.02),
    dict(patience=1, factor=0.5, min_lr=0.013, cooldown=1),
]


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()))
def test_reductions_happen_at_keras_epochs(settings):
    rng = np.random.default_rng(zlib.crc32(repr(settings).encode()))
    # Plateaus and improvements: a noisy staircase.
    sequence = list(np.repeat(rng.uniform(0, 3, 10), rng.integers(1, 5, 10)) + rng.uniform(0, 0.3, 1))
    sequence = [float(v) for v in sequence[:30]]
    keras_lrs = drive(keras.callbacks.ReduceLROnPlateau(**settings), compiled(0.1), sequence)
    ours_float = drive(ks.ReduceLROnPlateau(**settings), compiled(0.1), sequence)
    assert ours_float == keras_lrs
    assert len(reductions(keras_lrs, 0.1)) >= 2

    # With a schedule: the same epochs, the rate max(scale * s, min(min_lr, s)).
    model = compiled(ks.Constant(0.1))
    ours = drive(ks.ReduceLROnPlateau(**settings), model, sequence)
    assert reductions(ours, 0.1) == reductions(keras_lrs, 0.1)
    np.testing.assert_allclose(ours, keras_lrs, rtol=1e-6)
    assert isinstance(model.optimizer._learning_rate, ks.PlateauScaled)


def test_keras_own_callback_refuses_a_schedule_and_ours_does_not():
    sequence = [1.0, 1.0]  # one reduction, after the second epoch
    with pytest.raises(TypeError, match="not settable"):
        drive(keras.callbacks.ReduceLROnPlateau(patience=1), compiled(ks.CosineAnnealing(0.1, 100)), sequence)
    model = compiled(ks.CosineAnnealing(0.1, 100))
    drive(ks.ReduceLROnPlateau(patience=1), model, sequence)
    assert model.optimizer._learning_rate.scale == pytest.approx(0.1)


def test_plateau_scaled_keeps_the_shape_and_the_floor():
    inner = ks.CosineAnnealing(0.1, 100)
    schedule = ks.PlateauScaled(inner, min_learning_rate=0.004, scale=0.1)
    steps = np.arange(101)
    s = keras.ops.convert_to_numpy(inner(steps))
    got = keras.ops.convert_to_numpy(schedule(steps))
    np.testing.assert_allclose(got, np.maximum(np.float32(0.1) * s, np.minimum(np.float32(0.004), s)), rtol=1e-7)
    assert got.min() == s[-1] == 0.0  # the schedule itself may go below the floor
    assert (got[s >= 0.004] >= np.float32(0.004)).all()  # the reductions never do
    same = ks.PlateauScaled(inner)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(same(steps)), s)  # scale 1: exactly s

    config = keras.saving.serialize_keras_object(schedule)
    again = keras.saving.deserialize_keras_object(config)
    assert again == schedule and again.scale == pytest.approx(0.1)
    assert repr(schedule) == "PlateauScaled(CosineAnnealing(initial_learning_rate=0.1, decay_steps=100), " \
                             "min_learning_rate=0.004, scale=0.10000000149011612)"


@pytest.mark.parametrize("kwargs, message", [
    (dict(factor=1.0), "ReduceLROnPlateau: factor must be > 0 and < 1, received factor=1.0"),
    (dict(factor=0), "ReduceLROnPlateau: factor must be > 0 and < 1, received factor=0"),
    (dict(patience=-1), "ReduceLROnPlateau: patience must be an integer in [0, 2147483647], received patience=-1"),
    (dict(cooldown=1.5), "ReduceLROnPlateau: cooldown must be an integer in [0, 2147483647], received cooldown=1.5"),
    (dict(min_lr=-1e-3), "ReduceLROnPlateau: min_lr must be >= 0.0, received min_lr=-0.001"),
    (dict(mode="up"), "ReduceLROnPlateau: mode must be one of 'auto', 'min', 'max', received mode='up'"),
])
def test_bad_arguments_are_one_line_errors(kwargs, message):
    with pytest.raises(ValueError) as error:
        ks.ReduceLROnPlateau(**kwargs)
    assert str(error.value) == message


def test_another_floor_on_a_wrapped_optimizer_is_refused():
    model = compiled(ks.CosineAnnealing(0.1, 100))
    drive(ks.ReduceLROnPlateau(patience=1, min_lr=0.01), model, [1.0, 1.0])
    with pytest.raises(ValueError, match=r"min_lr must equal the optimizer's PlateauScaled "
                                         r"min_learning_rate=0.01, received min_lr=0.0"):
        ks.ReduceLROnPlateau().set_model(model)


def test_a_second_fit_starts_the_counters_afresh_and_keeps_the_scale():
    model = compiled(ks.CosineAnnealing(0.1, 100))
    callback = ks.ReduceLROnPlateau(patience=2)
    drive(callback, model, [1.0, 1.0, 1.0, 1.0])  # reduced after epoch 2, then wait 1
    assert callback.wait == 1
    scale = model.optimizer._learning_rate.scale
    callback.set_model(model)  # what the next fit does
    assert (callback.best, callback.wait, callback.cooldown_counter) == (None, 0, 0)
    assert model.optimizer._learning_rate.scale == scale == pytest.approx(0.1)


def test_no_retracing_when_the_scale_changes():
    tf = pytest.importorskip("tensorflow")
    calls = []

    class Counting(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            if not tf.executing_eagerly():  # traced into the train step
                calls.append(1)
            return keras.ops.cast(0.1, "float32")

    def fit(callbacks):
        calls.clear()
        model = compiled(Counting())
        x = np.ones((8, 1), "float32")
        model.fit(x, x, batch_size=2, epochs=6, verbose=0, callbacks=callbacks)
        return len(calls), model

    without, _ = fit([])
    with_reductions, model = fit([scenarios.Signal(), ks.ReduceLROnPlateau(monitor="signal", mode="min", patience=0)])
    assert model.optimizer._learning_rate.scale < 1e-3  # reduced at every epoch end
    assert with_reductions == without == 1  # one trace of the train step


def momentum_sgd_weights(lrs, w0=2.0, momentum=0.9):
    """Keras's SGD with momentum on a gradient of 1: the weight after each step."""
    w, m, out = np.float32(w0), np.float32(0.0), []
    for lr in lrs:
        m = np.float32(momentum) * m - np.float32(lr)
        w = w + m
        out.append(float(w))
    return out


def check(results):
    run = results["uninterrupted"]
    assert len(run["lrs"]) == scenarios.EPOCHS * scenarios.STEPS
    assert results["backup"] == run  # every step's LR and every epoch's weight
    assert results["keras_file"] == run
    assert results["load_warnings"] == []  # the optimizer's own variables were loaded
    # The LRs recorded are the ones applied (the weights follow from them).
    per_step = momentum_sgd_weights(run["lrs"])
    np.testing.assert_allclose(run["weights"], per_step[scenarios.STEPS - 1::scenarios.STEPS], rtol=1e-5)
    # The logger's epoch rows are the scaled rates.
    assert results["logged"] == pytest.approx(run["lrs"][::scenarios.STEPS], rel=1e-7)
    # Reductions at the end of epochs 3, 6 and 8; not after 11, where the next
    # rate, s(48) = 0.001, is already below the floor 0.002 (wait stays 2).
    cosine = ks.CosineAnnealing(0.1, decay_steps=scenarios.EPOCHS * scenarios.STEPS, min_learning_rate=0.001)
    s = keras.ops.convert_to_numpy(cosine(np.arange(len(run["lrs"]))))
    scale = np.float32([0.5 ** sum(e > r for r in (3, 6, 8)) for e in range(scenarios.EPOCHS)])
    expected = np.maximum(np.repeat(scale, scenarios.STEPS) * s, np.minimum(np.float32(0.002), s))
    np.testing.assert_allclose(run["lrs"], expected, rtol=1e-6)
    assert run["lrs"].count(float(np.float32(0.002))) >= 4  # the floor holds the reduced rate up
    config = results["loaded_schedule"]
    assert (config["scale"], config["best"], config["wait"], config["cooldown_counter"]) == (0.125, 2.0, 2, 0)


def test_resumed_and_reloaded_runs_apply_the_uninterrupted_lrs(tmp_path):
    check(scenarios.run(str(tmp_path)))


def test_on_jax(tmp_path):
    # JAX's train step sees only the optimizer's variables: the scale is one of
    # them there, left out of what the optimizer saves.
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "PYTHONPATH": HERE}
    result = subprocess.run([sys.executable, os.path.join(HERE, "plateau_scenarios.py"), str(tmp_path)],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(result.stdout.strip().splitlines()[-1])
    assert results.pop("backend") == "jax"
    check(results)

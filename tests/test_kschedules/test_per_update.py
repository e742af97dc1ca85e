"""PerUpdate under Keras's gradient accumulation: the schedule counts updates.

A linear model whose gradient is known exactly (loss = mean(w * x) with x = 1,
so dloss/dw = 1 on every batch) trained by SGD without momentum: after update
u the weight must be w0 - sum(schedule(j) for j < u). Keras 3 calls the
schedule with its micro-step counter, so without PerUpdate the same schedule
runs k times too fast.
"""

import csv

import keras
import numpy as np
import pytest

import kschedules as ks

K = 3  # micro-steps (batches) per update
UPDATES = 8


class WeightsAfterUpdates(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights = []

    def on_train_batch_end(self, batch, logs=None):
        if (batch + 1) % K == 0:
            self.weights.append(float(self.model.get_weights()[0][0, 0]))


def train(schedule, logger=None):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(
        1, use_bias=False, kernel_initializer=keras.initializers.Constant(2.0))])
    model.compile(optimizer=keras.optimizers.SGD(schedule, gradient_accumulation_steps=K),
                  loss=lambda y_true, y_pred: keras.ops.mean(y_pred))
    recorder = WeightsAfterUpdates()
    x = np.ones((K * UPDATES, 1), "float32")
    callbacks = [recorder] + ([logger] if logger else [])
    model.fit(x, x, batch_size=1, epochs=1, shuffle=False, verbose=0, callbacks=callbacks)
    return recorder.weights, model


def expected_weights(values):
    return [2.0 - sum(values[:u + 1]) for u in range(UPDATES)]


SCHEDULE = ks.StepDecay(0.1, [2, 5], factor=0.5)  # in updates
PER_UPDATE_LR = [0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025]


def test_per_update_runs_the_schedule_on_updates():
    weights, _ = train(ks.PerUpdate(SCHEDULE, K))
    np.testing.assert_allclose(weights, expected_weights(PER_UPDATE_LR), rtol=1e-6)


def test_without_it_keras_runs_the_schedule_k_times_too_fast():
    weights, _ = train(SCHEDULE)
    # Update u is applied at micro-step u * K + K - 1: StepDecay's boundaries
    # 2 and 5 are passed by update 0 and 1.
    too_fast = [0.1 * 0.5 ** sum(b <= u * K + K - 1 for b in (2, 5)) for u in range(UPDATES)]
    np.testing.assert_allclose(weights, expected_weights(too_fast), rtol=1e-6)
    assert weights != pytest.approx(expected_weights(PER_UPDATE_LR))


def test_logger_records_updates_and_their_rates(tmp_path):
    path = tmp_path / "lr.csv"
    logger = ks.LearningRateLogger(csv_path=path)
    _, model = train(ks.PerUpdate(SCHEDULE, K), logger)
    assert int(model.optimizer.iterations.numpy()) == UPDATES
    with open(path) as f:
        rows = list(csv.reader(f))
    assert rows == [["epoch", "step", "learning_rate"], ["0", "0", "0.1"]]
    # A second epoch starts at update 8: 0.025.
    model.fit(np.ones((K * 2, 1), "float32"), np.ones((K * 2, 1), "float32"), batch_size=1,
              epochs=1, verbose=0, shuffle=False, callbacks=[logger])
    with open(path) as f:
        assert list(csv.reader(f))[-1] == ["1", "8", "0.025"]


def test_serialization_keeps_the_accumulation():
    schedule = ks.PerUpdate(ks.Warmup(SCHEDULE, 2), K)
    rebuilt = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert rebuilt == schedule
    assert repr(rebuilt) == (
        "PerUpdate(Warmup(StepDecay(initial_learning_rate=0.1, boundaries=[2, 5], factor=0.5), "
        "warmup_steps=2), gradient_accumulation_steps=3)")

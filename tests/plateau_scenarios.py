"""Trainings with `kschedules.ReduceLROnPlateau`, for tests/test_kschedules/test_plateau.py, on any backend.

The monitored value is injected: `Signal` puts `SIGNAL[epoch]` into the logs
before the plateau callback reads them, so the reductions are known in
advance whatever the training does. The model is a linear one whose loss is
its weight (gradient 1 on every step), trained by SGD with momentum, so the
weights after an epoch depend on every learning rate applied so far and on
the optimizer's momentum.

`run(out_dir)` returns, as JSON-ready lists, the learning rate of every step
and the weight after every epoch of:

- "uninterrupted": EPOCHS epochs in one fit;
- "backup": the same with keras.callbacks.BackupAndRestore, stopped by an
  exception at the start of epoch STOP and resumed by a new model, optimizer
  and callback;
- "keras_file": the same saved to `.keras` at the end of epoch SAVE - 1
  (inside fit, as ModelCheckpoint would), loaded, and trained on from epoch
  SAVE with a new callback;
plus the warnings the loading gave and the logger's CSV rows.
"""

import csv
import json
import os
import sys
import warnings

import keras
import numpy as np

import kschedules as ks

EPOCHS = 12
STEPS = 4  # per epoch
# min mode, patience 2, cooldown 1: reductions at the end of epochs 3, 6, 8
# and 11 (0-based). After epoch 5 the callback waits (wait=1); after epoch 6
# it cools down (cooldown_counter=1): the two interruptions below.
STOP = 6
SAVE = 7
SIGNAL = [5.0, 4.0, 4.0, 4.0, 3.0, 3.0, 3.0, 3.0, 3.0, 2.0, 2.0, 2.0]
PLATEAU = dict(monitor="signal", factor=0.5, patience=2, cooldown=1, mode="min", min_lr=0.002)


class Signal(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        logs["signal"] = SIGNAL[epoch]


class Record(keras.callbacks.Callback):
    def __init__(self, lrs, weights):
        super().__init__()
        self.lrs, self.weights = lrs, weights

    def on_train_batch_begin(self, batch, logs=None):
        self.lrs.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(float(self.model.get_weights()[0][0, 0]))


class StopAt(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt("stopped")


class SaveAt(keras.callbacks.Callback):
    def __init__(self, epoch, path):
        super().__init__()
        self.epoch, self.path = epoch, path

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            self.model.save(self.path)


@keras.saving.register_keras_serializable(package="tests")
def weight_loss(y_true, y_pred):
    return keras.ops.mean(y_pred)


def model():
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((1,)), keras.layers.Dense(
        1, use_bias=False, kernel_initializer=keras.initializers.Constant(2.0))])
    schedule = ks.CosineAnnealing(0.1, decay_steps=EPOCHS * STEPS, min_learning_rate=0.001)
    net.compile(optimizer=keras.optimizers.SGD(schedule, momentum=0.9),
                loss=weight_loss)
    return net


def fit(net, callbacks, initial_epoch=0):
    x = np.ones((STEPS, 1), "float32")
    net.fit(x, x, batch_size=1, epochs=EPOCHS, initial_epoch=initial_epoch, shuffle=False, verbose=0,
            callbacks=callbacks)


def run(out_dir):
    results = {}
    lrs, weights = [], []
    logger = ks.LearningRateLogger(csv_path=os.path.join(out_dir, "lr.csv"))
    fit(model(), [Signal(), ks.ReduceLROnPlateau(**PLATEAU), Record(lrs, weights), logger])
    results["uninterrupted"] = {"lrs": lrs, "weights": weights}
    with open(os.path.join(out_dir, "lr.csv")) as f:
        results["logged"] = [float(row["learning_rate"]) for row in csv.DictReader(f)]

    lrs, weights = [], []
    backup = os.path.join(out_dir, "backup")
    try:
        fit(model(), [Signal(), ks.ReduceLROnPlateau(**PLATEAU), Record(lrs, weights),
                      keras.callbacks.BackupAndRestore(backup), StopAt(STOP)])
        raise AssertionError("the run was not stopped")
    except KeyboardInterrupt:
        pass
    # A new process would rebuild everything: so does this. The plateau
    # callback comes after BackupAndRestore, whose restore must still win.
    fit(model(), [Signal(), keras.callbacks.BackupAndRestore(backup), ks.ReduceLROnPlateau(**PLATEAU),
                  Record(lrs, weights)])
    results["backup"] = {"lrs": lrs, "weights": weights}

    lrs, weights = [], []
    path = os.path.join(out_dir, "model.keras")
    try:
        fit(model(), [Signal(), ks.ReduceLROnPlateau(**PLATEAU), Record(lrs, weights),
                      SaveAt(SAVE - 1, path), StopAt(SAVE)])
    except KeyboardInterrupt:
        pass
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = keras.models.load_model(path)
    fit(loaded, [Signal(), ks.ReduceLROnPlateau(**PLATEAU), Record(lrs, weights)], initial_epoch=SAVE)
    results["keras_file"] = {"lrs": lrs, "weights": weights}
    results["load_warnings"] = [str(w.message) for w in caught if "optimizer" in str(w.message)]
    results["loaded_schedule"] = keras.saving.serialize_keras_object(loaded.optimizer._learning_rate)["config"]
    return results


if __name__ == "__main__":
    print(json.dumps({"backend": keras.backend.backend(), **run(sys.argv[1])}))

"""Reduce on plateau on top of any schedule: `ReduceLROnPlateau` and `PlateauScaled`.

Keras's `keras.callbacks.ReduceLROnPlateau` assigns the optimizer a new float
learning rate, which an optimizer holding a `LearningRateSchedule` refuses
(TypeError, "learning rate is not settable"; tensorflow/tensorflow#36612 for
tf.keras, still so in Keras 3.15). optax composes the two instead
(`contrib.reduce_on_plateau` scales the updates); here the callback wraps the
optimizer's schedule in `PlateauScaled`, whose scale it multiplies by
`factor` at each reduction:

    lr(step) = max(scale * s(step), min(min_lr, s(step)))

The scale is a variable read inside the compiled train step, so a reduction
costs no retracing and no per-step host work.

Where the state lives, so that every way of saving keeps it:

- `PlateauScaled.get_config()` holds the current scale and the callback's
  counters (best, wait, cooldown), so a model saved to `.keras` and loaded
  carries them in its optimizer's config;
- the optimizer gets an attribute `kschedules_plateau` (a layer holding the
  same four values as variables), which Keras's weights files save and load
  under `optimizer/kschedules_plateau`: `keras.callbacks.BackupAndRestore`,
  `model.save_weights` and the `.keras` weights keep it; a file without it
  loads, keeping the current values.
- On JAX only, the scale must also be one of the optimizer's variables (the
  train step sees no other state); the optimizer is then given its own
  `save_own_variables`/`load_own_variables` that leave the scale out, so its
  saved variables stay those of a plain optimizer and a `.keras` file loads
  into one.
"""

import math
import warnings

import keras
import numpy as np
from keras import ops

from kschedules import _checks, _schedule
from kschedules.wrappers import _as_schedule, _serialize, _Wrapper

ATTRIBUTE = "kschedules_plateau"


class _PlateauState(keras.layers.Layer):
    """The four values of a plateau reduction, as variables Keras's weights files save.

    `best` is NaN until the monitored value is first seen.
    """

    def __init__(self, scale=1.0, best=None, wait=0, cooldown_counter=0, **kwargs):
        super().__init__(name=kwargs.pop("name", "kschedules_plateau"), trainable=False, **kwargs)
        initial = {
            "scale": (scale, "float32"),
            "best": (math.nan if best is None else best, "float32"),
            "wait": (wait, "int32"),
            "cooldown_counter": (cooldown_counter, "int32"),
        }
        for name, (value, dtype) in initial.items():
            variable = self.add_weight(
                shape=(), dtype=dtype, initializer=keras.initializers.Constant(value),
                trainable=False, name=name, aggregation="only_first_replica",
            )
            setattr(self, "_" + name, variable)
        self.built = True

    def read(self):
        """(scale, best or None, wait, cooldown_counter) as Python numbers."""
        best = float(self._best.numpy())
        return (
            float(self._scale.numpy()),
            None if math.isnan(best) else best,
            int(self._wait.numpy()),
            int(self._cooldown_counter.numpy()),
        )

    def write(self, scale=None, best=None, wait=None, cooldown_counter=None, clear_best=False):
        if scale is not None:
            self._scale.assign(np.float32(scale))
        if clear_best or best is not None:
            self._best.assign(np.float32(math.nan if clear_best else best))
        if wait is not None:
            self._wait.assign(np.int32(wait))
        if cooldown_counter is not None:
            self._cooldown_counter.assign(np.int32(cooldown_counter))

    def load_own_variables(self, store):
        # A weights file saved without a plateau callback keeps the current values.
        if len(store.keys()) == 0:
            return
        super().load_own_variables(store)


@keras.saving.register_keras_serializable(package="kschedules")
class PlateauScaled(_Wrapper):
    """A schedule scaled down by plateau reductions, never below a floor.

    ```
    s = the wrapped schedule
    lr(step) = max(scale * s(step), min(min_learning_rate, s(step)))
    ```

    `ReduceLROnPlateau` puts one in the optimizer and multiplies `scale` by
    its factor at each reduction: the schedule keeps its shape, and the
    reductions never take the rate below `min_learning_rate` (the schedule
    itself may go lower). With `scale=1` it is the wrapped schedule exactly.
    The state arguments (`scale`, `best`, `wait`, `cooldown_counter`) are
    those a saved model restores; `get_config()` returns their current
    values.

    Args:
        schedule: The schedule to scale: a `LearningRateSchedule` or a
            float >= 0.
        min_learning_rate: The floor of the reductions, >= 0. Defaults to 0.
        scale: The current scale, in (0, 1]. Defaults to 1.
        best: The best monitored value so far, or None. Defaults to None.
        wait: Epochs without improvement so far, >= 0. Defaults to 0.
        cooldown_counter: Epochs of cooldown left, >= 0. Defaults to 0.

    Returns:
        A schedule; calling it with a step returns a float32 tensor of the
        step's shape.

    Example:

    >>> from kschedules.cosine import CosineAnnealing
    >>> schedule = PlateauScaled(CosineAnnealing(0.1, 100), min_learning_rate=0.004, scale=0.1)
    >>> [round(float(schedule(step)), 6) for step in (0, 50, 99)]
    [0.01, 0.005, 0.000025]
    """

    def __init__(
        self,
        schedule,
        min_learning_rate: float = 0.0,
        scale: float = 1.0,
        best=None,
        wait: int = 0,
        cooldown_counter: int = 0,
    ):
        name = "PlateauScaled"
        self.schedule = _checks.schedule(name, "schedule", schedule)
        self.min_learning_rate = _checks.real(name, "min_learning_rate", min_learning_rate, minimum=0.0)
        scale = _checks.real(name, "scale", scale, minimum=0.0, exclusive=True, maximum=1.0)
        best = None if best is None else _checks.real(name, "best", best)
        wait = _checks.steps(name, "wait", wait, minimum=0)
        cooldown_counter = _checks.steps(name, "cooldown_counter", cooldown_counter, minimum=0)
        self._inner = _as_schedule(self.schedule)
        self.state = _PlateauState(scale, best, wait, cooldown_counter)
        # Counters given here (a loaded model's) are kept by the first
        # ReduceLROnPlateau that adopts this schedule; see its `set_model`.
        self._restored = (best is not None) or wait > 0 or cooldown_counter > 0 or scale != 1.0

    # The state arguments, read from the variables (for repr and get_config).
    @property
    def scale(self):
        return self.state.read()[0]

    @property
    def best(self):
        return self.state.read()[1]

    @property
    def wait(self):
        return self.state.read()[2]

    @property
    def cooldown_counter(self):
        return self.state.read()[3]

    def __call__(self, step):
        value = _schedule.to_float(self._inner(_schedule.as_step(step)))
        scaled = value * ops.cast(self.state._scale, "float32")
        return ops.maximum(scaled, ops.minimum(ops.cast(self.min_learning_rate, "float32"), value))

    def get_config(self):
        scale, best, wait, cooldown_counter = self.state.read()
        return {
            "schedule": _serialize(self.schedule),
            "min_learning_rate": self.min_learning_rate,
            "scale": scale,
            "best": best,
            "wait": wait,
            "cooldown_counter": cooldown_counter,
        }


class ReduceLROnPlateau(keras.callbacks.ReduceLROnPlateau):
    """Keras's `ReduceLROnPlateau`, also for an optimizer that holds a schedule.

    Same arguments and timing as `keras.callbacks.ReduceLROnPlateau`: after
    `patience` epochs without an improvement of `monitor` by more than
    `min_delta`, the learning rate is reduced by `factor`, then `cooldown`
    epochs pass before counting again; the counters start afresh at each
    `fit`.

    - With a float learning rate it is Keras's callback: the rate becomes
      `max(rate * factor, min_lr)` while above `min_lr`.
    - With a schedule s (kschedules', Keras's or a user's) the optimizer's
      schedule becomes `PlateauScaled(s, min_lr)`, and each reduction
      multiplies its scale by `factor`: the rate is
      `max(scale * s(step), min(min_lr, s(step)))`. The schedule keeps its
      shape; the reductions stop taking effect at `min_lr`. As in Keras, a
      reduction happens only while the rate of the next step is above
      `min_lr`.

    The state (scale, best value, wait and cooldown counters) is saved with
    the model's weights and in its `.keras` file, so a run resumed by
    `keras.callbacks.BackupAndRestore`, or a loaded model trained on with a
    new `ReduceLROnPlateau`, applies the learning rate the uninterrupted run
    would at every step. `LearningRateLogger` records the scaled rate.
    `logs["learning_rate"]` is the rate at the epoch's last step, as with
    Keras's callback.

    Args:
        monitor: The quantity in `logs` to monitor. Defaults to `"val_loss"`.
        factor: The reduction, in (0, 1). Defaults to 0.1.
        patience: Epochs without improvement before a reduction, >= 0.
            Defaults to 10.
        verbose: 0 quiet, 1 a line per reduction. Defaults to 0.
        mode: `"auto"`, `"min"` or `"max"`, as in Keras. Defaults to `"auto"`.
        min_delta: The smallest change that counts as an improvement.
            Defaults to 1e-4.
        cooldown: Epochs to wait after a reduction before counting again,
            >= 0. Defaults to 0.
        min_lr: The floor of the reductions, >= 0. Defaults to 0.

    Raises:
        ValueError: when training starts, if the optimizer already holds a
            `PlateauScaled` with another floor.

    Example:

    >>> import keras
    >>> from kschedules.cosine import CosineAnnealing
    >>> optimizer = keras.optimizers.SGD(CosineAnnealing(0.1, decay_steps=1000))
    >>> callback = ReduceLROnPlateau(monitor="loss", factor=0.5, patience=2)
    """

    def __init__(
        self,
        monitor="val_loss",
        factor=0.1,
        patience=10,
        verbose=0,
        mode="auto",
        min_delta=1e-4,
        cooldown=0,
        min_lr=0.0,
    ):
        name = "ReduceLROnPlateau"
        given, factor = factor, _checks.real(name, "factor", factor)
        if not 0.0 < factor < 1.0:
            raise ValueError(f"{name}: factor must be > 0 and < 1, received factor={given!r}")
        patience = _checks.steps(name, "patience", patience, minimum=0)
        cooldown = _checks.steps(name, "cooldown", cooldown, minimum=0)
        min_lr = _checks.real(name, "min_lr", min_lr, minimum=0.0)
        mode = _checks.choice(name, "mode", mode, ("auto", "min", "max"))
        self.__dict__["_state"] = None  # _PlateauState of the optimizer once training starts
        super().__init__(
            monitor=monitor, factor=factor, patience=patience, verbose=verbose, mode=mode,
            min_delta=_checks.real(name, "min_delta", min_delta), cooldown=cooldown, min_lr=min_lr,
        )

    # Keras's callback keeps best, wait and cooldown_counter as attributes;
    # here they live in the optimizer's state (saved with the model).
    def _get(self, index, default):
        return default if self._state is None else self._state.read()[index]

    best = property(lambda self: self._get(1, self.__dict__.get("_best")),
                    lambda self, v: self._set("best", v))
    wait = property(lambda self: self._get(2, self.__dict__.get("_wait", 0)),
                    lambda self, v: self._set("wait", v))
    cooldown_counter = property(lambda self: self._get(3, self.__dict__.get("_cooldown_counter", 0)),
                                lambda self, v: self._set("cooldown_counter", v))

    def _set(self, name, value):
        if self._state is None:
            self.__dict__["_" + name] = value
        elif name == "best" and value is None:
            self._state.write(clear_best=True)
        else:
            self._state.write(**{name: value})

    def set_model(self, model):
        super().set_model(model)
        optimizer = _inner_optimizer(model)
        if optimizer is None:
            return
        schedule = getattr(optimizer, "_learning_rate", None)  # Keras 3.15: no public getter
        fresh = True
        if isinstance(schedule, PlateauScaled):
            if schedule.min_learning_rate != self.min_lr:
                raise ValueError(
                    "ReduceLROnPlateau: min_lr must equal the optimizer's PlateauScaled min_learning_rate="
                    f"{schedule.min_learning_rate!r}, received min_lr={self.min_lr!r}"
                )
            fresh = not schedule._restored
            schedule._restored = False
            state = schedule.state
        elif isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            with _variable_scope(model):
                schedule = PlateauScaled(schedule, self.min_lr)
            optimizer.learning_rate = schedule
            state = schedule.state
        else:  # a float learning rate: Keras's callback, with its counters saved
            state = getattr(optimizer, ATTRIBUTE, None)
            if state is None:
                with _variable_scope(model):
                    state = _PlateauState()
        setattr(optimizer, ATTRIBUTE, state)
        if keras.backend.backend() == "jax" and isinstance(schedule, PlateauScaled):
            _track_outside_saving(optimizer, state._scale)
        self._state = state
        if fresh:  # Keras's `_reset`, done here so that a restore in on_train_begin wins
            state.write(wait=0, cooldown_counter=0, clear_best=True)

    def on_train_begin(self, logs=None):
        # Keras resets the counters here; that is done in set_model, before
        # BackupAndRestore (whatever the callbacks' order) restores them.
        pass

    # Keras 3.15's callback calls this private method to reduce one
    # optimizer; its `on_epoch_end` (the counting, Keras's timing) is kept as
    # is. tests/test_kschedules/test_plateau.py compares the two, so a Keras that renames it
    # fails there.
    def _reduce_optimizer_lr(self, optimizer, epoch, name=""):
        optimizer = _unwrap(optimizer)
        schedule = getattr(optimizer, "_learning_rate", None)  # Keras 3.15: no public getter
        if not isinstance(schedule, PlateauScaled):
            return super()._reduce_optimizer_lr(optimizer, epoch, name)
        # Keras's rule, on the rate the next step applies: reduce while it is
        # above min_lr (below, a smaller scale would not change it).
        if float(ops.convert_to_numpy(optimizer.learning_rate)) <= np.float32(self.min_lr):
            return False
        scale = schedule.state.read()[0] * self.factor
        schedule.state.write(scale=scale)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing the schedule's scale to {scale:g}.")
        return True


def _unwrap(optimizer):
    # A LossScaleOptimizer's own learning rate is a dummy; the inner one's is used.
    while hasattr(optimizer, "inner_optimizer"):
        optimizer = optimizer.inner_optimizer
    return optimizer


def _inner_optimizer(model):
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or hasattr(optimizer, "optimizers"):
        return None  # no optimizer yet, or several (Keras's callback handles those)
    return _unwrap(optimizer)


def _variable_scope(model):
    """The model's distribution scope on TensorFlow (variables made in set_model)."""
    strategy = getattr(model, "distribute_strategy", None)
    if strategy is None:
        import contextlib

        return contextlib.nullcontext()
    return strategy.scope()


def _track_outside_saving(optimizer, variable):
    """Makes `variable` one of the optimizer's (JAX) without changing what it saves.

    Keras 3.15's JAX train step passes only the optimizer's variables into the
    optimizer update, so a schedule reading any other variable would see its
    value at tracing time. The saved variables stay those of a plain optimizer
    (a `.keras` file compares their count with the loading optimizer's); the
    variable itself is saved by the `kschedules_plateau` state.
    """
    if any(v is variable for v in optimizer.variables):
        return
    optimizer._track_variable(variable)  # Keras 3.15: no public way to add one

    def own():
        return [v for v in optimizer.variables if v is not variable]

    def save_own_variables(store):
        for i, v in enumerate(own()):
            store[str(i)] = v.numpy()

    def load_own_variables(store):
        variables = own()
        if len(store.keys()) != len(variables):
            warnings.warn(
                f"Skipping variable loading for optimizer '{optimizer.name}', because it has "
                f"{len(variables)} variables whereas the saved optimizer has {len(store.keys())} variables.",
                stacklevel=2,
            )
            return
        for i, v in enumerate(variables):
            v.assign(store[str(i)])

    optimizer.save_own_variables = save_own_variables
    optimizer.load_own_variables = load_own_variables

"""Wrappers that change when another schedule is evaluated: warmup, staircase, per update."""

import keras
from keras import ops

from kschedules import _checks, _schedule
from kschedules.constant import Constant


def _as_schedule(schedule):
    """A checked schedule as a callable: a plain float becomes `Constant`."""
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        return schedule
    return Constant(schedule)


def _serialize(schedule):
    """A float stays a float; a schedule becomes its Keras serialization."""
    if isinstance(schedule, float):
        return schedule
    return keras.saving.serialize_keras_object(schedule)


def _deserialize(config):
    if isinstance(config, dict):
        return keras.saving.deserialize_keras_object(config)
    return config


class _Wrapper(_schedule.Schedule):
    """Serialises its inner `schedule` and rebuilds it in `from_config`.

    The wrapped schedule is called with an integer step whenever the wrapper
    is (see `_schedule`), so a schedule that indexes by the step works inside.
    """

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["schedule"] = _deserialize(config["schedule"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="kschedules")
class Warmup(_Wrapper):
    """Prepends a linear warmup to any schedule.

    Large learning rates, large batches and Adam are unstable in the first
    steps, while the weights and the optimizer's moment estimates are far from
    their typical values; a short ramp from a small rate avoids early
    divergence (Goyal et al. 2017). The wrapped schedule may be one of
    kschedules, a Keras built-in, your own `LearningRateSchedule`, or a plain
    float (a constant rate after warmup).

    ```
    w = warmup_steps, s = start_learning_rate, f = the wrapped schedule
    lr(step) = s + (f(0) - s) * step / w     for step < w
    lr(step) = f(step - w)                   for step >= w
    ```

    The wrapped schedule is called with `step - w` (an integer for an
    integer step) and with `0`. Its clock starts when warmup ends, so a decay of
    `decay_steps` ends at step `warmup_steps + decay_steps`; its boundaries, if
    it has any, move later by `warmup_steps`. With `warmup_steps=0` the values
    are exactly those of `schedule`.

    Args:
        schedule: The schedule to run after warmup: a `LearningRateSchedule`
            or a float >= 0.
        warmup_steps: Length of the warmup in steps, an integer >= 0.
        start_learning_rate: Rate at step 0, a float >= 0. Defaults to 0.

    Returns:
        A schedule; calling it with a step returns a float32 tensor of the
        step's shape.

    Raises:
        TypeError: if `schedule` is neither a schedule nor a real number, or
            another argument has the wrong type.
        ValueError: if a rate is negative or `warmup_steps < 0`.

    Example:

    >>> from kschedules.cosine import CosineAnnealing
    >>> schedule = Warmup(CosineAnnealing(0.1, decay_steps=100), warmup_steps=10)
    >>> [round(float(schedule(step)), 6) for step in (0, 5, 10, 60, 110)]
    [0.0, 0.05, 0.1, 0.05, 0.0]
    >>> schedule
    Warmup(CosineAnnealing(initial_learning_rate=0.1, decay_steps=100), warmup_steps=10)

    References:
        Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in
        1 Hour", 2017.
    """

    def __init__(self, schedule, warmup_steps: int, start_learning_rate: float = 0.0):
        name = "Warmup"
        self.schedule = _checks.schedule(name, "schedule", schedule)
        self.warmup_steps = _checks.steps(name, "warmup_steps", warmup_steps, minimum=0)
        self.start_learning_rate = _checks.learning_rate(
            name, "start_learning_rate", start_learning_rate
        )
        self._inner = _as_schedule(self.schedule)

    def __call__(self, step):
        step = _schedule.as_step(step)
        warmup = self.warmup_steps
        after = _schedule.to_float(self._inner(ops.maximum(step - warmup, 0)))
        target = _schedule.to_float(self._inner(ops.zeros((), step.dtype)))
        # max(warmup, 1) only keeps the unused branch finite when warmup is 0.
        fraction = _schedule.to_float(step) / max(warmup, 1)
        ramp = _schedule.lerp(self.start_learning_rate, target, fraction)
        return ops.where(step < warmup, ramp, after)

    def get_config(self):
        return {
            "schedule": _serialize(self.schedule),
            "warmup_steps": self.warmup_steps,
            "start_learning_rate": self.start_learning_rate,
        }


@keras.saving.register_keras_serializable(package="kschedules")
class Staircase(_Wrapper):
    """Holds a schedule's value for each epoch (per-epoch updates).

    PyTorch users call `scheduler.step()` once per epoch, so the rate is
    constant within an epoch. Wrap a per-step schedule (whose arguments are
    in steps) in `Staircase` to reproduce that exactly.

    ```
    e = steps_per_epoch, f = the wrapped schedule
    lr(step) = f(floor(step / e) * e)
    ```

    The wrapped schedule is called with an integer step (also for a float
    step), computed exactly.

    Args:
        schedule: The schedule to hold: a `LearningRateSchedule` or a float
            >= 0.
        steps_per_epoch: Optimizer steps in one epoch, an integer >= 1.

    Returns:
        A schedule; calling it with a step returns a float32 tensor of the
        step's shape.

    Raises:
        TypeError: if `schedule` is neither a schedule nor a real number, or
            `steps_per_epoch` is not an integer.
        ValueError: if `steps_per_epoch < 1` or a rate is negative.

    Example:

    >>> from kschedules.polynomial import LinearDecay
    >>> schedule = Staircase(LinearDecay(0.1, decay_steps=100), steps_per_epoch=10)
    >>> [round(float(schedule(step)), 6) for step in (0, 9, 10, 19, 20)]
    [0.1, 0.1, 0.09, 0.09, 0.08]
    """

    def __init__(self, schedule, steps_per_epoch: int):
        name = "Staircase"
        self.schedule = _checks.schedule(name, "schedule", schedule)
        self.steps_per_epoch = _checks.steps(name, "steps_per_epoch", steps_per_epoch)
        self._inner = _as_schedule(self.schedule)

    def __call__(self, step):
        step = _schedule.whole_steps(_schedule.as_step(step))
        epoch_start = (step // self.steps_per_epoch) * self.steps_per_epoch
        return _schedule.to_float(self._inner(epoch_start))

    def get_config(self):
        return {
            "schedule": _serialize(self.schedule),
            "steps_per_epoch": self.steps_per_epoch,
        }


@keras.saving.register_keras_serializable(package="kschedules")
class PerUpdate(_Wrapper):
    """Runs a schedule on the count of updates under gradient accumulation.

    With `gradient_accumulation_steps=k`, a Keras 3 optimizer calls its
    schedule with the micro-step counter (every batch), while
    `optimizer.iterations` counts updates (one every k batches): a schedule
    written in updates then runs k times too fast. Wrap it in `PerUpdate`
    with the same k and its arguments stay in updates.

    ```
    k = gradient_accumulation_steps, f = the wrapped schedule
    lr(step) = f(floor(step / k))
    ```

    The update u is applied at micro-step u * k + k - 1 and uses f(u). The
    wrapped schedule is called with an integer step (also for a float step).

    Args:
        schedule: The schedule in updates: a `LearningRateSchedule` or a
            float >= 0.
        gradient_accumulation_steps: The optimizer's
            `gradient_accumulation_steps`, an integer >= 1.

    Returns:
        A schedule; calling it with a step returns a float32 tensor of the
        step's shape.

    Raises:
        TypeError: if `schedule` is neither a schedule nor a real number, or
            `gradient_accumulation_steps` is not an integer.
        ValueError: if `gradient_accumulation_steps < 1` or a rate is
            negative.

    Example:

    >>> import keras
    >>> from kschedules.step import StepDecay
    >>> schedule = PerUpdate(StepDecay(0.1, boundaries=[2]), gradient_accumulation_steps=4)
    >>> [round(float(schedule(step)), 6) for step in (0, 7, 8, 11)]
    [0.1, 0.1, 0.01, 0.01]
    >>> optimizer = keras.optimizers.SGD(schedule, gradient_accumulation_steps=4)
    """

    def __init__(self, schedule, gradient_accumulation_steps: int):
        name = "PerUpdate"
        self.schedule = _checks.schedule(name, "schedule", schedule)
        self.gradient_accumulation_steps = _checks.steps(
            name, "gradient_accumulation_steps", gradient_accumulation_steps
        )
        self._inner = _as_schedule(self.schedule)

    def __call__(self, step):
        step = _schedule.whole_steps(_schedule.as_step(step))
        return _schedule.to_float(self._inner(step // self.gradient_accumulation_steps))

    def get_config(self):
        return {
            "schedule": _serialize(self.schedule),
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
        }

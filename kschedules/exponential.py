"""Exponential decay, smooth or in stairs, with a delayed start and a bound."""

import math

import keras
from keras import ops

from kschedules import _checks, _schedule


@keras.saving.register_keras_serializable(package="kschedules")
class ExponentialDecay(_schedule.Schedule):
    """Multiplies the learning rate by `decay_rate` every `decay_steps` steps.

    The rate falls by a constant factor per unit of time, smoothly or (with
    `staircase`) in drops every `decay_steps` steps; `transition_begin` holds
    the initial rate first, and `end_learning_rate` bounds it. This is optax's
    `exponential_decay`; with `decay_steps=1` it is PyTorch's
    `ExponentialLR(gamma=decay_rate)`, with `decay_steps=k, staircase=True`
    PyTorch's `StepLR(step_size=k, gamma=decay_rate)`, and with
    `transition_begin=0` (and no bound) Keras's `ExponentialDecay`.

    ```
    t        = max(step - transition_begin, 0)
    p        = t / decay_steps              (floor(t / decay_steps) if staircase)
    lr(step) = initial_learning_rate * decay_rate ** p
    with end_learning_rate = e (optional):
        lr(step) = max(lr(step), e)     when decay_rate < 1 (a floor)
        lr(step) = min(lr(step), e)     when decay_rate > 1 (a ceiling)
    ```

    The schedule has no end: the rate keeps decaying (towards 0 without a
    floor, where float32 eventually rounds it to 0), or stays at
    `end_learning_rate` from the first step that reaches it. For an integer
    step, `t` and (with `staircase`) `floor(t / decay_steps)` are computed
    exactly, so every drop falls on its step up to 2**31 - 1. The power is
    evaluated as `exp(p * log(decay_rate))` in float32: its relative error
    is about 1e-7 per factor e of decay (1e-7 * |p * log(decay_rate)|, so
    1.4e-6 once the rate has fallen to 1e-6 of its start), less than that of
    Keras's float32 `decay_rate ** p`, which raises the rounded rate.

    Args:
        initial_learning_rate: Rate up to `transition_begin`, a float >= 0.
        decay_steps: Steps over which the rate is multiplied by `decay_rate`
            once (optax's `transition_steps`), an integer >= 1.
        decay_rate: Factor per `decay_steps`, a float > 0 (< 1 decays, > 1
            grows and then needs `end_learning_rate`).
        staircase: Whether the rate drops in steps (`p` floored) rather than
            continuously. Defaults to False.
        transition_begin: Steps at `initial_learning_rate` before the decay
            starts, an integer >= 0. Defaults to 0.
        end_learning_rate: Bound of the rate, a float >= 0 or None (no
            bound): a floor <= `initial_learning_rate` when `decay_rate < 1`,
            a ceiling >= it when `decay_rate >= 1` (required when
            `decay_rate > 1`, so the rate cannot grow without limit).
            Defaults to None.

    Returns:
        A schedule; calling it with a step returns a float32 tensor of the
        step's shape.

    Raises:
        TypeError: if an argument has the wrong type.
        ValueError: if a rate is negative, `decay_steps < 1`,
            `decay_rate <= 0`, `transition_begin < 0`, `end_learning_rate`
            is on the wrong side of `initial_learning_rate`, or
            `decay_rate > 1` without `end_learning_rate`.

    Example:

    >>> schedule = ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5,
    ...                             transition_begin=5, end_learning_rate=0.02)
    >>> [round(float(schedule(step)), 6) for step in (0, 5, 10, 15, 25, 29, 1000)]
    [0.1, 0.1, 0.070711, 0.05, 0.025, 0.02, 0.02]
    >>> stairs = ExponentialDecay(0.1, 10, 0.5, staircase=True)
    >>> [round(float(stairs(step)), 6) for step in (9, 10, 19, 20)]
    [0.1, 0.05, 0.05, 0.025]
    """

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        decay_rate: float,
        staircase: bool = False,
        transition_begin: int = 0,
        end_learning_rate: float | None = None,
    ):
        name = "ExponentialDecay"
        self.initial_learning_rate = _checks.learning_rate(
            name, "initial_learning_rate", initial_learning_rate
        )
        self.decay_steps = _checks.steps(name, "decay_steps", decay_steps)
        self.decay_rate = _checks.real(name, "decay_rate", decay_rate, minimum=0, exclusive=True)
        self.staircase = _checks.flag(name, "staircase", staircase)
        self.transition_begin = _checks.steps(
            name, "transition_begin", transition_begin, minimum=0
        )
        if end_learning_rate is None:
            if self.decay_rate > 1:
                raise ValueError(
                    f"{name}: end_learning_rate must be a ceiling >= initial_learning_rate "
                    f"({self.initial_learning_rate!r}) when decay_rate > 1 (the rate would grow "
                    "without limit), received end_learning_rate=None"
                )
            self.end_learning_rate = None
        else:
            self.end_learning_rate = _checks.learning_rate(
                name, "end_learning_rate", end_learning_rate
            )
            if self.decay_rate < 1:
                _checks.not_above(
                    name, "end_learning_rate", self.end_learning_rate,
                    "initial_learning_rate", self.initial_learning_rate,
                )
            elif self.end_learning_rate < self.initial_learning_rate:
                raise ValueError(
                    f"{name}: end_learning_rate must be >= initial_learning_rate "
                    f"({self.initial_learning_rate!r}) when decay_rate >= 1 (a ceiling), "
                    f"received end_learning_rate={self.end_learning_rate!r}"
                )
        self._log_rate = math.log(self.decay_rate)

    def __call__(self, step):
        step = _schedule.as_step(step)
        elapsed = ops.maximum(step - self.transition_begin, 0)
        if self.staircase and _schedule.is_integer(step):
            power = _schedule.to_float(elapsed // self.decay_steps)  # Exact integers.
        elif self.staircase:
            power = ops.floor(elapsed / self.decay_steps)
        else:
            power = _schedule.to_float(elapsed) / self.decay_steps
        lr = self.initial_learning_rate * ops.exp(power * self._log_rate)
        if self.end_learning_rate is not None:
            bound = ops.maximum if self.decay_rate < 1 else ops.minimum
            lr = bound(lr, self.end_learning_rate)
        return lr

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
            "transition_begin": self.transition_begin,
            "end_learning_rate": self.end_learning_rate,
        }

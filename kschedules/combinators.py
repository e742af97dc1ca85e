"""Schedules made of schedules: one after another (`Sequence`), or multiplied (`Product`)."""

import keras
from keras import ops

from kschedules import _checks, _schedule
from kschedules.wrappers import _as_schedule, _deserialize, _serialize


class _Combinator(_schedule.Schedule):
    """Serialises its list of `schedules` and rebuilds them in `from_config`.

    Each one is stored with `keras.saving.serialize_keras_object` (a plain
    float stays a float) and called with an integer step whenever the
    combinator is (see `_schedule`).
    """

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["schedules"] = [_deserialize(c) for c in config["schedules"]]
        return cls(**config)


@keras.saving.register_keras_serializable(package="kschedules")
class Sequence(_Combinator):
    """Runs schedules one after another, each on its own clock from 0.

    Use it for a schedule in phases that no single class gives: a warmup of
    any shape, a constant stage, then a decay; or a fine-tuning stage that
    restarts from a new rate. This is optax's `join_schedules` and
    PyTorch's `SequentialLR` with the same milestones.

    ```
    b_0 < b_1 < ... < b_(n-2) = boundaries,  f_0, ..., f_(n-1) = schedules,  b_(-1) = 0
    lr(step) = f_k(step - b_(k-1))     for b_(k-1) <= step < b_k
    lr(step) = f_(n-1)(step - b_(n-2)) for step >= b_(n-2)
    ```

    Each piece starts at its own step 0 at its boundary, as a restarted
    PyTorch scheduler does, and the last one runs on for ever (it decides
    what happens past its end). Piece k is called with `step - b_(k-1)`,
    an integer for an integer step (so a piece that indexes by the step
    works), and never with a negative step. A plain float is a constant
    piece.

    `Warmup(f, w, s)` is `Sequence([ramp, f], [w])` with a ramp going
    linearly from `s` to `f(0)` over `w` steps (`Warmup` remains the short
    name for it). For a rising ramp (s <= f(0)) that is
    `WarmupStableDecay(float(f(0)), w, 0, 1, min_learning_rate=s)`, and both
    give identical values; a falling one, `LinearDecay(s, w, float(f(0)))`,
    agrees to one float32 rounding.

    Args:
        schedules: The pieces, in order: a list of at least two
            `LearningRateSchedule`s or floats >= 0.
        boundaries: The steps at which each piece after the first starts:
            strictly increasing integers in [1, 2**31 - 1], one fewer than
            the schedules (a list, tuple or 1-d array).

    Returns:
        A schedule; calling it with a step returns a float32 tensor of the
        step's shape.

    Raises:
        TypeError: if `schedules` is not a list or tuple, a piece is neither
            a schedule nor a real number, or `boundaries` is not a sequence
            of integers.
        ValueError: if a float piece is negative, the boundaries are empty,
            below 1 or not strictly increasing, or
            `len(boundaries) != len(schedules) - 1`.

    Example:

    >>> from kschedules.polynomial import LinearDecay
    >>> from kschedules.step import StepDecay
    >>> schedule = Sequence([0.5, LinearDecay(1.0, 10), StepDecay(0.3, [2])], [3, 8])
    >>> [round(float(schedule(step)), 6) for step in (0, 2, 3, 4, 7, 8, 9, 10, 1000)]
    [0.5, 0.5, 1.0, 0.9, 0.6, 0.3, 0.3, 0.03, 0.03]
    """

    def __init__(self, schedules, boundaries):
        name = "Sequence"
        self.schedules = _checks.schedules(name, "schedules", schedules, minimum=2)
        self.boundaries = _checks.boundaries(name, "boundaries", boundaries)
        if len(self.boundaries) != len(self.schedules) - 1:
            raise ValueError(
                f"{name}: boundaries must have len(schedules) - 1 = {len(self.schedules) - 1} "
                f"entries, received boundaries={self.boundaries!r}"
            )
        self._pieces = [_as_schedule(s) for s in self.schedules]

    def __call__(self, step):
        step = _schedule.as_step(step)
        lr = _schedule.to_float(self._pieces[0](step))
        for boundary, piece in zip(self.boundaries, self._pieces[1:]):
            local = ops.maximum(step - boundary, 0)  # The piece's own clock.
            lr = ops.where(step < boundary, lr, _schedule.to_float(piece(local)))
        return lr

    def get_config(self):
        return {
            "schedules": [_serialize(s) for s in self.schedules],
            "boundaries": list(self.boundaries),
        }


@keras.saving.register_keras_serializable(package="kschedules")
class Product(_Combinator):
    """Multiplies schedules step by step.

    Use it to modulate one schedule by another: a cyclic rate whose cycles
    decay (`Product([Cyclic(...), ExponentialDecay(1.0, 1, 0.9999)])`), a
    cosine with step drops, a schedule scaled by a constant factor. This is
    PyTorch's `ChainedScheduler` of multiplicative schedulers (each written
    here as a schedule with initial rate 1, and one of them carrying the
    base rate).

    ```
    f_0, ..., f_(n-1) = schedules
    lr(step) = f_0(step) * f_1(step) * ... * f_(n-1)(step)
    ```

    Every factor is called with the step itself (an integer for an integer
    step), so the product ends where its factors do. A plain float is a
    constant factor.

    Args:
        schedules: The factors: a list of at least one
            `LearningRateSchedule` or float >= 0.

    Returns:
        A schedule; calling it with a step returns a float32 tensor of the
        step's shape.

    Raises:
        TypeError: if `schedules` is not a list or tuple, or a factor is
            neither a schedule nor a real number.
        ValueError: if `schedules` is empty or a float factor is negative.

    Example:

    >>> from kschedules.step import StepDecay
    >>> schedule = Product([0.1, StepDecay(1.0, [5, 10], factor=0.5)])
    >>> [round(float(schedule(step)), 6) for step in (0, 4, 5, 10, 1000)]
    [0.1, 0.1, 0.05, 0.025, 0.025]
    """

    def __init__(self, schedules):
        self.schedules = _checks.schedules("Product", "schedules", schedules, minimum=1)
        self._factors = [_as_schedule(s) for s in self.schedules]

    def __call__(self, step):
        step = _schedule.as_step(step)
        lr = _schedule.to_float(self._factors[0](step))
        for factor in self._factors[1:]:
            lr = lr * _schedule.to_float(factor(step))
        return lr

    def get_config(self):
        return {"schedules": [_serialize(s) for s in self.schedules]}

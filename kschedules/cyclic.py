"""Cyclical learning rates: a triangle wave between two rates."""

import math

import keras
from keras import ops

from kschedules import _checks, _schedule

_MODES = ("triangular", "triangular2", "exp_range")


@keras.saving.register_keras_serializable(package="kschedules")
class Cyclic(_schedule.Schedule):
    """Cycles the learning rate between two bounds along a triangle wave.

    Smith's cyclical learning rates: the rate rises linearly from
    `initial_learning_rate` to `maximal_learning_rate` over `step_size_up`
    steps and falls back over `step_size_down`, again and again, which
    spares a search for one good constant rate. The values are PyTorch's
    `CyclicLR` exactly (`base_lr` = initial, `max_lr` = maximal) for the
    three modes; only the learning rate is scheduled (PyTorch's
    `cycle_momentum` is out of scope).

    ```
    U = step_size_up, D = step_size_down (U if None), C = U + D
    c = floor(step / C)            the cycle, from 0
    r = step - c * C               the position in it, in [0, C)
    h = r / U                      for r <= U (rising)
      = (C - r) / D                for r > U  (falling)
    lr(step) = initial + (maximal - initial) * h * s
        s = 1                      mode "triangular"
        s = 0.5 ** c               mode "triangular2" (the height halves every cycle)
        s = gamma ** step          mode "exp_range" (PyTorch's: by step, not by cycle)
    ```

    The schedule has no end: cycles follow each other forever (with
    "triangular2" and "exp_range" the peaks shrink towards
    `initial_learning_rate`). For an integer step, `c` and `r` are computed
    exactly, so every cycle starts on its step up to 2**31 - 1.

    Args:
        initial_learning_rate: The lower bound, reached at the start of each
            cycle, a float >= 0.
        maximal_learning_rate: The upper bound, reached `step_size_up` steps
            into each cycle (scaled by `s`), a float >= initial_learning_rate.
        step_size_up: Steps of the rising half, an integer >= 1.
        step_size_down: Steps of the falling half, an integer >= 1 with
            `step_size_up + step_size_down <= 2**31 - 1`, or None for
            `step_size_up`. Defaults to None.
        mode: "triangular", "triangular2" or "exp_range". Defaults to
            "triangular".
        gamma: The per-step factor of "exp_range", a float in (0, 1]; must be
            1 in the other modes (which do not use it). Defaults to 1.

    Returns:
        A schedule; calling it with a step returns a float32 tensor of the
        step's shape.

    Raises:
        TypeError: if an argument has the wrong type.
        ValueError: if a rate is negative, `maximal_learning_rate <
            initial_learning_rate`, a step size is below 1 or the cycle
            longer than 2**31 - 1, `mode` is not one of the three (the
            message lists them), `gamma` is outside (0, 1], or `gamma != 1`
            with a mode other than "exp_range".

    Example:

    >>> schedule = Cyclic(0.1, 1.1, step_size_up=10, step_size_down=5)
    >>> [round(float(schedule(step)), 6) for step in (0, 5, 10, 11, 14, 15, 25)]
    [0.1, 0.6, 1.1, 0.9, 0.3, 0.1, 1.1]
    >>> halving = Cyclic(0.1, 1.1, step_size_up=10, mode="triangular2")
    >>> [round(float(halving(step)), 6) for step in (10, 30, 50)]
    [1.1, 0.6, 0.35]

    References:
        Smith, "Cyclical Learning Rates for Training Neural Networks",
        WACV 2017.
    """

    def __init__(
        self,
        initial_learning_rate: float,
        maximal_learning_rate: float,
        step_size_up: int,
        step_size_down: int | None = None,
        mode: str = "triangular",
        gamma: float = 1.0,
    ):
        name = "Cyclic"
        self.initial_learning_rate = _checks.learning_rate(
            name, "initial_learning_rate", initial_learning_rate
        )
        self.maximal_learning_rate = _checks.learning_rate(
            name, "maximal_learning_rate", maximal_learning_rate
        )
        if self.maximal_learning_rate < self.initial_learning_rate:
            raise ValueError(
                f"{name}: maximal_learning_rate must be >= initial_learning_rate "
                f"({self.initial_learning_rate!r}), received "
                f"maximal_learning_rate={self.maximal_learning_rate!r}"
            )
        self.step_size_up = _checks.steps(name, "step_size_up", step_size_up)
        if step_size_down is None:
            self.step_size_down = None
            down = self.step_size_up
        else:
            self.step_size_down = down = _checks.steps(name, "step_size_down", step_size_down)
        if self.step_size_up + down > _schedule.MAX_STEP:
            raise ValueError(
                f"{name}: step_size_down must be <= 2147483647 - step_size_up = "
                f"{_schedule.MAX_STEP - self.step_size_up} (a cycle must fit in 2147483647 "
                f"steps), received step_size_down={step_size_down!r}"
            )
        self.mode = _checks.choice(name, "mode", mode, _MODES)
        self.gamma = _checks.real(name, "gamma", gamma, minimum=0, exclusive=True, maximum=1)
        if self.gamma != 1.0 and self.mode != "exp_range":
            raise ValueError(
                f"{name}: gamma must be 1.0 unless mode='exp_range' (mode={self.mode!r} does "
                f"not use it), received gamma={self.gamma!r}"
            )
        self._down = down

    def __call__(self, step):
        step = _schedule.as_step(step)
        up, down = self.step_size_up, self._down
        size = up + down
        if _schedule.is_integer(step):
            cycle = step // size
            position = step - cycle * size  # Exact integers.
        else:
            cycle = ops.floor(step / size)
            position = step - cycle * size
        height = ops.where(
            position <= up,
            _schedule.to_float(position) / up,
            _schedule.to_float(size - position) / down,
        )
        if self.mode == "triangular2":
            height = height * ops.power(0.5, _schedule.to_float(cycle))
        elif self.mode == "exp_range":
            height = height * ops.exp(_schedule.to_float(step) * math.log(self.gamma))
        return _schedule.lerp(self.initial_learning_rate, self.maximal_learning_rate, height)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "maximal_learning_rate": self.maximal_learning_rate,
            "step_size_up": self.step_size_up,
            "step_size_down": self.step_size_down,
            "mode": self.mode,
            "gamma": self.gamma,
        }

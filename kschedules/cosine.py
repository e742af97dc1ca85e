"""Cosine annealing, with and without warm restarts."""

import math

import keras
from keras import ops

from kschedules import _checks


def _half_cosine(fraction):
    """(1 + cos(pi * fraction)) / 2: from 1 at fraction 0 down to 0 at 1."""
    return 0.5 * (1.0 + ops.cos(math.pi * fraction))


@keras.saving.register_keras_serializable(package="kschedules")
class CosineAnnealing(keras.optimizers.schedules.LearningRateSchedule):
    """Anneals the learning rate along half a cosine, then holds the minimum.

    A smooth alternative to step decay with a single length to choose
    (Loshchilov & Hutter 2017, without restarts).

    ```
    t      = min(step, decay_steps)
    lr(step) = min_learning_rate
             + (initial_learning_rate - min_learning_rate)
               * (1 + cos(pi * t / decay_steps)) / 2
    ```

    From `decay_steps` on, the rate stays at `min_learning_rate`. PyTorch's
    `CosineAnnealingLR` instead keeps following the cosine and rises again
    after `T_max`; both agree for `step <= decay_steps`.

    Args:
        initial_learning_rate: Rate at step 0, a float >= 0.
        decay_steps: Length of the annealing in steps, an integer >= 1.
        min_learning_rate: Rate reached at `decay_steps` and held after it, a
            float in [0, initial_learning_rate]. Defaults to 0.

    Returns:
        A schedule; calling it with a step returns a float32 scalar tensor.

    Raises:
        TypeError: if an argument has the wrong type.
        ValueError: if a rate is negative, `decay_steps < 1`, or
            `min_learning_rate > initial_learning_rate`.

    Example:

    >>> schedule = CosineAnnealing(0.1, decay_steps=100, min_learning_rate=0.001)
    >>> [round(float(schedule(step)), 6) for step in (0, 50, 100, 500)]
    [0.1, 0.0505, 0.001, 0.001]

    References:
        Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm
        Restarts", ICLR 2017.
    """

    def __init__(self, initial_learning_rate, decay_steps, min_learning_rate=0.0):
        name = "CosineAnnealing"
        self.initial_learning_rate = _checks.learning_rate(
            name, "initial_learning_rate", initial_learning_rate
        )
        self.decay_steps = _checks.steps(name, "decay_steps", decay_steps)
        self.min_learning_rate = _checks.learning_rate(
            name, "min_learning_rate", min_learning_rate
        )
        _checks.not_above(
            name, "min_learning_rate", self.min_learning_rate,
            "initial_learning_rate", self.initial_learning_rate,
        )

    def __call__(self, step):
        step = ops.minimum(ops.cast(step, "float32"), float(self.decay_steps))
        span = self.initial_learning_rate - self.min_learning_rate
        return self.min_learning_rate + span * _half_cosine(step / self.decay_steps)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "min_learning_rate": self.min_learning_rate,
        }


@keras.saving.register_keras_serializable(package="kschedules")
class CosineAnnealingWarmRestarts(keras.optimizers.schedules.LearningRateSchedule):
    """Cosine annealing restarted at the peak after each cycle (SGDR).

    Each restart jumps back to a high rate, which lets training leave a sharp
    minimum and yields a good snapshot at the end of every cycle.

    ```
    cycle i (i = 0, 1, ...) lasts  T_i = first_decay_steps * t_mul**i  steps
    and starts at step             S_i = T_0 + T_1 + ... + T_(i-1)
    for S_i <= step < S_(i+1):
        peak_i   = initial_learning_rate * m_mul**i
        lr(step) = min_learning_rate
                 + (peak_i - min_learning_rate)
                   * (1 + cos(pi * (step - S_i) / T_i)) / 2
    ```

    The schedule has no end: cycles follow each other forever.
    `min_learning_rate` is an absolute floor, as PyTorch's `eta_min`. With
    `m_mul=1` the values equal PyTorch's `CosineAnnealingWarmRestarts` (also at
    fractional epochs), and with `min_learning_rate=0` Keras's
    `CosineDecayRestarts`, except where Keras's closed form misplaces a
    restart: its cycle index comes from a rounded logarithm, so with
    `t_mul=2` and a first cycle of 10 steps it returns 0.0 instead of the peak
    at step 81910. Here the cycle index is corrected against the exact cycle
    starts, so every restart falls on its step (for integer `t_mul` and
    `first_decay_steps`, exactly up to 2**24 steps, the float32 limit).

    Args:
        initial_learning_rate: Peak of the first cycle, a float >= 0.
        first_decay_steps: Length of the first cycle in steps, an integer >= 1.
        t_mul: Growth factor of the cycle length, a float >= 1. Defaults to 1.
        m_mul: Factor applied to the peak at each restart, a float > 0.
            Defaults to 1.
        min_learning_rate: Floor reached at the end of every cycle, a float in
            [0, initial_learning_rate]. Defaults to 0.

    Returns:
        A schedule; calling it with a step returns a float32 scalar tensor.

    Raises:
        TypeError: if an argument has the wrong type.
        ValueError: if a rate is negative, `first_decay_steps < 1`,
            `t_mul < 1`, `m_mul <= 0`, or
            `min_learning_rate > initial_learning_rate`.

    Example:

    >>> schedule = CosineAnnealingWarmRestarts(0.1, 10, t_mul=2.0, m_mul=0.5)
    >>> [round(float(schedule(step)), 6) for step in (0, 5, 9, 10, 20, 30)]
    [0.1, 0.05, 0.002447, 0.05, 0.025, 0.025]

    References:
        Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm
        Restarts", ICLR 2017.
    """

    def __init__(
        self,
        initial_learning_rate,
        first_decay_steps,
        t_mul=1.0,
        m_mul=1.0,
        min_learning_rate=0.0,
    ):
        name = "CosineAnnealingWarmRestarts"
        self.initial_learning_rate = _checks.learning_rate(
            name, "initial_learning_rate", initial_learning_rate
        )
        self.first_decay_steps = _checks.steps(name, "first_decay_steps", first_decay_steps)
        self.t_mul = _checks.real(name, "t_mul", t_mul, minimum=1)
        self.m_mul = _checks.real(name, "m_mul", m_mul, minimum=0, exclusive=True)
        self.min_learning_rate = _checks.learning_rate(
            name, "min_learning_rate", min_learning_rate
        )
        _checks.not_above(
            name, "min_learning_rate", self.min_learning_rate,
            "initial_learning_rate", self.initial_learning_rate,
        )

    def _cycle_start(self, cycle):
        """S_i, the first step of cycle `cycle` (t_mul > 1)."""
        growth = self.t_mul - 1.0
        start = self.first_decay_steps * (ops.power(self.t_mul, cycle) - 1.0) / growth
        if self.t_mul.is_integer():
            # S_i is then an integer; remove the rounding error of power().
            start = ops.round(start)
        return start

    def _cycle(self, step):
        """(index, first step, length) of the cycle holding `step`."""
        first = float(self.first_decay_steps)
        if self.t_mul == 1.0:
            cycle = ops.floor(step / first)
            return cycle, cycle * first, first
        # Closed-form estimate, then one correction in each direction so that
        # S_i <= step < S_(i+1) holds exactly despite float32 rounding.
        growth = self.t_mul - 1.0
        cycle = ops.floor(ops.log1p(step / first * growth) / math.log(self.t_mul))
        cycle = ops.where(step < self._cycle_start(cycle), cycle - 1.0, cycle)
        cycle = ops.where(step >= self._cycle_start(cycle + 1.0), cycle + 1.0, cycle)
        return cycle, self._cycle_start(cycle), first * ops.power(self.t_mul, cycle)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        cycle, start, length = self._cycle(step)
        peak = self.initial_learning_rate * ops.power(self.m_mul, cycle)
        fraction = (step - start) / length
        floor = self.min_learning_rate
        return floor + (peak - floor) * _half_cosine(fraction)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "first_decay_steps": self.first_decay_steps,
            "t_mul": self.t_mul,
            "m_mul": self.m_mul,
            "min_learning_rate": self.min_learning_rate,
        }

"""Cosine annealing, with and without warm restarts."""

import fractions
import functools
import math

import keras
from keras import ops

from kschedules import _checks, _schedule


def _half_cosine(remaining):
    """(1 + cos(pi * (1 - remaining))) / 2, from 0 at remaining 0 up to 1 at 1.

    Written as sin(pi / 2 * remaining)**2, which equals it but does not
    cancel: near the end (1 + cos x with x near pi) the direct form rounds to
    exactly 0 over the last steps of a long decay.
    """
    return ops.square(ops.sin((math.pi / 2) * remaining))


@keras.saving.register_keras_serializable(package="kschedules")
class CosineAnnealing(_schedule.Schedule):
    """Anneals the learning rate along half a cosine, then holds the minimum.

    A smooth alternative to step decay with a single length to choose
    (Loshchilov & Hutter 2017, without restarts).

    ```
    t      = min(step, decay_steps)
    lr(step) = min_learning_rate
             + (initial_learning_rate - min_learning_rate)
               * (1 + cos(pi * t / decay_steps)) / 2
    ```

    From `decay_steps` on, the rate stays at `min_learning_rate`. For an
    integer step, `decay_steps - t` is computed exactly and the rate follows
    the cosine to the last step (it reaches the minimum only at
    `decay_steps`). PyTorch's
    `CosineAnnealingLR` instead keeps following the cosine and rises again
    after `T_max`; both agree for `step <= decay_steps`.

    Args:
        initial_learning_rate: Rate at step 0, a float >= 0.
        decay_steps: Length of the annealing in steps, an integer >= 1.
        min_learning_rate: Rate reached at `decay_steps` and held after it, a
            float in [0, initial_learning_rate]. Defaults to 0.

    Returns:
        A schedule; calling it with a step returns a float32 tensor of the
        step's shape.

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

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        min_learning_rate: float = 0.0,
    ):
        name = "CosineAnnealing"
        self.initial_learning_rate = _checks.learning_rate(
            name, "initial_learning_rate", initial_learning_rate
        )
        self.decay_steps = _checks.steps(name, "decay_steps", decay_steps)
        self.min_learning_rate = _checks.floor(
            name, "min_learning_rate", min_learning_rate,
            "initial_learning_rate", self.initial_learning_rate,
        )

    def __call__(self, step):
        step = _schedule.as_step(step)
        remaining = ops.maximum(self.decay_steps - step, 0)
        weight = _half_cosine(_schedule.to_float(remaining) / self.decay_steps)
        return _schedule.lerp(self.min_learning_rate, self.initial_learning_rate, weight)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "min_learning_rate": self.min_learning_rate,
        }


# Cycles tabulated exactly for CosineAnnealingWarmRestarts; past the last
# one (only for t_mul so close to 1 that this many cycles start before
# MAX_STEP), cycle starts are computed in float32.
_EXACT_CYCLES = 4096


@keras.saving.register_keras_serializable(package="kschedules")
class CosineAnnealingWarmRestarts(_schedule.Schedule):
    """Cosine annealing restarted at the peak after each cycle (SGDR).

    Each restart jumps back to a high rate, which lets training leave a sharp
    minimum and yields a good snapshot at the end of every cycle.

    ```
    cycle i (i = 0, 1, ...) lasts  T_i = first_decay_steps * t_mul**i  steps
    and starts at step             S_i = T_0 + T_1 + ... + T_(i-1)
    for S_i <= step < S_(i+1):
        peak_i   = max(initial_learning_rate * m_mul**i, min_learning_rate)
        lr(step) = min_learning_rate
                 + (peak_i - min_learning_rate)
                   * (1 + cos(pi * (step - S_i) / T_i)) / 2
    from cycle `cycle_limit` on (if given):
        lr(step) = min_learning_rate
    ```

    Without `cycle_limit` the schedule has no end: cycles follow each other
    forever. `min_learning_rate` is an absolute floor, as PyTorch's `eta_min`,
    and no rate goes below it: with `m_mul < 1` the peaks shrink until they
    reach the floor, and the rate then stays there (timm's `cycle_decay`
    instead takes the peaks, and the rate, below `lr_min`).

    Restarts are exact: the cycle starts S_i are computed once in exact
    rational arithmetic from `t_mul` (as the decimal it prints as: 1.1 is
    11/10, not the nearest binary float), so an integer
    step n is in cycle i exactly when S_i <= n < S_(i+1), for any `t_mul >= 1`
    and every step in [0, 2**31 - 1] within the first 4,096 cycles (only a
    `t_mul` within about 1e-3 of 1 has more cycles there; past them, starts are
    computed in float32). A restart that falls on an integer step gives the
    peak at that step. With `m_mul=1` the values equal PyTorch's
    `CosineAnnealingWarmRestarts` (also at fractional epochs), and with
    `min_learning_rate=0` Keras's `CosineDecayRestarts` where Keras places
    its restarts right: its cycle index comes from a float32 logarithm, so it
    returns 0.0 instead of the peak at step 81910 with `t_mul=2` and a first
    cycle of 10 steps, and at the first restart for `t_mul=1.1`.

    Args:
        initial_learning_rate: Peak of the first cycle, a float >= 0.
        first_decay_steps: Length of the first cycle in steps, an integer >= 1.
        t_mul: Growth factor of the cycle length, a float >= 1. Defaults to 1.
        m_mul: Factor applied to the peak at each restart, a float > 0.
            Defaults to 1.
        min_learning_rate: Floor reached at the end of every cycle, a float in
            [0, initial_learning_rate]. Defaults to 0.
        cycle_limit: Number of cycles to run before holding
            `min_learning_rate` (timm's `cycle_limit`), an integer >= 1, or
            None for no limit. Defaults to None.

    Returns:
        A schedule; calling it with a step returns a float32 tensor of the
        step's shape.

    Raises:
        TypeError: if an argument has the wrong type.
        ValueError: if a rate is negative, `first_decay_steps < 1`,
            `t_mul < 1`, `m_mul <= 0`, `cycle_limit < 1`, or
            `min_learning_rate > initial_learning_rate`.

    Example:

    >>> schedule = CosineAnnealingWarmRestarts(0.1, 10, t_mul=2.0, m_mul=0.5)
    >>> [round(float(schedule(step)), 6) for step in (0, 5, 9, 10, 20, 30)]
    [0.1, 0.05, 0.002447, 0.05, 0.025, 0.025]
    >>> schedule = CosineAnnealingWarmRestarts(1.0, 1000, t_mul=1.1)
    >>> [round(float(schedule(step)), 6) for step in (999, 1000, 2099, 2100)]
    [2e-06, 1.0, 2e-06, 1.0]

    References:
        Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm
        Restarts", ICLR 2017.
    """

    def __init__(
        self,
        initial_learning_rate: float,
        first_decay_steps: int,
        t_mul: float = 1.0,
        m_mul: float = 1.0,
        min_learning_rate: float = 0.0,
        cycle_limit: int | None = None,
    ):
        name = "CosineAnnealingWarmRestarts"
        self.initial_learning_rate = _checks.learning_rate(
            name, "initial_learning_rate", initial_learning_rate
        )
        self.first_decay_steps = _checks.steps(name, "first_decay_steps", first_decay_steps)
        self.t_mul = _checks.real(name, "t_mul", t_mul, minimum=1)
        self.m_mul = _checks.real(name, "m_mul", m_mul, minimum=0, exclusive=True)
        self.min_learning_rate = _checks.floor(
            name, "min_learning_rate", min_learning_rate,
            "initial_learning_rate", self.initial_learning_rate,
        )
        self.cycle_limit = (
            None if cycle_limit is None else _checks.steps(name, "cycle_limit", cycle_limit)
        )

    @functools.cached_property
    def _cycles(self):
        """The cycles in exact arithmetic, tabulated on first use (`_Cycles`)."""
        return _Cycles.exact(self.first_decay_steps, self.t_mul, self.cycle_limit)

    def __call__(self, step):
        step = _schedule.as_step(step)
        if self.t_mul == 1.0 and self.cycle_limit is None:
            cycle, remaining = self._periodic(step)
        else:
            cycle, remaining = self._tabulated(step)
        peak = ops.maximum(
            self.initial_learning_rate * ops.power(self.m_mul, _schedule.to_float(cycle)),
            self.min_learning_rate,
        )
        weight = _half_cosine(ops.clip(remaining, 0.0, 1.0))
        lr = _schedule.lerp(self.min_learning_rate, peak, weight)
        if self.cycle_limit is not None:
            lr = ops.where(cycle >= self.cycle_limit, self.min_learning_rate, lr)
        return lr

    def _periodic(self, step):
        """(cycle, remaining fraction of it) when every cycle has one length."""
        first = self.first_decay_steps
        if _schedule.is_integer(step):
            cycle = step // first
            left = first - (step - cycle * first)  # Exact integers.
            return cycle, _schedule.to_float(left) / first
        cycle = ops.floor(step / first)
        return cycle, 1.0 - (step - cycle * first) / first

    def _tabulated(self, step):
        """(cycle, remaining fraction of it) from the exact table of cycles."""
        table = self._cycles
        last = len(table.firsts) - 1
        if _schedule.is_integer(step):
            index = ops.sum(ops.cast(
                ops.expand_dims(step, -1) >= ops.convert_to_tensor(table.firsts[1:] + table.after,
                                                                    dtype=step.dtype),
                "int32"), -1)
            row = ops.minimum(index, last)  # index = last + 1: past a cycle limit.
            first = ops.take(ops.convert_to_tensor(table.firsts, dtype=step.dtype), row)
            tail = ops.take(ops.convert_to_tensor(table.tails, "float32"), row)
            left = tail - _schedule.to_float(step - first)  # step - first: exact.
        else:
            after = [float(f) for f in table.after]
            index = ops.sum(ops.cast(
                ops.expand_dims(step, -1) >= ops.convert_to_tensor(table.starts[1:] + after,
                                                                    "float32"),
                "int32"), -1)
            row = ops.minimum(index, last)
            start = ops.take(ops.convert_to_tensor(table.starts, "float32"), row)
            length = ops.take(ops.convert_to_tensor(table.lengths, "float32"), row)
            left = length - (step - start)
        cycle = index
        remaining = left / ops.take(ops.convert_to_tensor(table.lengths, "float32"), row)
        if table.exhausted:
            cycle, remaining = self._beyond_table(step, cycle, remaining)
        return cycle, remaining

    def _beyond_table(self, step, cycle, remaining):
        """Past the tabulated cycles: their starts in float32, from the last one."""
        table = self._cycles
        last = len(table.firsts) - 1
        first, start, length0 = table.firsts[last], table.starts[last], table.lengths[last]
        # Cycle `last` and the ones after it, on a clock starting at S_last.
        origin = _schedule.to_float(step - first) + (first - start)
        log_t, growth = math.log(self.t_mul), self.t_mul - 1.0

        def local_start(j):  # S_(last + j) - S_last, written without cancellation.
            return length0 * ops.expm1(j * log_t) / growth

        j = ops.floor(ops.log1p(origin * (growth / length0)) / log_t)
        j = ops.where(origin < local_start(j), j - 1.0, j)
        j = ops.where(origin >= local_start(j + 1.0), j + 1.0, j)
        j = ops.maximum(j, 0.0)
        left = local_start(j + 1.0) - origin
        beyond = ops.greater_equal(_schedule.whole_steps(step), first)
        cycle = ops.where(beyond, ops.cast(j, cycle.dtype) + last, cycle)
        remaining = ops.where(beyond, left / (length0 * ops.exp(j * log_t)), remaining)
        return cycle, remaining

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "first_decay_steps": self.first_decay_steps,
            "t_mul": self.t_mul,
            "m_mul": self.m_mul,
            "min_learning_rate": self.min_learning_rate,
            "cycle_limit": self.cycle_limit,
        }


class _Cycles:
    """The cycles of `CosineAnnealingWarmRestarts`, computed in exact arithmetic.

    For cycle i of the table: `firsts[i]` = ceil(S_i), its first integer step
    (exact); `tails[i]` = S_(i+1) - firsts[i], its length counted from that
    step; `starts[i]` = S_i and `lengths[i]` = T_i, for float steps. `after`
    is [ceil(S_K)] for the table's K cycles when a cycle limit ends the
    schedule there (and that step is in range), else []; `exhausted` is True
    when more cycles start before MAX_STEP than the table holds.
    """

    def __init__(self, firsts, tails, starts, lengths, after, exhausted):
        self.firsts, self.tails, self.starts, self.lengths = firsts, tails, starts, lengths
        self.after, self.exhausted = after, exhausted

    @classmethod
    def exact(cls, first_length, t_mul, cycle_limit):
        # t_mul is taken as the decimal it prints as (1.1 is 11/10, not the
        # binary float nearest to it), so that a restart the user computes by
        # hand on an integer step falls on that step. With t_mul = p / q,
        # S_i = T_0 * (t**i - 1) / (t - 1) = T_0 * q * (p**i - q**i) / (q**i * (p - q)),
        # kept as integer pairs that are never reduced: a gcd of numbers this
        # long would cost more than everything else, and the quotients here
        # (about 31 bits) are cheap.
        ratio = fractions.Fraction(repr(t_mul))
        p, q = ratio.numerator, ratio.denominator
        size = min(cycle_limit or _EXACT_CYCLES, _EXACT_CYCLES)
        firsts, tails, starts, lengths = [], [], [], []
        p_power, q_power = 1, 1  # p**i, q**i
        start, denominator = 0, 1  # S_i = start / denominator

        def in_range(numerator, denominator):
            return numerator <= _schedule.MAX_STEP * denominator

        while len(firsts) < size and in_range(start, denominator):
            p_next, q_next = p_power * p, q_power * q
            if p == q:  # t_mul = 1: every cycle has the first length.
                end, end_denominator = first_length * (len(firsts) + 1), 1
            else:
                end, end_denominator = first_length * q * (p_next - q_next), q_next * (p - q)
            first = -(-start // denominator)
            firsts.append(first)
            tails.append((end - first * end_denominator) / end_denominator)
            starts.append(start / denominator)
            lengths.append(first_length * p_power / q_power)
            start, denominator = end, end_denominator
            p_power, q_power = p_next, q_next
        more = in_range(start, denominator)
        after = [-(-start // denominator)] if cycle_limit is not None and more else []
        exhausted = cycle_limit is None and more
        return cls(firsts, tails, starts, lengths, after, exhausted)

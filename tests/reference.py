"""Plain-Python reference formulas for the numeric tests.

Written from the papers' and PyTorch's documented definitions, in float64 and
with explicit loops. This module never imports kschedules, so a mistake in the
library cannot leak into its own reference.
"""

import bisect
import fractions
import math


def step_decay(step, initial, boundaries, factor):
    drops = sum(1 for b in boundaries if b <= step)
    return initial * factor**drops


def cosine(step, initial, decay_steps, minimum=0.0):
    t = min(step, decay_steps)
    return minimum + (initial - minimum) * (1 + math.cos(math.pi * t / decay_steps)) / 2


def cosine_restarts(step, initial, first, t_mul=1.0, m_mul=1.0, minimum=0.0):
    """SGDR by walking the cycles one by one (no closed form to get wrong)."""
    cycle, start, length = 0, 0.0, float(first)
    while step >= start + length:
        start += length
        length *= t_mul
        cycle += 1
    peak = initial * m_mul**cycle
    return minimum + (peak - minimum) * (1 + math.cos(math.pi * (step - start) / length)) / 2


def polynomial(step, initial, decay_steps, end=0.0, power=1.0):
    t = min(step, decay_steps)
    return (initial - end) * (1 - t / decay_steps) ** power + end


def warmup(step, schedule, warmup_steps, start=0.0):
    if step < warmup_steps:
        return start + (schedule(0) - start) * step / warmup_steps
    return schedule(step - warmup_steps)


def staircase(step, schedule, steps_per_epoch):
    return schedule((step // steps_per_epoch) * steps_per_epoch)


def exact_cycle_starts(first, t_mul, last_step):
    """SGDR's cycle starts S_0, S_1, ... as exact fractions, up to `last_step`.

    `t_mul` is taken as the decimal it prints as (1.1 = 11/10), as the
    library documents. Returns (starts, lengths), one past the last start
    <= last_step.
    """
    t = fractions.Fraction(repr(float(t_mul)))
    start, length = fractions.Fraction(0), fractions.Fraction(first)
    starts, lengths = [], []
    while True:
        starts.append(start)
        lengths.append(length)
        if start > last_step:
            return starts, lengths
        start, length = start + length, length * t


def cosine_restarts_exact(step, starts, lengths, initial, m_mul=1.0, minimum=0.0):
    """SGDR at an integer `step` from cycle starts (exact fractions or floats)."""
    cycle = bisect.bisect_right(starts, step) - 1
    peak = max(initial * m_mul**cycle, minimum)
    position = float(step - starts[cycle]) / float(lengths[cycle])
    return minimum + (peak - minimum) * (1 + math.cos(math.pi * position)) / 2

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


# -- The 0.2 schedules, from their peers' definitions -------------------------


def exponential(step, initial, decay_steps, rate, staircase=False, begin=0, end=None):
    """optax's exponential_decay."""
    elapsed = step - begin
    if elapsed <= 0:
        value = initial
    else:
        p = elapsed // decay_steps if staircase else elapsed / decay_steps
        value = initial * rate**p
    if end is not None:
        value = max(value, end) if rate < 1 else min(value, end)
    return value


def inverse_sqrt(step, initial, timescale):
    return initial / math.sqrt((step + timescale) / timescale)


def one_cycle(step, peak, total, pct_start=0.3, strategy="cos", div=25.0, final_div=1e4,
              three_phase=False):
    """PyTorch's OneCycleLR.get_lr for 0 <= step < total, the final rate after."""
    start = peak / div
    final = start / final_div
    if step >= total - 1:
        return final
    if three_phase:
        phases = [(float(pct_start * total) - 1, start, peak),
                  (float(2 * pct_start * total) - 2, peak, start),
                  (total - 1, start, final)]
    else:
        phases = [(float(pct_start * total) - 1, start, peak), (total - 1, peak, final)]
    begin = 0
    for i, (end, u, v) in enumerate(phases):
        if step <= end or i == len(phases) - 1:
            x = (step - begin) / (end - begin)
            if strategy == "cos":
                return v + (u - v) / 2 * (math.cos(math.pi * x) + 1)
            return (v - u) * x + u
        begin = end


def cyclic(step, base, top, up, down=None, mode="triangular", gamma=1.0):
    """PyTorch's CyclicLR.get_lr (cycle counted from 1, as there)."""
    down = up if down is None else down
    size = up + down
    cycle = step // size + 1
    position = step - (cycle - 1) * size
    height = position / up if position <= up else (size - position) / down
    scale = {"triangular": 1.0, "triangular2": 1 / 2.0 ** (cycle - 1),
             "exp_range": gamma**step}[mode]
    return base + (top - base) * height * scale


def tanh_decay(step, initial, decay_steps, minimum=0.0, lower=-7.0, upper=3.0):
    """timm's TanhLRScheduler with one cycle: the formula before T, the minimum from T."""
    if step >= decay_steps:
        return minimum
    t = step / decay_steps
    return minimum + 0.5 * (initial - minimum) * (1 - math.tanh(lower * (1 - t) + upper * t))


def wsd(step, initial, warmup, stable, decay, minimum=0.0, warmup_shape="linear",
        decay_shape="cosine"):
    """Hugging Face's get_wsd_schedule (min_lr_ratio = minimum / initial, num_cycles=0.5)."""
    ratio = minimum / initial
    if step < warmup:
        x = step / max(1, warmup)
        factor = {"linear": x, "cosine": 0.5 * (1 - math.cos(math.pi * x)),
                  "1-sqrt": 1 - math.sqrt(1 - x)}[warmup_shape]
        return initial * max(0.0, factor * (1 - ratio) + ratio)
    if step < warmup + stable:
        return initial
    if step < warmup + stable + decay:
        x = (step - warmup - stable) / max(1, decay)
        factor = {"linear": 1 - x, "cosine": 0.5 * (1 + math.cos(math.pi * x)),
                  "1-sqrt": 1 - math.sqrt(x)}[decay_shape]
        return initial * max(0.0, factor * (1 - ratio) + ratio)
    return minimum


"""The one-cycle policy: up to a peak and down far below the start, once."""

import math

import keras
from keras import ops

from kschedules import _checks, _schedule

_ANNEAL_STRATEGIES = ("cos", "linear")


@keras.saving.register_keras_serializable(package="kschedules")
class OneCycle(_schedule.Schedule):
    """Raises the learning rate to a peak, then anneals it far below the start.

    Smith's one-cycle policy ("super-convergence"): a high peak reached
    after a warm-up phase regularises and speeds up training, and the long
    final annealing settles it. The values are PyTorch's `OneCycleLR`
    exactly for every step in [0, total_steps - 1] (both anneal strategies,
    two and three phases); only the learning rate is scheduled: PyTorch's
    momentum cycling (`cycle_momentum`) is out of scope.

    ```
    M = maximal_learning_rate,  I = M / div_factor,  F = I / final_div_factor
    T = total_steps,            a = pct_start * T - 1   (PyTorch's float)
    two phases:    phase 1 from step 0 to a:           I -> M
                   phase 2 from a to T - 1:            M -> F
    three_phase:   phase 1 from step 0 to a:           I -> M
                   phase 2 from a to b = 2 * pct_start * T - 2:   M -> I
                   phase 3 from b to T - 1:            I -> F
    a step belongs to the first phase whose end it does not exceed; in the
    phase from s to e, from rate u to rate v, with x = (step - s) / (e - s):
        "cos":     lr(step) = v + (u - v) * (1 + cos(pi * x)) / 2
        "linear":  lr(step) = u + (v - u) * x
    for step >= T - 1:  lr(step) = F
    ```

    The peak M falls on step `pct_start * T - 1` when `pct_start * T` is an
    integer (not on step `pct_start * T`); otherwise no integer step
    reaches M exactly, as in PyTorch. From step T - 1 on the rate holds F.
    PyTorch differs there: at step T it extrapolates the last phase (the
    linear strategy goes below zero, the cosine turns back up) and its next
    `scheduler.step()` raises. For an integer step the position inside a
    phase is computed from exact integers (the phase ends' fractions are
    added once), so the phases are right up to 2**31 - 1.

    Args:
        maximal_learning_rate: The peak M, a float >= 0.
        total_steps: Length of the cycle in steps, an integer >= 2 (with
            room for every phase, below).
        pct_start: Fraction of the cycle spent rising, a float in (0, 1)
            with `pct_start * total_steps > 1` (the first phase ends after
            step 0) and, with `three_phase`,
            `2 * pct_start * total_steps < total_steps + 1` (the third phase
            ends after the second). Defaults to 0.3.
        anneal_strategy: "cos" or "linear". Defaults to "cos".
        div_factor: Ratio M / I of the peak to the first rate, a float >= 1.
            Defaults to 25.
        final_div_factor: Ratio I / F of the first rate to the last, a
            float >= 1. Defaults to 1e4.
        three_phase: Whether to come back down to I symmetrically before the
            final annealing to F (fastai's shape when False, PyTorch's
            `three_phase` when True). Defaults to False.

    Returns:
        A schedule; calling it with a step returns a float32 tensor of the
        step's shape.

    Raises:
        TypeError: if an argument has the wrong type.
        ValueError: if a rate is negative, `pct_start` is outside (0, 1) or
            leaves a phase without steps, `anneal_strategy` is not one of
            "cos", "linear" (the message lists them), or a division factor
            is below 1.

    Example:

    >>> schedule = OneCycle(1.0, total_steps=100, pct_start=0.25,
    ...                     anneal_strategy="linear", div_factor=10.0, final_div_factor=100.0)
    >>> [round(float(schedule(step)), 6) for step in (0, 12, 24, 25, 99, 100, 10**6)]
    [0.1, 0.55, 1.0, 0.98668, 0.001, 0.001, 0.001]
    >>> cos = OneCycle(0.1, total_steps=100)
    >>> [round(float(cos(step)), 6) for step in (0, 29, 64, 99)]
    [0.004, 0.1, 0.05, 0.0]

    References:
        Smith & Topin, "Super-Convergence: Very Fast Training of Neural
        Networks Using Large Learning Rates", 2018.
    """

    def __init__(
        self,
        maximal_learning_rate: float,
        total_steps: int,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
    ):
        name = "OneCycle"
        self.maximal_learning_rate = _checks.learning_rate(
            name, "maximal_learning_rate", maximal_learning_rate
        )
        self.total_steps = _checks.steps(name, "total_steps", total_steps, minimum=2)
        self.pct_start = _checks.fraction(name, "pct_start", pct_start)
        self.anneal_strategy = _checks.choice(
            name, "anneal_strategy", anneal_strategy, _ANNEAL_STRATEGIES
        )
        self.div_factor = _checks.real(name, "div_factor", div_factor, minimum=1)
        self.final_div_factor = _checks.real(
            name, "final_div_factor", final_div_factor, minimum=1
        )
        self.three_phase = _checks.flag(name, "three_phase", three_phase)

        total = self.total_steps
        # The phase ends exactly as PyTorch computes them (Python floats).
        rise_end = float(self.pct_start * total) - 1
        if not rise_end > 0:
            raise ValueError(
                f"{name}: pct_start must be > 1 / total_steps = {1 / total:g} (the first "
                "phase ends at step pct_start * total_steps - 1, which must be > 0), "
                f"received pct_start={self.pct_start!r}"
            )
        peak = self.maximal_learning_rate
        start = peak / self.div_factor
        final = start / self.final_div_factor
        if self.three_phase:
            fall_end = float(2 * self.pct_start * total) - 2
            if not fall_end < total - 1:
                raise ValueError(
                    f"{name}: pct_start must be < (total_steps + 1) / (2 * total_steps) = "
                    f"{(total + 1) / (2 * total):g} with three_phase=True (the second phase "
                    "ends at step 2 * pct_start * total_steps - 2, which must be before "
                    f"total_steps - 1), received pct_start={self.pct_start!r}"
                )
            ends = [rise_end, fall_end, float(total - 1)]
            rates = [(start, peak), (peak, start), (start, final)]
        else:
            ends = [rise_end, float(total - 1)]
            rates = [(start, peak), (peak, final)]
        # Phase k runs from ends[k - 1] (0 for k = 0) to ends[k]; both are
        # split into a whole part and a fraction for exact integer steps.
        self._phases = []
        for k, (end, (first, last)) in enumerate(zip(ends, rates)):
            begin = ends[k - 1] if k else 0.0
            self._phases.append((begin, end, end - begin, first, last))

    def __call__(self, step):
        step = _schedule.as_step(step)
        values = []
        for begin, end, length, first, last in self._phases:
            if _schedule.is_integer(step):
                # end - step = (floor(end) - step) + frac(end), the difference
                # exact; likewise step - begin.
                left = _schedule.to_float(math.floor(end) - step) + (end - math.floor(end))
                done = _schedule.to_float(step - math.floor(begin)) - (begin - math.floor(begin))
            else:
                left, done = end - step, step - begin
            remaining = ops.clip(left / length, 0.0, 1.0)  # 1 - x
            elapsed = ops.clip(done / length, 0.0, 1.0)  # x
            if self.anneal_strategy == "cos":
                # (1 + cos(pi * x)) / 2 and (1 - cos(pi * x)) / 2, each without
                # cancellation (neither computed as one minus the other).
                first_weight = ops.square(ops.sin((math.pi / 2) * remaining))
                last_weight = ops.square(ops.sin((math.pi / 2) * elapsed))
            else:
                first_weight, last_weight = remaining, elapsed
            value = first * first_weight + last * last_weight
            values.append(ops.clip(value, min(first, last), max(first, last)))
        lr = values[-1]
        # A step belongs to the first phase whose end it does not exceed:
        # for an integer step n, n <= end iff n <= floor(end).
        for (_, end, *_), value in zip(self._phases[-2::-1], values[-2::-1]):
            within = step <= (math.floor(end) if _schedule.is_integer(step) else end)
            lr = ops.where(within, value, lr)
        return lr

    def get_config(self):
        return {
            "maximal_learning_rate": self.maximal_learning_rate,
            "total_steps": self.total_steps,
            "pct_start": self.pct_start,
            "anneal_strategy": self.anneal_strategy,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
            "three_phase": self.three_phase,
        }

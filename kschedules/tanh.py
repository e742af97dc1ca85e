"""Hyperbolic-tangent decay (timm's `TanhLRScheduler`)."""

import keras
from keras import ops

from kschedules import _checks, _schedule


@keras.saving.register_keras_serializable(package="kschedules")
class TanhDecay(_schedule.Schedule):
    """Decays the learning rate along a hyperbolic tangent, then holds the minimum.

    The rate stays near its initial value for most of training and falls
    steeply late (how late is set by the bounds: the steepest fall is where
    the tangent's argument crosses 0, at `-lower_bound / (upper_bound -
    lower_bound)` of `decay_steps`, 70% with the defaults). This is timm's
    `TanhLRScheduler` formula within one cycle (`t_initial=decay_steps`,
    `lb`, `ub`, `lr_min`, `cycle_limit=1`, no warmup).

    ```
    T = decay_steps, t = step / T
    lr(step) = min_learning_rate
             + (initial_learning_rate - min_learning_rate)
               * (1 - tanh(lower_bound * (1 - t) + upper_bound * t)) / 2   for step < T
    lr(step) = min_learning_rate                                           for step >= T
    ```

    The curve does not quite start at `initial_learning_rate` (at step 0
    the factor is `(1 - tanh(lower_bound)) / 2`, 0.99999917 with the
    defaults) nor end at the minimum: at step T - 1 it is still a little
    above it, and the rate drops to `min_learning_rate` at T and holds it.
    timm does the same at `t_initial` (its cycle limit is reached there),
    although its formula alone would give
    `min + (initial - min) * (1 - tanh(upper_bound)) / 2` at T. The factor
    is evaluated as `1 / (1 + exp(2 * x))`, equal to `(1 - tanh(x)) / 2`
    but without cancellation near the end of the decay.

    Args:
        initial_learning_rate: Rate the curve starts from, a float >= 0.
        decay_steps: Length of the decay in steps, an integer >= 1.
        min_learning_rate: Rate from `decay_steps` on, a float in
            [0, initial_learning_rate]. Defaults to 0.
        lower_bound: Argument of tanh at step 0, a finite float. Defaults
            to -7.
        upper_bound: Argument of tanh at `decay_steps`, a finite float >
            lower_bound. Defaults to 3.

    Returns:
        A schedule; calling it with a step returns a float32 tensor of the
        step's shape.

    Raises:
        TypeError: if an argument has the wrong type.
        ValueError: if a rate is negative, `decay_steps < 1`,
            `min_learning_rate > initial_learning_rate`, or
            `upper_bound <= lower_bound`.

    Example:

    >>> schedule = TanhDecay(0.1, decay_steps=20, min_learning_rate=0.001)
    >>> [round(float(schedule(step)), 6) for step in (0, 10, 14, 19, 20, 1000)]
    [0.1, 0.098219, 0.0505, 0.001663, 0.001, 0.001]

    References:
        Hsueh et al., "Stochastic Gradient Descent with Hyperbolic-Tangent
        Decay on Classification", WACV 2019.
    """

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        min_learning_rate: float = 0.0,
        lower_bound: float = -7.0,
        upper_bound: float = 3.0,
    ):
        name = "TanhDecay"
        self.initial_learning_rate = _checks.learning_rate(
            name, "initial_learning_rate", initial_learning_rate
        )
        self.decay_steps = _checks.steps(name, "decay_steps", decay_steps)
        self.min_learning_rate = _checks.floor(
            name, "min_learning_rate", min_learning_rate,
            "initial_learning_rate", self.initial_learning_rate,
        )
        self.lower_bound = _checks.real(name, "lower_bound", lower_bound)
        self.upper_bound = _checks.real(name, "upper_bound", upper_bound)
        if not self.upper_bound > self.lower_bound:
            raise ValueError(
                f"{name}: upper_bound must be > lower_bound ({self.lower_bound!r}), "
                f"received upper_bound={self.upper_bound!r}"
            )

    def __call__(self, step):
        step = _schedule.as_step(step)
        total = self.decay_steps
        left = ops.clip(total - step, 0, total)  # Exact for an integer step.
        remaining = _schedule.to_float(left) / total
        elapsed = _schedule.to_float(total - left) / total
        argument = self.lower_bound * remaining + self.upper_bound * elapsed
        weight = 1.0 / (1.0 + ops.exp(2.0 * argument))  # (1 - tanh(argument)) / 2
        lr = _schedule.lerp(self.min_learning_rate, self.initial_learning_rate, weight)
        return ops.where(step >= total, self.min_learning_rate, lr)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "min_learning_rate": self.min_learning_rate,
            "lower_bound": self.lower_bound,
            "upper_bound": self.upper_bound,
        }

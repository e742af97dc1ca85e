"""Inverse square-root decay (the Transformer's schedule after its warmup)."""

import keras
from keras import ops

from kschedules import _checks, _schedule


@keras.saving.register_keras_serializable(package="kschedules")
class InverseSqrtDecay(_schedule.Schedule):
    """Decays the learning rate as one over the square root of the step.

    The decay of the original Transformer and of T5: slow enough that long or
    open-ended training keeps learning, with no length to choose in advance.
    Put it behind a warmup: `Warmup(InverseSqrtDecay(lr, W), W)` is Hugging
    Face's `get_inverse_sqrt_schedule(num_warmup_steps=W)` (whose timescale
    defaults to W), and `Warmup(InverseSqrtDecay(lr, T), W)` the same with
    `timescale=T`.

    ```
    lr(step) = initial_learning_rate / sqrt((step + timescale) / timescale)
    ```

    The rate is `initial_learning_rate` at step 0 and halves when the step
    reaches `3 * timescale`; it has no end and keeps decaying towards 0 (as
    `1 / sqrt(step)`). The quotient is computed in float32, which holds every
    step up to 2**31 - 1 to within its rounding (no integer overflow).

    Args:
        initial_learning_rate: Rate at step 0, a float >= 0.
        timescale: Steps over which the decay is shaped: the rate is
            `initial / sqrt(2)` at step `timescale`. An integer >= 1.

    Returns:
        A schedule; calling it with a step returns a float32 tensor of the
        step's shape.

    Raises:
        TypeError: if an argument has the wrong type.
        ValueError: if `initial_learning_rate < 0` or `timescale < 1`.

    Example:

    >>> schedule = InverseSqrtDecay(0.1, timescale=100)
    >>> [round(float(schedule(step)), 6) for step in (0, 100, 300, 9900)]
    [0.1, 0.070711, 0.05, 0.01]

    References:
        Vaswani et al., "Attention Is All You Need", NeurIPS 2017.
    """

    def __init__(self, initial_learning_rate: float, timescale: int):
        name = "InverseSqrtDecay"
        self.initial_learning_rate = _checks.learning_rate(
            name, "initial_learning_rate", initial_learning_rate
        )
        self.timescale = _checks.steps(name, "timescale", timescale)

    def __call__(self, step):
        step = _schedule.as_step(step)
        scaled = (_schedule.to_float(step) + self.timescale) / self.timescale
        return self.initial_learning_rate / ops.sqrt(scaled)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "timescale": self.timescale,
        }

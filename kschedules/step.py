"""Step decay: the learning rate drops by a constant factor at given steps."""

import keras
from keras import ops

from kschedules import _checks, _schedule


@keras.saving.register_keras_serializable(package="kschedules")
class StepDecay(_schedule.Schedule):
    """Multiplies the learning rate by `factor` at each boundary step.

    The classic schedule of ResNet training (He et al. 2016: x0.1 at 50% and
    75% of training). Use it to reproduce recipes written with PyTorch's
    `MultiStepLR`, whose semantics it shares.

    ```
    lr(step) = initial_learning_rate * factor ** k
    k        = number of boundaries b with b <= step
    ```

    The drop takes effect AT the boundary: `lr(b)` is already the lower rate,
    as in PyTorch's `MultiStepLR` and `StepLR`. Keras's
    `PiecewiseConstantDecay(boundaries, values)` switches one step later (its
    `lr(b)` is still the higher rate), so `StepDecay(lr, [b])` equals
    `PiecewiseConstantDecay([b - 1], [lr, lr * factor])`. Past the last
    boundary the rate stays at `initial_learning_rate * factor ** len(boundaries)`.

    Args:
        initial_learning_rate: Rate before the first boundary, a float >= 0.
        boundaries: Strictly increasing steps (integers in [1, 2**31 - 1]) at
            which the rate drops: a list, tuple or 1-d array.
        factor: Multiplier applied at each boundary, a float in (0, 1].
            Defaults to 0.1.

    Returns:
        A schedule; calling it with a step returns a float32 tensor of the
        step's shape (element-wise for a vector of steps).

    Raises:
        TypeError: if an argument has the wrong type (boundaries given as a
            set or dict, which have no order of their own, included).
        ValueError: if a rate is negative, `factor` is outside (0, 1], or the
            boundaries are empty, below 1 or not strictly increasing.

    Example:

    >>> import numpy as np
    >>> schedule = StepDecay(0.1, boundaries=[100, 200], factor=0.1)
    >>> [round(float(schedule(step)), 6) for step in (0, 99, 100, 199, 200, 10**6)]
    [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    >>> [round(float(lr), 6) for lr in schedule(np.arange(98, 102))]
    [0.1, 0.1, 0.01, 0.01]

    References:
        He et al., "Deep Residual Learning for Image Recognition", CVPR 2016.
    """

    def __init__(self, initial_learning_rate: float, boundaries, factor: float = 0.1):
        name = "StepDecay"
        self.initial_learning_rate = _checks.learning_rate(
            name, "initial_learning_rate", initial_learning_rate
        )
        self.boundaries = _checks.boundaries(name, "boundaries", boundaries)
        self.factor = _checks.real(name, "factor", factor, minimum=0, exclusive=True, maximum=1)
        # The rate of each segment, computed once in double precision so that
        # every value is the float32 rounding of initial * factor**k.
        self._values = [
            self.initial_learning_rate * self.factor**k
            for k in range(len(self.boundaries) + 1)
        ]

    def __call__(self, step):
        step = _schedule.whole_steps(_schedule.as_step(step))
        boundaries = ops.convert_to_tensor(self.boundaries, dtype=step.dtype)
        passed = ops.greater_equal(ops.expand_dims(step, -1), boundaries)
        drops = ops.sum(ops.cast(passed, "int32"), axis=-1)
        values = ops.convert_to_tensor(self._values, dtype="float32")
        return ops.take(values, drops)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "boundaries": list(self.boundaries),
            "factor": self.factor,
        }

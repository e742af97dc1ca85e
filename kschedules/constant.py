"""A constant learning rate, as a schedule."""

import keras
from keras import ops

from kschedules import _checks, _schedule


@keras.saving.register_keras_serializable(package="kschedules")
class Constant(_schedule.Schedule):
    """The same learning rate at every step.

    Use it as the baseline of a schedule comparison, or wherever a schedule
    object is required (for example inside `Warmup`) and the rate should not
    change.

    ```
    lr(step) = learning_rate        for every step >= 0
    ```

    Args:
        learning_rate: The learning rate, a finite float >= 0.

    Returns:
        A schedule; calling it with a step returns a float32 tensor of the
        step's shape.

    Raises:
        TypeError: if `learning_rate` is not a real number.
        ValueError: if `learning_rate` is negative, not finite, or outside
            float32's range.

    Example:

    >>> schedule = Constant(0.1)
    >>> [round(float(schedule(step)), 4) for step in (0, 1000)]
    [0.1, 0.1]
    >>> schedule
    Constant(learning_rate=0.1)
    """

    def __init__(self, learning_rate: float):
        self.learning_rate = _checks.learning_rate(
            "Constant", "learning_rate", learning_rate
        )

    def __call__(self, step):
        # The rate does not depend on the step, but takes its shape.
        return ops.zeros_like(_schedule.as_step(step), dtype="float32") + self.learning_rate

    def get_config(self):
        return {"learning_rate": self.learning_rate}

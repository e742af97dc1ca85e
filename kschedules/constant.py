"""A constant learning rate, as a schedule."""

import keras
from keras import ops

from kschedules import _checks


@keras.saving.register_keras_serializable(package="kschedules")
class Constant(keras.optimizers.schedules.LearningRateSchedule):
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
        A schedule; calling it with a step returns a float32 scalar tensor.

    Raises:
        TypeError: if `learning_rate` is not a real number.
        ValueError: if `learning_rate` is negative or not finite.

    Example:

    >>> schedule = Constant(0.1)
    >>> [round(float(schedule(step)), 4) for step in (0, 1000)]
    [0.1, 0.1]
    """

    def __init__(self, learning_rate):
        self.learning_rate = _checks.learning_rate(
            "Constant", "learning_rate", learning_rate
        )

    def __call__(self, step):
        del step  # The rate does not depend on it.
        return ops.convert_to_tensor(self.learning_rate, dtype="float32")

    def get_config(self):
        return {"learning_rate": self.learning_rate}

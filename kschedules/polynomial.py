"""Polynomial decay and its power-1 case, linear decay."""

import keras
from keras import ops

from kschedules import _checks, _schedule


@keras.saving.register_keras_serializable(package="kschedules")
class PolynomialDecay(_schedule.Schedule):
    """Decays the learning rate along a power curve to an end value.

    `power` shapes the curve: above 1 the rate falls fast and then flattens
    (most steps at small rates), below 1 it stays high and falls steeply at
    the end (0.5 is the square root), and 1 is a straight line.

    ```
    t        = min(step, decay_steps)
    lr(step) = (initial_learning_rate - end_learning_rate)
               * (1 - t / decay_steps) ** power
             + end_learning_rate
    ```

    From `decay_steps` on, the rate stays at `end_learning_rate`. This is
    Keras's `PolynomialDecay` with `cycle=False`, and PyTorch's `PolynomialLR`
    (`total_iters=decay_steps`) when `end_learning_rate=0`.

    Args:
        initial_learning_rate: Rate at step 0, a float >= 0.
        decay_steps: Length of the decay in steps, an integer >= 1.
        end_learning_rate: Rate reached at `decay_steps` and held after it, a
            float in [0, initial_learning_rate]. Defaults to 0.
        power: Exponent of the curve, a float > 0. Defaults to 1 (linear).

    Returns:
        A schedule; calling it with a step returns a float32 tensor of the
        step's shape.

    Raises:
        TypeError: if an argument has the wrong type.
        ValueError: if a rate is negative, `decay_steps < 1`, `power <= 0`, or
            `end_learning_rate > initial_learning_rate`.

    Example:

    >>> schedule = PolynomialDecay(0.1, decay_steps=100, end_learning_rate=0.01, power=2.0)
    >>> [round(float(schedule(step)), 6) for step in (0, 50, 100, 500)]
    [0.1, 0.0325, 0.01, 0.01]
    """

    _name = "PolynomialDecay"

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        end_learning_rate: float = 0.0,
        power: float = 1.0,
    ):
        self.initial_learning_rate = _checks.learning_rate(
            self._name, "initial_learning_rate", initial_learning_rate
        )
        self.decay_steps = _checks.steps(self._name, "decay_steps", decay_steps)
        self.end_learning_rate = _checks.floor(
            self._name, "end_learning_rate", end_learning_rate,
            "initial_learning_rate", self.initial_learning_rate,
        )
        self.power = _checks.real(self._name, "power", power, minimum=0, exclusive=True)

    def __call__(self, step):
        step = _schedule.as_step(step)
        # (T - t) / T rather than 1 - t / T: T - t is exact for an integer step,
        # and exactly 0 at t = T even where XLA divides by multiplying with a
        # rounded 1 / T, so 0 ** power stays 0.
        remaining = _schedule.to_float(ops.maximum(self.decay_steps - step, 0)) / self.decay_steps
        weight = ops.power(remaining, self.power)
        return _schedule.lerp(self.end_learning_rate, self.initial_learning_rate, weight)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "end_learning_rate": self.end_learning_rate,
            "power": self.power,
        }


@keras.saving.register_keras_serializable(package="kschedules")
class LinearDecay(PolynomialDecay):
    """Decays the learning rate along a straight line to an end value.

    `PolynomialDecay` with `power=1`; PyTorch's `LinearLR` with
    `start_factor=1`, `end_factor=end_learning_rate / initial_learning_rate`
    and `total_iters=decay_steps`.

    ```
    t        = min(step, decay_steps)
    lr(step) = initial_learning_rate
             + (end_learning_rate - initial_learning_rate) * t / decay_steps
    ```

    From `decay_steps` on, the rate stays at `end_learning_rate`.

    Args:
        initial_learning_rate: Rate at step 0, a float >= 0.
        decay_steps: Length of the decay in steps, an integer >= 1.
        end_learning_rate: Rate reached at `decay_steps` and held after it, a
            float in [0, initial_learning_rate]. Defaults to 0.

    Returns:
        A schedule; calling it with a step returns a float32 tensor of the
        step's shape.

    Raises:
        TypeError: if an argument has the wrong type.
        ValueError: if a rate is negative, `decay_steps < 1`, or
            `end_learning_rate > initial_learning_rate`.

    Example:

    >>> schedule = LinearDecay(0.1, decay_steps=100)
    >>> [round(float(schedule(step)), 6) for step in (0, 25, 100, 500)]
    [0.1, 0.075, 0.0, 0.0]
    """

    _name = "LinearDecay"

    def __init__(
        self, initial_learning_rate: float, decay_steps: int, end_learning_rate: float = 0.0
    ):
        super().__init__(initial_learning_rate, decay_steps, end_learning_rate, power=1.0)

    def get_config(self):
        config = super().get_config()
        del config["power"]
        return config

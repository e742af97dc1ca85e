"""Schedules by name: the names the runner's `--schedule` flag accepts."""

import inspect
import types

import keras

from kschedules.constant import Constant
from kschedules.cosine import CosineAnnealing, CosineAnnealingWarmRestarts
from kschedules.cyclic import Cyclic
from kschedules.exponential import ExponentialDecay
from kschedules.inverse_sqrt import InverseSqrtDecay
from kschedules.onecycle import OneCycle
from kschedules.polynomial import LinearDecay, PolynomialDecay
from kschedules.step import StepDecay
from kschedules.tanh import TanhDecay
from kschedules.wsd import WarmupStableDecay

# Read-only: `get` builds what is listed here and nothing else.
SCHEDULES = types.MappingProxyType({
    "constant": Constant,
    "step": StepDecay,
    "cosine": CosineAnnealing,
    "cosine_restarts": CosineAnnealingWarmRestarts,
    "linear": LinearDecay,
    "poly": PolynomialDecay,
    "exponential": ExponentialDecay,
    "inverse_sqrt": InverseSqrtDecay,
    "onecycle": OneCycle,
    "cyclic": Cyclic,
    "tanh": TanhDecay,
    "wsd": WarmupStableDecay,
})


def get(name: str, **kwargs) -> keras.optimizers.schedules.LearningRateSchedule:
    """Builds the schedule registered under `name`.

    Args:
        name: One of `SCHEDULES`: constant, step, cosine, cosine_restarts,
            linear, poly, exponential, inverse_sqrt, onecycle, cyclic, tanh,
            wsd.
        **kwargs: The constructor arguments of that schedule's class, by the
            class's own names (`initial_learning_rate`, `decay_steps`, ...:
            steps, not the runner's epoch flags).

    Returns:
        The schedule instance.

    Raises:
        ValueError: if `name` is unknown (the message lists the valid names),
            or an argument is out of range.
        TypeError: if `name` is not a string, an argument is not one the
            class takes, or has the wrong type.

    Example:

    >>> schedule = get("poly", initial_learning_rate=0.1, decay_steps=100, power=0.5)
    >>> type(schedule).__name__, round(float(schedule(75)), 6)
    ('PolynomialDecay', 0.05)
    >>> schedule = get("wsd", initial_learning_rate=0.1, warmup_steps=10, stable_steps=80,
    ...                decay_steps=10)
    >>> type(schedule).__name__, round(float(schedule(5)), 6), round(float(schedule(95)), 6)
    ('WarmupStableDecay', 0.05, 0.05)
    """
    if not isinstance(name, str):
        raise TypeError(f"get: name must be a string, received name={name!r}")
    if name not in SCHEDULES:
        valid = ", ".join(SCHEDULES)
        raise ValueError(f"get: name must be one of {valid}, received name={name!r}")
    cls = SCHEDULES[name]
    accepted = list(inspect.signature(cls).parameters)
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TypeError(
            f"get: schedule {name!r} ({cls.__name__}) takes {', '.join(accepted)}, "
            f"received unexpected {', '.join(unknown)}"
        )
    return cls(**kwargs)

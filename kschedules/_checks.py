"""Argument checks shared by every schedule (private).

Each check raises with one message template:
``<Owner>: <arg> must be <constraint>, received <arg>=<value!r>``.
A value of the wrong type is a ``TypeError``; a value out of range, a
``ValueError``. Checks return the value normalised (a Python ``int`` or
``float``), so callers store plain numbers that serialise as JSON.
"""

import math
import numbers

from keras.optimizers.schedules import LearningRateSchedule


def _fail(error, owner, arg, constraint, value):
    raise error(f"{owner}: {arg} must be {constraint}, received {arg}={value!r}")


def real(owner, arg, value, *, minimum=None, exclusive=False, maximum=None):
    """A finite real number (not a bool), optionally bounded.

    `minimum` is inclusive unless `exclusive`; `maximum` is inclusive.
    """
    constraint = "a finite real number"
    if minimum is not None:
        constraint = f"{'>' if exclusive else '>='} {minimum}"
    if maximum is not None:
        constraint += f" and <= {maximum}" if minimum is not None else f"<= {maximum}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        _fail(TypeError, owner, arg, f"a real number ({constraint})", value)
    value = float(value)
    if not math.isfinite(value):
        _fail(ValueError, owner, arg, constraint, value)
    if minimum is not None and (value <= minimum if exclusive else value < minimum):
        _fail(ValueError, owner, arg, constraint, value)
    if maximum is not None and value > maximum:
        _fail(ValueError, owner, arg, constraint, value)
    return value


def learning_rate(owner, arg, value):
    """A learning rate: a finite real number >= 0."""
    return real(owner, arg, value, minimum=0)


def steps(owner, arg, value, *, minimum=1):
    """A whole number of steps >= `minimum` (an integral float is accepted)."""
    constraint = f"an integer >= {minimum}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        _fail(TypeError, owner, arg, constraint, value)
    if isinstance(value, numbers.Integral):
        value = int(value)
    elif math.isfinite(value) and float(value).is_integer():
        value = int(value)
    else:
        _fail(ValueError, owner, arg, constraint, value)
    if value < minimum:
        _fail(ValueError, owner, arg, constraint, value)
    return value


def not_above(owner, arg, value, other_arg, other_value):
    """`value` (a floor such as a minimum LR) must not exceed `other_value`."""
    if value > other_value:
        _fail(ValueError, owner, arg, f"<= {other_arg} ({other_value!r})", value)


def boundaries(owner, arg, value):
    """A non-empty sequence of strictly increasing integer steps >= 1."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        _fail(TypeError, owner, arg, "a sequence of integers", value)
    value = list(value)
    if not value:
        _fail(ValueError, owner, arg, "a non-empty sequence", value)
    result = [steps(owner, f"{arg}[{i}]", b) for i, b in enumerate(value)]
    for previous, current in zip(result, result[1:]):
        if current <= previous:
            _fail(ValueError, owner, arg, "strictly increasing", value)
    return result


def schedule(owner, arg, value):
    """A `LearningRateSchedule`, or a plain learning rate (a real number >= 0)."""
    if isinstance(value, LearningRateSchedule):
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        _fail(TypeError, owner, arg, "a LearningRateSchedule or a float", value)
    return learning_rate(owner, arg, value)

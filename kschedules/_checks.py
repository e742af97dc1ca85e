"""Argument checks shared by every schedule (private).

Each check raises with one message template:
``<Owner>: <arg> must be <constraint>, received <arg>=<value!r>``.
A value of the wrong type is a ``TypeError``; a value out of range, a
``ValueError``. Checks return the value normalised (a Python ``int`` or
``float``), so callers store plain numbers that serialise as JSON.

A 0-d numpy array or an eager scalar tensor is accepted wherever a number is
(as Keras's schedules accept them), and read once as a Python number. Every
value must be one the schedules can compute with: reals within float32's
range, steps within `MAX_STEP` (int32).
"""

import math
import numbers

import numpy as np
from keras.optimizers.schedules import LearningRateSchedule

from kschedules._schedule import MAX_STEP

FLOAT32_MAX = float(np.finfo(np.float32).max)
# The smallest positive float32 (a subnormal): smaller rates round to 0.
FLOAT32_TINY = float(np.finfo(np.float32).smallest_subnormal)


def _fail(error, owner, arg, constraint, value):
    raise error(f"{owner}: {arg} must be {constraint}, received {arg}={value!r}")


def _number(value):
    """A 0-d array or eager scalar tensor as its Python number; else `value`."""
    if isinstance(value, (numbers.Number, str, bytes)) or not hasattr(value, "shape"):
        return value
    try:
        array = np.asarray(value)
    except Exception:  # A symbolic tensor, say: left for the type check.
        return value
    if array.shape != () or array.dtype.kind not in "biuf":
        return value
    return array.item()


def real(owner, arg, value, *, minimum=None, exclusive=False, maximum=None):
    """A finite real number (not a bool) within float32's range, optionally bounded.

    `minimum` is inclusive unless `exclusive`; `maximum` is inclusive and
    defaults to the largest float32.
    """
    constraint = "a finite real number"
    if minimum is not None:
        constraint = f"{'>' if exclusive else '>='} {minimum}"
    if maximum is not None:
        constraint += f" and <= {maximum}" if minimum is not None else f"<= {maximum}"
    value = _number(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        _fail(TypeError, owner, arg, f"a real number ({constraint})", value)
    value = float(value)
    if not math.isfinite(value):
        _fail(ValueError, owner, arg, constraint, value)
    if abs(value) > FLOAT32_MAX:
        _fail(ValueError, owner, arg, f"{constraint} and within float32 (|x| <= {FLOAT32_MAX:g})",
              value)
    if minimum is not None and (value <= minimum if exclusive else value < minimum):
        _fail(ValueError, owner, arg, constraint, value)
    if maximum is not None and value > maximum:
        _fail(ValueError, owner, arg, constraint, value)
    return value


def learning_rate(owner, arg, value):
    """A learning rate: a finite real number >= 0 that float32 does not round to 0."""
    value = real(owner, arg, value, minimum=0)
    if 0 < value < FLOAT32_TINY / 2:
        _fail(ValueError, owner, arg,
              f"0 or a positive float32 number (>= {FLOAT32_TINY:g})", value)
    return value


def steps(owner, arg, value, *, minimum=1):
    """A whole number of steps in [minimum, MAX_STEP] (an integral float is accepted)."""
    constraint = f"an integer in [{minimum}, {MAX_STEP}]"
    value = _number(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        _fail(TypeError, owner, arg, constraint, value)
    if isinstance(value, numbers.Integral):
        value = int(value)
    elif math.isfinite(value) and float(value).is_integer():
        value = int(value)
    else:
        _fail(ValueError, owner, arg, constraint, value)
    if not minimum <= value <= MAX_STEP:
        _fail(ValueError, owner, arg, constraint, value)
    return value


def floor(owner, arg, value, peak_arg, peak):
    """A learning rate that is a floor (a minimum, an end value): >= 0 and <= `peak`."""
    value = learning_rate(owner, arg, value)
    not_above(owner, arg, value, peak_arg, peak)
    return value


def not_above(owner, arg, value, other_arg, other_value):
    """`value` (a floor such as a minimum LR) must not exceed `other_value`."""
    if value > other_value:
        _fail(ValueError, owner, arg, f"<= {other_arg} ({other_value!r})", value)


def boundaries(owner, arg, value):
    """A non-empty sequence (list, tuple, 1-d array) of strictly increasing steps >= 1."""
    if isinstance(value, (str, bytes, set, frozenset, dict)) or not hasattr(value, "__iter__"):
        _fail(TypeError, owner, arg, "a sequence of integers (a list, tuple or 1-d array, not a set or dict)", value)
    if hasattr(value, "shape") and len(getattr(value, "shape")) != 1:
        _fail(ValueError, owner, arg, "a 1-d sequence", value)
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
    value = _number(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        _fail(TypeError, owner, arg, "a LearningRateSchedule or a float", value)
    return learning_rate(owner, arg, value)


def flag(owner, arg, value):
    """A bool (a numpy bool is accepted)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    _fail(TypeError, owner, arg, "a bool (True or False)", value)


def fraction(owner, arg, value):
    """A real number strictly between 0 and 1."""
    value = real(owner, arg, value, minimum=0, exclusive=True)
    if value >= 1:
        _fail(ValueError, owner, arg, "> 0 and < 1", value)
    return value


def choice(owner, arg, value, choices):
    """One of the strings `choices`; the message lists them all."""
    constraint = "one of " + ", ".join(repr(c) for c in choices)
    if not isinstance(value, str):
        _fail(TypeError, owner, arg, constraint, value)
    if value not in choices:
        _fail(ValueError, owner, arg, constraint, value)
    return value


def schedules(owner, arg, value, *, minimum=1):
    """A list or tuple of at least `minimum` schedules or plain learning rates.

    Each entry is checked by `schedule` (as `<arg>[i]`); returns a list.
    """
    if not isinstance(value, (list, tuple)):
        _fail(TypeError, owner, arg, "a list of LearningRateSchedules or floats", value)
    if len(value) < minimum:
        _fail(ValueError, owner, arg,
              f"a list of at least {minimum} LearningRateSchedules or floats", list(value))
    return [schedule(owner, f"{arg}[{i}]", s) for i, s in enumerate(value)]

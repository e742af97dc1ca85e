"""The base class of every kschedules schedule, and the step convention (private).

The step convention, shared by every schedule and wrapper:

- An integer step (a Python int, a numpy or tensor int32/int64, such as
  `optimizer.iterations`) stays an integer: boundaries, the position inside a
  decay or a cycle and the step handed to a wrapped schedule are computed in
  integer arithmetic, exactly, for every step in [0, MAX_STEP]. Only the
  fraction of a decay that has elapsed is a float32 (rounded once).
- A float step (a fractional epoch count, say) is computed in float32, whose
  integers are exact only up to 2**24.
- Every schedule evaluates element-wise: `schedule(np.arange(n))` returns n
  rates, as Keras's built-in schedules do.
"""

import inspect

import keras
from keras import ops

# The largest step every schedule computes exactly: the int32 range, which is
# the width of the step counter on Keras's JAX backend without x64 (and the
# limit that `_checks.steps` puts on every duration and boundary).
MAX_STEP = 2**31 - 1

_INTEGER_DTYPES = ("int32", "int64")


def as_step(step):
    """`step` as a tensor: int32/int64 kept, other integers int32, else float32."""
    step = ops.convert_to_tensor(step)
    dtype = keras.backend.standardize_dtype(step.dtype)
    if dtype in _INTEGER_DTYPES:
        return step
    if "int" in dtype or dtype == "bool":
        return ops.cast(step, "int32")
    return ops.cast(step, "float32")


def is_integer(step):
    """Whether `step` (from `as_step`) is an integer tensor."""
    return keras.backend.standardize_dtype(step.dtype) in _INTEGER_DTYPES


def whole_steps(step):
    """The integer part of `step`, as an integer tensor (floor for a float step).

    For an integer boundary b and any step x >= 0: x >= b iff floor(x) >= b.
    """
    if is_integer(step):
        return step
    return ops.cast(ops.floor(step), "int32")


def to_float(value):
    return ops.cast(value, "float32")


def lerp(low, high, weight):
    """high * w + low * (1 - w), for w in [0, 1], kept between `low` and `high`.

    Exactly `high` at w = 1 and `low` at w = 0, and exactly `low` when
    high == low (the rounding of the two products could leave it otherwise).
    """
    value = high * weight + low * (1.0 - weight)
    return ops.clip(value, ops.minimum(low, high), ops.maximum(low, high))


def repr_value(value):
    """A schedule's repr as a constructor call; anything else by `repr`."""
    if isinstance(value, Schedule) or not isinstance(
        value, keras.optimizers.schedules.LearningRateSchedule
    ):
        return repr(value)
    # Another library's schedule (Keras's, a user's): its config as keywords.
    arguments = ", ".join(f"{k}={v!r}" for k, v in value.get_config().items())
    return f"{type(value).__name__}({arguments})"


class Schedule(keras.optimizers.schedules.LearningRateSchedule):
    """A `LearningRateSchedule` with a constructor-call repr and equality by config.

    `repr` shows every argument that differs from its default (a wrapped
    schedule first, without its name); two schedules are equal when they are
    of the same class with the same `get_config()`.
    """

    def __repr__(self):
        parameters = inspect.signature(type(self).__init__).parameters
        shown = []
        for name, parameter in parameters.items():
            if name == "self" or not hasattr(self, name):
                continue
            value = getattr(self, name)
            # Arguments are stored checked, as plain Python values.
            if parameter.default is not inspect.Parameter.empty and value == parameter.default:
                continue
            if name in ("schedule", "schedules"):
                text = (
                    "[" + ", ".join(repr_value(s) for s in value) + "]"
                    if name == "schedules"
                    else repr_value(value)
                )
                shown.append(text)
            else:
                shown.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    def __eq__(self, other):
        if type(self) is not type(other):
            return NotImplemented
        return self.get_config() == other.get_config()

    def __hash__(self):
        return hash((type(self).__qualname__, repr(self)))


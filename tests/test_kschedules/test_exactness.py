"""The library's edges: exact restarts, integer steps, vector steps, unrepresentable arguments.

Each test here failed on the 0.1 code (the review that found the defects is
quoted in the test's docstring) and states the value it must give now.
"""

import itertools
import json
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

import kschedules as ks
import reference
from evaluate import evaluate
from test_contract import SCHEDULES

# -- CosineAnnealingWarmRestarts: every restart on its step ----------------

T_MULS = [1.05, 1.1, 1.2, 1.3, 1.5, 1.7, 2.0, 2.5, 3.0]
FIRSTS = [1, 7, 10, 100, 391, 1000]
MAX_STEP = 2**31 - 1


@pytest.mark.parametrize("t_mul, first", list(itertools.product(T_MULS, FIRSTS)))
def test_restarts_fall_on_the_exact_cycle_starts(t_mul, first):
    """0.1 returned 0.0 at step 1000 for t_mul=1.1 (the first restart) and
    missed later ones by up to 2 steps: power(t_mul, i) was float32."""
    starts, lengths = reference.exact_cycle_starts(first, t_mul, MAX_STEP)
    schedule = ks.CosineAnnealingWarmRestarts(1.0, first, t_mul=t_mul, min_learning_rate=0.01)
    # The last step before each cycle, its first step, and the one after:
    # for every cycle that starts in [0, 2**31 - 1], up to steps near 2**31.
    steps = sorted({
        s for start in starts if start <= MAX_STEP
        for s in (math.ceil(start) - 1, math.ceil(start), math.ceil(start) + 1)
        if 0 <= s <= MAX_STEP
    })
    got = np.asarray(schedule(np.array(steps, "int64")), "float64")  # One vector call.
    expected = [reference.cosine_restarts_exact(s, starts, lengths, 1.0, minimum=0.01)
                for s in steps]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # A start on an integer step gives exactly the peak there.
    integer_starts = [int(s) for s in starts if s.denominator == 1 and s <= MAX_STEP]
    assert len(integer_starts) >= 2  # S_0 = 0 and S_1 = first at least.
    np.testing.assert_array_equal(np.asarray(schedule(np.array(integer_starts))), 1.0)


def test_restarts_on_integer_steps_with_a_t_mul_barely_above_one():
    """0.1 never restarted with t_mul = 1 + 1e-9 (log1p of a float32)."""
    schedule = ks.CosineAnnealingWarmRestarts(1.0, 10, t_mul=1 + 1e-9)
    starts, lengths = reference.exact_cycle_starts(10, 1 + 1e-9, 200)
    steps = list(range(0, 200))
    np.testing.assert_allclose(
        evaluate(schedule, steps),
        [reference.cosine_restarts_exact(s, starts, lengths, 1.0) for s in steps],
        rtol=1e-5, atol=1e-6)
    assert float(schedule(10)) == 1.0


def test_restarts_past_the_exact_table_stay_close():
    """t_mul = 1.0001 from a 1-step cycle starts 4,096 cycles before step 5,062:
    later cycles come from the float32 closed form, within its rounding."""
    schedule = ks.CosineAnnealingWarmRestarts(1.0, 1, t_mul=1.0001)
    # Starts in float64 (exact fractions of 10,000 cycles would take minutes):
    # their error, about 1e-12 steps, is far below the tolerance.
    starts, lengths, start, length = [], [], 0.0, 1.0
    while start <= 20_000:
        starts.append(start)
        lengths.append(length)
        start, length = start + length, length * 1.0001
    steps = list(range(5_000, 20_000, 7))
    got = np.asarray(schedule(np.array(steps)), "float64")
    expected = [reference.cosine_restarts_exact(s, starts, lengths, 1.0) for s in steps]
    # Cycles are 1.5 to 4 steps long there: a float32 start error of 1e-3
    # steps moves the value by at most a few 1e-3.
    np.testing.assert_allclose(got, expected, atol=5e-3)


def test_keras_misses_the_first_restart_for_t_mul_1_1():
    """The reference Keras users compare with: ours restarts, Keras's does not."""
    keras_schedule = keras.optimizers.schedules.CosineDecayRestarts(1.0, 1000, t_mul=1.1)
    ours = ks.CosineAnnealingWarmRestarts(1.0, 1000, t_mul=1.1)
    assert float(ours(1000)) == 1.0
    assert float(ours(2100)) == 1.0
    assert float(keras_schedule(2100)) < 1e-3  # Keras: the end of cycle 1, not a peak.


# -- m_mul below 1 with a floor --------------------------------------------


@pytest.mark.parametrize("t_mul", [1.0, 2.0])
def test_shrinking_peaks_stop_at_the_floor(t_mul):
    """0.1 gave 0.001 at step 20 for (0.1, 10, m_mul=0.1, min=0.01): below its
    floor, and rising within the cycle. Peaks are now clamped at the floor."""
    schedule = ks.CosineAnnealingWarmRestarts(0.1, 10, t_mul=t_mul, m_mul=0.1,
                                              min_learning_rate=0.01)
    steps = list(range(0, 400))
    values = evaluate(schedule, steps)
    assert values.min() >= np.float32(0.01)
    starts, lengths = reference.exact_cycle_starts(10, t_mul, 400)
    np.testing.assert_allclose(
        values,
        [reference.cosine_restarts_exact(s, starts, lengths, 0.1, 0.1, 0.01) for s in steps],
        rtol=2e-6, atol=1e-8)
    # Non-increasing inside every cycle; the floor from cycle 1 on (its peak,
    # 0.1 * 0.1, is the floor up to rounding), exactly from cycle 2 on.
    for start, end in zip(starts, starts[1:]):
        cycle = values[int(start):min(int(end), 400)]
        assert np.all(np.diff(cycle) <= 1e-9)  # Up to float32 rounding (ulp(0.01) = 9e-10).
    np.testing.assert_allclose(values[10:], 0.01, rtol=1e-6)
    second = int(starts[2])
    np.testing.assert_array_equal(values[second:], np.float32(0.01))


def test_cycle_limit_holds_the_floor():
    schedule = ks.CosineAnnealingWarmRestarts(0.1, 10, t_mul=2.0, m_mul=0.5,
                                              min_learning_rate=0.001, cycle_limit=2)
    np.testing.assert_allclose(
        evaluate(schedule, [0, 10, 29, 30, 31, 10**6, MAX_STEP]),
        [0.1, 0.05, reference.cosine_restarts(29, 0.1, 10, 2.0, 0.5, 0.001),
         0.001, 0.001, 0.001, 0.001], rtol=2e-6)
    periodic = ks.CosineAnnealingWarmRestarts(0.1, 10, min_learning_rate=0.001, cycle_limit=3)
    np.testing.assert_allclose(evaluate(periodic, [0, 20, 29, 30, 31]),
                               [0.1, 0.1, reference.cosine(9, 0.1, 10, 0.001), 0.001, 0.001],
                               rtol=2e-6)


# -- Wrappers hand the wrapped schedule an integer step --------------------


class TableSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A user's schedule that indexes by the step: needs an integer step."""

    def __call__(self, step):
        values = ops.convert_to_tensor([0.1, 0.2, 0.3, 0.4], "float32")
        return ops.take(values, ops.minimum(step // 10, 3))

    def get_config(self):
        return {}


WRAPPED_TABLE = {
    "warmup": (ks.Warmup(TableSchedule(), 5), [0, 4, 5, 14, 15, 16, 25, 100],
               [0.0, 0.08, 0.1, 0.1, 0.2, 0.2, 0.3, 0.4]),
    "staircase": (ks.Staircase(TableSchedule(), 7), [0, 6, 7, 13, 14, 20, 21, 100],
                  [0.1, 0.1, 0.1, 0.1, 0.2, 0.2, 0.3, 0.4]),
    # Each piece on its own clock: the table from its step 0 at 3 and again at 23.
    "sequence": (ks.Sequence([0.05, TableSchedule(), TableSchedule()], [3, 23]),
                 [0, 2, 3, 12, 13, 22, 23, 33, 100], [0.05, 0.05, 0.1, 0.1, 0.2, 0.2, 0.1, 0.2, 0.4]),
    "product": (ks.Product([TableSchedule(), 0.5, TableSchedule()]), [0, 9, 10, 35, 100],
                [0.005, 0.005, 0.02, 0.08, 0.08]),
    # The table counts updates of 3 micro-steps: 0.1 for updates 0..9 (steps 0..29).
    "per_update": (ks.PerUpdate(TableSchedule(), 3), [0, 29, 30, 59, 60, 89, 90, 1000],
                   [0.1, 0.1, 0.2, 0.2, 0.3, 0.3, 0.4, 0.4]),
}


@pytest.mark.parametrize("name", list(WRAPPED_TABLE))
def test_wrappers_call_an_integer_indexing_schedule(name):
    """0.1 raised InvalidArgumentError (TF) / ValueError (JAX) inside Warmup:
    the wrapped schedule received a float32 step."""
    schedule, steps, expected = WRAPPED_TABLE[name]
    np.testing.assert_allclose([float(schedule(s)) for s in steps], expected, rtol=1e-6)
    np.testing.assert_allclose(evaluate(schedule, steps), expected, rtol=1e-6)
    compiled = tf.function(schedule, jit_compile=True)
    np.testing.assert_allclose([float(compiled(tf.constant(s, tf.int64))) for s in steps],
                               expected, rtol=1e-6)


def test_staircase_keeps_a_boundary_above_2_24_on_its_epoch():
    """0.1 dropped one epoch early: floor(step / e) * e was computed in float32."""
    schedule = ks.Staircase(ks.StepDecay(1.0, [19_550_000]), 391)  # = 391 * 50,000
    steps = [19_549_608, 19_549_609, 19_549_999, 19_550_000, 19_550_390, 19_550_391]
    np.testing.assert_allclose(evaluate(schedule, steps), [1, 1, 1, 0.1, 0.1, 0.1], rtol=1e-6)


def test_warmup_keeps_a_boundary_above_2_24_on_its_step():
    schedule = ks.Warmup(ks.StepDecay(1.0, [2**24 + 1]), 5)
    steps = [2**24 + 5, 2**24 + 6, 2**30 + 1]
    np.testing.assert_allclose(evaluate(schedule, steps), [1, 0.1, 0.1], rtol=1e-6)


def test_boundaries_near_2_31_on_int32_and_int64_steps():
    schedule = ks.StepDecay(1.0, [MAX_STEP - 1, MAX_STEP], factor=0.5)
    for dtype in ("int32", "int64"):
        np.testing.assert_allclose(
            evaluate(schedule, [MAX_STEP - 2, MAX_STEP - 1, MAX_STEP], dtype),
            [1.0, 0.5, 0.25])


# -- Every schedule evaluates element-wise ----------------------------------

VECTOR_STEPS = np.array([0, 1, 7, 8, 9, 25, 26, 99, 100, 101, 1000])
VECTOR_SCHEDULES = {
    **SCHEDULES,
    "warmup(table)": WRAPPED_TABLE["warmup"][0],
    "staircase(table)": WRAPPED_TABLE["staircase"][0],
}


@pytest.mark.parametrize("name", list(VECTOR_SCHEDULES))
def test_a_vector_of_steps_gives_a_vector_of_rates(name):
    """0.1's StepDecay returned one scalar or failed with "Incompatible shapes"."""
    schedule = VECTOR_SCHEDULES[name]
    one_by_one = np.array([float(schedule(int(s))) for s in VECTOR_STEPS])
    dtypes = ["int64", "int32"] + ([] if "table" in name else ["float32"])  # Tables index.
    for steps in (VECTOR_STEPS.astype(dtype) for dtype in dtypes):
        values = np.asarray(schedule(steps))
        assert values.shape == VECTOR_STEPS.shape
        np.testing.assert_allclose(values, one_by_one, rtol=1e-6, atol=1e-9)
    grid = np.asarray(schedule(VECTOR_STEPS[:10].reshape(2, 5)))
    np.testing.assert_allclose(grid, one_by_one[:10].reshape(2, 5), rtol=1e-6, atol=1e-9)


# -- The end of a cosine ----------------------------------------------------


def test_cosine_follows_the_curve_to_its_last_step():
    """0.1 returned exactly 0 over the last steps: 1 + cos(x) cancels near pi."""
    schedule = ks.CosineAnnealing(1.0, 10**6)
    steps = list(range(10**6 - 10, 10**6 + 1))
    values = evaluate(schedule, steps)
    expected = [reference.cosine(s, 1.0, 10**6) for s in steps]
    assert np.all(values[:-1] > 0)
    np.testing.assert_allclose(values, expected, rtol=1e-4, atol=1e-30)
    # Near 2**31, decay_steps - step is still exact.
    long = ks.CosineAnnealing(1.0, MAX_STEP)
    np.testing.assert_allclose(
        evaluate(long, [MAX_STEP - 1000, MAX_STEP - 1, MAX_STEP]),
        [math.sin(math.pi / 2 * 1000 / MAX_STEP) ** 2, math.sin(math.pi / 2 / MAX_STEP) ** 2, 0],
        rtol=1e-4, atol=1e-30)


def test_poly_decay_near_2_31_is_exact():
    schedule = ks.PolynomialDecay(1.0, MAX_STEP, power=1.0)
    np.testing.assert_allclose(evaluate(schedule, [MAX_STEP - 256, MAX_STEP - 1, MAX_STEP]),
                               [256 / MAX_STEP, 1 / MAX_STEP, 0.0], rtol=1e-6, atol=1e-30)


# -- Arguments the schedules cannot compute with ----------------------------

UNREPRESENTABLE = [
    (ks.StepDecay, dict(initial_learning_rate=0.1, boundaries=[2**31]),
     "StepDecay: boundaries[0] must be an integer in [1, 2147483647], received boundaries[0]=2147483648"),
    (ks.Constant, dict(learning_rate=1e300),
     "Constant: learning_rate must be >= 0 and within float32 (|x| <= 3.40282e+38), "
     "received learning_rate=1e+300"),
    (ks.Constant, dict(learning_rate=1e-320),
     "Constant: learning_rate must be 0 or a positive float32 number (>= 1.4013e-45), "
     "received learning_rate=1e-320"),
    (ks.Staircase, dict(schedule=0.1, steps_per_epoch=10**40),
     "Staircase: steps_per_epoch must be an integer in [1, 2147483647]"),
    (ks.CosineAnnealing, dict(initial_learning_rate=0.1, decay_steps=10**40),
     "CosineAnnealing: decay_steps must be an integer in [1, 2147483647]"),
    (ks.Warmup, dict(schedule=0.1, warmup_steps=2**31),
     "Warmup: warmup_steps must be an integer in [0, 2147483647]"),
    (ks.PolynomialDecay, dict(initial_learning_rate=0.1, decay_steps=10, power=1e39),
     "PolynomialDecay: power must be > 0 and within float32"),
    (ks.CosineAnnealingWarmRestarts, dict(initial_learning_rate=0.1, first_decay_steps=10,
                                          cycle_limit=0),
     "CosineAnnealingWarmRestarts: cycle_limit must be an integer in [1, 2147483647]"),
]


@pytest.mark.parametrize("cls, kwargs, message", UNREPRESENTABLE,
                         ids=[f"{c.__name__}-{i}" for i, (c, *_) in enumerate(UNREPRESENTABLE)])
def test_unrepresentable_arguments_are_refused(cls, kwargs, message):
    with pytest.raises(ValueError) as info:
        cls(**kwargs)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize("boundaries", [{30, 60}, frozenset({30}), {30: 1, 60: 2}])
def test_unordered_boundaries_are_refused(boundaries):
    with pytest.raises(TypeError, match="StepDecay: boundaries must be a sequence of integers"):
        ks.StepDecay(0.1, boundaries)


# -- What a Keras user expects of an object --------------------------------


def test_repr_is_a_constructor_call_without_defaults():
    schedule = ks.Warmup(ks.CosineAnnealing(0.1, 1000), 50)
    assert repr(schedule) == (
        "Warmup(CosineAnnealing(initial_learning_rate=0.1, decay_steps=1000), warmup_steps=50)")
    assert repr(ks.StepDecay(0.1, [5, 9], factor=0.5)) == (
        "StepDecay(initial_learning_rate=0.1, boundaries=[5, 9], factor=0.5)")
    assert repr(ks.Staircase(0.2, 10)) == "Staircase(0.2, steps_per_epoch=10)"
    keras_inner = ks.Warmup(keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5), 3)
    assert repr(keras_inner).startswith(
        "Warmup(ExponentialDecay(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5,")


def test_combinators_print_and_compare_by_their_pieces():
    schedule = ks.Sequence([0.05, ks.OneCycle(0.1, 100), ks.Cyclic(0.01, 0.1, 10)], [5, 105])
    assert repr(schedule) == (
        "Sequence([0.05, OneCycle(maximal_learning_rate=0.1, total_steps=100), "
        "Cyclic(initial_learning_rate=0.01, maximal_learning_rate=0.1, step_size_up=10)], "
        "boundaries=[5, 105])")
    assert repr(ks.Product([ks.TanhDecay(0.1, 10), 0.5])) == (
        "Product([TanhDecay(initial_learning_rate=0.1, decay_steps=10), 0.5])")
    same = ks.Sequence([0.05, ks.OneCycle(0.1, 100), ks.Cyclic(0.01, 0.1, 10)], [5, 105])
    other = ks.Sequence([0.05, ks.OneCycle(0.1, 100), ks.Cyclic(0.01, 0.1, 11)], [5, 105])
    assert schedule == same and hash(schedule) == hash(same) and schedule != other


def test_equality_and_hash_follow_the_config():
    a = ks.Warmup(ks.CosineAnnealingWarmRestarts(0.1, 10, t_mul=2.0), 5)
    b = ks.Warmup(ks.CosineAnnealingWarmRestarts(0.1, 10, t_mul=2.0), 5)
    c = ks.Warmup(ks.CosineAnnealingWarmRestarts(0.1, 10, t_mul=3.0), 5)
    assert a == b and hash(a) == hash(b) and a != c
    assert ks.LinearDecay(0.1, 10) != ks.PolynomialDecay(0.1, 10)  # Another class.
    assert len({a, b, c}) == 2


def test_scalar_arrays_and_tensors_are_accepted_as_numbers():
    assert ks.Constant(np.float32(0.1)).learning_rate == pytest.approx(0.1)
    assert ks.Constant(np.array(0.1)).learning_rate == 0.1
    assert ks.CosineAnnealing(0.1, tf.constant(10)).decay_steps == 10
    assert ks.StepDecay(tf.constant(0.1), np.array([3, 7])).boundaries == [3, 7]
    assert isinstance(ks.CosineAnnealing(0.1, np.int64(10)).get_config()["decay_steps"], int)
    with pytest.raises(TypeError, match="Constant: learning_rate must be a real number"):
        ks.Constant(np.array([0.1, 0.2]))


def test_the_registry_is_read_only():
    with pytest.raises(TypeError):
        ks.SCHEDULES["mine"] = ks.Constant
    with pytest.raises(ValueError, match="name must be one of"):
        ks.get("mine", learning_rate=0.1)


JAX_CHILD = """
import json
import jax, keras, numpy as np
from keras import ops
import kschedules as ks

class TableSchedule(keras.optimizers.schedules.LearningRateSchedule):
    def __call__(self, step):
        values = ops.convert_to_tensor([0.1, 0.2, 0.3, 0.4], "float32")
        return ops.take(values, ops.minimum(step // 10, 3))

cases = json.loads(input())
out = {}
for name, steps in cases.items():
    schedule = {"warmup": ks.Warmup(TableSchedule(), 5),
                "staircase": ks.Staircase(TableSchedule(), 7),
                "sequence": ks.Sequence([0.05, TableSchedule(), TableSchedule()], [3, 23]),
                "product": ks.Product([TableSchedule(), 0.5, TableSchedule()]),
                "per_update": ks.PerUpdate(TableSchedule(), 3)}[name]
    jitted = jax.jit(lambda step: schedule(step))
    out[name] = {"jit": [float(jitted(s)) for s in steps],
                 "vector": np.asarray(schedule(np.array(steps))).tolist()}
print(json.dumps(out))
"""


def test_wrappers_call_an_integer_indexing_schedule_on_jax():
    """The same user schedule under jax.jit, one step at a time and as a vector."""
    cases = {name: steps for name, (_, steps, _) in WRAPPED_TABLE.items()}
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", JAX_CHILD], input=json.dumps(cases),
                            capture_output=True, text=True, env=env, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    output = json.loads(result.stdout.strip().splitlines()[-1])
    for name, (_, _, expected) in WRAPPED_TABLE.items():
        np.testing.assert_allclose(output[name]["jit"], expected, rtol=1e-6, err_msg=name)
        np.testing.assert_allclose(output[name]["vector"], expected, rtol=1e-6, err_msg=name)

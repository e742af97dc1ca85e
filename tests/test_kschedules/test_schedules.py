"""Numbers of every schedule against independent references.

References, per schedule:
- hand-computed tables around each boundary and far past the end;
- `reference.py` (plain Python, float64) over dense sweeps;
- PyTorch's schedulers (MultiStepLR, CosineAnnealingLR,
  CosineAnnealingWarmRestarts at integer and fractional epochs, PolynomialLR,
  LinearLR, SequentialLR), as tables produced once with torch 2.13.0 and
  written here (torch is not a dependency);
- Keras's built-ins where the maths overlaps.
"""

import functools

import keras
import numpy as np
import pytest

import kschedules as ks
import reference
from evaluate import evaluate

RTOL, ATOL = 2e-6, 1e-8  # float32 schedules against float64 references.

# Produced with torch 2.13.0: an SGD optimizer with lr=0.37, the scheduler
# stepped once per step, (step, lr) read before each step. See the
# module docstring.
TORCH_MULTISTEP_037_B7_12_G03 = [
    (0, 0.37), (6, 0.37), (7, 0.111), (8, 0.111), (11, 0.111),
    (12, 0.033299999999999996), (13, 0.033299999999999996), (40, 0.033299999999999996),
]
TORCH_COSINE_037_T20_MIN0011 = [
    (0, 0.37), (1, 0.3677900571368272), (5, 0.3174256672229853),
    (10, 0.19050000000000003), (13, 0.10900870529675136),
    (19, 0.01320994286317279), (20, 0.011),
]
TORCH_SGDR_037_T5_TMULT2_MIN0011 = [
    (0, 0.37), (1, 0.3357185504903031), (4, 0.04528144950969695), (5, 0.37),
    (6, 0.3612146446749801), (14, 0.01978535532501994), (15, 0.37),
    (16, 0.3677900571368272), (34, 0.013209942863172789), (35, 0.37),
    (36, 0.36944666140509647), (80, 0.36655095783237984),
]
TORCH_SGDR_037_T7_TMULT1_MIN0011 = [
    (0, 0.37), (3, 0.23044250764515842), (6, 0.028776088211515782), (7, 0.37),
    (8, 0.3522239117884842), (13, 0.028776088211515782), (14, 0.37),
    (50, 0.3522239117884842),
]
# scheduler.step(epoch) with fractional epochs.
TORCH_SGDR_FRACTIONAL_037_T5_TMULT2_MIN0011 = [
    (0.5, 0.3612146446749801), (2.25, 0.21857998647472146),
    (4.9, 0.011354202247125255), (5.0, 0.37), (5.1, 0.3699114275856488),
    (12.75, 0.054007129174794444), (15.0, 0.37), (17.5, 0.35633637608577595),
    (40.2, 0.3552369553102746),
]
TORCH_POLY_037_T30_P2 = [
    (0, 0.37), (1, 0.3457444444444444), (10, 0.16444444444444448),
    (15, 0.09250000000000001), (29, 0.0004111111111111112), (30, 0.0), (45, 0.0),
]
TORCH_POLY_037_T30_P05 = [
    (0, 0.37), (1, 0.36378106969256474), (10, 0.30210373494325865),
    (15, 0.2616295090390226), (29, 0.06755244875897048), (30, 0.0), (45, 0.0),
]
TORCH_LINEAR_037_TO_0037_T25 = [
    (0, 0.37), (1, 0.35668), (10, 0.23679999999999998), (24, 0.05032),
    (25, 0.03699999999999999), (60, 0.03699999999999999),
]
# LinearLR(start_factor=0.1, total_iters=6) then CosineAnnealingLR(T_max=20,
# eta_min=0.011), joined by SequentialLR(milestones=[6]).
TORCH_SEQUENTIAL_WARMUP6_FROM0037_COSINE20_MIN0011 = [
    (0, 0.037), (1, 0.0925), (3, 0.2035), (5, 0.3144999999999999), (6, 0.37),
    (7, 0.3677900571368272), (16, 0.19050000000000003),
    (25, 0.01320994286317279), (26, 0.011),
]


def check_table(schedule, table, dtype="int64"):
    steps, expected = zip(*table)
    np.testing.assert_allclose(evaluate(schedule, steps, dtype), expected, rtol=RTOL, atol=ATOL)


DENSE = list(range(0, 400))


def check_dense(schedule, ref):
    np.testing.assert_allclose(
        evaluate(schedule, DENSE), [ref(s) for s in DENSE], rtol=RTOL, atol=ATOL
    )


# -- Constant -------------------------------------------------------------


def test_constant_every_step():
    check_table(ks.Constant(0.037), [(0, 0.037), (1, 0.037), (10**6, 0.037)])


# -- StepDecay ------------------------------------------------------------


def test_step_decay_hand_table():
    # 0.37 * 0.3**k; the drop happens AT the boundary.
    schedule = ks.StepDecay(0.37, boundaries=[7, 12], factor=0.3)
    check_table(schedule, [
        (0, 0.37), (6, 0.37), (7, 0.111), (8, 0.111),
        (11, 0.111), (12, 0.0333), (13, 0.0333), (10**7, 0.0333),
    ])


def test_step_decay_equals_torch_multistep():
    check_table(ks.StepDecay(0.37, [7, 12], factor=0.3), TORCH_MULTISTEP_037_B7_12_G03)


def test_step_decay_dense():
    schedule = ks.StepDecay(0.37, [50, 120, 121, 300], factor=0.45)
    check_dense(schedule, functools.partial(
        reference.step_decay, initial=0.37, boundaries=[50, 120, 121, 300], factor=0.45))


def test_step_decay_is_keras_piecewise_one_step_earlier():
    ours = ks.StepDecay(0.37, [7, 12], factor=0.3)
    keras_version = keras.optimizers.schedules.PiecewiseConstantDecay(
        [6, 11], [0.37, 0.37 * 0.3, 0.37 * 0.3**2])
    np.testing.assert_allclose(
        evaluate(ours, DENSE[:40]), evaluate(keras_version, DENSE[:40]), rtol=RTOL)


# -- CosineAnnealing -------------------------------------------------------


def test_cosine_hand_table():
    # min + (init - min) * (1 + cos(pi t / T)) / 2 with init 0.37, min 0.011, T 20.
    schedule = ks.CosineAnnealing(0.37, 20, min_learning_rate=0.011)
    check_table(schedule, [
        (0, 0.37), (10, 0.1905), (19, 0.011 + 0.359 * (1 + np.cos(np.pi * 19 / 20)) / 2),
        (20, 0.011), (21, 0.011), (10**6, 0.011),
    ])


def test_cosine_equals_torch_until_decay_steps():
    check_table(ks.CosineAnnealing(0.37, 20, min_learning_rate=0.011), TORCH_COSINE_037_T20_MIN0011)


def test_cosine_dense():
    check_dense(ks.CosineAnnealing(0.37, 333, 0.011),
                functools.partial(reference.cosine, initial=0.37, decay_steps=333, minimum=0.011))


def test_cosine_equals_keras_cosine_decay():
    # Keras's alpha is relative: min = alpha * initial.
    alpha = 0.011 / 0.37
    keras_version = keras.optimizers.schedules.CosineDecay(0.37, 333, alpha=alpha)
    np.testing.assert_allclose(
        evaluate(ks.CosineAnnealing(0.37, 333, 0.011), DENSE),
        evaluate(keras_version, DENSE), rtol=1e-5, atol=1e-7)


# -- CosineAnnealingWarmRestarts -------------------------------------------


def test_restarts_equal_torch_integer_steps():
    check_table(ks.CosineAnnealingWarmRestarts(0.37, 5, t_mul=2, min_learning_rate=0.011),
                TORCH_SGDR_037_T5_TMULT2_MIN0011)
    check_table(ks.CosineAnnealingWarmRestarts(0.37, 7, min_learning_rate=0.011),
                TORCH_SGDR_037_T7_TMULT1_MIN0011)


def test_restarts_equal_torch_fractional_epochs():
    schedule = ks.CosineAnnealingWarmRestarts(0.37, 5, t_mul=2, min_learning_rate=0.011)
    check_table(schedule, TORCH_SGDR_FRACTIONAL_037_T5_TMULT2_MIN0011, dtype="float32")


@pytest.mark.parametrize("t_mul,m_mul", [(1.0, 1.0), (2.0, 0.7), (1.5, 0.9), (3.0, 1.0)])
def test_restarts_dense(t_mul, m_mul):
    schedule = ks.CosineAnnealingWarmRestarts(0.37, 9, t_mul=t_mul, m_mul=m_mul,
                                              min_learning_rate=0.011)
    check_dense(schedule, functools.partial(
        reference.cosine_restarts, initial=0.37, first=9, t_mul=t_mul, m_mul=m_mul,
        minimum=0.011))


def test_restarts_hand_table_with_m_mul():
    # T0 = 10, t_mul = 2, m_mul = 0.5: cycles start at 0, 10, 30, 70 with peaks
    # 0.37, 0.185, 0.0925, 0.04625; midpoints at 5, 20, 50 sit halfway to the floor.
    schedule = ks.CosineAnnealingWarmRestarts(0.37, 10, t_mul=2, m_mul=0.5, min_learning_rate=0.011)
    check_table(schedule, [
        (0, 0.37), (5, (0.37 + 0.011) / 2), (10, 0.185), (20, (0.185 + 0.011) / 2),
        (30, 0.0925), (50, (0.0925 + 0.011) / 2), (70, 0.04625),
    ])


def test_restarts_equal_keras_where_keras_is_right():
    ours = ks.CosineAnnealingWarmRestarts(0.37, 9, t_mul=2.0, m_mul=0.7)
    keras_version = keras.optimizers.schedules.CosineDecayRestarts(0.37, 9, t_mul=2.0, m_mul=0.7)
    np.testing.assert_allclose(evaluate(ours, DENSE), evaluate(keras_version, DENSE),
                               rtol=1e-5, atol=1e-7)


def test_restart_at_step_81910_is_the_peak():
    # Keras's closed form puts this restart (10 * (2**13 - 1)) in the previous cycle.
    ours = ks.CosineAnnealingWarmRestarts(0.37, 10, t_mul=2.0)
    keras_version = keras.optimizers.schedules.CosineDecayRestarts(0.37, 10, t_mul=2.0)
    assert float(keras_version(81910)) == pytest.approx(0.0, abs=1e-6)  # Keras's bug.
    np.testing.assert_allclose(evaluate(ours, [81909, 81910, 81911]), [
        reference.cosine_restarts(s, 0.37, 10, t_mul=2.0) for s in (81909, 81910, 81911)
    ], rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("first,t_mul", [(10, 1.0), (10, 2.0), (7, 3.0), (1, 2.0), (391, 2.0), (13, 1.0)])
def test_every_restart_exact_up_to_200000_steps(first, t_mul):
    # At each restart S_i the rate is the peak; at S_i - 1 it is the last step
    # of the previous cycle (length L): min + (peak - min) * (1 + cos(pi (L-1)/L)) / 2.
    starts, lengths, start, length = [], [], 0, first
    while start + length <= 200_000:
        start += length
        starts.append(start)
        lengths.append(length)
        length *= int(t_mul)
    schedule = ks.CosineAnnealingWarmRestarts(0.37, first, t_mul=t_mul, min_learning_rate=0.011)
    np.testing.assert_allclose(evaluate(schedule, starts), 0.37, rtol=1e-6)
    lengths = np.array(lengths, dtype=np.float64)
    expected_before = 0.011 + 0.359 * (1 + np.cos(np.pi * (lengths - 1) / lengths)) / 2
    np.testing.assert_allclose(evaluate(schedule, [s - 1 for s in starts]), expected_before,
                               rtol=1e-5, atol=1e-7)


# -- PolynomialDecay and LinearDecay ---------------------------------------


def test_polynomial_hand_table():
    # (0.37 - 0.011) * (1 - t/30)**2 + 0.011
    schedule = ks.PolynomialDecay(0.37, 30, end_learning_rate=0.011, power=2.0)
    check_table(schedule, [
        (0, 0.37), (15, 0.359 * 0.25 + 0.011), (29, 0.359 / 900 + 0.011),
        (30, 0.011), (31, 0.011), (10**6, 0.011),
    ])


def test_polynomial_equals_torch():
    check_table(ks.PolynomialDecay(0.37, 30, power=2.0), TORCH_POLY_037_T30_P2)
    check_table(ks.PolynomialDecay(0.37, 30, power=0.5), TORCH_POLY_037_T30_P05)


@pytest.mark.parametrize("power", [0.5, 1.0, 2.0, 3.0])
def test_polynomial_dense_and_keras(power):
    ours = ks.PolynomialDecay(0.37, 333, end_learning_rate=0.011, power=power)
    check_dense(ours, functools.partial(
        reference.polynomial, initial=0.37, decay_steps=333, end=0.011, power=power))
    keras_version = keras.optimizers.schedules.PolynomialDecay(0.37, 333, 0.011, power=power)
    np.testing.assert_allclose(evaluate(ours, DENSE), evaluate(keras_version, DENSE),
                               rtol=1e-5, atol=1e-7)


def test_linear_equals_torch_linear_lr():
    check_table(ks.LinearDecay(0.37, 25, end_learning_rate=0.037), TORCH_LINEAR_037_TO_0037_T25)


def test_linear_is_power_one():
    np.testing.assert_array_equal(
        evaluate(ks.LinearDecay(0.37, 333, 0.011), DENSE),
        evaluate(ks.PolynomialDecay(0.37, 333, 0.011, power=1.0), DENSE))


# -- Warmup --------------------------------------------------------------


def test_warmup_then_cosine_equals_torch_sequential():
    schedule = ks.Warmup(ks.CosineAnnealing(0.37, 20, 0.011), 6, start_learning_rate=0.037)
    check_table(schedule, TORCH_SEQUENTIAL_WARMUP6_FROM0037_COSINE20_MIN0011)


def test_warmup_hand_table_over_step_decay():
    # Ramp 0.05 -> 0.37 over 8 steps, then StepDecay's clock starts: its
    # boundary 10 falls at absolute step 18.
    schedule = ks.Warmup(ks.StepDecay(0.37, [10], 0.1), 8, start_learning_rate=0.05)
    check_table(schedule, [
        (0, 0.05), (4, 0.21), (7, 0.05 + 0.32 * 7 / 8), (8, 0.37),
        (17, 0.37), (18, 0.037), (10**6, 0.037),
    ])


@pytest.mark.parametrize("inner", [
    ks.CosineAnnealingWarmRestarts(0.37, 9, t_mul=2.0, min_learning_rate=0.011),
    keras.optimizers.schedules.ExponentialDecay(0.37, 10, 0.9),
    0.37,
], ids=["restarts", "keras-exponential", "float"])
def test_warmup_dense_over_any_schedule(inner):
    schedule = ks.Warmup(inner, 25, start_learning_rate=0.011)
    inner_fn = inner if callable(inner) else ks.Constant(inner)
    inner_values = dict(zip(DENSE, evaluate(inner_fn, DENSE)))
    check_dense(schedule, functools.partial(
        reference.warmup, schedule=inner_values.__getitem__, warmup_steps=25, start=0.011))


def test_warmup_zero_steps_is_the_schedule():
    inner = ks.CosineAnnealing(0.37, 333, 0.011)
    np.testing.assert_array_equal(evaluate(ks.Warmup(inner, 0), DENSE), evaluate(inner, DENSE))


def test_warmup_equals_keras_cosine_decay_warmup_target():
    # Keras: CosineDecay(initial=start, decay_steps, warmup_target=peak, warmup_steps).
    ours = ks.Warmup(ks.CosineAnnealing(0.37, 300), 40, start_learning_rate=0.011)
    keras_version = keras.optimizers.schedules.CosineDecay(
        0.011, 300, warmup_target=0.37, warmup_steps=40)
    np.testing.assert_allclose(evaluate(ours, DENSE), evaluate(keras_version, DENSE),
                               rtol=1e-5, atol=1e-7)


# -- Staircase -------------------------------------------------------------


def test_staircase_hand_table():
    schedule = ks.Staircase(ks.LinearDecay(0.37, 100, 0.011), steps_per_epoch=10)
    lr = lambda t: 0.37 + (0.011 - 0.37) * t / 100  # noqa: E731
    check_table(schedule, [(0, 0.37), (9, 0.37), (10, lr(10)), (19, lr(10)), (20, lr(20)),
                           (99, lr(90)), (100, 0.011), (10**6, 0.011)])


def test_staircase_dense_over_warmup_cosine():
    inner = ks.Warmup(ks.CosineAnnealing(0.37, 300, 0.011), 40)
    inner_values = dict(zip(DENSE, evaluate(inner, DENSE)))
    check_dense(ks.Staircase(inner, 13), functools.partial(
        reference.staircase, schedule=inner_values.__getitem__, steps_per_epoch=13))

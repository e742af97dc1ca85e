"""The 0.2 schedules against the libraries they come from, and hand-checked tables.

The peer values are the tables of `peer_tables.py`, made once with the real
libraries in a scratch environment by `make_peer_tables.py`: PyTorch
2.13.0+cpu, optax 0.2.8 (JAX 0.10.2, float64), Hugging Face transformers
5.24.0 and timm 1.0.31 under Python 3.11.7 (`peer_tables.VERSIONS`, checked
below). No peer library is needed to run these tests.

Each peer case is mapped to our constructor in `PEER_CASES`, argument by
argument. Tolerances: our float32 against the peers' float64, rtol 2e-6 and
an absolute 1e-9 (for values near 0).

Where we deliberately differ from a peer, a test says so:
- OneCycle holds its final rate from total_steps - 1 on; PyTorch
  extrapolates at total_steps (below 0 for the linear strategy) and raises
  after.
- TanhDecay gives the minimum from decay_steps on, as timm does at
  t_initial (its cycle limit), not the formula's value there.

`python tests/test_kschedules/test_peer_schedules.py` prints the largest absolute and
relative difference against each peer table.
"""

import math
import os
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import kschedules as ks

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/, as a script too
import peer_tables  # noqa: E402
import reference  # noqa: E402
from evaluate import evaluate  # noqa: E402

RTOL, ATOL = 2e-6, 1e-9
MAX_STEP = 2**31 - 1


def test_the_tables_were_made_by_the_versions_named_here():
    assert peer_tables.VERSIONS == {
        "python": "3.11.7", "torch": "2.13.0+cpu", "numpy": "2.4.6", "jax": "0.10.2",
        "jaxlib": "0.10.2", "optax": "0.2.8", "transformers": "5.24.0", "timm": "1.0.31",
    }


# -- The peer call -> our constructor, case by case ---------------------------

PEER_CASES = {
    # torch.optim.lr_scheduler.OneCycleLR(opt, max_lr, total_steps, pct_start=0.3,
    # anneal_strategy, div_factor=25, final_div_factor=1e4, three_phase,
    # cycle_momentum=False) -> OneCycle(maximal_learning_rate=max_lr, total_steps,
    # pct_start, anneal_strategy, div_factor, final_div_factor, three_phase);
    # the SGD's lr=0.1 is replaced by OneCycleLR.
    "ONE_CYCLE_LR": {
        "cos_2phase": lambda: ks.OneCycle(0.1, 100, anneal_strategy="cos"),
        "linear_2phase": lambda: ks.OneCycle(0.1, 100, anneal_strategy="linear"),
        "cos_3phase": lambda: ks.OneCycle(0.1, 100, anneal_strategy="cos", three_phase=True),
        "linear_3phase": lambda: ks.OneCycle(0.1, 100, anneal_strategy="linear",
                                             three_phase=True),
        "cos_2phase_37": lambda: ks.OneCycle(0.05, 37, pct_start=0.25, anneal_strategy="cos",
                                             div_factor=10.0, final_div_factor=100.0),
        "linear_3phase_37": lambda: ks.OneCycle(0.05, 37, pct_start=0.25,
                                                anneal_strategy="linear", div_factor=10.0,
                                                final_div_factor=100.0, three_phase=True),
    },
    # CyclicLR(opt, base_lr=0.01, max_lr=0.1, step_size_up=10, step_size_down, mode,
    # gamma) -> Cyclic(initial_learning_rate=base_lr, maximal_learning_rate=max_lr,
    # step_size_up, step_size_down, mode, gamma).
    "CYCLIC_LR": {
        "triangular": lambda: ks.Cyclic(0.01, 0.1, 10),
        "triangular_down6": lambda: ks.Cyclic(0.01, 0.1, 10, 6),
        "triangular2": lambda: ks.Cyclic(0.01, 0.1, 10, mode="triangular2"),
        "triangular2_down6": lambda: ks.Cyclic(0.01, 0.1, 10, 6, mode="triangular2"),
        "exp_range": lambda: ks.Cyclic(0.01, 0.1, 10, mode="exp_range", gamma=0.99),
        "exp_range_down6": lambda: ks.Cyclic(0.01, 0.1, 10, 6, mode="exp_range", gamma=0.99),
    },
    # ExponentialLR(opt(lr=0.1), gamma) -> ExponentialDecay(lr, decay_steps=1, decay_rate=gamma).
    "EXPONENTIAL_LR": {
        "gamma_0.9": lambda: ks.ExponentialDecay(0.1, 1, 0.9),
    },
    # SequentialLR(opt(lr=0.1), [s0, s1, s2], milestones) -> Sequence([f0, f1, f2],
    # boundaries=milestones), each torch scheduler as the schedule from lr=0.1:
    # ExponentialLR(gamma) = ExponentialDecay(0.1, 1, gamma);
    # CosineAnnealingLR(T_max, eta_min) = CosineAnnealing(0.1, T_max, eta_min) (within T_max);
    # MultiStepLR(milestones, gamma) = StepDecay(0.1, milestones, gamma);
    # ConstantLR(factor, total_iters=4) = the float 0.1 * factor (its 4 steps end at the milestone);
    # StepLR(step_size, gamma) = ExponentialDecay(0.1, step_size, gamma, staircase=True).
    "SEQUENTIAL_LR": {
        "exp_cosine_multistep": lambda: ks.Sequence(
            [ks.ExponentialDecay(0.1, 1, 0.9), ks.CosineAnnealing(0.1, 10, 0.01),
             ks.StepDecay(0.1, [3], 0.5)], [5, 15]),
        "constant_exp_step": lambda: ks.Sequence(
            [0.05, ks.ExponentialDecay(0.1, 1, 0.8),
             ks.ExponentialDecay(0.1, 2, 0.5, staircase=True)], [4, 9]),
    },
    # ChainedScheduler([ExponentialLR(gamma=0.95), MultiStepLR([5, 10], gamma=0.5)]) on
    # lr=0.1 -> Product of the two, one of them carrying the base rate.
    "CHAINED_SCHEDULER": {
        "exp_multistep": lambda: ks.Product(
            [ks.ExponentialDecay(0.1, 1, 0.95), ks.StepDecay(1.0, [5, 10], 0.5)]),
    },
    # optax.exponential_decay(init_value, transition_steps, decay_rate, transition_begin,
    # staircase, end_value) -> ExponentialDecay(initial_learning_rate=init_value,
    # decay_steps=transition_steps, decay_rate, staircase, transition_begin,
    # end_learning_rate=end_value).
    "OPTAX_EXPONENTIAL_DECAY": {
        "begin5_floor": lambda: ks.ExponentialDecay(0.1, 10, 0.5, transition_begin=5,
                                                    end_learning_rate=0.02),
        "begin5_floor_staircase": lambda: ks.ExponentialDecay(
            0.1, 10, 0.5, staircase=True, transition_begin=5, end_learning_rate=0.02),
        "begin5_no_end": lambda: ks.ExponentialDecay(0.1, 10, 0.5, transition_begin=5),
        "growth_ceiling": lambda: ks.ExponentialDecay(0.1, 4, 1.5, end_learning_rate=0.5),
        "per_step_0.9": lambda: ks.ExponentialDecay(0.1, 1, 0.9),
    },
    # optax.join_schedules([constant_schedule(0.1), linear_schedule(0.1, 0.01, 15),
    # cosine_decay_schedule(0.05, 10, alpha=0.2)], boundaries=[10, 25]) ->
    # Sequence([0.1, LinearDecay(0.1, 15, 0.01), CosineAnnealing(0.05, 10, 0.2 * 0.05)], [10, 25]).
    "OPTAX_JOIN_SCHEDULES": {
        "constant_linear_cosine": lambda: ks.Sequence(
            [0.1, ks.LinearDecay(0.1, 15, 0.01), ks.CosineAnnealing(0.05, 10, 0.01)], [10, 25]),
    },
    # transformers.get_wsd_schedule(opt(lr=0.1), num_warmup_steps=5, num_decay_steps=8,
    # num_stable_steps=10, warmup_type, decay_type, min_lr_ratio=0.1, num_cycles=0.5) ->
    # WarmupStableDecay(lr, warmup_steps, stable_steps, decay_steps,
    # min_learning_rate=min_lr_ratio * lr, warmup_shape=warmup_type, decay_shape=decay_type).
    "HF_WSD_SCHEDULE": {
        f"{warmup}__{decay}": (lambda warmup=warmup, decay=decay: ks.WarmupStableDecay(
            0.1, 5, 10, 8, min_learning_rate=0.01, warmup_shape=warmup, decay_shape=decay))
        for warmup in ("linear", "cosine", "1-sqrt") for decay in ("linear", "cosine", "1-sqrt")
    },
    # transformers.get_inverse_sqrt_schedule(opt(lr=0.1), num_warmup_steps=W, timescale=T
    # (default W)) -> Warmup(InverseSqrtDecay(lr, timescale=T), warmup_steps=W).
    "HF_INVERSE_SQRT_SCHEDULE": {
        "warmup10": lambda: ks.Warmup(ks.InverseSqrtDecay(0.1, 10), 10),
        "warmup10_timescale25": lambda: ks.Warmup(ks.InverseSqrtDecay(0.1, 25), 10),
    },
    # timm TanhLRScheduler(opt(lr=0.1), t_initial=20, lb=-7, ub=3, lr_min=0.001,
    # warmup_t=0, cycle_limit=1) -> TanhDecay(lr, decay_steps=t_initial,
    # min_learning_rate=lr_min, lower_bound=lb, upper_bound=ub).
    "TIMM_TANH_LR": {
        "t20": lambda: ks.TanhDecay(0.1, 20, 0.001, lower_bound=-7.0, upper_bound=3.0),
    },
    # timm CosineLRScheduler(opt(lr=0.1), t_initial=10, lr_min=0.001, cycle_mul=2,
    # cycle_decay=0.5, cycle_limit=2) -> CosineAnnealingWarmRestarts(lr,
    # first_decay_steps=t_initial, t_mul=cycle_mul, m_mul=cycle_decay,
    # min_learning_rate=lr_min, cycle_limit).
    "TIMM_COSINE_LR": {
        "t10_mul2_decay0.5_limit2": lambda: ks.CosineAnnealingWarmRestarts(
            0.1, 10, t_mul=2.0, m_mul=0.5, min_learning_rate=0.001, cycle_limit=2),
    },
}

PARAMS = [(table, case) for table, cases in PEER_CASES.items() for case in cases]


def test_every_peer_table_and_case_is_compared():
    tables = {name for name in vars(peer_tables) if name.isupper() and name != "VERSIONS"}
    assert set(PEER_CASES) == tables
    for table, cases in PEER_CASES.items():
        assert set(cases) == set(getattr(peer_tables, table)), table


@pytest.mark.parametrize("table, case", PARAMS, ids=[f"{t}-{c}" for t, c in PARAMS])
def test_equals_the_peer_table(table, case):
    entry = getattr(peer_tables, table)[case]
    schedule = PEER_CASES[table][case]()
    steps, expected = entry["steps"], entry["lr"]
    # As the optimizer calls it (one step at a time, in a graph) and on a vector.
    np.testing.assert_allclose(evaluate(schedule, steps), expected, rtol=RTOL, atol=ATOL,
                               err_msg=entry["call"])
    np.testing.assert_allclose(np.asarray(schedule(np.array(steps)), "float64"), expected,
                               rtol=RTOL, atol=ATOL, err_msg=entry["call"])


def largest_differences():
    """{(table, case): (largest absolute, largest relative difference)} over the tables."""
    out = {}
    for table, case in PARAMS:
        entry = getattr(peer_tables, table)[case]
        got = evaluate(PEER_CASES[table][case](), entry["steps"])
        expected = np.array(entry["lr"])
        difference = np.abs(got - expected)
        relative = np.where(expected != 0, difference / np.where(expected != 0, np.abs(expected), 1), 0)
        out[(table, case)] = (float(difference.max()), float(relative.max()))
    return out


# -- Where we differ from the peer, on purpose --------------------------------


@pytest.mark.parametrize("case", list(peer_tables.ONE_CYCLE_LR))
def test_one_cycle_holds_its_final_rate_where_torch_extrapolates_and_raises(case):
    entry = peer_tables.ONE_CYCLE_LR[case]
    schedule = PEER_CASES["ONE_CYCLE_LR"][case]()
    total = len(entry["steps"])
    final = schedule.maximal_learning_rate / schedule.div_factor / schedule.final_div_factor
    np.testing.assert_allclose(entry["lr"][-1], final, rtol=1e-9)  # torch at total - 1.
    after = [total - 1, total, total + 1, 10 * total, MAX_STEP]
    np.testing.assert_allclose(evaluate(schedule, after), final, rtol=RTOL)
    # torch's value at total_steps is not its final rate (an extrapolation; below
    # zero for the linear strategy), and one more step() raises.
    assert abs(entry["lr_at_total"] - final) > 1e-3 * final
    if "linear" in case:
        assert entry["lr_at_total"] < 0
    assert entry["raises_after"].startswith("ValueError: Tried to step")


def test_one_cycle_peak_is_one_step_before_pct_start_times_total():
    """torch's phase ends at pct_start * total_steps - 1: the peak is at step 29 of 100."""
    schedule = ks.OneCycle(0.1, 100)
    values = evaluate(schedule, range(100))
    assert int(np.argmax(values)) == 29
    assert values[29] == np.float32(0.1)
    assert values[28] < values[29] and values[30] < values[29]
    # With pct_start * total_steps not an integer, no integer step reaches the peak.
    fractional = evaluate(PEER_CASES["ONE_CYCLE_LR"]["cos_2phase_37"](), range(37))
    assert fractional.max() < 0.05


def test_tanh_drops_to_the_minimum_at_decay_steps_as_timm_does():
    entry = peer_tables.TIMM_TANH_LR["t20"]
    schedule = PEER_CASES["TIMM_TANH_LR"]["t20"]()
    assert entry["lr"][20] == 0.001
    formula_at_end = 0.001 + (0.1 - 0.001) * (1 - math.tanh(3.0)) / 2  # 0.001245
    assert formula_at_end > 0.0012
    np.testing.assert_allclose(evaluate(schedule, [19, 20, 21, MAX_STEP]),
                               [entry["lr"][19], 0.001, 0.001, 0.001], rtol=RTOL)
    # Step 0 is the formula's value there, a little below the initial rate
    # (timm too; it sets the base rate only before its first step()).
    assert float(schedule(0)) < 0.1 and entry["lr"][0] < 0.1
    assert entry["lr_after_construction"] == 0.1


# -- Keras's ExponentialDecay, a second reference -------------------------------


@pytest.mark.parametrize("staircase", [False, True])
def test_exponential_equals_keras_without_transition_begin(staircase):
    steps = list(range(0, 150))
    for initial, decay_steps, rate in [(0.1, 10, 0.5), (0.37, 7, 0.9), (1.0, 1, 0.99)]:
        theirs = keras.optimizers.schedules.ExponentialDecay(initial, decay_steps, rate,
                                                             staircase=staircase)
        ours = ks.ExponentialDecay(initial, decay_steps, rate, staircase=staircase)
        expected = [float(theirs(s)) for s in steps]
        np.testing.assert_allclose(evaluate(ours, steps), expected, rtol=RTOL, atol=1e-30)
        exact = [reference.exponential(s, initial, decay_steps, rate, staircase) for s in steps]
        np.testing.assert_allclose(evaluate(ours, steps), exact, rtol=RTOL, atol=1e-30)


@pytest.mark.parametrize("rate, decay_steps", [(0.9, 7), (0.5, 10), (0.999, 3), (0.3, 13)])
def test_exponential_error_grows_by_about_1e_7_per_factor_e(rate, decay_steps):
    """As documented: float32 exp(p * log(rate)) is within ~1e-7 * |p * log(rate)|
    (relative) of the exact value; Keras's float32 rate ** p is further off,
    as it raises the rounded rate (0.9 is 0.9 * (1 - 2.6e-8)) to the power p."""
    steps = np.arange(0, 200_000, 7)
    exponent = np.abs(steps / decay_steps * math.log(rate))
    steps, exponent = steps[exponent <= 80], exponent[exponent <= 80]  # Above float32's tiny.
    exact = np.array([rate ** (s / decay_steps) for s in steps])
    relative = np.abs(evaluate(ks.ExponentialDecay(1.0, decay_steps, rate), steps) - exact) / exact
    assert np.all(relative <= 1.5e-7 * np.maximum(exponent, 1.0))
    theirs = keras.optimizers.schedules.ExponentialDecay(1.0, decay_steps, rate)
    at = steps[-1]
    assert abs(float(theirs(at)) - exact[-1]) / exact[-1] > relative[-1]


# -- Hand-checked tables: step 0, boundary - 1, boundary, boundary + 1, far past the end --

HAND = {
    # 0.1 * 0.5 ** ((step - 5) / 10), floored at 0.02 (reached at step 5 + 10 * log2(5)).
    "exponential": (
        ks.ExponentialDecay(0.1, 10, 0.5, transition_begin=5, end_learning_rate=0.02),
        [0, 4, 5, 6, 15, 25, 28, 29, 10**6, MAX_STEP],
        [0.1, 0.1, 0.1, 0.1 * 0.5**0.1, 0.05, 0.025, 0.1 * 0.5**2.3, 0.02, 0.02, 0.02]),
    "exponential_staircase": (
        ks.ExponentialDecay(0.8, 10, 0.5, staircase=True, transition_begin=5),
        [0, 14, 15, 16, 24, 25, 105, MAX_STEP],
        [0.8, 0.8, 0.4, 0.4, 0.4, 0.2, 0.8 * 2.0**-10, 0.0]),
    "exponential_growth": (
        ks.ExponentialDecay(0.1, 4, 2.0, end_learning_rate=0.5),
        [0, 3, 4, 5, 8, 9, 10, 10**6],
        [0.1, 0.1 * 2**0.75, 0.2, 0.2 * 2**0.25, 0.4, 0.4 * 2**0.25, 0.5, 0.5]),
    # 0.1 / sqrt(1 + step / 100).
    "inverse_sqrt": (
        ks.InverseSqrtDecay(0.1, 100),
        [0, 99, 100, 101, 300, 9900, MAX_STEP],
        [0.1, 0.1 / math.sqrt(1.99), 0.1 / math.sqrt(2), 0.1 / math.sqrt(2.01), 0.05, 0.01,
         0.1 / math.sqrt(1 + MAX_STEP / 100)]),
    # Start 0.1, peak 1.0 at step 24 (pct_start * total - 1), linear down to 0.001 at 99.
    "onecycle_linear": (
        ks.OneCycle(1.0, 100, pct_start=0.25, anneal_strategy="linear", div_factor=10.0,
                    final_div_factor=100.0),
        [0, 12, 23, 24, 25, 98, 99, 100, 10**6, MAX_STEP],
        [0.1, 0.55, 0.1 + 0.9 * 23 / 24, 1.0, 1 - 0.999 / 75, 0.001 + 0.999 / 75, 0.001, 0.001,
         0.001, 0.001]),
    # Three phases: 0.1 -> 1.0 (steps 0..24), 1.0 -> 0.1 (to 48), 0.1 -> 0.001 (to 99).
    "onecycle_three_phase_cos": (
        ks.OneCycle(1.0, 100, pct_start=0.25, div_factor=10.0, final_div_factor=100.0,
                    three_phase=True),
        [0, 12, 24, 36, 48, 49, 99, 100, MAX_STEP],
        [0.1, 0.55, 1.0, 0.55, 0.1, 0.001 + 0.099 * (1 + math.cos(math.pi / 51)) / 2, 0.001,
         0.001, 0.001]),
    # Up 0.1 -> 1.1 over 10 steps, down over 5; cycles of 15.
    "cyclic": (
        ks.Cyclic(0.1, 1.1, 10, 5),
        [0, 1, 9, 10, 11, 14, 15, 16, 25, 15 * 10**6, 15 * 10**6 + 10],
        [0.1, 0.2, 1.0, 1.1, 0.9, 0.3, 0.1, 0.2, 1.1, 0.1, 1.1]),
    "cyclic_triangular2": (
        ks.Cyclic(0.1, 1.1, 10, mode="triangular2"),
        [0, 10, 19, 20, 30, 50, 20 * 40 + 10],
        [0.1, 1.1, 0.2, 0.1, 0.6, 0.35, 0.1 + 2.0**-40]),
    "cyclic_exp_range": (
        ks.Cyclic(0.1, 1.1, 10, mode="exp_range", gamma=0.5),
        [0, 1, 10, 11, 20, 21, 1000],
        [0.1, 0.1 + 0.1 * 0.5, 0.1 + 0.5**10, 0.1 + 0.9 * 0.5**11, 0.1, 0.1 + 0.1 * 0.5**21,
         0.1]),
    # min + (1 - min) * (1 - tanh(-1 + 2 * step / 10)) / 2, then the minimum from step 10.
    "tanh": (
        ks.TanhDecay(1.0, 10, 0.2, lower_bound=-1.0, upper_bound=1.0),
        [0, 5, 9, 10, 11, MAX_STEP],
        [0.2 + 0.4 * (1 + math.tanh(1)), 0.6, 0.2 + 0.4 * (1 - math.tanh(0.8)), 0.2, 0.2, 0.2]),
    # Warmup 0.2 -> 1.0 over 4 steps, stable to step 9, decay over 8 steps, 0.2 from 18.
    "wsd_linear_cosine": (
        ks.WarmupStableDecay(1.0, 4, 6, 8, min_learning_rate=0.2),
        [0, 1, 3, 4, 9, 10, 11, 14, 17, 18, 19, MAX_STEP],
        [0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 0.2 + 0.4 * (1 + math.cos(math.pi / 8)), 0.6,
         0.2 + 0.4 * (1 + math.cos(7 * math.pi / 8)), 0.2, 0.2, 0.2]),
    "wsd_sqrt_sqrt": (
        ks.WarmupStableDecay(1.0, 4, 0, 4, warmup_shape="1-sqrt", decay_shape="1-sqrt"),
        [0, 3, 4, 5, 7, 8, 100],
        [0.0, 0.5, 1.0, 0.5, 1 - math.sqrt(0.75), 0.0, 0.0]),
    "wsd_cosine_warmup_no_stable": (
        ks.WarmupStableDecay(1.0, 2, 0, 2, warmup_shape="cosine", decay_shape="linear"),
        [0, 1, 2, 3, 4, 5],
        [0.0, 0.5, 1.0, 0.5, 0.0, 0.0]),
    # 0.5 for steps 0-2, then LinearDecay(1, 10) from its step 0 at step 3, then
    # StepDecay(0.3, [2]) from its step 0 at step 8.
    "sequence": (
        ks.Sequence([0.5, ks.LinearDecay(1.0, 10), ks.StepDecay(0.3, [2])], [3, 8]),
        [0, 2, 3, 4, 7, 8, 9, 10, 11, MAX_STEP],
        [0.5, 0.5, 1.0, 0.9, 0.6, 0.3, 0.3, 0.03, 0.03, 0.03]),
    "product": (
        ks.Product([2.0, ks.StepDecay(0.1, [5]), ks.ExponentialDecay(1.0, 1, 0.5)]),
        [0, 1, 4, 5, 6, 100],
        [0.2, 0.1, 0.2 * 0.5**4, 0.02 * 0.5**5, 0.02 * 0.5**6, 0.02 * 0.5**100]),
}


@pytest.mark.parametrize("name", list(HAND))
def test_hand_checked_table(name):
    schedule, steps, expected = HAND[name]
    np.testing.assert_allclose(evaluate(schedule, steps), expected, rtol=RTOL, atol=1e-30)
    for dtype in ("int32", "float32"):  # float32 holds these steps only up to 2**24.
        small = [s for s in steps if dtype == "int32" or s <= 2**24]
        got = np.asarray(schedule(np.array(small, dtype)), "float64")
        np.testing.assert_allclose(got, [e for s, e in zip(steps, expected) if s in small],
                                   rtol=RTOL, atol=1e-30, err_msg=dtype)


# -- Dense sweeps against the plain-Python references --------------------------

SWEEPS = {
    "onecycle_cos": (ks.OneCycle(0.37, 391 * 7, pct_start=0.31, div_factor=13.0),
                     lambda s: reference.one_cycle(s, 0.37, 391 * 7, 0.31, div=13.0)),
    "onecycle_linear_3": (
        ks.OneCycle(0.37, 1001, pct_start=0.2, anneal_strategy="linear", final_div_factor=50.0,
                    three_phase=True),
        lambda s: reference.one_cycle(s, 0.37, 1001, 0.2, "linear", final_div=50.0,
                                      three_phase=True)),
    "cyclic_exp_range": (ks.Cyclic(0.011, 0.37, 17, 9, mode="exp_range", gamma=0.999),
                         lambda s: reference.cyclic(s, 0.011, 0.37, 17, 9, "exp_range", 0.999)),
    "cyclic_triangular2": (ks.Cyclic(0.011, 0.37, 5, 12, mode="triangular2"),
                           lambda s: reference.cyclic(s, 0.011, 0.37, 5, 12, "triangular2")),
    "tanh": (ks.TanhDecay(0.37, 997, 0.011, -5.0, 4.0),
             lambda s: reference.tanh_decay(s, 0.37, 997, 0.011, -5.0, 4.0)),
    "wsd": (ks.WarmupStableDecay(0.37, 101, 503, 397, 0.011, "1-sqrt", "cosine"),
            lambda s: reference.wsd(s, 0.37, 101, 503, 397, 0.011, "1-sqrt", "cosine")),
    "exponential": (ks.ExponentialDecay(0.37, 97, 0.7, transition_begin=31,
                                        end_learning_rate=0.011),
                    lambda s: reference.exponential(s, 0.37, 97, 0.7, False, 31, 0.011)),
    "inverse_sqrt": (ks.InverseSqrtDecay(0.37, 250),
                     lambda s: reference.inverse_sqrt(s, 0.37, 250)),
}


@pytest.mark.parametrize("name", list(SWEEPS))
def test_dense_sweep_equals_the_reference(name):
    schedule, formula = SWEEPS[name]
    steps = list(range(0, 3000))
    np.testing.assert_allclose(evaluate(schedule, steps), [formula(s) for s in steps],
                               rtol=RTOL, atol=1e-8)


# -- Integer steps near 2**31: positions inside pieces are exact -----------------


def test_exact_positions_near_the_int32_limit():
    big = MAX_STEP - 10
    cases = [
        # A boundary near 2**31: the piece after it starts at its own step 0.
        (ks.Sequence([0.1, ks.StepDecay(1.0, [3], 0.5)], [big]),
         [big - 1, big, big + 2, big + 3, MAX_STEP], [0.1, 1.0, 1.0, 0.5, 0.5]),
        # A cycle of 2**30 + 2**29 steps: its second one starts at 2**30 + 2**29 exactly.
        (ks.Cyclic(0.0, 1.0, 2**30, 2**29),
         [2**30 - 1, 2**30, 2**30 + 2**29 - 1, 2**30 + 2**29, 2**30 + 2**29 + 1],
         [1 - 2.0**-30, 1.0, 2.0**-29, 0.0, 2.0**-30]),
        # Cycles of 5 steps up to 2**31 - 1 (= 2 mod 5), where float32 steps are 128 apart.
        (ks.Cyclic(0.0, 1.0, 3, 2),
         [MAX_STEP - 3, MAX_STEP - 2, MAX_STEP - 1, MAX_STEP], [0.5, 0.0, 1 / 3, 2 / 3]),
        # A WSD whose 8-step decay ends at 2**31 - 1.
        (ks.WarmupStableDecay(1.0, 0, MAX_STEP - 8, 8, decay_shape="linear"),
         [MAX_STEP - 9, MAX_STEP - 8, MAX_STEP - 7, MAX_STEP - 1, MAX_STEP],
         [1.0, 1.0, 7 / 8, 1 / 8, 0.0]),
        (ks.WarmupStableDecay(1.0, MAX_STEP - 4, 0, 4, warmup_shape="1-sqrt",
                              decay_shape="1-sqrt"),
         [MAX_STEP - 3, MAX_STEP - 2, MAX_STEP], [1 - math.sqrt(0.25), 1 - math.sqrt(0.5), 0.0]),
        # A staircase drop at 2**30 + 647 (float32 steps there are 128 apart).
        (ks.ExponentialDecay(1.0, 2**30, 0.5, staircase=True, transition_begin=647),
         [2**30 + 646, 2**30 + 647, MAX_STEP], [1.0, 0.5, 0.5]),
        # A OneCycle, a TanhDecay and a Product run as the last piece after a boundary near 2**31.
        (ks.Sequence([0.1, ks.OneCycle(1.0, 10, pct_start=0.5, anneal_strategy="linear",
                                       div_factor=2.0, final_div_factor=2.0)], [MAX_STEP - 9]),
         [MAX_STEP - 10, MAX_STEP - 9, MAX_STEP - 7, MAX_STEP - 5, MAX_STEP - 4, MAX_STEP],
         [0.1, 0.5, 0.75, 1.0, 1 - 0.75 / 5, 0.25]),
        (ks.Sequence([0.1, ks.Product([ks.TanhDecay(1.0, 4, 0.0, -1.0, 1.0), 0.5])],
                     [MAX_STEP - 4]),
         [MAX_STEP - 5, MAX_STEP - 4, MAX_STEP - 2, MAX_STEP],
         [0.1, 0.25 * (1 + math.tanh(1)), 0.25, 0.0]),
    ]
    for schedule, steps, expected in cases:
        for dtype in ("int32", "int64"):
            np.testing.assert_allclose(evaluate(schedule, steps, dtype), expected, rtol=RTOL,
                                       atol=1e-30, err_msg=f"{schedule!r} {dtype}")


def test_fractional_float_steps_follow_the_formulas():
    steps = [0.5, 7.25, 29.5, 63.75, 98.5]
    schedule = ks.OneCycle(0.1, 100)
    np.testing.assert_allclose(np.asarray(schedule(np.array(steps, "float32")), "float64"),
                               [reference.one_cycle(s, 0.1, 100) for s in steps], rtol=1e-5)
    cyclic = ks.Cyclic(0.01, 0.1, 10, 6, mode="triangular2")
    np.testing.assert_allclose(np.asarray(cyclic(np.array(steps, "float32")), "float64"),
                               [reference.cyclic(s, 0.01, 0.1, 10, 6, "triangular2") for s in steps],
                               rtol=1e-5)


# -- Warmup is a Sequence of a linear ramp and the schedule ---------------------


def ramp(start, target, warmup_steps):
    """A schedule rising linearly from `start` to `target` over `warmup_steps` steps.

    No 0.1 schedule rises (LinearDecay and PolynomialDecay only fall), so the
    ramp is the warmup of a WarmupStableDecay; for a falling warmup
    (start above target), LinearDecay is the ramp.
    """
    if start <= target:
        return ks.WarmupStableDecay(target, warmup_steps, 0, 1, min_learning_rate=start,
                                    warmup_shape="linear")
    return ks.LinearDecay(start, warmup_steps, target)


@pytest.mark.parametrize("inner, warmup_steps, start", [
    (ks.CosineAnnealing(0.37, 100, 0.011), 8, 0.0),
    (ks.CosineAnnealingWarmRestarts(0.37, 9, t_mul=2.0, m_mul=0.8), 8, 0.003),
    (ks.StepDecay(0.37, [3, 50], 0.3), 391, 0.0),
    (ks.OneCycle(0.37, 200), 25, 0.0),  # OneCycle starts at 0.37 / 25.
    (0.37, 7, 0.01),
])
def test_warmup_equals_a_sequence_of_a_ramp_and_the_schedule(inner, warmup_steps, start):
    """Identical values (the same float32 operations) for a rising warmup."""
    warmup = ks.Warmup(inner, warmup_steps, start)
    target = float(warmup._inner(0))
    sequence = ks.Sequence([ramp(start, target, warmup_steps), inner], [warmup_steps])
    steps = np.arange(0, 3 * warmup_steps + 500)
    for dtype in ("int64", "int32", "float32"):
        np.testing.assert_array_equal(np.asarray(sequence(steps.astype(dtype))),
                                      np.asarray(warmup(steps.astype(dtype))), err_msg=dtype)
    np.testing.assert_array_equal(evaluate(sequence, steps), evaluate(warmup, steps))


def test_a_falling_warmup_equals_a_sequence_up_to_one_rounding():
    """Warmup also ramps down (start above schedule(0)); LinearDecay is that ramp,
    computing the same line from the other end: equal to one float32 rounding."""
    inner = ks.InverseSqrtDecay(0.37, 10)
    warmup = ks.Warmup(inner, 10, 0.5)
    sequence = ks.Sequence([ramp(0.5, float(inner(0)), 10), inner], [10])
    steps = np.arange(0, 200)
    np.testing.assert_array_equal(evaluate(sequence, steps[10:]), evaluate(warmup, steps[10:]))
    np.testing.assert_allclose(evaluate(sequence, steps), evaluate(warmup, steps), rtol=1.2e-7)


if __name__ == "__main__":
    print("largest difference against each peer table "
          f"({', '.join(f'{k} {v}' for k, v in peer_tables.VERSIONS.items())}):")
    for (table, case), (absolute, relative) in largest_differences().items():
        print(f"{table:26s} {case:26s} abs {absolute:.2e}  rel {relative:.2e}")
    sys.exit(0)

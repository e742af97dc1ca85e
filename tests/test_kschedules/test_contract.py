"""The contract every schedule keeps, tested over the whole registry and the wrappers."""

import inspect
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import kschedules as ks
from evaluate import evaluate

STEPS = [0, 1, 7, 8, 9, 25, 26, 99, 100, 101, 1000]

# One instance per registered name, with non-default, asymmetric arguments.
REGISTERED = {
    "constant": dict(learning_rate=0.037),
    "step": dict(initial_learning_rate=0.37, boundaries=[8, 26, 100], factor=0.3),
    "cosine": dict(initial_learning_rate=0.37, decay_steps=100, min_learning_rate=0.011),
    "cosine_restarts": dict(initial_learning_rate=0.37, first_decay_steps=9, t_mul=2.0,
                            m_mul=0.8, min_learning_rate=0.011),
    "linear": dict(initial_learning_rate=0.37, decay_steps=100, end_learning_rate=0.011),
    "poly": dict(initial_learning_rate=0.37, decay_steps=100, end_learning_rate=0.011, power=0.5),
    "exponential": dict(initial_learning_rate=0.37, decay_steps=9, decay_rate=0.7, staircase=True,
                        transition_begin=8, end_learning_rate=0.011),
    "inverse_sqrt": dict(initial_learning_rate=0.37, timescale=25),
    "onecycle": dict(maximal_learning_rate=0.37, total_steps=100, pct_start=0.26,
                     anneal_strategy="linear", div_factor=7.0, final_div_factor=30.0,
                     three_phase=True),
    "cyclic": dict(initial_learning_rate=0.011, maximal_learning_rate=0.37, step_size_up=9,
                   step_size_down=17, mode="exp_range", gamma=0.99),
    "tanh": dict(initial_learning_rate=0.37, decay_steps=100, min_learning_rate=0.011,
                 lower_bound=-5.0, upper_bound=2.0),
    "wsd": dict(initial_learning_rate=0.37, warmup_steps=8, stable_steps=18, decay_steps=74,
                min_learning_rate=0.011, warmup_shape="1-sqrt", decay_shape="linear"),
}


def all_schedules():
    schedules = {name: ks.get(name, **kwargs) for name, kwargs in REGISTERED.items()}
    schedules["warmup(restarts)"] = ks.Warmup(schedules["cosine_restarts"], 8, 0.003)
    schedules["warmup(float)"] = ks.Warmup(0.37, 8)
    schedules["staircase(warmup(cosine))"] = ks.Staircase(ks.Warmup(schedules["cosine"], 8), 9)
    schedules["warmup(keras)"] = ks.Warmup(
        keras.optimizers.schedules.PolynomialDecay(0.37, 50, 0.011), 8)
    schedules["sequence(float, onecycle, keras, restarts)"] = ks.Sequence(
        [0.05, ks.OneCycle(0.37, 18, pct_start=0.4),
         keras.optimizers.schedules.ExponentialDecay(0.2, 10, 0.5), schedules["cosine_restarts"]],
        [7, 25, 99])
    schedules["product(cyclic, exponential, float)"] = ks.Product(
        [ks.Cyclic(0.011, 0.37, 9, mode="triangular2"), ks.ExponentialDecay(1.0, 1, 0.999), 0.8])
    schedules["staircase(warmup(sequence(wsd, tanh)))"] = ks.Staircase(ks.Warmup(ks.Sequence(
        [ks.WarmupStableDecay(0.37, 0, 5, 20), ks.TanhDecay(0.2, 50)], [25]), 8), 9)
    schedules["per_update(warmup(step))"] = ks.PerUpdate(
        ks.Warmup(schedules["step"], 3, 0.01), gradient_accumulation_steps=3)
    return schedules


SCHEDULES = all_schedules()
IDS = list(SCHEDULES)


def test_registry_covers_every_runner_name():
    assert set(ks.SCHEDULES) == {"constant", "step", "cosine", "cosine_restarts", "linear", "poly",
                                 "exponential", "inverse_sqrt", "onecycle", "cyclic", "tanh",
                                 "wsd"}
    assert set(REGISTERED) == set(ks.SCHEDULES)


@pytest.mark.parametrize("name", IDS)
def test_is_a_keras_schedule(name):
    assert isinstance(SCHEDULES[name], keras.optimizers.schedules.LearningRateSchedule)


@pytest.mark.parametrize("name", list(REGISTERED))
def test_get_config_is_the_constructor_kwargs(name):
    schedule = SCHEDULES[name]
    config = schedule.get_config()
    assert list(config) == list(inspect.signature(type(schedule)).parameters)
    assert config == {**config, **REGISTERED[name]}


@pytest.mark.parametrize("name", IDS)
def test_serialization_round_trip(name):
    schedule = SCHEDULES[name]
    config = keras.saving.serialize_keras_object(schedule)
    assert config["registered_name"].startswith(("kschedules>", "PolynomialDecay"))
    rebuilt = keras.saving.deserialize_keras_object(config)
    assert type(rebuilt) is type(schedule)
    assert keras.saving.serialize_keras_object(rebuilt) == config
    np.testing.assert_array_equal(evaluate(rebuilt, STEPS), evaluate(schedule, STEPS))


@pytest.mark.parametrize("name", IDS)
def test_xla_compiled_equals_eager(name):
    schedule = SCHEDULES[name]
    compiled = tf.function(schedule, jit_compile=True)
    eager = [float(schedule(tf.constant(s, tf.int64))) for s in STEPS]
    xla = [float(compiled(tf.constant(s, tf.int64))) for s in STEPS]
    np.testing.assert_allclose(xla, eager, rtol=1e-6, atol=1e-9)


def sgd_updates(optimizer, num_steps):
    """Per-step change of a weight whose loss is the weight itself (so -lr per step).

    The weight is set back to 0 before each update, so the change is read
    without the rounding of a growing weight (after 30 steps of up to 0.37,
    |w| ~ 5 rounds to 5e-7, 5e-5 of a rate of 0.011).
    """
    weight = keras.Variable(0.0)
    deltas = []
    for _ in range(num_steps):
        weight.assign(0.0)
        before = float(weight.numpy())
        gradient = tf.constant(1.0)
        if hasattr(optimizer, "scale_loss"):  # A LossScaleOptimizer unscales it.
            gradient = tf.convert_to_tensor(optimizer.scale_loss(gradient))
        optimizer.apply_gradients([(gradient, weight)])
        deltas.append(before - float(weight.numpy()))
    return np.array(deltas)


@pytest.mark.parametrize("name", IDS)
def test_update_at_step_k_uses_schedule_of_k(name):
    schedule = SCHEDULES[name]
    deltas = sgd_updates(keras.optimizers.SGD(schedule), 30)
    np.testing.assert_allclose(deltas, evaluate(schedule, range(30)), rtol=1e-5, atol=1e-8)


def test_loss_scale_optimizer_uses_the_schedule():
    schedule = SCHEDULES["warmup(restarts)"]
    optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(schedule))
    deltas = sgd_updates(optimizer, 20)
    np.testing.assert_allclose(deltas, evaluate(schedule, range(20)), rtol=1e-5, atol=1e-8)


def test_nested_schedule_survives_a_saved_keras_model(tmp_path):
    schedule = ks.Warmup(ks.CosineAnnealingWarmRestarts(0.37, 9, t_mul=2.0, m_mul=0.8,
                                                        min_learning_rate=0.011), 8, 0.003)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.SGD(schedule, momentum=0.9), loss="mse")
    model.fit(np.ones((4, 3)), np.zeros((4, 2)), epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # No custom_objects: registered classes.
    loaded_schedule = loaded.optimizer.learning_rate if not hasattr(
        loaded.optimizer, "_learning_rate") else loaded.optimizer._learning_rate
    assert isinstance(loaded_schedule, ks.Warmup)
    assert isinstance(loaded_schedule.schedule, ks.CosineAnnealingWarmRestarts)
    np.testing.assert_array_equal(evaluate(loaded_schedule, STEPS), evaluate(schedule, STEPS))


def test_every_0_2_schedule_survives_a_saved_keras_model(tmp_path):
    """Sequence and Product nest lists of schedules (and floats) through `.keras`."""
    schedule = ks.Product([
        ks.Sequence([
            ks.WarmupStableDecay(0.37, 3, 4, 5, 0.011, "cosine", "1-sqrt"),
            ks.OneCycle(0.37, 20, pct_start=0.3, three_phase=True),
            ks.Cyclic(0.011, 0.37, 4, 3, mode="triangular2"),
            ks.TanhDecay(0.37, 30, 0.011),
            0.05,
            ks.Warmup(ks.InverseSqrtDecay(0.37, 9), 9),
        ], [12, 32, 50, 80, 90]),
        ks.ExponentialDecay(1.0, 7, 0.9, staircase=True, transition_begin=3),
        0.9,
    ])
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.SGD(schedule), loss="mse")
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path).optimizer._learning_rate
    assert loaded == schedule
    assert loaded.schedules[2] == 0.9 and isinstance(loaded.schedules[2], float)
    steps = list(range(0, 120))
    np.testing.assert_array_equal(evaluate(loaded, steps), evaluate(schedule, steps))


def test_works_under_mirrored_strategy_and_mixed_precision():
    # Two logical CPU devices must be configured before TensorFlow starts: a
    # fresh interpreter.
    code = textwrap.dedent("""
        import numpy as np, tensorflow as tf, keras
        import kschedules as ks
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        keras.mixed_precision.set_global_policy("mixed_float16")
        schedule = ks.Warmup(ks.StepDecay(0.37, [3], 0.3), 2, 0.1)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        with strategy.scope():
            model = keras.Sequential([keras.Input((1,)),
                                      keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")])
            model.compile(optimizer=keras.optimizers.SGD(schedule), loss=lambda y, p: p)
        x = np.ones((8, 1), "float32")
        # loss = mean(w * x) = w, gradient 1: each step moves w by -lr(step).
        history = []
        for _ in range(6):
            model.fit(x, x, batch_size=8, epochs=1, verbose=0)
            history.append(float(model.layers[0].kernel.numpy()[0, 0]))
        print("WEIGHTS", history)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    line = next(l for l in result.stdout.splitlines() if l.startswith("WEIGHTS"))
    weights = np.array(eval(line.split(" ", 1)[1]))  # A printed list of floats.
    # Warmup 0.1, 0.235; then StepDecay from its own step 0: 0.37 x3, 0.111 at 3.
    expected = -np.cumsum([0.1, 0.235, 0.37, 0.37, 0.37, 0.111])
    np.testing.assert_allclose(weights, expected, rtol=1e-3)


# -- Bad arguments ---------------------------------------------------------

BAD = [
    # (constructor, kwargs, error type, text in the message)
    (ks.Constant, dict(learning_rate=-0.1), ValueError, "Constant: learning_rate must be >= 0, received learning_rate=-0.1"),
    (ks.Constant, dict(learning_rate=True), TypeError, "Constant: learning_rate must be a real number"),
    (ks.Constant, dict(learning_rate="0.1"), TypeError, "received learning_rate='0.1'"),
    (ks.Constant, dict(learning_rate=float("nan")), ValueError, "learning_rate=nan"),
    (ks.StepDecay, dict(initial_learning_rate=-1.0, boundaries=[5]), ValueError, "initial_learning_rate must be >= 0"),
    (ks.StepDecay, dict(initial_learning_rate=0.1, boundaries=[5, 5]), ValueError, "boundaries must be strictly increasing"),
    (ks.StepDecay, dict(initial_learning_rate=0.1, boundaries=[10, 5]), ValueError, "boundaries must be strictly increasing"),
    (ks.StepDecay, dict(initial_learning_rate=0.1, boundaries=[0, 5]), ValueError, "boundaries[0] must be an integer in [1, 2147483647]"),
    (ks.StepDecay, dict(initial_learning_rate=0.1, boundaries=[]), ValueError, "boundaries must be a non-empty sequence"),
    (ks.StepDecay, dict(initial_learning_rate=0.1, boundaries="30,60"), TypeError, "boundaries must be a sequence"),
    (ks.StepDecay, dict(initial_learning_rate=0.1, boundaries=[2.5]), ValueError, "boundaries[0] must be an integer"),
    (ks.StepDecay, dict(initial_learning_rate=0.1, boundaries=[5], factor=0.0), ValueError, "factor must be > 0 and <= 1, received factor=0.0"),
    (ks.StepDecay, dict(initial_learning_rate=0.1, boundaries=[5], factor=-0.5), ValueError, "factor must be > 0"),
    (ks.StepDecay, dict(initial_learning_rate=0.1, boundaries=[5], factor=1.5), ValueError, "factor must be > 0 and <= 1"),
    (ks.CosineAnnealing, dict(initial_learning_rate=0.1, decay_steps=0), ValueError, "CosineAnnealing: decay_steps must be an integer in [1, 2147483647], received decay_steps=0"),
    (ks.CosineAnnealing, dict(initial_learning_rate=0.1, decay_steps=True), TypeError, "decay_steps must be an integer"),
    (ks.CosineAnnealing, dict(initial_learning_rate=0.1, decay_steps=10, min_learning_rate=0.2), ValueError, "min_learning_rate must be <= initial_learning_rate (0.1), received min_learning_rate=0.2"),
    (ks.CosineAnnealingWarmRestarts, dict(initial_learning_rate=0.1, first_decay_steps=-3), ValueError, "first_decay_steps must be an integer in [1, 2147483647]"),
    (ks.CosineAnnealingWarmRestarts, dict(initial_learning_rate=0.1, first_decay_steps=10, t_mul=0.5), ValueError, "t_mul must be >= 1, received t_mul=0.5"),
    (ks.CosineAnnealingWarmRestarts, dict(initial_learning_rate=0.1, first_decay_steps=10, m_mul=0.0), ValueError, "m_mul must be > 0, received m_mul=0.0"),
    (ks.CosineAnnealingWarmRestarts, dict(initial_learning_rate=0.1, first_decay_steps=10, min_learning_rate=0.5), ValueError, "min_learning_rate must be <= initial_learning_rate"),
    (ks.PolynomialDecay, dict(initial_learning_rate=0.1, decay_steps=10, power=0.0), ValueError, "PolynomialDecay: power must be > 0, received power=0.0"),
    (ks.PolynomialDecay, dict(initial_learning_rate=0.1, decay_steps=10, power=-1.0), ValueError, "power must be > 0, received power=-1.0"),
    (ks.PolynomialDecay, dict(initial_learning_rate=0.1, decay_steps=10, end_learning_rate=0.3), ValueError, "end_learning_rate must be <= initial_learning_rate"),
    (ks.PolynomialDecay, dict(initial_learning_rate=0.1, decay_steps=0), ValueError, "decay_steps must be an integer in [1, 2147483647]"),
    (ks.LinearDecay, dict(initial_learning_rate=0.1, decay_steps=10, end_learning_rate=-0.1), ValueError, "LinearDecay: end_learning_rate must be >= 0"),
    (ks.LinearDecay, dict(initial_learning_rate=0.1, decay_steps="10"), TypeError, "LinearDecay: decay_steps must be an integer"),
    (ks.Warmup, dict(schedule=0.1, warmup_steps=-1), ValueError, "Warmup: warmup_steps must be an integer in [0, 2147483647], received warmup_steps=-1"),
    (ks.Warmup, dict(schedule="cosine", warmup_steps=5), TypeError, "Warmup: schedule must be a LearningRateSchedule or a float"),
    (ks.Warmup, dict(schedule=-0.1, warmup_steps=5), ValueError, "Warmup: schedule must be >= 0"),
    (ks.Warmup, dict(schedule=0.1, warmup_steps=5, start_learning_rate=-1.0), ValueError, "start_learning_rate must be >= 0"),
    (ks.PerUpdate, dict(schedule=0.1, gradient_accumulation_steps=0), ValueError, "PerUpdate: gradient_accumulation_steps must be an integer in [1, 2147483647], received gradient_accumulation_steps=0"),
    (ks.PerUpdate, dict(schedule="cosine", gradient_accumulation_steps=2), TypeError, "PerUpdate: schedule must be a LearningRateSchedule or a float"),
    (ks.Staircase, dict(schedule=0.1, steps_per_epoch=0), ValueError, "Staircase: steps_per_epoch must be an integer in [1, 2147483647], received steps_per_epoch=0"),
    (ks.Staircase, dict(schedule=None, steps_per_epoch=10), TypeError, "Staircase: schedule must be a LearningRateSchedule or a float"),
    # The 0.2 schedules.
    (ks.ExponentialDecay, dict(initial_learning_rate=0.1, decay_steps=0, decay_rate=0.5), ValueError, "ExponentialDecay: decay_steps must be an integer in [1, 2147483647], received decay_steps=0"),
    (ks.ExponentialDecay, dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.0), ValueError, "decay_rate must be > 0, received decay_rate=0.0"),
    (ks.ExponentialDecay, dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5, staircase="yes"), TypeError, "staircase must be a bool (True or False), received staircase='yes'"),
    (ks.ExponentialDecay, dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5, transition_begin=-1), ValueError, "transition_begin must be an integer in [0, 2147483647]"),
    (ks.ExponentialDecay, dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5, end_learning_rate=0.2), ValueError, "end_learning_rate must be <= initial_learning_rate (0.1), received end_learning_rate=0.2"),
    (ks.ExponentialDecay, dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=2.0, end_learning_rate=0.05), ValueError, "end_learning_rate must be >= initial_learning_rate (0.1) when decay_rate >= 1 (a ceiling), received end_learning_rate=0.05"),
    (ks.ExponentialDecay, dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=2.0), ValueError, "end_learning_rate must be a ceiling >= initial_learning_rate (0.1) when decay_rate > 1 (the rate would grow without limit), received end_learning_rate=None"),
    (ks.InverseSqrtDecay, dict(initial_learning_rate=0.1, timescale=0), ValueError, "InverseSqrtDecay: timescale must be an integer in [1, 2147483647], received timescale=0"),
    (ks.InverseSqrtDecay, dict(initial_learning_rate=-0.1, timescale=10), ValueError, "initial_learning_rate must be >= 0"),
    (ks.OneCycle, dict(maximal_learning_rate=0.1, total_steps=100, pct_start=1.0), ValueError, "OneCycle: pct_start must be > 0 and < 1, received pct_start=1.0"),
    (ks.OneCycle, dict(maximal_learning_rate=0.1, total_steps=100, pct_start=0.0), ValueError, "pct_start must be > 0, received pct_start=0.0"),
    (ks.OneCycle, dict(maximal_learning_rate=0.1, total_steps=10, pct_start=0.1), ValueError, "pct_start must be > 1 / total_steps = 0.1 (the first phase ends at step pct_start * total_steps - 1, which must be > 0), received pct_start=0.1"),
    (ks.OneCycle, dict(maximal_learning_rate=0.1, total_steps=100, pct_start=0.6, three_phase=True), ValueError, "pct_start must be < (total_steps + 1) / (2 * total_steps) = 0.505 with three_phase=True"),
    (ks.OneCycle, dict(maximal_learning_rate=0.1, total_steps=100, anneal_strategy="cosine"), ValueError, "OneCycle: anneal_strategy must be one of 'cos', 'linear', received anneal_strategy='cosine'"),
    (ks.OneCycle, dict(maximal_learning_rate=0.1, total_steps=100, div_factor=0.5), ValueError, "div_factor must be >= 1, received div_factor=0.5"),
    (ks.OneCycle, dict(maximal_learning_rate=0.1, total_steps=100, final_div_factor=0.0), ValueError, "final_div_factor must be >= 1, received final_div_factor=0.0"),
    (ks.OneCycle, dict(maximal_learning_rate=0.1, total_steps=1), ValueError, "total_steps must be an integer in [2, 2147483647], received total_steps=1"),
    (ks.OneCycle, dict(maximal_learning_rate=0.1, total_steps=100, three_phase=1), TypeError, "three_phase must be a bool"),
    (ks.Cyclic, dict(initial_learning_rate=0.1, maximal_learning_rate=0.05, step_size_up=10), ValueError, "Cyclic: maximal_learning_rate must be >= initial_learning_rate (0.1), received maximal_learning_rate=0.05"),
    (ks.Cyclic, dict(initial_learning_rate=0.01, maximal_learning_rate=0.1, step_size_up=0), ValueError, "step_size_up must be an integer in [1, 2147483647], received step_size_up=0"),
    (ks.Cyclic, dict(initial_learning_rate=0.01, maximal_learning_rate=0.1, step_size_up=10, step_size_down=2.5), ValueError, "step_size_down must be an integer in [1, 2147483647], received step_size_down=2.5"),
    (ks.Cyclic, dict(initial_learning_rate=0.01, maximal_learning_rate=0.1, step_size_up=2**30, step_size_down=2**30), ValueError, "step_size_down must be <= 2147483647 - step_size_up = 1073741823"),
    (ks.Cyclic, dict(initial_learning_rate=0.01, maximal_learning_rate=0.1, step_size_up=10, mode="exp"), ValueError, "Cyclic: mode must be one of 'triangular', 'triangular2', 'exp_range', received mode='exp'"),
    (ks.Cyclic, dict(initial_learning_rate=0.01, maximal_learning_rate=0.1, step_size_up=10, mode=None), TypeError, "mode must be one of 'triangular', 'triangular2', 'exp_range', received mode=None"),
    (ks.Cyclic, dict(initial_learning_rate=0.01, maximal_learning_rate=0.1, step_size_up=10, mode="exp_range", gamma=1.5), ValueError, "gamma must be > 0 and <= 1, received gamma=1.5"),
    (ks.Cyclic, dict(initial_learning_rate=0.01, maximal_learning_rate=0.1, step_size_up=10, gamma=0.99), ValueError, "gamma must be 1.0 unless mode='exp_range' (mode='triangular' does not use it), received gamma=0.99"),
    (ks.TanhDecay, dict(initial_learning_rate=0.1, decay_steps=0), ValueError, "TanhDecay: decay_steps must be an integer in [1, 2147483647]"),
    (ks.TanhDecay, dict(initial_learning_rate=0.1, decay_steps=10, min_learning_rate=0.2), ValueError, "min_learning_rate must be <= initial_learning_rate (0.1), received min_learning_rate=0.2"),
    (ks.TanhDecay, dict(initial_learning_rate=0.1, decay_steps=10, lower_bound=3.0, upper_bound=3.0), ValueError, "TanhDecay: upper_bound must be > lower_bound (3.0), received upper_bound=3.0"),
    (ks.TanhDecay, dict(initial_learning_rate=0.1, decay_steps=10, lower_bound=float("-inf")), ValueError, "lower_bound must be a finite real number, received lower_bound=-inf"),
    (ks.WarmupStableDecay, dict(initial_learning_rate=0.1, warmup_steps=-1, stable_steps=10, decay_steps=10), ValueError, "WarmupStableDecay: warmup_steps must be an integer in [0, 2147483647], received warmup_steps=-1"),
    (ks.WarmupStableDecay, dict(initial_learning_rate=0.1, warmup_steps=5, stable_steps=10, decay_steps=0), ValueError, "decay_steps must be an integer in [1, 2147483647], received decay_steps=0"),
    (ks.WarmupStableDecay, dict(initial_learning_rate=0.1, warmup_steps=2**30, stable_steps=2**30, decay_steps=10), ValueError, "decay_steps must be <= 2147483647 - warmup_steps - stable_steps = -1 (the schedule must end by step 2147483647), received decay_steps=10"),
    (ks.WarmupStableDecay, dict(initial_learning_rate=0.1, warmup_steps=5, stable_steps=10, decay_steps=10, min_learning_rate=0.5), ValueError, "min_learning_rate must be <= initial_learning_rate (0.1)"),
    (ks.WarmupStableDecay, dict(initial_learning_rate=0.1, warmup_steps=5, stable_steps=10, decay_steps=10, decay_shape="sqrt"), ValueError, "WarmupStableDecay: decay_shape must be one of 'linear', 'cosine', '1-sqrt', received decay_shape='sqrt'"),
    (ks.WarmupStableDecay, dict(initial_learning_rate=0.1, warmup_steps=5, stable_steps=10, decay_steps=10, warmup_shape="exponential"), ValueError, "warmup_shape must be one of 'linear', 'cosine', '1-sqrt', received warmup_shape='exponential'"),
    (ks.Sequence, dict(schedules=[0.1, 0.2], boundaries=[5, 9]), ValueError, "Sequence: boundaries must have len(schedules) - 1 = 1 entries, received boundaries=[5, 9]"),
    (ks.Sequence, dict(schedules=[0.1], boundaries=[]), ValueError, "Sequence: schedules must be a list of at least 2 LearningRateSchedules or floats, received schedules=[0.1]"),
    (ks.Sequence, dict(schedules=[0.1, 0.2, 0.3], boundaries=[9, 5]), ValueError, "Sequence: boundaries must be strictly increasing"),
    (ks.Sequence, dict(schedules=[0.1, 0.2], boundaries=[0]), ValueError, "boundaries[0] must be an integer in [1, 2147483647], received boundaries[0]=0"),
    (ks.Sequence, dict(schedules=[0.1, "cosine"], boundaries=[5]), TypeError, "Sequence: schedules[1] must be a LearningRateSchedule or a float, received schedules[1]='cosine'"),
    (ks.Sequence, dict(schedules=[0.1, -0.2], boundaries=[5]), ValueError, "schedules[1] must be >= 0, received schedules[1]=-0.2"),
    (ks.Sequence, dict(schedules=0.1, boundaries=[5]), TypeError, "Sequence: schedules must be a list of LearningRateSchedules or floats, received schedules=0.1"),
    (ks.Product, dict(schedules=[]), ValueError, "Product: schedules must be a list of at least 1 LearningRateSchedules or floats, received schedules=[]"),
    (ks.Product, dict(schedules={0.1, 0.2}), TypeError, "Product: schedules must be a list of LearningRateSchedules or floats"),
    (ks.Product, dict(schedules=[0.1, None]), TypeError, "Product: schedules[1] must be a LearningRateSchedule or a float, received schedules[1]=None"),
]


@pytest.mark.parametrize("cls,kwargs,error,message", BAD,
                         ids=[f"{c.__name__}-{i}" for i, (c, *_) in enumerate(BAD)])
def test_bad_argument_raises_with_a_clear_message(cls, kwargs, error, message):
    with pytest.raises(error) as info:
        cls(**kwargs)
    assert message in str(info.value)
    assert str(info.value).startswith(f"{cls.__name__}: ")


def test_get_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="constant, step, cosine, cosine_restarts, linear, poly, "
                                         "exponential, inverse_sqrt, onecycle, cyclic, tanh, wsd"):
        ks.get("cosine_warm", initial_learning_rate=0.1)


def test_get_rejects_an_argument_the_schedule_does_not_take():
    with pytest.raises(TypeError, match="'cosine'.*unexpected power"):
        ks.get("cosine", initial_learning_rate=0.1, decay_steps=10, power=2.0)


def test_get_rejects_a_non_string_name():
    with pytest.raises(TypeError, match="get: name must be a string"):
        ks.get(ks.CosineAnnealing)

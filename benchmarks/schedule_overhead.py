"""Benchmark 1: what a kschedules schedule costs per training step.

Two measurements, printed as Markdown with the command that made them:

1. Compiled cost: each schedule evaluated `--evaluations` times inside one
   XLA-compiled `tf.while_loop`, net of the same loop adding a constant, per
   evaluation, and as a fraction of one training step of the runner's
   simple_cnn at batch 128 (XLA-compiled `train_on_batch`).
2. End to end: the same model trained for `--steps` steps with a float LR and
   with the heaviest schedule (Warmup over CosineAnnealingWarmRestarts),
   interleaved `--repeats` times; the ratio schedule / float of each pair as
   min / median / max, since a shared machine is noisy.

The schedule is a graph op inside the compiled train step, so it adds no host
synchronisation: nothing is read back to Python per step.

    python -m benchmarks.schedule_overhead
"""

import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

import kschedules as ks  # noqa: E402
from experiments.runner import models  # noqa: E402

flags.DEFINE_integer("evaluations", 100_000, "Schedule evaluations per compiled loop.")
flags.DEFINE_integer("steps", 10, "Train steps per end-to-end measurement.")
flags.DEFINE_integer("repeats", 7, "Interleaved end-to-end pairs.")
flags.DEFINE_integer("batch_size", 128, "Batch size of the train step.")
FLAGS = flags.FLAGS

TOTAL = 39_100  # 100 epochs of CIFAR-10 at batch 128.


def schedules():
    cosine = ks.CosineAnnealing(0.1, TOTAL)
    return {
        "Constant": ks.Constant(0.1),
        "StepDecay": ks.StepDecay(0.1, [11_730, 23_460, 31_280]),
        "CosineAnnealing": cosine,
        "CosineAnnealingWarmRestarts": ks.CosineAnnealingWarmRestarts(0.1, 3_910, t_mul=2.0, m_mul=0.9),
        "PolynomialDecay": ks.PolynomialDecay(0.1, TOTAL, power=0.5),
        "LinearDecay": ks.LinearDecay(0.1, TOTAL),
        "Warmup(CosineAnnealing)": ks.Warmup(cosine, 1_955),
        "Staircase(CosineAnnealing)": ks.Staircase(cosine, 391),
        "Warmup(CosineAnnealingWarmRestarts)": heaviest(),
        # t_mul = 1.1: 115 exact cycle starts below 2**31, one comparison each.
        "CosineAnnealingWarmRestarts(t_mul=1.1)": ks.CosineAnnealingWarmRestarts(
            0.1, 3_910, t_mul=1.1),
        "ExponentialDecay": ks.ExponentialDecay(0.1, 391, 0.95, transition_begin=1_955,
                                                end_learning_rate=1e-4),
        "InverseSqrtDecay": ks.InverseSqrtDecay(0.1, 1_955),
        "OneCycle": ks.OneCycle(0.1, TOTAL),
        "Cyclic(exp_range)": ks.Cyclic(0.01, 0.1, 1_955, mode="exp_range", gamma=0.9999),
        "TanhDecay": ks.TanhDecay(0.1, TOTAL),
        "WarmupStableDecay": ks.WarmupStableDecay(0.1, 1_955, 31_280, 3_910),
        "Sequence(3 pieces)": ks.Sequence(
            [ks.Constant(0.1), cosine, ks.LinearDecay(0.01, 3_910)], [1_955, 35_190]),
    }


def heaviest():
    return ks.Warmup(ks.CosineAnnealingWarmRestarts(0.1, 3_910, t_mul=2.0, m_mul=0.9), 1_955, 0.01)


def compiled_loop_seconds(fn, evaluations, repeats=5):
    """Best wall time of one XLA loop summing fn(i) for i < evaluations."""

    @tf.function(jit_compile=True)
    def loop():
        def body(i, total):
            return i + 1, total + tf.cast(fn(i), tf.float32)

        return tf.while_loop(lambda i, _: i < evaluations, body,
                             (tf.constant(0, tf.int64), tf.constant(0.0)))[1]

    loop().numpy()  # Compile.
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        loop().numpy()
        times.append(time.perf_counter() - start)
    return min(times)


def batch(batch_size, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch_size, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, batch_size)
    return x, y


def compiled_model(learning_rate, weights=None):
    model = models.build("simple_cnn", (32, 32, 3), 10, weight_decay=5e-4)
    if weights is not None:
        model.set_weights(weights)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate, momentum=0.9),
                  loss="sparse_categorical_crossentropy", jit_compile=True)
    return model


def seconds_per_step(model, x, y, steps):
    model.train_on_batch(x, y)  # Compile (first call) or warm up.
    start = time.perf_counter()
    for _ in range(steps):
        loss = model.train_on_batch(x, y)
    float(np.asarray(loss))  # Wait for the last step.
    return (time.perf_counter() - start) / steps


def main(argv):
    del argv
    keras.utils.set_random_seed(0)
    x, y = batch(FLAGS.batch_size)
    reference = compiled_model(0.1)
    step_seconds = seconds_per_step(reference, x, y, FLAGS.steps)
    baseline = compiled_loop_seconds(lambda i: tf.constant(0.1), FLAGS.evaluations)

    print("command: python -m benchmarks.schedule_overhead " + " ".join(sys.argv[1:]))
    print(f"machine: {os.cpu_count()} CPU cores; keras {keras.__version__}, tensorflow {tf.__version__}")
    print(f"simple_cnn train step (batch {FLAGS.batch_size}, XLA): {step_seconds * 1e3:.1f} ms\n")
    print(f"compiled loop adding a constant: {baseline / FLAGS.evaluations * 1e9:.1f} ns per iteration\n")
    print("| schedule | loop time per evaluation | net of the constant loop | fraction of one train step |")
    print("|---|---|---|---|")
    for name, schedule in schedules().items():
        seconds = compiled_loop_seconds(schedule, FLAGS.evaluations) / FLAGS.evaluations
        net = seconds - baseline / FLAGS.evaluations
        shown = f"{net * 1e9:.1f} ns" if net > 0 else "below timing noise"
        print(f"| {name} | {seconds * 1e9:.1f} ns | {shown} | {max(net, 0) / step_seconds:.1e} |")

    weights = reference.get_weights()
    plain, scheduled = compiled_model(0.1, weights), compiled_model(heaviest(), weights)
    ratios = []
    for repeat in range(FLAGS.repeats):
        # Alternate which goes first, so that drift does not favour one.
        if repeat % 2:
            schedule_time = seconds_per_step(scheduled, x, y, FLAGS.steps)
            float_time = seconds_per_step(plain, x, y, FLAGS.steps)
        else:
            float_time = seconds_per_step(plain, x, y, FLAGS.steps)
            schedule_time = seconds_per_step(scheduled, x, y, FLAGS.steps)
        ratios.append(schedule_time / float_time)
    print(f"\nend to end, Warmup(CosineAnnealingWarmRestarts) / float LR step time over "
          f"{FLAGS.repeats} interleaved pairs of {FLAGS.steps} steps: "
          f"min {min(ratios):.3f}, median {statistics.median(ratios):.3f}, max {max(ratios):.3f}")


if __name__ == "__main__":
    app.run(main)

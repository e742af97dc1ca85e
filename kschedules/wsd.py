"""Warmup-stable-decay (the "trapezoidal" schedule of recent language-model training)."""

import math

import keras
from keras import ops

from kschedules import _checks, _schedule

_SHAPES = ("linear", "cosine", "1-sqrt")


def _warmup_weight(shape, done, left):
    """The rising factor, 0 -> 1, from the fractions done and left (done + left = 1)."""
    if shape == "linear":
        return done
    if shape == "cosine":  # (1 - cos(pi * done)) / 2
        return ops.square(ops.sin((math.pi / 2) * done))
    return done / (1.0 + ops.sqrt(left))  # 1 - sqrt(1 - done), without cancellation


def _decay_weight(shape, done, left):
    """The falling factor, 1 -> 0, from the fractions done and left (done + left = 1)."""
    if shape == "linear":
        return left
    if shape == "cosine":  # (1 + cos(pi * done)) / 2
        return ops.square(ops.sin((math.pi / 2) * left))
    return left / (1.0 + ops.sqrt(done))  # 1 - sqrt(done), without cancellation


@keras.saving.register_keras_serializable(package="kschedules")
class WarmupStableDecay(_schedule.Schedule):
    """Warms up, holds the learning rate, then decays it to a minimum (WSD).

    Training at a constant rate for most of the run and decaying only at the
    end gives a good model at any point the decay is started from, so one
    long run can be branched into several shorter ones (Hu et al. 2024,
    "MiniCPM"; Hägele et al. 2024). This is Hugging Face's
    `get_wsd_schedule` exactly, with its `min_lr_ratio =
    min_learning_rate / initial_learning_rate` and `num_cycles=0.5`.

    ```
    W, S, D = warmup_steps, stable_steps, decay_steps;  m = min_learning_rate
    lr(step) = m + (initial_learning_rate - m) * f(step)
    f(step) = w(step / W)                   for step < W          (warmup)
            = 1                             for W <= step < W + S (stable)
            = d((step - W - S) / D)         for W + S <= step < W + S + D
            = 0                             for step >= W + S + D (m is held)
    warmup shapes w(x): "linear" x, "cosine" (1 - cos(pi * x)) / 2, "1-sqrt" 1 - sqrt(1 - x)
    decay shapes d(x):  "linear" 1 - x, "cosine" (1 + cos(pi * x)) / 2, "1-sqrt" 1 - sqrt(x)
    ```

    Like Hugging Face's, the warmup starts from `min_learning_rate` (not
    from 0) and the rate holds `min_learning_rate` after the decay. For an
    integer step the positions inside the warmup and the decay are computed
    from exact integers, up to 2**31 - 1.

    Args:
        initial_learning_rate: Rate of the stable phase, a float >= 0.
        warmup_steps: Steps of the warmup, an integer >= 0.
        stable_steps: Steps at `initial_learning_rate`, an integer >= 0.
        decay_steps: Steps of the decay, an integer >= 1; the three together
            at most 2**31 - 1.
        min_learning_rate: Rate at step 0 and from the end of the decay on, a
            float in [0, initial_learning_rate]. Defaults to 0.
        warmup_shape: "linear", "cosine" or "1-sqrt". Defaults to "linear".
        decay_shape: "linear", "cosine" or "1-sqrt". Defaults to "cosine".

    Returns:
        A schedule; calling it with a step returns a float32 tensor of the
        step's shape.

    Raises:
        TypeError: if an argument has the wrong type.
        ValueError: if a rate is negative, `min_learning_rate >
            initial_learning_rate`, a duration is out of range (or their sum
            above 2**31 - 1), or a shape is not one of the three (the message
            lists them).

    Example:

    >>> schedule = WarmupStableDecay(1.0, warmup_steps=4, stable_steps=6, decay_steps=8,
    ...                              min_learning_rate=0.2, decay_shape="linear")
    >>> [round(float(schedule(step)), 6) for step in (0, 2, 4, 9, 10, 14, 18, 1000)]
    [0.2, 0.6, 1.0, 1.0, 1.0, 0.6, 0.2, 0.2]

    References:
        Hu et al., "MiniCPM: Unveiling the Potential of Small Language Models
        with Scalable Training Strategies", 2024.
    """

    def __init__(
        self,
        initial_learning_rate: float,
        warmup_steps: int,
        stable_steps: int,
        decay_steps: int,
        min_learning_rate: float = 0.0,
        warmup_shape: str = "linear",
        decay_shape: str = "cosine",
    ):
        name = "WarmupStableDecay"
        self.initial_learning_rate = _checks.learning_rate(
            name, "initial_learning_rate", initial_learning_rate
        )
        self.warmup_steps = _checks.steps(name, "warmup_steps", warmup_steps, minimum=0)
        self.stable_steps = _checks.steps(name, "stable_steps", stable_steps, minimum=0)
        self.decay_steps = _checks.steps(name, "decay_steps", decay_steps)
        room = _schedule.MAX_STEP - self.warmup_steps - self.stable_steps
        if self.decay_steps > room:
            raise ValueError(
                f"{name}: decay_steps must be <= 2147483647 - warmup_steps - stable_steps = "
                f"{room} (the schedule must end by step 2147483647), "
                f"received decay_steps={self.decay_steps!r}"
            )
        self.min_learning_rate = _checks.floor(
            name, "min_learning_rate", min_learning_rate,
            "initial_learning_rate", self.initial_learning_rate,
        )
        self.warmup_shape = _checks.choice(name, "warmup_shape", warmup_shape, _SHAPES)
        self.decay_shape = _checks.choice(name, "decay_shape", decay_shape, _SHAPES)

    def __call__(self, step):
        step = _schedule.as_step(step)
        warmup, decay = self.warmup_steps, self.decay_steps
        decay_start = warmup + self.stable_steps
        end = decay_start + decay
        # max(warmup, 1) only keeps the unused branch finite when warmup is 0.
        warm = max(warmup, 1)
        warm_done = ops.clip(_schedule.to_float(step) / warm, 0.0, 1.0)
        warm_left = _schedule.to_float(ops.clip(warmup - step, 0, warmup)) / warm
        decay_left = _schedule.to_float(ops.clip(end - step, 0, decay)) / decay  # Exact.
        decay_done = _schedule.to_float(ops.clip(step - decay_start, 0, decay)) / decay
        weight = ops.where(
            step < warmup,
            _warmup_weight(self.warmup_shape, warm_done, warm_left),
            ops.where(step < decay_start, 1.0,
                      _decay_weight(self.decay_shape, decay_done, decay_left)),
        )
        return _schedule.lerp(self.min_learning_rate, self.initial_learning_rate, weight)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "warmup_steps": self.warmup_steps,
            "stable_steps": self.stable_steps,
            "decay_steps": self.decay_steps,
            "min_learning_rate": self.min_learning_rate,
            "warmup_shape": self.warmup_shape,
            "decay_shape": self.decay_shape,
        }

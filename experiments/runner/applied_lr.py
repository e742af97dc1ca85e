"""The learning rate a run applied at every optimizer step, rebuilt from its config.json.

history.csv and learning_rate.csv keep one LR per epoch (the LR of its first
step); a restart or a warmup inside an epoch does not show there. The schedule
does: config.json holds it (``derived.schedule``, the kschedules schedule
serialized by the runner, in optimizer updates, --lr_update=epoch included).
Rebuilt and evaluated with ``keras.ops`` (any Keras backend, no TensorFlow):

    x(u)  = u / steps_per_epoch            epochs trained when update u begins
    lr(u) = s(u)                           s: the rebuilt schedule
          = max(c_e * s(u), min(m, s(u)))  with --plateau_patience > 0, e = the epoch of u,
                                           m = --plateau_min_lr * lr_scale, and
                                           c_e = recorded_e / s(first update of e), recorded_e
                                           the LR history.csv has for epoch e (learning_rate.csv's);
                                           the previous epoch's c (1 at first) when s is 0 there

Updates count optimizer steps, so under --gradient_accumulation_steps=k one
update is k batches and ``steps_per_epoch`` (config.json) is already in updates.
Only the epochs history.csv holds are drawn (a diverged run ends where it stopped).

Sampling: every update when the run has at most `MAX_POINTS` of them; else
`MAX_POINTS` evenly spaced updates (over 2 per horizontal pixel of any figure
here, so the drawing is exact on screen) plus every epoch's first update and
both sides of every drop and restart (`jump_steps`) and of the end of warmup. Drawn as a step function:
update u's LR holds from x(u) to the next point.
"""

import dataclasses
import fractions
import math

import numpy as np

from experiments.runner import backends
from experiments.runner import flags as flag_defs

MAX_POINTS = 4096


@dataclasses.dataclass(frozen=True)
class AppliedLR:
    """The LR a run applied: ``learning_rate[i]`` from update ``steps[i]`` on, until the next one.

    Attributes:
        steps: the sampled optimizer updates (int64, increasing, from 0).
        epochs: ``steps / steps_per_epoch`` (the x of each point), float64.
        learning_rate: the LR applied at each sampled update, float64.
        end_epoch: the x where the last value stops (the epochs trained).
    """

    steps: np.ndarray
    epochs: np.ndarray
    learning_rate: np.ndarray
    end_epoch: float

    def line(self):
        """(x, y) to draw with ``drawstyle="steps-post"``: the points plus the end."""
        return (np.append(self.epochs, self.end_epoch),
                np.append(self.learning_rate, self.learning_rate[-1]))


def evaluate(schedule, steps):
    """The schedule at every step of `steps` (one vectorised ``keras.ops`` call), float32."""
    keras = backends.import_keras()
    values = keras.ops.vectorized_map(schedule, np.asarray(steps))
    return keras.ops.convert_to_numpy(values).astype(np.float32)


def jump_steps(flags, derived):
    """{"drops": [...], "restarts": [...]}: the updates where a step schedule drops or cosine_restarts restarts.

    From the run's flags (under their current names: `flags.canonical_flags`) and derived
    values (config.json's, or `Config.derived()`):
    drops at ``boundaries + warmup_steps``; restarts at ``warmup_steps +
    ceil(S_i)``, ``S_i = first_decay_steps * (1 + t_mul + ... + t_mul**(i-1))``
    in exact fractions of the decimal ``t_mul`` (as kschedules'
    `CosineAnnealingWarmRestarts` places them); with --lr_update=epoch each
    moves to the next epoch start. Only those before ``total_steps``.
    """
    warmup, total, spe = derived.get("warmup_steps") or 0, derived["total_steps"], derived["steps_per_epoch"]
    drops = [b + warmup for b in derived.get("boundaries") or []]
    restarts, first = [], derived.get("first_decay_steps")
    if flags.get("schedule") == "cosine_restarts" and first:
        t_mul = fractions.Fraction(str(flags.get("t_mul") or 1.0))
        start, length = fractions.Fraction(first), fractions.Fraction(first)
        while warmup + start < total and len(restarts) < MAX_POINTS:
            restarts.append(warmup + math.ceil(start))
            length *= t_mul
            start += length
    if flags.get("lr_update") == "epoch":
        drops, restarts = ([-(-s // spe) * spe for s in jumps] for jumps in (drops, restarts))
    return {"drops": [s for s in drops if s < total], "restarts": [s for s in restarts if s < total]}


def sample_steps(total_steps, steps_per_epoch, jumps=(), max_points=MAX_POINTS):
    """The updates to evaluate: all of them up to `max_points`, else see the module docstring."""
    if total_steps <= max_points:
        return np.arange(total_steps, dtype=np.int64)
    grid = np.linspace(0, total_steps - 1, max_points).round().astype(np.int64)
    epoch_starts = np.arange(0, total_steps, steps_per_epoch, dtype=np.int64)
    sides = np.array([s + d for s in jumps for d in (-1, 0, 1)], dtype=np.int64)
    steps = np.unique(np.concatenate([grid, epoch_starts, sides]))
    return steps[(steps >= 0) & (steps < total_steps)]


def applied_lr(config, history, max_points=MAX_POINTS):
    """The `AppliedLR` of a run from its config.json dict and history.csv rows.

    Returns None when it cannot be rebuilt: no config, no ``derived.schedule``
    (a run from before the runner recorded it) or no history; the caller then
    draws history.csv's per-epoch LR and says so.
    """
    derived = (config or {}).get("derived") or {}
    if "schedule" not in derived or "steps_per_epoch" not in derived or not history:
        return None
    keras = backends.import_keras()
    import kschedules  # noqa: F401  (registers the classes deserialization needs)

    schedule = keras.saving.deserialize_keras_object(derived["schedule"])
    flags, spe = flag_defs.canonical_flags(config.get("flags") or {}), derived["steps_per_epoch"]
    total = min(derived.get("total_steps", len(history) * spe), len(history) * spe)
    jumps = jump_steps(flags, {**derived, "total_steps": total})
    marks = jumps["drops"] + jumps["restarts"] + [derived.get("warmup_steps") or 0]
    steps = sample_steps(total, spe, marks, max_points)
    values = evaluate(schedule, steps).astype(np.float64)
    if flags.get("plateau_patience"):
        min_lr = (flags.get("plateau_min_lr") or 0.0) * derived.get("lr_scale", 1.0)
        values = _plateau_scaled(values, steps, spe, history, schedule, min_lr)
    return AppliedLR(steps=steps, epochs=steps / spe, learning_rate=values, end_epoch=total / spe)


def _plateau_scaled(values, steps, spe, history, schedule, min_lr):
    """`values` (the schedule) times each epoch's plateau scale, floored as `PlateauScaled` does."""
    firsts = evaluate(schedule, np.arange(len(history), dtype=np.int64) * spe).astype(np.float64)
    scales, scale = [], 1.0
    for first, row in zip(firsts, history):
        if first > 0 and math.isfinite(row["learning_rate"]):
            scale = row["learning_rate"] / first
        scales.append(scale)
    scale_of_step = np.asarray(scales)[steps // spe]
    return np.maximum(scale_of_step * values, np.minimum(min_lr, values))

"""The step study: constant LR against step decay, and a grid of drop factors x milestones."""

import math

from experiments.studies.common import (
    KeyNumber, Study, by_final_acc, definition, find, fmt, fmt_g, mean, milestones_match, range_numbers, schedule,
    step_definition, with_schedule,
)

NAME = "step"
# The base run: x0.1 at 30/60/80% of training (the cosine study's reference too).
BASE_FACTOR, BASE_MILESTONES = 0.1, (0.3, 0.6, 0.8)
FACTORS = (0.1, 0.2, 0.5)
MILESTONES = ((0.3, 0.6, 0.8), (0.5, 0.75), (0.25, 0.5, 0.75))
JUMP = "val accuracy change over the first epoch after the first milestone (points)"

THEORY = (
    "Why it works: with a constant LR, SGD's gradient noise keeps the weights bouncing around a level set of "
    "the loss; the loss stops falling once that noise floor is reached. Dividing the LR shrinks the noise, so "
    "the loss drops right after each milestone and the accuracy jumps. The drop factor and the milestone "
    "timing trade time spent exploring at a high LR against time left to settle at a low one: late or small "
    "drops leave too little settling time, early or large drops cut exploration short."
)


def constant(lr):
    """The constant-LR run (also each run of the suite's LR sweep)."""
    return definition(f"constant_lr{fmt_g(lr)}", schedule="constant", lr=lr)


def base(lr, epochs):
    """The base step run, x`BASE_FACTOR` at `BASE_MILESTONES` of training."""
    return step_definition(lr, BASE_FACTOR, BASE_MILESTONES, epochs)


def define(epochs, lr):
    return [constant(lr), base(lr, epochs)] + [
        step_definition(lr, f, m, epochs) for m in MILESTONES for f in FACTORS
    ]


def roles(groups):
    """(constant group, base step group) of the step study; either may be None.

    The base step group is the one trained as `base`; the constant is the one
    at the same initial LR when there is one (the tuned constant).
    """
    const = with_schedule(groups, "constant")
    based = [
        g for g in with_schedule(groups, "step")
        if float(g.flags.get("factor") or 0) == BASE_FACTOR and milestones_match(g.flags, BASE_MILESTONES)
    ]
    b = based[0] if based else None
    if b is not None:
        const = [g for g in const if g.flags.get("lr") == b.flags.get("lr")] or const
    return (const[0] if const else None), b


def val_change(history, epoch):
    """Val accuracy after 0-based `epoch` minus after `epoch - 1` (nan when missing)."""
    if not 1 <= epoch < len(history):
        return math.nan
    return history[epoch]["val_accuracy"] - history[epoch - 1]["val_accuracy"]


def figures(groups):
    _, base_step = roles(groups)
    base_groups = [g for g in groups if schedule(g) == "constant" or g is base_step]
    grid = with_schedule(groups, "step")
    return [("curves_base.png", "constant vs step decay", base_groups),
            ("curves_challenge.png", "step decay: factor x milestones", grid)]


def key_numbers(groups):
    grid = with_schedule(groups, "step")
    rows = range_numbers(f"sensitivity: range of final val accuracy over the {len(grid)} step configurations (points)",
                         grid)
    const, b = roles(groups)
    if b is not None:
        first = int(str(b.flags["milestones"]).split(",")[0])
        for grp in (b, const):
            if grp is not None:
                change = mean([100 * val_change(run.history, first) for run in grp.runs])
                rows.append(KeyNumber(JUMP, fmt(change, 2), f"`{grp.label}`"))
    return rows


def _jump_sentence(c, b, numbers):
    jumps = {row.where.strip("`"): row.value for row in numbers if row.what == JUMP}
    if b is None or b.label not in jumps:
        return None
    text = (f"At the first drop the validation accuracy changed by {jumps[b.label]} points over the "
            f"first epoch at the lower LR for `{b.label}`")
    if c is not None and c.label in jumps:
        text += f", against {jumps[c.label]} over the same epoch for the constant LR (`{c.label}`)"
    return text + " (mean over seeds)."


def _sensitivity_sentence(numbers):
    r = find(numbers, "sensitivity")
    if not r:
        return None
    seed = find(numbers, "largest seed std")
    text = f"Sensitivity: over the drop factor x milestone grid the final accuracy ranges over {r.value} points ({r.where})"
    if seed:
        text += (
            "; compared with the largest seed std of "
            f"{seed.value} points, the choice of factor and milestones "
            + ("matters (the range is more than twice that std)" if float(r.value) > 2 * float(seed.value)
               else "is hard to tell from seed noise (the range is not more than twice that std)")
        )
    return text + "."


def sentences(groups, cells, numbers):
    out = []
    acc = {g.label: cells[g.label].final_acc for g in groups}
    const = with_schedule(groups, "constant")
    if len(const) > 1:
        out.append(
            "Constant-LR sweep: " + ", ".join(f"`{g.label}` {acc[g.label]}%" for g in by_final_acc(const))
            + " final val accuracy."
        )
    c, b = roles(groups)
    out.append(_jump_sentence(c, b, numbers))
    if c is not None and b is not None:
        better = mean([x.final_val_accuracy for x in b.stats]) > mean([x.final_val_accuracy for x in c.stats])
        out.append(
            f"Step decay (`{b.label}`) ended at {acc[b.label]}% against {acc[c.label]}% for "
            f"the constant LR (`{c.label}`): the drops {'helped' if better else 'did not help'} at this budget."
        )
    out.append(_sensitivity_sentence(numbers))
    return [s for s in out if s]


STUDY = Study(
    name=NAME, define=define, needs_base_lr=True, theory=THEORY,
    figures=figures, key_numbers=key_numbers, sentences=sentences,
)

"""The cosine study: cosine decay to zero against step decay, and warm restarts (SGDR)."""

import math

from experiments.studies import step
from experiments.studies.common import (
    KeyNumber, Setting, Study, by_final_acc, definition, find, fmt, fmt_g, mean, range_numbers, scaled, schedule,
    with_schedule,
)

NAME = "cosine"
HIGHER_LR_FACTOR = Setting("higher_lr_factor", 3.0, "cosine: the higher LR is this times the base LR")
RESTART_T0 = (0.10, 0.25)  # fractions of training
RESTART_T_MUL = (1.0, 2.0)
FALL = "largest one-epoch fall of val accuracy (points)"

THEORY = (
    "Smooth cosine against sharp drops: step decay gives an immediate gain after each drop but then sits on a "
    "new plateau, and its milestones are extra hyperparameters. The cosine (Loshchilov & Hutter, SGDR, 2017) "
    "keeps the LR high for longer at the start, then lowers it continuously and reaches about zero exactly at "
    "the end, so the model always finishes fully annealed without any milestone to tune. Warm restarts reset "
    "the LR to its peak at the start of each cycle: the loss rises and the accuracy dips, then both recover "
    "as the cycle anneals. A run's final accuracy depends on whether its last cycle has annealed by the end "
    "of training; restarts buy good intermediate snapshots, not necessarily a better final model."
)


def define(epochs, lr, higher_lr_factor):
    """Step decay (the reference), cosine at the base LR and at `higher_lr_factor` x it, warm restarts."""
    defs = [step.base(lr, epochs)]
    defs += [definition(f"cosine_lr{fmt_g(x)}", schedule="cosine", lr=x) for x in (lr, scaled(lr, higher_lr_factor))]
    for t0 in RESTART_T0:
        t0_epochs = float(f"{t0 * epochs:.6g}")
        for t_mul in RESTART_T_MUL:
            defs.append(definition(
                f"restarts_t{fmt_g(t0_epochs)}_tm{fmt_g(t_mul)}_lr{fmt_g(lr)}",
                schedule="cosine_restarts", lr=lr, t0=t0_epochs, t_mul=t_mul,
            ))
    return defs


def largest_val_fall(history):
    """Largest drop of validation accuracy from one epoch to the next (>= 0; 0 for < 2 epochs).

    Over the evaluated epochs: with --eval_every=N, from one evaluation to the next.
    """
    accs = [r["val_accuracy"] for r in history if not math.isnan(r["val_accuracy"])]
    falls = [a - b for a, b in zip(accs, accs[1:]) if math.isfinite(a - b)]
    return max([0.0] + falls)


def figures(groups):
    base = [g for g in groups if schedule(g) != "cosine_restarts"]
    restarts = with_schedule(groups, "cosine_restarts", "cosine")
    return [("curves_base.png", "cosine vs step decay", base),
            ("curves_restarts.png", "warm restarts", restarts)]


def key_numbers(groups):
    restarts = with_schedule(groups, "cosine_restarts")
    rows = range_numbers(f"range of final val accuracy over the {len(restarts)} restart configurations (points)",
                         restarts)
    for g in with_schedule(groups, "cosine", "cosine_restarts"):
        fall = fmt(mean([100 * largest_val_fall(run.history) for run in g.runs]), 2)
        rows.append(KeyNumber(FALL, fall, f"`{g.label}`"))
    return rows


def sentences(groups, cells, numbers):
    out = []
    acc = {g.label: cells[g.label].final_acc for g in groups}
    cos = with_schedule(groups, "cosine")
    steps = with_schedule(groups, "step")
    restarts = with_schedule(groups, "cosine_restarts")
    if cos:
        text = "Cosine to zero: " + ", ".join(f"`{g.label}` {acc[g.label]}%" for g in cos)
        if steps:
            text += f"; step decay `{steps[0].label}` {acc[steps[0].label]}%"
        out.append(text + ".")
    r = find(numbers, "range of final val accuracy over the")
    if restarts and r:
        best = by_final_acc(restarts)[0]
        out.append(
            f"Warm restarts: the best restart setting, `{best.label}`, ended at {acc[best.label]}%; "
            f"the restart settings span {r.value} points."
        )
    falls = {row.where.strip("`"): row.value for row in numbers if row.what == FALL}
    if restarts and cos and falls:
        worst = max(restarts, key=lambda g: float(falls[g.label]))
        out.append(
            "Each restart lifts the LR back to its peak (curves_restarts.png): the largest one-epoch fall "
            f"of validation accuracy was {falls[worst.label]} points for `{worst.label}`, against "
            + ", ".join(f"{falls[g.label]} for `{g.label}`" for g in cos)
            + " without restarts (mean over seeds)."
        )
    return out


STUDY = Study(
    name=NAME, define=define, needs_base_lr=True, theory=THEORY, settings=(HIGHER_LR_FACTOR,),
    figures=figures, key_numbers=key_numbers, sentences=sentences,
)

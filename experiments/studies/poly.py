"""The poly study: linear decay against polynomial decay of other powers."""

from experiments.studies.common import Study, by_final_acc, definition, fmt_g, range_numbers, with_schedule

NAME = "poly"
POWERS = (0.5, 2.0, 3.0)  # plus linear decay, which is power 1

THEORY = (
    "The power shapes where the LR budget is spent: lr(t) = (lr0 - lr_end) (1 - t/T)^p + lr_end. "
    "With p > 1 the LR falls fast at first and lingers at small values, so most epochs train with a low LR; "
    "with p < 1 it stays near its peak for most of training and falls steeply at the end; p = 1 is the "
    "linear decay in between. All reach the end value at the last step, so the difference is how much "
    "high-LR exploration each leaves before annealing."
)


def define(epochs, lr):
    return [definition(f"linear_lr{fmt_g(lr)}", schedule="linear", lr=lr)] + [
        definition(f"poly_p{fmt_g(p)}_lr{fmt_g(lr)}", schedule="poly", lr=lr, power=p) for p in POWERS
    ]


def key_numbers(groups):
    polys = with_schedule(groups, "poly", "linear")
    return range_numbers(f"range of final val accuracy over the {len(polys)} powers (points)", polys)


def sentences(groups, cells, numbers):
    polys = by_final_acc(with_schedule(groups, "poly", "linear"))
    if not polys:
        return []
    return ["Polynomial decay, best to worst final accuracy: "
            + ", ".join(f"`{g.label}` {cells[g.label].final_acc}%" for g in polys) + "."]


STUDY = Study(name=NAME, define=define, needs_base_lr=True, theory=THEORY, key_numbers=key_numbers,
              sentences=sentences)

"""The warmup study: deliberately large LRs for Adam and SGD, with and without a linear warmup."""

import math

from experiments.studies.common import Setting, Study, SuiteError, definition, fmt_g

NAME = "warmup"
# The "deliberately large" LRs: where the LR range test's smoothed loss turns up
# (measured with simple_cnn, batch 128, 5,000 CIFAR-10 training images: Adam's
# rises from about 0.1, SGD with momentum 0.9's from about 0.6).
ADAM_LR = Setting("adam_lr", 0.1, "warmup: Adam's large LR")
SGD_LR = Setting("sgd_lr", 1.0, "warmup: SGD's large LR")
WARMUP_EPOCHS = Setting("warmup_epochs", 5.0, "warmup: length of the linear warmup in epochs")
# The report looks at the warmup and this many epochs at the full LR after it.
EPOCHS_AFTER_WARMUP = 3

THEORY = (
    "Why warmup helps: at initialization the gradients are large and the curvature is high, so a large LR "
    "can throw the weights (and batch-norm statistics) into a region the model does not recover from, or "
    "overflow to NaN. Ramping the LR up linearly over the first epochs lets the network reach a flatter "
    "region before the full step size applies (Goyal et al., 2017, for large-batch SGD). For Adam there is "
    "a second reason: its second-moment estimate is averaged over only a few steps early on, so the "
    "per-parameter step sizes are poorly conditioned and can be very large until the estimate settles "
    "(Liu et al., 2020, RAdam); a warmup keeps the updates small during that time. Warmup followed by a "
    "cosine adds the annealing benefit of the decay on top of the stable start."
)


def define(epochs, lr, adam_lr, sgd_lr, warmup_epochs):
    """Per optimizer: constant, constant after a linear warmup, warmup + cosine (`lr` is unused)."""
    if not warmup_epochs < epochs:
        raise SuiteError(
            f"suite: --epochs must be > --warmup_epochs={fmt_g(warmup_epochs)} for the warmup exercise, "
            f"received --epochs={epochs}"
        )
    defs = []
    w = fmt_g(warmup_epochs)
    for optimizer, big_lr in (("adam", adam_lr), ("sgd", sgd_lr)):
        name = f"{optimizer}_{{}}_lr{fmt_g(big_lr)}"
        defs += [
            definition(name.format("constant"), optimizer=optimizer, schedule="constant", lr=big_lr),
            definition(name.format(f"warmup{w}_constant"), optimizer=optimizer, schedule="constant", lr=big_lr,
                       warmup_epochs=warmup_epochs),
            definition(name.format(f"warmup{w}_cosine"), optimizer=optimizer, schedule="cosine", lr=big_lr,
                       warmup_epochs=warmup_epochs),
        ]
    return defs


def by_optimizer(groups):
    """[(optimizer name, its groups)], sorted by name."""
    names = sorted({str(g.flags.get("optimizer")) for g in groups})
    return [(opt, [g for g in groups if str(g.flags.get("optimizer")) == opt]) for opt in names]


def figures(groups):
    return [(f"curves_{opt}.png", f"{opt}: warmup or not", mine) for opt, mine in by_optimizer(groups)]


def sentences(groups, cells, numbers):
    out = []
    for opt, mine in by_optimizer(groups):
        items = [
            f"`{g.label}`: diverged {cells[g.label].diverged}, max early loss {cells[g.label].early_max}, "
            f"final {cells[g.label].final_acc}%"
            for g in mine
        ]
        out.append(f"{opt}: " + "; ".join(items) + ".")
    return out


def note(adam_lr, sgd_lr, warmup_epochs):
    return (f"Deliberately large LRs: Adam {fmt_g(adam_lr)}, SGD {fmt_g(sgd_lr)}; "
            f"warmup: linear from 0 over the first {fmt_g(warmup_epochs)} epochs.")


def early_epochs(adam_lr, sgd_lr, warmup_epochs):
    return math.ceil(warmup_epochs) + EPOCHS_AFTER_WARMUP


STUDY = Study(
    name=NAME, define=define, needs_base_lr=False, theory=THEORY,
    settings=(ADAM_LR, SGD_LR, WARMUP_EPOCHS),
    owned_flags=frozenset({"optimizer", "momentum", "nesterov"}),  # it picks the optimizer per run
    figures=figures, sentences=sentences, note=note, early_epochs=early_epochs,
)

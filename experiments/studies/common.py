"""What the four studies share: the `Study` record, run-definition arithmetic and report numbers.

Imports nothing from `experiments.suite` or `experiments.report` (both import the studies).
"""

import dataclasses
import math
from typing import Callable


# ----------------------------------------------------------------------------
# A study.


@dataclasses.dataclass(frozen=True)
class Setting:
    """A suite flag of one study: ``--<name>``, a positive float."""

    name: str
    default: float
    help: str


def _nothing(*args):
    return []


@dataclasses.dataclass(frozen=True)
class Study:
    """One study: its runs (for the suite) and its figures, numbers and text (for the report).

    Attributes:
        name: the ``--exercise`` name, and the study's folder under the suite's ``--log_dir``.
        define: ``define(epochs, lr, **settings)`` -> [Definition], in a fixed order
            (duplicates allowed; `definitions` drops them).
        needs_base_lr: whether its runs start from the suite's base SGD LR (``--lr`` or tuned).
        theory: the report's "Theory" paragraph.
        settings: its own suite flags (`Setting`), passed to `define`, `note` and `early_epochs`.
        owned_flags: runner flags its definitions set, beyond those every study sets.
        figures: ``figures(groups)`` -> [(file name, title, groups)], the report's focus figures.
        key_numbers: ``key_numbers(groups)`` -> [KeyNumber], after the generic ones.
        sentences: ``sentences(groups, cells, numbers)`` -> [str], after the generic ones
            (`cells`: label -> the group's table cells; `numbers`: every key number).
        note: ``note(**settings)`` -> a report note, or None for the base-LR note.
        early_epochs: ``early_epochs(**settings)`` -> the report's early window, or None
            for the report's default.
    """

    name: str
    define: Callable
    needs_base_lr: bool
    theory: str
    settings: tuple = ()
    owned_flags: frozenset = frozenset()
    figures: Callable = _nothing
    key_numbers: Callable = _nothing
    sentences: Callable = _nothing
    note: Callable | None = None
    early_epochs: Callable | None = None

    def values(self, options):
        """{setting: value} read from `options` (the suite's parsed flags)."""
        return {s.name: getattr(options, s.name) for s in self.settings}

    def definitions(self, epochs, lr=None, **values):
        """The run definitions, deduplicated, in a fixed order.

        `values` may hold any study's settings; this study's missing ones take their default.
        """
        settings = {s.name: values.get(s.name, s.default) for s in self.settings}
        unique = {}
        for d in self.define(epochs, lr, **settings):  # the same setting listed twice trains once
            if d.name in unique and unique[d.name] != d:
                raise SuiteError(f"suite: internal error, two settings named {d.name}")
            unique.setdefault(d.name, d)
        return list(unique.values())


# ----------------------------------------------------------------------------
# Run definitions.


class SuiteError(ValueError):
    """A bad suite flag or an inconsistent plan; the message is one line."""


class UnknownLR(str):
    """A base LR known only once the LR range test has run (shown by --dry_run)."""

    def __format__(self, spec):
        return str(self)


def fmt_g(value):
    """A number as run names and messages show it (``format(value, "g")``)."""
    return format(value, "g")


def scaled(lr, factor):
    """`lr` x `factor` to six significant digits (``"<factor>xLR"`` while the LR is unknown)."""
    if isinstance(lr, UnknownLR):
        return UnknownLR(f"{fmt_g(factor)}xLR")
    return float(f"{lr * factor:.6g}")


@dataclasses.dataclass(frozen=True)
class Definition:
    """One training setting of an exercise (all seeds share it)."""

    name: str
    flags: tuple  # ((runner flag, value), ...)


def definition(name, **flags):
    return Definition(name, tuple(flags.items()))


def milestone_epochs(fractions, epochs):
    """Milestones in epochs: each fraction of `epochs` rounded half up.

    Raises:
        SuiteError: unless they are strictly increasing, > 0 and < epochs.
    """
    milestones = [math.floor(f * epochs + 0.5) for f in fractions]
    ok = milestones[0] > 0 and milestones[-1] < epochs
    ok = ok and all(b > a for a, b in zip(milestones, milestones[1:]))
    if not ok:
        percent = "/".join(fmt_g(100 * f) for f in fractions)
        raise SuiteError(
            f"suite: --epochs={epochs} is too short for the milestones at {percent}% of training "
            f"(they round to epochs {milestones}, which must be strictly increasing, > 0 and < {epochs}); "
            "use more --epochs"
        )
    return milestones


def step_definition(lr, factor, fractions, epochs):
    """Step decay by `factor` at `fractions` of `epochs` (the step and cosine studies)."""
    ms = milestone_epochs(fractions, epochs)
    return definition(
        f"step_x{fmt_g(factor)}_m{'-'.join(map(str, ms))}_lr{fmt_g(lr)}",
        schedule="step", lr=lr, milestones=",".join(map(str, ms)), factor=factor,
    )


# ----------------------------------------------------------------------------
# Report numbers: aggregation, formatting, and reading a group's role from its flags.


@dataclasses.dataclass
class KeyNumber:
    what: str
    value: str
    where: str


def mean_std(values):
    """(mean, sample std, n); std is nan for n < 2, both nan for n == 0."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan, 0
    if any(math.isnan(v) for v in values):
        return math.nan, math.nan, n
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan, n
    if any(math.isinf(v) for v in values):
        return mean, math.nan, n
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)), n


def mean(values):
    return mean_std(values)[0]


def fmt(value, digits):
    if value is None or math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}f}"


def schedule(group):
    return group.flags.get("schedule")


def with_schedule(groups, *names):
    """The groups whose --schedule is one of `names`, in order."""
    return [g for g in groups if schedule(g) in names]


def by_final_acc(groups):
    """Groups with a finite mean final val accuracy, best first."""
    ok = [g for g in groups if math.isfinite(mean([x.final_val_accuracy for x in g.stats]))]
    return sorted(ok, key=lambda g: -mean([x.final_val_accuracy for x in g.stats]))


def range_numbers(what, groups):
    """[KeyNumber] of max - min of the mean final accuracy over `groups`; [] for fewer than 2."""
    ranked = by_final_acc(groups)
    if len(ranked) < 2:
        return []
    hi = mean([x.final_val_accuracy for x in ranked[0].stats])
    lo = mean([x.final_val_accuracy for x in ranked[-1].stats])
    return [KeyNumber(what, fmt(100 * (hi - lo), 2), f"`{ranked[0].label}` minus `{ranked[-1].label}`")]


def find(rows, prefix):
    """The first KeyNumber whose `what` starts with `prefix`, or None."""
    for r in rows:
        if r.what.startswith(prefix):
            return r
    return None


def _milestone_fractions(flags):
    milestones = flags.get("milestones")
    epochs = flags.get("epochs")
    if not milestones or not epochs:
        return None
    if isinstance(milestones, str):
        milestones = [m for m in milestones.split(",") if m.strip()]
    return tuple(float(m) / float(epochs) for m in milestones)


def milestones_match(flags, fractions):
    """Whether the run's milestones are `fractions` of its epochs, rounded."""
    got = _milestone_fractions(flags)
    if got is None or len(got) != len(fractions):
        return False
    tolerance = 0.5 / float(flags["epochs"]) + 1e-9
    return all(abs(a - b) <= tolerance for a, b in zip(got, fractions))


"""Compares finished runs: figures, a Markdown table and a written comparison.

Usage:
    python -m experiments.report RUN_DIR_OR_PARENT... [--log_dir DIR] [--overwrite]
        [--target ACC | --target_fraction F] [--early_epochs K]
        [--exercise {step,cosine,poly,warmup}] [--title TEXT]

Each argument is a run directory (it holds ``config.json``) or a folder searched
recursively for run directories. Runs whose ``config.json`` flags differ only in
bookkeeping flags (`rundir.REPLICATE_FLAGS`: the seed, the names and paths of the
output, and how the run was carried out)
form one configuration; the table gives each metric as mean ± sample standard
deviation over its seeds, and the seed count. Runs without ``summary.json``
(interrupted or still running) are listed but left out of the numbers.

Writes into ``--log_dir`` (default: the one folder given, else ``./report``;
the deprecated ``--out`` is the same folder):
``report.md``, ``curves.png`` (every configuration), ``early_loss.png`` (the
first K epochs up close) and, with ``--exercise``, the exercise's focus
figures. An existing report is never replaced unless ``--overwrite`` is given.

Every number in the generated comparison is copied, as formatted, from the
tables above it (the same formatting function produces both).
"""

import argparse
import dataclasses
import json
import math
import os
import re
import sys

import numpy as np

from experiments import cli, plots
from experiments.runner import applied_lr, rundir
from experiments.studies import NAMES, STUDIES
from experiments.studies.common import KeyNumber, by_final_acc, find, fmt, mean, mean_std, range_numbers

DEFAULT_TARGET_FRACTION = 0.95
DEFAULT_EARLY_EPOCHS = 5
_SEED_SUFFIX = re.compile(r"[_-](?:seed|s)\d+$")  # suite: _seed0, runner default: _s0


# ----------------------------------------------------------------------------
# Collecting and grouping runs.


def find_run_dirs(paths):
    """Run directories named by `paths` (run folders or parents), in order.

    A path that is a run directory is taken as is; any other directory is
    searched recursively (sorted, not descending into run directories).

    Raises:
        ValueError: if a path does not exist or holds no run directory.
    """
    found = []
    for path in paths:
        if not os.path.isdir(path):
            raise ValueError(f"report: RUN_DIR must be an existing directory, received {path!r}")
        if rundir.is_run_dir(path):
            found.append(os.path.normpath(path))
            continue
        before = len(found)
        for root, dirs, _ in os.walk(path):
            dirs.sort()
            if rundir.is_run_dir(root):
                found.append(os.path.normpath(root))
                dirs[:] = []
        if len(found) == before:
            raise ValueError(f"report: RUN_DIR must hold run directories (with config.json), received {path!r}")
    unique = []
    for path in found:
        if path not in unique:
            unique.append(path)
    return unique


def experiment_key(run, ignored=rundir.REPLICATE_FLAGS):
    """A hashable key equal for runs that differ only in `ignored` flags (`rundir.compared_flags`)."""
    if run.config is None or not isinstance(run.config.get("flags"), dict):
        raise ValueError(f"report: {run.path}/config.json must hold a 'flags' object")
    return json.dumps(rundir.compared_flags(run.flags, ignore=ignored), sort_keys=True)


@dataclasses.dataclass
class Group:
    """Runs of one configuration (differing only by seed)."""

    label: str
    runs: list
    stats: list = dataclasses.field(default_factory=list)

    @property
    def flags(self):
        return {k: v for k, v in self.runs[0].flags.items() if k not in rundir.REPLICATE_FLAGS}

    @property
    def seeds(self):
        return [r.flags.get("seed") for r in self.runs]


def shown_value(name, value):
    """A flag's value as a report shows it: a path (`rundir.PATH_FLAGS`) as PATH/<its last part>.

    config.json keeps the path as given; a report read on another machine
    should not name this one's folders.
    """
    if name in rundir.PATH_FLAGS and isinstance(value, str) and value:
        return "PATH/" + os.path.basename(os.path.normpath(value))
    return value


def _group_label(runs, differing):
    names = {_SEED_SUFFIX.sub("", r.name) for r in runs}
    if len(names) == 1:
        return names.pop()
    flags = runs[0].flags
    return ", ".join(f"{k}={shown_value(k, flags.get(k))}" for k in differing) or runs[0].name


def group_runs(runs, ignored=rundir.REPLICATE_FLAGS):
    """Groups runs by `experiment_key`, in order of first appearance."""
    by_key = {}
    for run in runs:
        by_key.setdefault(experiment_key(run, ignored), []).append(run)
    all_flags = [json.loads(k) for k in by_key]
    names = sorted({n for f in all_flags for n in f})
    differing = [n for n in names if len({json.dumps(f.get(n), default=str) for f in all_flags}) > 1]
    if "schedule" in differing:
        differing.remove("schedule")
        differing.insert(0, "schedule")
    groups = [Group(_group_label(rs, differing), rs) for rs in by_key.values()]
    seen = {}
    for group in groups:  # two different configurations never share a label
        seen[group.label] = seen.get(group.label, 0) + 1
    for group in groups:
        if seen[group.label] > 1:
            flags = group.runs[0].flags
            group.label += " (" + ", ".join(f"{k}={shown_value(k, flags.get(k))}" for k in differing) + ")"
    return groups


# ----------------------------------------------------------------------------
# Per-run metrics.


@dataclasses.dataclass
class RunStats:
    """The numbers the table reports for one finished run (accuracies in [0, 1])."""

    final_val_accuracy: float
    best_val_accuracy: float
    best_epoch: float  # counted from 1
    epochs_to_target: float | None  # counted from 1; None: never reached
    final_loss: float
    early_loss_std: float
    early_loss_max: float
    diverged: bool
    diverged_epoch: float | None  # counted from 1
    wall_seconds: float
    epochs_completed: int


def _num(value):
    return math.nan if value is None else float(value)


def epochs_to_target(history, target):
    """Epochs trained until validation accuracy first reaches `target` (1-based), or None."""
    for row in history:
        if row["val_accuracy"] >= target:
            return row["epoch"] + 1
    return None


def early_loss_stats(history, num_epochs):
    """Population std and max of the training loss over the first `num_epochs` epochs.

    Both are ``inf`` if a loss in that window is not finite (the run blew up),
    ``nan`` when there is no epoch.
    """
    losses = [r["loss"] for r in history[:num_epochs]]
    if not losses:
        return math.nan, math.nan
    if not all(math.isfinite(v) for v in losses):
        return math.inf, math.inf
    mean = sum(losses) / len(losses)
    std = math.sqrt(sum((v - mean) ** 2 for v in losses) / len(losses))
    return std, max(losses)


def run_stats(run, target, early_epochs):
    """`RunStats` of a finished run from its summary.json and history.csv."""
    summary, history = run.summary, run.history
    last = history[-1] if history else {}
    diverged = bool(summary.get("diverged", summary.get("status") == "diverged"))
    diverged_epoch = summary.get("diverged_epoch")
    early_std, early_max = early_loss_stats(history, early_epochs)
    return RunStats(
        final_val_accuracy=_num(summary.get("final_val_accuracy", last.get("val_accuracy"))),
        best_val_accuracy=_num(summary.get("best_val_accuracy")),
        best_epoch=_num(summary.get("best_epoch")) + 1,
        epochs_to_target=epochs_to_target(history, target),
        final_loss=_num(summary.get("final_loss", last.get("loss"))),
        early_loss_std=early_std,
        early_loss_max=early_max,
        diverged=diverged,
        diverged_epoch=None if diverged_epoch is None else diverged_epoch + 1,
        wall_seconds=_num(summary.get("wall_seconds")),
        epochs_completed=int(summary.get("epochs_completed", len(history))),
    )


def default_target(runs, fraction=DEFAULT_TARGET_FRACTION):
    """`fraction` of the highest best validation accuracy among finished runs."""
    bests = [_num(r.summary.get("best_val_accuracy")) for r in runs]
    bests = [b for b in bests if math.isfinite(b)]
    if not bests:
        raise ValueError("report: no finished run has a finite best_val_accuracy")
    return fraction * max(bests)


# ----------------------------------------------------------------------------
# Aggregation and formatting.


def fmt_mean_std(values, digits, scale=1.0):
    """``"m ± s"`` of the values times `scale` (``"m"`` for one value)."""
    m, std, n = mean_std([v * scale for v in values])
    if n == 0:
        return "n/a"
    if n == 1 or math.isnan(std):
        return fmt(m, digits)
    return f"{fmt(m, digits)} ± {fmt(std, digits)}"


def _pct(values):
    return fmt_mean_std(values, 2, scale=100.0)


def fmt_epochs(values):
    """Epochs (counted from 1) as ``"m ± s"``: whole numbers without decimals (``"2"``, ``"8 ± 0"``),
    else both to 0.1 (``"7.5 ± 0.7"``, ``"19.0 ± 1.4"``)."""
    m, std, n = mean_std(values)
    if n == 0:
        return "n/a"
    shown = [m] if n == 1 or math.isnan(std) else [m, std]
    whole = all(math.isfinite(v) and float(v).is_integer() for v in shown)
    return " ± ".join(str(int(v)) if whole else fmt(v, 1) for v in shown)


@dataclasses.dataclass
class Cells:
    """The formatted table cells of one group (what the text quotes)."""

    seeds: str
    final_acc: str
    best_acc: str
    best_epoch: str
    to_target: str
    final_loss: str
    early_std: str
    early_max: str
    diverged: str
    wall: str


def group_cells(group):
    s = group.stats
    reached = [x.epochs_to_target for x in s if x.epochs_to_target is not None]
    if not reached:
        to_target = "not reached"
    else:
        to_target = fmt_epochs(reached)
        if len(reached) < len(s):
            to_target += f" ({len(reached)} of {len(s)} seeds)"
    n_div = sum(x.diverged for x in s)
    div_epochs = [str(int(x.diverged_epoch)) for x in s if x.diverged and x.diverged_epoch is not None]
    diverged = f"{n_div} of {len(s)}"
    if div_epochs:
        diverged += f" (epoch {', '.join(div_epochs)})"
    return Cells(
        seeds=str(len(s)),
        final_acc=_pct([x.final_val_accuracy for x in s]),
        best_acc=_pct([x.best_val_accuracy for x in s]),
        best_epoch=fmt_epochs([x.best_epoch for x in s]),
        to_target=to_target,
        final_loss=fmt_mean_std([x.final_loss for x in s], 3),
        early_std=fmt_mean_std([x.early_loss_std for x in s], 3),
        early_max=fmt_mean_std([x.early_loss_max for x in s], 3),
        diverged=diverged,
        wall=fmt_mean_std([x.wall_seconds for x in s], 1),
    )


def results_table(groups, target, early_epochs):
    header = [
        "configuration",
        "seeds",
        "final val acc (%)",
        "best val acc (%)",
        "best epoch",
        f"epochs to {fmt(100 * target, 2)}%",
        "final train loss",
        f"loss std, epochs 1-{early_epochs}",
        f"max loss, epochs 1-{early_epochs}",
        "diverged",
        "wall time (s)",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for g in groups:
        c = group_cells(g)
        cells = [
            f"`{g.label}`", c.seeds, c.final_acc, c.best_acc, c.best_epoch, c.to_target,
            c.final_loss, c.early_std, c.early_max, c.diverged, c.wall,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------
# The written comparison: every number is a table cell, copied.


def key_numbers(groups, exercise, target):
    """The derived numbers the comparison quotes (shown as their own table)."""
    rows = [KeyNumber("target val accuracy (%)", fmt(100 * target, 2), "")]
    rows += range_numbers("spread of mean final val accuracy (points)", groups)
    seed_stds = [
        (mean_std([100 * x.final_val_accuracy for x in g.stats])[1], g) for g in groups if len(g.stats) > 1
    ]
    seed_stds = [(s, g) for s, g in seed_stds if math.isfinite(s)]
    if seed_stds:
        s, g = max(seed_stds, key=lambda t: t[0])
        rows.append(KeyNumber("largest seed std of final val accuracy (points)", fmt(s, 2), f"`{g.label}`"))
    n_runs = sum(len(g.stats) for g in groups)
    n_div = sum(x.diverged for g in groups for x in g.stats)
    rows.append(KeyNumber("diverged runs", f"{n_div} of {n_runs}", ""))
    return rows + (STUDIES[exercise].key_numbers(groups) if exercise else [])


def key_numbers_table(rows):
    lines = ["| quantity | value | configuration |", "|---|---|---|"]
    lines += [f"| {r.what} | {r.value} | {r.where} |" for r in rows]
    return "\n".join(lines)


def _speed_sentence(groups, cells):
    full = [g for g in groups if all(x.epochs_to_target is not None for x in g.stats)]
    partial = [g for g in groups if g not in full and any(x.epochs_to_target is not None for x in g.stats)]
    never = [g for g in groups if all(x.epochs_to_target is None for x in g.stats)]
    parts = []
    if full:
        ranked = sorted(full, key=lambda g: mean([x.epochs_to_target for x in g.stats]))
        first, last = ranked[0], ranked[-1]
        head = "Convergence speed (mean epochs to the target, configurations where every seed reached it): "
        if len(full) > 1 and cells[first.label].to_target == cells[last.label].to_target:
            parts.append(head + f"every such configuration took {cells[first.label].to_target}, a tie at this resolution.")
        else:
            parts.append(head + f"`{first.label}` was fastest with {cells[first.label].to_target}")
            if last is not first:
                parts[-1] += f", `{last.label}` slowest with {cells[last.label].to_target}"
            parts[-1] += "."
    if partial:
        parts.append(
            "Reached by some seeds only: "
            + ", ".join(f"`{g.label}` ({cells[g.label].to_target})" for g in partial) + "."
        )
    if never:
        parts.append("Never reached the target: " + ", ".join(f"`{g.label}`" for g in never) + ".")
    return " ".join(parts)


def _accuracy_sentence(groups, cells, numbers):
    ranked = by_final_acc(groups)
    if not ranked:
        return ""
    best, worst = ranked[0], ranked[-1]
    if worst is not best and cells[best.label].final_acc == cells[worst.label].final_acc:
        return f"Final accuracy: every configuration ended at {cells[best.label].final_acc}%, a tie at this resolution."
    text = f"Final accuracy: `{best.label}` ended best with {cells[best.label].final_acc}%"
    if worst is not best:
        spread = find(numbers, "spread")
        text += f", `{worst.label}` worst with {cells[worst.label].final_acc}% (a spread of {spread.value} points"
        seed = find(numbers, "largest seed std")
        if seed:
            relation = "larger" if float(spread.value) > float(seed.value) else "not larger"
            text += f", {relation} than the largest seed std, {seed.value} points"
        text += ")"
    return text + "."


def _stability_sentence(groups, cells, numbers, early_epochs):
    div = find(numbers, "diverged runs")
    text = f"Stability: {div.value} runs diverged"
    diverged = [g for g in groups if any(x.diverged for x in g.stats)]
    if diverged:
        text += " (" + "; ".join(f"`{g.label}`: {cells[g.label].diverged}" for g in diverged) + ")"
    finite = [g for g in groups if math.isfinite(mean([x.early_loss_max for x in g.stats]))]
    if finite:
        worst = max(finite, key=lambda g: mean([x.early_loss_max for x in g.stats]))
        calm = min(finite, key=lambda g: mean([x.early_loss_max for x in g.stats]))
        text += f". Highest training loss over epochs 1-{early_epochs}, among configurations that stayed finite: "
        if cells[worst.label].early_max == cells[calm.label].early_max:
            text += f"{cells[worst.label].early_max} for all of them"
        else:
            text += (
                f"{cells[worst.label].early_max} for `{worst.label}` (the worst), "
                f"{cells[calm.label].early_max} for `{calm.label}` (the calmest)"
            )
    return text + "."


def comparison(groups, exercise, numbers, early_epochs):
    cells = {g.label: group_cells(g) for g in groups}
    paragraphs = [
        _speed_sentence(groups, cells),
        _accuracy_sentence(groups, cells, numbers),
        _stability_sentence(groups, cells, numbers, early_epochs),
    ]
    paragraphs += STUDIES[exercise].sentences(groups, cells, numbers) if exercise else []
    if len(groups) > 1 and all(len(g.stats) == 1 for g in groups):
        paragraphs.append(
            "Caution: every configuration has a single seed, so none of these differences can be told "
            "from seed-to-seed noise; rerun with more seeds before drawing conclusions."
        )
    return [p for p in paragraphs if p]


# ----------------------------------------------------------------------------
# Figures and the report file.


def _mean_rows(runs):
    """Epoch-wise mean of the runs' histories, over epochs every run has."""
    if len(runs) == 1:
        return runs[0].history
    n = min(len(r.history) for r in runs)
    return [
        {c: sum(r.history[i][c] for r in runs) / len(runs) for c in rundir.HISTORY_COLUMNS} for i in range(n)
    ]


def _mean_applied_lr(runs, num_epochs):
    """The LR the runs applied at every step over their first `num_epochs` epochs, averaged over them.

    None (the figure then draws the per-epoch LR) when a run's config.json has no schedule.
    """
    curves = [applied_lr.applied_lr(r.config, r.history[:num_epochs]) for r in runs]
    if any(c is None for c in curves) or any(not np.array_equal(c.steps, curves[0].steps) for c in curves):
        return None
    mean_lr = np.mean([c.learning_rate for c in curves], axis=0)
    return dataclasses.replace(curves[0], learning_rate=mean_lr)


def _curves(groups):
    curves = []
    for g in groups:
        rows = _mean_rows(g.runs)
        label = g.label if len(g.runs) == 1 else f"{g.label} (mean of {len(g.runs)} seeds)"
        curves.append((label, rows, _mean_applied_lr(g.runs, len(rows))))
    return curves


def focus_figures(exercise, groups):
    """(file name, title, groups) of the exercise's extra figures (`Study.figures`)."""
    return STUDIES[exercise].figures(groups) if exercise else []


def _output_files(exercise, groups):
    return ["report.md", "curves.png", "early_loss.png"] + [f[0] for f in focus_figures(exercise, groups)]


def _setup_lines(runs):
    """Flags shared by every run, plus derived sizes and the environment."""
    flags = [r.flags for r in runs]
    shared = {
        k: v for k, v in flags[0].items()
        if k not in rundir.REPLICATE_FLAGS and all(json.dumps(f.get(k), default=str) == json.dumps(v, default=str) for f in flags)
    }
    lines = ["Flags shared by every run (unset ones left out): "
             + ", ".join(f"`{k}={shown_value(k, v)}`" for k, v in sorted(shared.items()) if v is not None)
             + "."]
    derived = (runs[0].config or {}).get("derived", {})
    sizes = {k: derived.get(k) for k in ("train_size", "val_size", "steps_per_epoch") if k in derived}
    if sizes:
        lines.append("Derived (first run): " + ", ".join(f"{k}={v}" for k, v in sizes.items()) + ".")
    envs = {json.dumps((r.config or {}).get("environment"), sort_keys=True, default=str) for r in runs}
    for env in sorted(envs):
        lines.append(f"Environment: `{env}`.")
    return lines


def build_report(run_dirs, out_dir, exercise=None, target=None, target_fraction=DEFAULT_TARGET_FRACTION,
                 early_epochs=DEFAULT_EARLY_EPOCHS, title=None, notes=(), overwrite=False):
    """Writes report.md and its figures into `out_dir`; returns the report path.

    Args:
        run_dirs: run directories, in the order the table should follow.
        out_dir: output folder (created).
        exercise: one of `studies.NAMES` to add that exercise's focus figures,
            sentences and theory; None for a generic comparison.
        target: absolute validation accuracy in (0, 1] for "epochs to target";
            None for `target_fraction` of the best run's best.
        early_epochs: K, the early-training window for the stability columns
            (shortened to the longest run when that has fewer epochs).
        notes: extra Markdown paragraphs placed under the setup (the suite
            says how it chose the LR here).
        overwrite: replace existing output files; otherwise refuse.

    Raises:
        FileExistsError: an output file exists and `overwrite` is False.
        ValueError: bad arguments, or no finished run.
    """
    if exercise is not None and exercise not in STUDIES:
        raise ValueError(f"report: exercise must be one of {list(NAMES)}, received exercise={exercise!r}")
    if not isinstance(early_epochs, int) or early_epochs < 1:
        raise ValueError(f"report: early_epochs must be an integer >= 1, received early_epochs={early_epochs!r}")
    if target is not None and not 0 < target <= 1:
        raise ValueError(f"report: target must be in (0, 1], received target={target}")
    if not 0 < target_fraction <= 1:
        raise ValueError(f"report: target_fraction must be in (0, 1], received target_fraction={target_fraction}")
    runs = [rundir.read_run(d) for d in run_dirs]
    finished = [r for r in runs if r.finished]
    unfinished = [r for r in runs if not r.finished]
    if not finished:
        raise ValueError("report: no finished run (summary.json) among " + ", ".join(run_dirs))
    if target is None:
        target = default_target(finished, target_fraction)
        target_text = f"{fmt(100 * target_fraction, 0)}% of the best run's best val accuracy"
    else:
        target_text = "given with --target"
    groups = group_runs(finished)
    longest = max(len(r.history) for r in finished)
    early_epochs = min(early_epochs, longest) if longest else early_epochs  # the window runs had
    for g in groups:
        g.stats = [run_stats(r, target, early_epochs) for r in g.runs]
    files = _output_files(exercise, groups)
    existing = [f for f in files if os.path.exists(os.path.join(out_dir, f))]
    if existing and not overwrite:
        raise FileExistsError(
            f"report: --log_dir {out_dir} already holds {', '.join(existing)}; "
            "pass --overwrite to replace them or choose another --log_dir"
        )
    os.makedirs(out_dir, exist_ok=True)

    curves = _curves(groups)
    plots.plot_curves(curves, os.path.join(out_dir, "curves.png"), title=title)
    plots.plot_early_loss(curves, os.path.join(out_dir, "early_loss.png"), early_epochs,
                          title=f"training loss, first {early_epochs} epochs")
    figures = [("curves.png", "all configurations"), ("early_loss.png", f"first {early_epochs} epochs up close")]
    for name, fig_title, subset in focus_figures(exercise, groups):
        if subset:
            plots.plot_curves(_curves(subset), os.path.join(out_dir, name), title=fig_title)
            figures.append((name, fig_title))

    numbers = key_numbers(groups, exercise, target)
    md = [f"# {title or ('Exercise: ' + exercise if exercise else 'Run comparison')}", ""]
    md += ["## Setup", ""] + _setup_lines(finished) + [""]
    md += [str(n) for n in notes] + ([""] if notes else [])
    md += [
        f"{len(finished)} finished runs in {len(groups)} configurations. Runs that differ only by seed are one "
        "configuration: each cell is mean ± sample std over its seeds (a single value for one seed). "
        "Epochs count from 1 (history.csv counts from 0). The target accuracy is " + target_text + ". "
        f"Stability columns: population std and maximum of the per-epoch mean training loss over epochs "
        f"1-{early_epochs}; a per-step view is not available (history.csv holds one row per epoch), "
        "TensorBoard has only per-epoch scalars too. `inf` means the loss was not finite in that window.",
        "",
    ]
    if unfinished:
        md += ["Not included (no summary.json: interrupted or still running): "
               + ", ".join(f"`{r.path}`" for r in unfinished) + ".", ""]
    md += ["## Results", "", results_table(groups, target, early_epochs), ""]
    md += ["### Key numbers", "", key_numbers_table(numbers), ""]
    md += ["### Runs", ""] + [
        f"- `{g.label}`: " + ", ".join(f"`{r.name}` (seed {r.flags.get('seed')})" for r in g.runs) for g in groups
    ] + [""]
    md += ["## Figures", ""] + [f"![{t}]({n})" for n, t in figures] + [""]
    md += ["## Comparison", ""] + [p + "\n" for p in comparison(groups, exercise, numbers, early_epochs)]
    if exercise:
        md += ["## Theory", "", STUDIES[exercise].theory, ""]
    path = os.path.join(out_dir, "report.md")
    with open(path, "w") as f:
        f.write("\n".join(md).rstrip("\n") + "\n")
    return path


# ----------------------------------------------------------------------------
# Command line.


def _fraction(text):
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], received {text}")
    return value


def parse_args(argv):
    parser = cli.Parser("report", description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="+", metavar="RUN_DIR", help="run directories or folders holding them")
    parser.add_argument("--log_dir", help="the folder report.md and the figures are written to "
                        "(default: the one folder given, else ./report)")
    parser.add_argument("--out", help="deprecated name of --log_dir (the same folder, with a warning)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing report in --log_dir")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--target", type=_fraction, help="absolute val accuracy for 'epochs to target'")
    group.add_argument("--target_fraction", type=_fraction, default=DEFAULT_TARGET_FRACTION,
                       help="target = this fraction of the best run's best val accuracy (default 0.95)")
    parser.add_argument("--early_epochs", type=cli.positive_int, default=DEFAULT_EARLY_EPOCHS,
                        help="epochs in the early-stability window (default 5)")
    parser.add_argument("--exercise", choices=NAMES, help="add that exercise's figures and text")
    parser.add_argument("--title")
    args = parser.parse_args(argv)
    one_folder = len(args.paths) == 1 and not rundir.is_run_dir(args.paths[0])
    args.log_dir = parser.output_folder(args, "out", default=args.paths[0] if one_folder else "report")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        run_dirs = find_run_dirs(args.paths)
        path = build_report(run_dirs, args.log_dir, exercise=args.exercise, target=args.target,
                            target_fraction=args.target_fraction, early_epochs=args.early_epochs,
                            title=args.title, overwrite=args.overwrite)
    except (ValueError, FileExistsError) as e:
        print(e, file=sys.stderr)
        return 2
    print(f"report: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

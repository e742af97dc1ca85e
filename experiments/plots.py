"""Plotting runs' curves: a run's ``curves.png``, the report's figures, the LR range test.

Shared by the runner (through `experiments.runner.rundir`), ``experiments.report``
and ``experiments.lr_find``. Reading a run directory is `experiments.runner.rundir`'s.

Plotting uses ``matplotlib.figure.Figure`` with the Agg canvas directly, never
``pyplot``: it needs no display, leaves a user's interactive backend alone and
holds no global figure state, so nothing has to be closed by hand.
"""

import math
import os

# A learning-rate axis is drawn in log scale when every value is > 0 and the
# largest is more than this many times the smallest (about one decade).
LOG_SCALE_MIN_RATIO = 10.0
# The training-loss axis goes to log scale only for a very wide range (a run
# that blows up before it turns NaN would otherwise flatten every other curve).
LOSS_LOG_SCALE_MIN_RATIO = 100.0


def _finite_or_nan(values):
    return [v if math.isfinite(v) else math.nan for v in values]


def use_log_scale(values, min_ratio=LOG_SCALE_MIN_RATIO):
    """Whether values are all finite and > 0 and span more than `min_ratio`."""
    values = [v for v in values if not math.isnan(v)]
    if not values or any(v <= 0 or math.isinf(v) for v in values):
        return False
    return max(values) / min(values) > min_ratio


def _new_figure(ncols, width_per_panel=5.0, height=4.0):
    # Imported here so that importing this module never loads matplotlib.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_per_panel * ncols, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    figure.savefig(path, dpi=110)
    figure.clear()


def _colors(n):
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _finish_axes(*axes):
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.grid(True, alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _legend(figure, axes, n):
    handles, labels = axes.get_legend_handles_labels()
    if not handles:
        return
    ncol = min(n, 4 if figure.get_figwidth() >= 15 else 3)  # long labels: fewer columns when narrower
    figure.legend(handles, labels, loc="outside lower center", ncol=ncol, fontsize="small")


def _lr_staircase(rows, lrs):
    """x, y of the LR as a staircase: epoch k (from 1) spans x in [k - 1, k]."""
    xs = [r["epoch"] for r in rows] + [rows[-1]["epoch"] + 1]
    return xs, lrs + lrs[-1:]


# The LR panel's title, and what a run's legend label gets when its LR is the
# per-epoch record (its config.json has no schedule to rebuild).
LR_TITLE = "learning rate applied at every step"
PER_EPOCH_NOTE = " (LR: per epoch only, no schedule in config.json)"


def _unpack(run):
    """(label, rows, applied): `applied` an `applied_lr.AppliedLR` or None."""
    label, rows, *rest = run
    return label, rows, (rest[0] if rest else None)


def _draw_lr(ax, rows, applied, color, last_epoch=None):
    """Draws a run's LR (every step if `applied`, else the per-epoch staircase); returns (x, y).

    `last_epoch`: draw x up to it only (the early-loss figure).
    """
    if applied is None:
        xs, ys = _lr_staircase(rows, _finite_or_nan([r["learning_rate"] for r in rows]))
    else:
        xs, ys = applied.line()
        xs, ys = list(map(float, xs)), _finite_or_nan(list(map(float, ys)))
    if last_epoch is not None:
        keep = [i for i, x in enumerate(xs) if x < last_epoch]
        xs, ys = [xs[i] for i in keep] + [last_epoch], [ys[i] for i in keep] + [ys[keep[-1]]]
    ax.plot(xs, ys, color=color, drawstyle="steps-post", linewidth=1.2)
    return xs, ys


def plot_curves(runs, path, title=None):
    """Writes one PNG: training loss, validation accuracy and LR against epoch.

    Args:
        runs: a list of ``(label, rows)`` or ``(label, rows, applied)``; rows as
            returned by `read_history` (dicts of floats with the history.csv
            columns), `applied` the run's `applied_lr.AppliedLR` (None: not
            known). A run with no rows is left out of the figure.
        path: the PNG file to write (parent folders are created).
        title: optional figure title.

    The x-axis counts epochs trained: the loss and validation accuracy of
    epoch k (counted from 1; history.csv counts from 0) are drawn at x = k.
    The LR is the one applied at every step (`applied`: restarts, warmup and
    drops inside an epoch show); a run without `applied` gets the per-epoch
    staircase of history.csv instead (epoch k spans [k - 1, k] at the LR of its
    first step) and its legend label says so (`PER_EPOCH_NOTE`).
    The LR panel uses a log y-axis when every LR is > 0 and they span more than
    about a decade, a linear one otherwise (for example when a schedule reaches
    0). The loss panel goes to log scale only for a range over 100x. Non-finite
    losses (a diverged run) are not drawn; the last drawn point of such a run is
    marked with an ``x``.

    Returns:
        What was drawn: ``{"loss": "log"|"linear", "lr": "log"|"linear",
        "lr_lines": {label: (x, y)}}``: the LR lines as drawn (steps-post), by
        the label shown in the legend.
    """
    runs = [_unpack(run) for run in runs if run[1]]
    figure = _new_figure(3)
    if title:
        figure.suptitle(title)
    ax_loss, ax_acc, ax_lr = figure.subplots(1, 3)
    all_lrs, all_losses, lines = [], [], {}
    for (label, rows, applied), color in zip(runs, _colors(len(runs))):
        epochs = [r["epoch"] + 1 for r in rows]  # counted from 1, as in the reports
        loss = _finite_or_nan([r["loss"] for r in rows])
        acc = _finite_or_nan([r["val_accuracy"] for r in rows])
        all_losses += loss
        label += "" if applied else PER_EPOCH_NOTE
        ax_loss.plot(epochs, loss, color=color, label=label)
        if any(not math.isfinite(r["loss"]) for r in rows):
            finite = [(e, v) for e, v in zip(epochs, loss) if not math.isnan(v)]
            if finite:
                ax_loss.plot(*finite[-1], marker="x", markersize=9, color=color)
        ax_acc.plot(epochs, acc, color=color)
        lines[label] = _draw_lr(ax_lr, rows, applied, color)
        all_lrs += lines[label][1]
    ax_loss.set(title="training loss", xlabel="epochs trained", ylabel="loss")
    ax_acc.set(title="validation accuracy", xlabel="epochs trained", ylabel="accuracy")
    ax_lr.set(title=LR_TITLE, xlabel="epochs trained", ylabel="LR")
    if use_log_scale(all_lrs):
        ax_lr.set_yscale("log")
    if use_log_scale(all_losses, LOSS_LOG_SCALE_MIN_RATIO):
        ax_loss.set_yscale("log")
    _finish_axes(ax_loss, ax_acc, ax_lr)
    _legend(figure, ax_loss, len(runs))
    drawn = {"loss": ax_loss.get_yscale(), "lr": ax_lr.get_yscale(), "lr_lines": lines}
    _save(figure, path)
    return drawn


def plot_early_loss(runs, path, num_epochs, title=None):
    """Writes a PNG of the training loss over the first `num_epochs` epochs.

    The up-close view for the warmup study: one panel of training loss (log
    scale when it spans more than 100x) and one of the LR, epochs
    ``1 .. num_epochs`` only (history.csv's ``0 .. num_epochs - 1``), axes as
    in `plot_curves`. Epochs with a non-finite loss are marked by a dotted
    vertical line. Arguments and return value as in `plot_curves`.
    """
    if not isinstance(num_epochs, int) or num_epochs < 1:
        raise ValueError(f"plot_early_loss: num_epochs must be >= 1, received num_epochs={num_epochs}")
    early = [_unpack(run) for run in runs]
    early = [(label, [r for r in rows if r["epoch"] < num_epochs], applied) for label, rows, applied in early]
    early = [run for run in early if run[1]]
    figure = _new_figure(2, width_per_panel=6.0)
    figure.suptitle(title or f"first {num_epochs} epochs")
    ax_loss, ax_lr = figure.subplots(1, 2)
    all_losses, all_lrs, lines = [], [], {}
    for (label, rows, applied), color in zip(early, _colors(len(early))):
        epochs = [r["epoch"] + 1 for r in rows]  # counted from 1, as in the reports
        loss = _finite_or_nan([r["loss"] for r in rows])
        all_losses += loss
        label += "" if applied else PER_EPOCH_NOTE
        ax_loss.plot(epochs, loss, color=color, marker="o", label=label)
        lines[label] = _draw_lr(ax_lr, rows, applied, color, last_epoch=float(len(rows)))
        all_lrs += lines[label][1]
        for e, r in zip(epochs, rows):
            if not math.isfinite(r["loss"]):
                ax_loss.axvline(e, color=color, linestyle=":", alpha=0.7)
    ax_loss.set(title="training loss (dotted line: non-finite loss)", xlabel="epochs trained", ylabel="loss")
    ax_lr.set(title=LR_TITLE, xlabel="epochs trained", ylabel="LR")
    if use_log_scale(all_losses, LOSS_LOG_SCALE_MIN_RATIO):
        ax_loss.set_yscale("log")
    if use_log_scale(all_lrs):
        ax_lr.set_yscale("log")
    _finish_axes(ax_loss, ax_lr)
    _legend(figure, ax_loss, len(early))
    drawn = {"loss": ax_loss.get_yscale(), "lr": ax_lr.get_yscale(), "lr_lines": lines}
    _save(figure, path)
    return drawn


def plot_lr_find(lrs, losses, smoothed, path, marks=(), title=None):
    """Writes the LR range test's figure: raw and smoothed loss against LR (log x).

    Args:
        lrs, losses, smoothed: per-step learning rates, batch losses and the
            smoothed (bias-corrected moving average) losses.
        path: the PNG file to write.
        marks: ``(label, lr)`` pairs drawn as vertical lines (the suggestion).
        title: optional title.
    """
    figure = _new_figure(1, width_per_panel=7.0, height=4.5)
    ax = figure.subplots()
    ax.plot(lrs, _finite_or_nan(losses), color="0.75", linewidth=0.8, label="batch loss")
    ax.plot(lrs, _finite_or_nan(smoothed), color="C0", label="smoothed loss")
    for (label, lr), color in zip(marks, ("C3", "C2", "C1", "C4")):
        ax.axvline(lr, color=color, linestyle="--", label=f"{label}: {lr:.3g}")
    ax.set_xscale("log")
    finite = [v for v in smoothed if math.isfinite(v)]
    raw = sorted(v for v in losses if math.isfinite(v))
    if finite:  # keep the exploding tail from flattening the useful part
        low = min([min(finite)] + raw[len(raw) // 50 : len(raw) // 50 + 1])
        high = max(finite[: max(1, len(finite) // 10)] + [min(finite)])
        ax.set_ylim(low - 0.1 * (high - low + 1e-12), high + 0.5 * (high - low + 1e-12))
    ax.set(xlabel="learning rate (log scale)", ylabel="training loss", title=title or "LR range test")
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize="small")
    _save(figure, path)

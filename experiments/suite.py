"""The four learning-rate studies, each as one resumable command.

Usage:
    python -m experiments.suite --exercise {step,cosine,poly,warmup,all}
        [--epochs N] [--seeds 2 | --seeds 0,3] [--train_subset N] [--image_folder PATH]
        [--model simple_cnn] [--batch_size 128] [--log_dir logs] [--lr LR]
        [--dry_run] [--parallel N [--gpus_per_run G] [--cpus_per_run C] [--ray_address auto|HOST:PORT]]
        [--runner_flag=value ...]

Every training is ``python -m experiments.run`` in a subprocess, into
``<log_dir>/<exercise>/<run_name>`` with a deterministic run name
(``<definition>[_<budget>][_<passed-through flags>]_seed<k>``, e.g.
``cosine_lr0.012_e30_n10000_adam_seed0`` with ``--epochs=30 --train_subset=10000
--optimizer=adam``; the budget and flags at the runner's default add nothing), so
another budget makes other run folders in the same ``--log_dir``; a run named
before names held them (``cosine_lr0.012_seed0``) is reused if it has the same flags.
A run with ``summary.json`` is skipped (after
checking that it was trained with the same flags); an interrupted one is
started again with the same command and the runner resumes it; one that another
process is training (it holds the run's lock) is reported and not started twice. When the runs
are done, ``<log_dir>/<exercise>/report.md`` and its figures are regenerated
from the run folders (derived data, so they are replaced each time).

Run definitions (fractions of ``--epochs``, milestones rounded half up; each study is
one module of ``experiments.studies``):
  step:   constant LR; step decay with factor {0.1, 0.2, 0.5} x milestones
          {30/60/80, 50/75, 25/50/75}% (x0.1 at 30/60/80% is the base run).
  cosine: step x0.1 at 30/60/80% (the reference), cosine to 0 at the base LR and
          at --higher_lr_factor x it; warm restarts with T_0 {10, 25}% x t_mul {1, 2}.
  poly:   linear decay and polynomial decay with power {0.5, 2, 3} (linear is power 1).
  warmup: Adam at --adam_lr and SGD at --sgd_lr (both deliberately large): constant
          without warmup, constant after a --warmup_epochs linear warmup, warmup + cosine.

The base LR of step, cosine and poly (SGD): ``--lr`` if given; otherwise it is
tuned in two stages. The LR range test (``experiments.lr_find``, run once into
``<log_dir>/lr_find/``, ``lr_find_n5000/`` for another budget as the run names,
with the same data, model and batch size) finds the LR
where the smoothed loss is lowest; constant-LR runs at that LR x 0.1, 0.3 and 1
(first seed, in ``<log_dir>/step/``) then compete, and the one with the best
final validation accuracy fixes the base LR. (The range test's own suggestion,
the minimum / 10, is printed too but was too conservative on CIFAR-10 with SGD
and momentum, where the loss valley is flat over a decade.) Each report says
which LR was used and how it was chosen.

Other flags of the runner (``--optimizer``, ``--weight_decay``,
``--deterministic``, ...) pass through to every run as ``--name=value``, except
those the definitions set themselves.

``--parallel=N`` trains up to N runs at once on Ray (`experiments.parallel`):
the same subprocesses, each with its own ``--gpus_per_run`` GPUs and
``--cpus_per_run`` CPUs, on a local Ray the suite starts and stops, or on the
cluster at ``--ray_address``. Everything above holds as in a sequential suite;
the range test and the sweep still end before the runs that need their LR (the
warmup runs, which do not, fill the free slots meanwhile). The default,
``--parallel=1``, runs them one by one and does not import Ray.
"""

import argparse
import dataclasses
import functools
import json
import math
import os
import re
import subprocess
import sys
import time

from experiments import cli
from experiments import lr_find
from experiments import parallel
from experiments import report
from experiments.runner import data
from experiments.runner import flags as runner_flags
from experiments.runner import rundir
from experiments.runner import runlock
from experiments.studies import NAMES, STUDIES
from experiments.studies import step as step_study
from experiments.studies.common import SuiteError, UnknownLR, fmt_g

# Flags every study's run definitions set; they cannot be passed through
# (each study's `owned_flags` adds its own).
OWNED_FLAGS = frozenset(
    set(runner_flags.ALL_SCHEDULE_FLAGS)
    | {"schedule", "lr", "warmup_epochs", "warmup_start_lr", "seed", "run_name", "log_dir",
       "overwrite", "epochs", "train_subset", "image_folder", "model", "batch_size"}
)
LR_FIND_DIR = lr_find.SUBFOLDER
# Constant LRs of the tuning sweep, as multiples of the range test's minimum-loss LR.
SWEEP_FACTORS = (0.1, 0.3, 1.0)
# The sweep's runs are the step study's constant run at each candidate LR, in its folder.
SWEEP_EXERCISE = step_study.NAME


# ----------------------------------------------------------------------------
# The definitions.


def parse_seeds(text):
    """``"3"`` -> [0, 1, 2]; ``"0,4"`` -> [0, 4]; ``"7,"`` -> [7]."""
    try:
        if "," not in text:
            count = int(text)
            if count < 1:
                raise ValueError
            return list(range(count))
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise SuiteError(
            f"suite: --seeds must be a count >= 1 or a comma-separated list of seeds >= 0, received {text!r}"
        ) from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise SuiteError(f"suite: --seeds must list distinct seeds >= 0, received {text!r}")
    return seeds


def definitions(exercise, epochs, lr=None, **settings):
    """The exercise's run definitions (`Study.definitions`), deduplicated, in a fixed order.

    `lr` is the base LR of the studies that need one (unused by warmup);
    `settings` are study flags (`higher_lr_factor`, `adam_lr`, ...), each
    study reading its own and taking its default for a missing one.
    """
    if exercise not in STUDIES:
        raise SuiteError(f"suite: --exercise must be one of {list(NAMES) + ['all']}, received {exercise!r}")
    known = {x.name for study in STUDIES.values() for x in study.settings}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise TypeError(f"definitions: unknown study settings {unknown}, the settings are {sorted(known)}")
    return STUDIES[exercise].definitions(epochs, lr, **settings)


# ----------------------------------------------------------------------------
# The plan.


@dataclasses.dataclass
class PlannedRun:
    exercise: str
    name: str
    run_dir: str
    args: list  # the runner's command-line flags, --name=value

    @property
    def command(self):
        return [sys.executable, "-m", "experiments.run"] + self.args


def _flag_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return fmt_g(value)
    return str(value)


def _common_flags(options):
    common = {k: getattr(options, k) for k in ("train_subset", "image_folder", "model", "batch_size")}
    return {k: v for k, v in common.items() if v is not None}


# Passed-through flags that change no result (`rundir.compared_flags`): not in run names.
_UNNAMED_FLAGS = frozenset(runner_flags.NOT_COMPARED) | {"data_dir"}
# The budget in a run name, when not the runner's default: flag -> prefix.
_BUDGET_KEYS = {"epochs": "e", "train_subset": "n", "model": "", "batch_size": "b"}
# The budget of the LR range test (it trains for --num_steps, not --epochs).
_LR_FIND_BUDGET = ("train_subset", "model", "batch_size")


def name_suffix(options, passthrough=(), budget=()):
    """``_e8_n2500_adam`` of a run name: the `budget` flags (of `_BUDGET_KEYS`) not at the
    runner's default, then the passed-through flags that change results (by name), or ``""``.

    Two plans computing different runs get different names; the flags equal
    to the runner's default, or changing no result, add nothing.
    """
    given = [(k, _flag_text(getattr(options, k))) for k in budget if getattr(options, k) is not None]
    given += sorted(_parse_flag_args(passthrough).items())
    parts = []
    for name, text in given:
        flag = runner_flags.FLAGS[name]
        if name in _UNNAMED_FLAGS or _same_value(text, flag.default):
            continue
        if flag.flag_type() == "bool":
            parts.append(name if text.lower() in ("true", "1") else f"no{name}")
        elif name in _BUDGET_KEYS or "enum" in flag.flag_type():
            parts.append(_BUDGET_KEYS.get(name, "") + text)
        else:
            parts.append(name + text)
    return "".join("_" + re.sub(r"[^A-Za-z0-9.-]", "-", p) for p in parts)


def planned_run(exercise, definition, seed, options, passthrough=()):
    """The run of `definition` with `seed`: <log_dir>/<exercise>/<name><`name_suffix`>_seed<seed>.

    The suffix holds the budget (`_BUDGET_KEYS`) and the passed-through flags,
    so another budget or other flags make other run folders in the same
    --log_dir. A run made before names had the suffix, <name>_seed<seed>, is the
    planned run when its config.json has this plan's flags and data (`mismatch`).
    """
    log_dir = os.path.join(options.log_dir, exercise)
    flags = {"epochs": options.epochs, **_common_flags(options), **dict(definition.flags), "seed": seed,
             "log_dir": log_dir}

    def run(name):
        args = [f"--{k}={_flag_text(v)}" for k, v in {**flags, "run_name": name}.items()] + list(passthrough)
        return PlannedRun(exercise, name, os.path.join(log_dir, name), args)

    planned, older = run(f"{definition.name}{name_suffix(options, passthrough, _BUDGET_KEYS)}_seed{seed}"), \
        run(f"{definition.name}_seed{seed}")
    if (planned != older and not os.path.exists(planned.run_dir)
            and os.path.exists(os.path.join(older.run_dir, rundir.CONFIG)) and not mismatch(older)):
        return older
    return planned


def plan_runs(exercises, lr, options, passthrough=()):
    """Every run of `exercises`, in order: per exercise, seeds x definitions.

    Seed-major order: a study stopped early has every setting with one seed
    before it has any with two.

    Args:
        exercises: names from `studies.NAMES`.
        lr: base LR of the SGD exercises (None only when none of them is planned).
        options: parsed suite arguments (epochs, seeds, common runner flags,
            warmup and LR settings).
        passthrough: further ``--name=value`` runner flags for every run.
    """
    planned = []
    for exercise in exercises:
        study = STUDIES[exercise]
        defs = study.definitions(options.epochs, lr, **study.values(options))
        for seed in options.seeds:  # every setting once before any second seed
            planned += [planned_run(exercise, d, seed, options, passthrough) for d in defs]
    return planned


def _parse_flag_args(args):
    """{name: text} of ``--name=value`` arguments (``--name`` -> "true", ``--noname`` -> "false")."""
    out = {}
    for arg in args:
        body = arg[2:]
        if "=" in body:
            name, value = body.split("=", 1)
        elif body.startswith("no") and body[2:] in runner_flags.RUNNER_FLAGS:
            name, value = body[2:], "false"
        else:
            name, value = body, "true"
        out[name] = value
    return out


def _same_value(planned, recorded):
    if recorded is None:
        return planned in ("None", "")
    if isinstance(recorded, bool):
        return planned.lower() in (("true", "1") if recorded else ("false", "0"))
    if isinstance(recorded, (int, float)):
        try:
            return math.isclose(float(planned), float(recorded), rel_tol=1e-9, abs_tol=1e-12)
        except ValueError:
            return False
    return str(planned) == str(recorded)


def check_finished_run(run):
    """Raises SuiteError if the finished run at `run.run_dir` used other flags or data (`mismatch`)."""
    problem = mismatch(run)
    if problem:
        raise SuiteError(f"suite: {run.run_dir} finished with {problem}; "
                         "use another --log_dir (or move that run away)")


def mismatch(run):
    """'' if the run directory's config.json has `run`'s flags and data, else what differs.

    The flags of `rundir.compared_flags` are compared: those the plan passes
    with their planned value, the others with the runner's default (a flag the
    run recorded as None, because its schedule or optimizer does not read it or
    it did not exist yet, is skipped). Where the data lies is not: with
    --image_folder, what it holds (`rundir.same_data`).
    """
    config = rundir.read_run(run.run_dir).config or {}
    recorded = rundir.compared_flags(config.get("flags", {}))
    planned = _parse_flag_args(run.args)
    for name, got in recorded.items():
        if name in planned:
            value, origin = planned[name], ""
        elif got is None:
            continue
        else:
            value, origin = _flag_text(runner_flags.FLAGS[name].default), " (the runner's default)"
        if name == "image_folder" and (got is None) == (value == "None"):
            continue  # both from an image folder, wherever it lies, or neither
        if not _same_value(value, got):
            return f"--{name}={got}, this plan has --{name}={value}{origin}"
    folder = planned.get("image_folder")
    difference = rundir.data_difference(config.get(rundir.DATA), folder and folder_fingerprint(folder))
    return f"other images than --image_folder={folder} ({difference})" if difference else ""


@functools.lru_cache(maxsize=4)
def folder_fingerprint(path):
    """`data.fingerprint` of the image folder at `path` (listed once per suite)."""
    try:
        return data.fingerprint(data.list_image_folder(path))
    except data.DataError as error:
        raise SuiteError(f"suite: --image_folder: {error}") from None


def is_finished(run):
    """True if the run has an intact summary.json (a damaged one: the runner reports it)."""
    try:
        return rundir.read_summary(os.path.join(run.run_dir, rundir.SUMMARY)) is not None
    except ValueError:
        return False


# ----------------------------------------------------------------------------
# The base LR.


def _lr_find_flags(passthrough):
    """The passed-through flags the range test takes (those it has no use for, --lr_update, stay with the runs)."""
    return [a for a in passthrough if next(iter(_parse_flag_args([a]))) not in lr_find.UNUSED_RUNNER_FLAGS]


def lr_find_command(options, passthrough, lr_dir):
    """The range test's command, writing into `lr_dir` (`lr_find_dir`)."""
    log_dir, name = os.path.split(lr_dir)
    args = [f"--log_dir={log_dir}", f"--run_name={name}", f"--seed={options.seeds[0]}"]
    for name in ("train_subset", "image_folder", "model", "batch_size"):
        value = getattr(options, name)
        if value is not None:
            args.append(f"--{name}={_flag_text(value)}")
    return [sys.executable, "-m", "experiments.lr_find"] + args + _lr_find_flags(passthrough)


def lr_find_dir(options, passthrough=()):
    """<log_dir>/lr_find<`name_suffix`>: the range test of this plan's budget (`_LR_FIND_BUDGET`) and flags.

    One made before the folder had the suffix, <log_dir>/lr_find, is this
    plan's when its lr_find.json recorded this plan's flags (`lr_find_mismatch`).
    """
    kept = _lr_find_flags(passthrough)
    planned = os.path.join(options.log_dir, LR_FIND_DIR + name_suffix(options, kept, _LR_FIND_BUDGET))
    older = os.path.join(options.log_dir, LR_FIND_DIR)
    found = read_lr_find(older)
    if planned != older and not os.path.exists(planned) and found and not lr_find_mismatch(found, options, kept):
        return older
    return planned


def lr_find_mismatch(found, options, passthrough):
    """'' if the range test `found` (lr_find.json) recorded the flags this plan gives it, else what differs.

    As `mismatch`: the budget and passed-through flags with their planned
    value, the other recorded flags with the runner's default (None, or not
    recorded: not compared); the seed and where the images lie are not compared.
    """
    planned = {k: _flag_text(getattr(options, k)) for k in _LR_FIND_BUDGET if getattr(options, k) is not None}
    planned.update(_parse_flag_args(passthrough))
    for name, got in (found.get("flags") or {}).items():
        if got is None or name in ("seed", "image_folder", "dataset"):
            continue
        value = planned.get(name, _flag_text(runner_flags.FLAGS[name].default))
        if not _same_value(value, got):
            return f"--{name}={got}, this plan has --{name}={value}"
    return ""


def read_lr_find(out_dir):
    """The saved LR range test result (lr_find.json), or None."""
    path = os.path.join(out_dir, "lr_find.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def round_lr(lr):
    """Two significant digits, so that run names and tables stay readable."""
    return float(f"{lr:.2g}")


def sweep_candidates(found):
    """The constant LRs to try: the range test's minimum-loss LR x `SWEEP_FACTORS`, rounded."""
    return sorted({round_lr(found["min_loss_lr"] * f) for f in SWEEP_FACTORS})


def sweep_runs(candidates, options, passthrough=()):
    """Constant-LR runs at each candidate, first seed only, in <log_dir>/step."""
    seed = options.seeds[0]
    return [planned_run(SWEEP_EXERCISE, step_study.constant(lr), seed, options, passthrough) for lr in candidates]


def choose_lr(runs):
    """(lr, run) of the finished sweep run with the highest final val accuracy (ties: the smaller LR).

    Raises:
        SuiteError: if no sweep run finished.
    """
    scored = []
    for run in runs:
        if not is_finished(run):
            continue
        summary = rundir.read_summary(os.path.join(run.run_dir, rundir.SUMMARY))
        accuracy = summary.get("final_val_accuracy")
        accuracy = -math.inf if accuracy is None or not math.isfinite(accuracy) else accuracy
        lr = float(_parse_flag_args(run.args)["lr"])
        scored.append((-accuracy, lr, run))
    if not scored:
        raise SuiteError("suite: no run of the constant-LR sweep finished; give --lr instead")
    _, lr, run = min(scored, key=lambda t: t[:2])
    return lr, run


def sweep_note(lr, candidates, found, seed, folder=LR_FIND_DIR):
    return (
        f"Base LR of the SGD runs: {fmt_g(lr)}, tuned by a short sweep: constant-LR runs at "
        f"{', '.join(fmt_g(c) for c in candidates)} (seed {seed}), the one with the best final val accuracy "
        f"wins. The candidates are the LR range test's minimum-loss LR, {found['min_loss_lr']:.3g}, times "
        f"{', '.join(fmt_g(f) for f in SWEEP_FACTORS)}, rounded to two significant digits "
        f"(range test: `{folder}/lr_find.png` under the log folder; its own suggestion, minimum / 10, "
        f"was {found['suggested_lr']:.3g}). The constant run and every decaying schedule start from it."
    )


class LrUnavailable(Exception):
    """The LR range test or the sweep failed; the message says what to do."""


def resolve_base_lr(options, passthrough, engine):
    """(base LR, sweep runs, note) of the SGD exercises.

    `--lr` when given. Otherwise the LR range test (run once, saved under
    `lr_find_dir`) gives the candidates of a constant-LR sweep (run in
    <log_dir>/step, skipped when finished), whose best run fixes the LR. In a
    dry run that cannot know the LR yet it is `UnknownLR` and the commands that
    would decide it are printed. `engine` (`Sequential` or
    `parallel.Scheduler`) runs the range test and the sweep.
    """
    if options.lr is not None:
        return options.lr, [], f"Base LR of the SGD runs: {fmt_g(options.lr)}, given with --lr (not tuned by the suite)."
    lr_dir = lr_find_dir(options, passthrough)
    found = read_lr_find(lr_dir)
    problem = found and lr_find_mismatch(found, options, _lr_find_flags(passthrough))
    if problem:
        raise SuiteError(f"suite: the LR range test in {lr_dir} ran with {problem}; "
                         "use another --log_dir (or move it away)")
    if found is None:
        command = lr_find_command(options, passthrough, lr_dir)
        if options.dry_run:
            print(" ".join(command))
            print("# then constant-LR runs at the range test's minimum-loss LR x "
                  + ", ".join(fmt_g(f) for f in SWEEP_FACTORS) + "; LR below: the best of them")
            return UnknownLR("LR"), [], ""
        print("[suite] no --lr given: running the LR range test first", flush=True)
        if engine.range_test(command, lr_dir) != 0 or read_lr_find(lr_dir) is None:
            raise LrUnavailable("suite: the LR range test failed (see above); give --lr instead")
        found = read_lr_find(lr_dir)
    candidates = sweep_candidates(found)
    sweep = sweep_runs(candidates, options, passthrough)
    for run in sweep:
        if is_finished(run):
            check_finished_run(run)
    if options.dry_run and not all(is_finished(r) for r in sweep):
        for run in sweep:
            print(" ".join(run.command) + ("  # finished, will be skipped" if is_finished(run) else ""))
        print("# LR below: the constant LR of the sweep above with the best final val accuracy")
        return UnknownLR("LR"), [], ""
    if not options.dry_run:
        engine.execute(sweep, what="LR sweep run")
    try:
        lr, _ = choose_lr(sweep)
    except SuiteError as e:
        raise LrUnavailable(str(e)) from None
    print(f"[suite] base LR {fmt_g(lr)}: best final val accuracy of the constant-LR sweep", flush=True)
    return lr, sweep, sweep_note(lr, candidates, found, options.seeds[0], os.path.basename(lr_dir))


# ----------------------------------------------------------------------------
# Running.


def _clock(seconds):
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress:
    """Prints "run i of n, elapsed, estimated remaining" lines."""

    def __init__(self, total, stream=None, clock=time.monotonic):
        self.total = total
        self.stream = stream or sys.stdout
        self.clock = clock
        self.start = clock()
        self.trained_seconds = []

    def line(self, index, run, to_train_left, status, what="run"):
        elapsed = self.clock() - self.start
        if self.trained_seconds and to_train_left:
            mean = sum(self.trained_seconds) / len(self.trained_seconds)
            remaining = _clock(mean * to_train_left)
        elif to_train_left:
            remaining = "unknown until a run finishes"
        else:
            remaining = _clock(0)
        print(
            f"[suite] {what} {index} of {self.total} ({run.exercise}/{run.name}): {status}; "
            f"elapsed {_clock(elapsed)}, estimated remaining {remaining}",
            file=self.stream, flush=True,
        )


def execute(runs, call=subprocess.call, stream=None, clock=time.monotonic, what="run"):
    """Trains the unfinished runs one by one; returns the failed ones.

    A run another process holds (the runner's lock, `experiments.runner.runlock`) is
    not started a second time: it is reported and counted as not finished.
    """
    progress = Progress(len(runs), stream, clock)
    to_train = [r for r in runs if not is_finished(r)]
    failed = []
    for index, run in enumerate(runs, start=1):
        if run not in to_train:
            progress.line(index, run, len(to_train), "finished already, skipped", what)
            continue
        holder = runlock.holder(*os.path.split(run.run_dir))
        if holder is not None:
            progress.line(index, run, len(to_train), f"in use by {holder}, not started twice", what)
            to_train.remove(run)
            failed.append(run)
            continue
        status = "resuming" if os.path.exists(os.path.join(run.run_dir, rundir.CONFIG)) else "starting"
        progress.line(index, run, len(to_train), status, what)
        t0 = clock()
        code = call(run.command)
        progress.trained_seconds.append(clock() - t0)
        to_train.remove(run)
        if code != 0 or not is_finished(run):
            failed.append(run)
            print(f"[suite] {run.run_dir} failed (exit status {code}); continuing", file=progress.stream, flush=True)
    return failed


class Sequential:
    """Runs one subprocess at a time with `call` (the engine of --parallel=1)."""

    def __init__(self, call=subprocess.call):
        self.call = call

    def plan_ahead(self, background=(), expected=0):
        """Nothing to plan: one run after another (see `parallel.Scheduler.plan_ahead`)."""

    def range_test(self, command, out_dir):
        return self.call(command)

    def execute(self, runs, what="run"):
        return execute(runs, call=self.call, what=what)

    def close(self):
        pass


def report_dir(runs, exercise, options, passthrough=()):
    """Where the report of `exercise`'s `runs` goes: <log_dir>/<exercise>, or, when any of its
    runs is named with a budget or passed-through flags (`name_suffix`), its own
    <log_dir>/<exercise>/report<suffix>, so that another budget's report never replaces one."""
    suffix = name_suffix(options, passthrough, _BUDGET_KEYS)
    study_dir = os.path.join(options.log_dir, exercise)
    if suffix and any(re.search(rf"{re.escape(suffix)}_seed\d+$", r.name) for r in runs
                      if r.exercise == exercise):
        return os.path.join(study_dir, "report" + suffix)
    return study_dir


def write_reports(runs, exercises, options, notes, passthrough=()):
    paths = []
    for exercise in exercises:
        dirs = [r.run_dir for r in runs if r.exercise == exercise and is_finished(r)]
        if not dirs:
            continue
        extra = list(notes.get(exercise, []))
        missing = [r.name for r in runs if r.exercise == exercise and not is_finished(r)]
        if missing:
            extra.append("Planned but not finished (failed or interrupted): " + ", ".join(f"`{m}`" for m in missing) + ".")
        study = STUDIES[exercise]
        early = study.early_epochs(**study.values(options)) if study.early_epochs else report.DEFAULT_EARLY_EPOCHS
        paths.append(report.build_report(
            dirs, report_dir(runs, exercise, options, passthrough), exercise=exercise,
            title=f"Exercise: {exercise}", notes=extra, overwrite=True, early_epochs=early,
        ))
    return paths


# ----------------------------------------------------------------------------
# Command line.


def _ray_resource(text):
    """A Ray resource amount: 0 to 1, or a whole number (Ray refuses other fractions)."""
    value = float(text)
    if not (math.isfinite(value) and value >= 0 and (value <= 1 or value == int(value))):
        raise argparse.ArgumentTypeError(f"must be 0 to 1 or a whole number, received {text}")
    return value


def _check_parallel_flags(options, parser):
    """--gpus_per_run, --cpus_per_run and --ray_address only with --parallel > 1; their values."""
    if options.parallel == 1:
        for name in ("gpus_per_run", "cpus_per_run", "ray_address"):
            if getattr(options, name) is not None:
                parser.exit(2, f"suite: --{name} applies only with --parallel > 1 (runs at once on Ray), "
                               "received --parallel=1\n")
        return
    if options.cpus_per_run == 0:
        parser.exit(2, "suite: argument --cpus_per_run: must be > 0, received 0\n")
    if options.ray_address is not None:
        try:
            parallel.parse_address(options.ray_address)
        except parallel.SetupError as e:
            parser.exit(2, f"{e}\n")


def _runner_help(name):
    """The runner's help text of --`name` (`experiments.runner.flags`), for argparse ('%' escaped)."""
    flag = runner_flags.FLAGS[name]
    default = "" if flag.default is None else f" Default: {_flag_text(flag.default)}."
    text = re.sub(r"^<[^>]*>: ", "", flag.help)  # absl's enum prefix; argparse lists the choices
    return (text + ("" if "Default" in text else default)).replace("%", "%%")


def parse_args(argv):
    parser = cli.Parser("suite", description=__doc__.split("\n")[0])
    parser.add_argument("--exercise", required=True, choices=NAMES + ("all",))
    parser.add_argument("--seeds", default="1", help="a count (2: seeds 0 and 1) or a list (0,3; one seed: 7,)")
    parser.add_argument("--log_dir", default=runner_flags.FLAGS["log_dir"].default,
                        help="parent folder: <log_dir>/<exercise>/<run_name>, <log_dir>/lr_find[_<budget>]")
    runner = parser.add_argument_group(
        "runner flags (passed through to experiments.run)",
        "Given to every run (a finished run with other values is an error: use another --log_dir). Any other "
        "runner flag (--optimizer=adam, --weight_decay=0, ...: python -m experiments.run --help) passes "
        "through unchanged as --name=value, except those the run definitions set, and is part of the "
        "run names when it changes results (--optimizer=adam: <name>_adam_seed<k>).")
    for name, kwargs in (("epochs", {"type": cli.positive_int, "default": runner_flags.FLAGS["epochs"].default}),
                         ("train_subset", {"type": cli.positive_int}), ("image_folder", {}),
                         ("model", {"choices": runner_flags.MODELS}), ("batch_size", {"type": cli.positive_int})):
        runner.add_argument(f"--{name}", help=_runner_help(name), **kwargs)
    parser.add_argument("--lr", type=cli.positive_float, help="base LR of step/cosine/poly (default: tuned by the LR range test and a constant-LR sweep)")
    for setting in (x for study in STUDIES.values() for x in study.settings):
        parser.add_argument(f"--{setting.name}", type=cli.positive_float, default=setting.default, help=setting.help)
    parser.add_argument("--dry_run", action="store_true", help="print the planned commands and exit")
    parser.add_argument("--parallel", type=cli.positive_int, default=1,
                        help="train up to this many runs at once, on Ray (1: one by one, without Ray)")
    parser.add_argument("--gpus_per_run", type=_ray_resource,
                        help="with --parallel: GPUs of each run (default 1 where there are GPUs, else 0; "
                             "0.5: two runs share a GPU)")
    parser.add_argument("--cpus_per_run", type=_ray_resource, help="with --parallel: CPUs of each run (default 1)")
    parser.add_argument("--ray_address",
                        help="with --parallel: an existing Ray cluster, auto or HOST:PORT (default: a local "
                             "Ray started and stopped by the suite); --log_dir must be seen by every node")
    parser.check_names(argv, runner_flags.RUNNER_FLAGS, "neither a suite nor a runner flag")
    options, rest = parser.parse_known_args(argv)
    _check_parallel_flags(options, parser)
    try:
        options.seeds = parse_seeds(options.seeds)
    except SuiteError as e:
        parser.exit(2, f"{e}\n")
    exercises = NAMES if options.exercise == "all" else (options.exercise,)
    owned = OWNED_FLAGS.union(*(STUDIES[e].owned_flags for e in exercises))
    for arg in rest:
        if not arg.startswith("--"):
            parser.exit(2, f"suite: pass runner flags as --name=value, received {arg!r}\n")
        name = next(iter(_parse_flag_args([arg])))
        if name not in runner_flags.RUNNER_FLAGS:
            parser.unknown_flag(arg, runner_flags.RUNNER_FLAGS, "neither a suite nor a runner flag")
        if name in owned:
            parser.exit(2, f"suite: --{name} is set by the run definitions of --exercise={options.exercise}; "
                           "it cannot be passed through\n")
    return options, exercises, rest


def main(argv=None, call=subprocess.call, make_pool=None):
    """The suite; `call` runs a subprocess (--parallel=1), `make_pool` overrides Ray's (tests)."""
    options, exercises, passthrough = parse_args(sys.argv[1:] if argv is None else argv)
    folder_fingerprint.cache_clear()  # listed once per suite, afresh each time
    # TensorFlow's C++ start-up lines, repeated for every run, drown the progress lines;
    # the trainings inherit this unless the user set their own level.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        for exercise in exercises:  # arithmetic errors before anything runs
            STUDIES[exercise].definitions(options.epochs, 1.0, **STUDIES[exercise].values(options))
        engine = Sequential(call) if options.parallel == 1 else _scheduler(options, make_pool)
    except (SuiteError, parallel.SetupError) as e:
        print(e, file=sys.stderr)
        return 2
    try:
        return _run(options, exercises, passthrough, engine)
    finally:
        engine.close()


def _scheduler(options, make_pool):
    if make_pool is None:
        make_pool, _ = parallel.pool_factory(
            options.parallel, options.cpus_per_run or 1.0, options.gpus_per_run, options.ray_address)
    # Data from tensorflow-datasets: the first run may download and prepare it, alone.
    return parallel.Scheduler(make_pool, data_first=options.image_folder is None)


def _interrupted(engine, message):
    engine.close()
    print(f"\n[suite] {message}", file=sys.stderr)
    return 130


def _run(options, exercises, passthrough, engine):
    needs_lr = any(STUDIES[e].needs_base_lr for e in exercises)
    try:
        if needs_lr and options.lr is None and not options.dry_run:
            _plan_ahead(options, exercises, passthrough, engine)
        try:
            lr, sweep, note = resolve_base_lr(options, passthrough, engine) if needs_lr else (None, [], "")
        except KeyboardInterrupt:
            return _interrupted(engine, "interrupted while tuning the LR: run the same command again to resume")
        runs = plan_runs(exercises, lr, options, passthrough)
        if SWEEP_EXERCISE in exercises:  # the sweep's runs belong to the step study, first
            in_sweep = {r.run_dir for r in sweep}
            runs = sweep + [r for r in runs if r.run_dir not in in_sweep]
        for run in runs:
            if is_finished(run):
                check_finished_run(run)
    except SuiteError as e:
        print(e, file=sys.stderr)
        return 2
    except (LrUnavailable, parallel.SetupError) as e:
        print(e, file=sys.stderr)
        return 1 if isinstance(e, LrUnavailable) else 2
    if options.dry_run:
        for run in runs:
            status = "  # finished, will be skipped" if is_finished(run) else ""
            print(" ".join(run.command) + status)
        return 0
    try:
        engine.plan_ahead()
        failed = engine.execute(runs)
    except KeyboardInterrupt:
        return _interrupted(engine, "interrupted: run the same command again to resume (finished runs are "
                                    "skipped, the interrupted ones continue from their last completed epoch)")
    except parallel.SetupError as e:
        print(e, file=sys.stderr)
        return 2
    for path in write_reports(runs, exercises, options, _notes(exercises, options, note), passthrough):
        print(f"[suite] wrote {path}")
    if failed:
        print(f"[suite] {len(failed)} of {len(runs)} runs failed or were in use by another process "
              "(run the suite again to finish them): " + ", ".join(r.run_dir for r in failed),
              file=sys.stderr)
        return 1
    return 0


def _notes(exercises, options, lr_note):
    """{exercise: [report note]}: the study's own note, else the base-LR note when it has one."""
    notes = {}
    for exercise in exercises:
        study = STUDIES[exercise]
        if study.note is not None:
            notes[exercise] = [study.note(**study.values(options))]
        elif study.needs_base_lr and lr_note:
            notes[exercise] = [lr_note]
    return notes


def _plan_ahead(options, exercises, passthrough, engine):
    """Before the LR is tuned: the runs needing no base LR (warmup) may train meanwhile; how many follow.

    The count (the range test if not done, the sweep, the runs at the tuned
    LR less the sweep's winner, which the step study shares) is for the
    progress line only.
    """
    background = plan_runs([e for e in exercises if not STUDIES[e].needs_base_lr], None, options, passthrough)
    for run in background:
        if is_finished(run):
            check_finished_run(run)
    found = read_lr_find(lr_find_dir(options, passthrough))
    tuning = len(SWEEP_FACTORS) + 1 if found is None else len(sweep_candidates(found))
    sgd = [e for e in exercises if STUDIES[e].needs_base_lr]
    later = len(plan_runs(sgd, 1.0, options, passthrough)) - (SWEEP_EXERCISE in sgd)
    engine.plan_ahead(background, tuning + later)


if __name__ == "__main__":
    sys.exit(main())

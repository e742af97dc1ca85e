"""Runner flags -> one validated, frozen `Config`.

Every flag is checked here, before any data is read or any file written, and
every duration given in epochs is converted to optimizer steps here and only
here:

    batches_per_epoch = ceil(train_size / batch_size)     (global batch)
    steps_per_epoch   = batches_per_epoch / gradient_accumulation_steps  (updates)
    total_steps       = epochs * steps_per_epoch
    warmup_steps      = round(warmup_epochs * steps_per_epoch)
    decay_steps       = total_steps - warmup_steps         (decaying schedules)
    boundaries        = milestone * steps_per_epoch - warmup_steps   (step)
    first_decay_steps = round(t0 * steps_per_epoch)         (cosine_restarts)
    schedule_steps    = {argument: round(epochs * steps_per_epoch)}  (the other durations:
                        exponential, inverse_sqrt, cyclic, wsd; see `_schedule_steps`)
    lr_scale          = batch_size / reference_batch_size   (--lr_scaling=linear)
                      = sqrt(batch_size / reference_batch_size)        (sqrt)
                      = 1                                              (none)

The schedule after warmup runs on its own clock (step - warmup_steps), so the
step boundaries are shifted back by the warmup: a milestone stays at its
absolute epoch. Every LR flag (--lr, --min_lr, --end_lr, --warmup_start_lr) is
multiplied by lr_scale (`Config.effective`), so the whole LR curve scales and
its shape is the reference batch's. This module imports neither TensorFlow nor
Keras.
"""

import dataclasses
import math
import os
import re
import sys

import numpy as np

from experiments.runner import data
from experiments.runner import flags as flag_defs

# The flags that hold learning rates (all scaled by --lr_scaling).
LR_FLAGS = ("lr", "min_lr", "end_lr", "warmup_start_lr", "max_lr", "plateau_min_lr")
_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
# The most optimizer steps a run may have: kschedules' step range (int32, its
# MAX_STEP), in which every schedule computes exactly.
MAX_TOTAL_STEPS = 2**31 - 1
# --seed seeds NumPy's global generator too, which takes 32 bits.
MAX_SEED = 2**32 - 1
_FLOAT32 = np.finfo(np.float32)


class FlagError(ValueError):
    """A bad flag value; `str(error)` is `--flag: reason`."""

    def __init__(self, flag, reason):
        self.flag = flag
        self.reason = reason
        super().__init__(f"--{flag}: {reason}")


@dataclasses.dataclass(frozen=True)
class ScheduleSpec:
    """A run's schedule, ready to build (`experiments.runner.schedules.build_schedule`).

    Attributes:
        name: the kschedules name (`kschedules.get`).
        arguments: `((argument, value), ...)` of that class, in optimizer
            steps, learning rates already scaled by --lr_scaling.
        warmup_steps, warmup_start_lr: the `kschedules.Warmup` around it
            (0 and None: none; wsd has its own warmup among its arguments).
        staircase_steps: --lr_update=epoch: the steps per epoch of the
            `kschedules.Staircase` around that, else None.
    """

    name: str
    arguments: tuple
    warmup_steps: int = 0
    warmup_start_lr: float | None = None
    staircase_steps: int | None = None


@dataclasses.dataclass(frozen=True)
class Config:
    """A validated run configuration.

    Attributes:
        flags: every runner flag name -> the value this run uses: defaults
            resolved (`lr`, `milestones`, `t0`, `run_name`), `None` for flags
            this run does not read (other schedules' flags, `momentum` and
            `nesterov` without sgd, `warmup_start_lr` without warmup,
            `dataset` with `image_folder`).
        command_line: the flags given on the command line, as `--name=value`.
        train_size, val_size, num_classes: of the data (val: the test split).
        steps_per_epoch, total_steps, warmup_steps, decay_steps: in optimizer
            steps (updates: one every --gradient_accumulation_steps batches).
        batches_per_epoch: batches of --batch_size per epoch.
        boundaries: step schedules: inner-schedule boundaries (see module doc).
        first_decay_steps: cosine_restarts: the first cycle in steps.
        schedule_steps: the schedule's other durations in steps, by the
            kschedules argument they become (`{"decay_steps": 391}`).
        schedule_spec: the `ScheduleSpec` these make.
        num_replicas: devices the global batch is split over (all workers).
        num_workers: processes (machines) of --strategy=multi_worker, else 1.
        lr_scale: the factor --lr_scaling applies to every LR flag.
        data: --image_folder's `data.fingerprint` (what it holds, wherever it
            lies), else None (tensorflow-datasets: recorded once loaded).
    """

    flags: dict
    command_line: tuple
    train_size: int
    val_size: int
    num_classes: int
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    decay_steps: int
    batches_per_epoch: int = None
    boundaries: tuple = ()
    first_decay_steps: int | None = None
    schedule_steps: dict = dataclasses.field(default_factory=dict)
    num_replicas: int = 1
    num_workers: int = 1
    lr_scale: float = 1.0
    schedule_spec: ScheduleSpec = None
    data: dict | None = None

    @property
    def lr_log_freq(self):
        """--lr_log_freq, or for 0 the step count giving about LR_LOG_POINTS points."""
        given = self.flags["lr_log_freq"]
        return given or max(1, -(-self.total_steps // flag_defs.LR_LOG_POINTS))

    @property
    def eval_epochs(self):
        """The epochs (counted from 1, as Keras's `validation_freq`) evaluated on the test
        images: every --eval_every-th and the last."""
        every, epochs = self.flags["eval_every"], self.flags["epochs"]
        return [e for e in range(1, epochs + 1) if e % every == 0 or e == epochs]

    @property
    def run_dir(self):
        return os.path.join(self.flags["log_dir"], self.flags["run_name"])

    def effective(self, name):
        """The LR flag `name` times `lr_scale` (None for a flag this run does not read)."""
        value = self.flags[name]
        return None if value is None else value * self.lr_scale

    def derived(self):
        """The values computed from the flags, for config.json."""
        return {
            "train_size": self.train_size,
            "val_size": self.val_size,
            "num_classes": self.num_classes,
            "steps_per_epoch": self.steps_per_epoch,
            "batches_per_epoch": self.batches_per_epoch,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "decay_steps": self.decay_steps,
            "boundaries": list(self.boundaries),
            "first_decay_steps": self.first_decay_steps,
            "schedule_steps": dict(self.schedule_steps),
            "num_replicas": self.num_replicas,
            "num_workers": self.num_workers,
            "per_replica_batch_size": self.flags["batch_size"] // self.num_replicas,
            "lr_scale": self.lr_scale,
            "effective_lr": self.effective("lr"),
            "effective_lr_flags": {name: self.effective(name) for name in LR_FLAGS
                                   if self.flags[name] is not None},
        }


def build_config(flag_values, train_size=None):
    """Checks every runner flag and returns the `Config`.

    Args:
        flag_values: parsed `absl.flags.FlagValues` holding the runner flags.
        train_size: images per epoch to assume instead of the data's own count
            (`experiments.preview`); `None` counts them (image folder) or
            takes the dataset's known size.

    Raises:
        FlagError: naming the first bad flag and why.
    """
    values, present = _read_flags(flag_values)
    _check_basic(values, present)
    lr_scale = _lr_scale(values, present)
    sizes = _data_sizes(values, train_size)
    batches = math.ceil(sizes["train"] / values["batch_size"])
    spe = _updates_per_epoch(values, batches)
    total = values["epochs"] * spe
    _require(total <= MAX_TOTAL_STEPS, "epochs",
             f"must give at most {MAX_TOTAL_STEPS} optimizer steps (kschedules' step range), "
             f"received {values['epochs']} epochs x {spe} steps per epoch = {total}")
    _require(_is_float32_rate(values["lr"] * lr_scale), "lr",
             f"times the --lr_scaling factor {lr_scale:g} is {values['lr'] * lr_scale:g}, not a "
             "positive float32 number")
    warmup = round(values["warmup_epochs"] * spe)
    _check_warmup(values, present, warmup, total, spe)
    _check_schedule_flags(values, present)
    _check_plateau(values, present)
    boundaries, first_decay, durations = _schedule_steps(values, spe, warmup, total)
    values["run_name"] = values["run_name"] or default_run_name(values, present)
    config = Config(
        flags=values, command_line=_given(flag_values, present), train_size=sizes["train"],
        val_size=sizes["test"], num_classes=sizes["classes"], steps_per_epoch=spe,
        batches_per_epoch=batches, total_steps=total, warmup_steps=warmup, decay_steps=total - warmup,
        boundaries=boundaries, first_decay_steps=first_decay, schedule_steps=durations,
        lr_scale=lr_scale, data=sizes.get("fingerprint"))
    return dataclasses.replace(config, schedule_spec=schedule_spec(config))


def _read_flags(flag_values):
    """(values, names given) of the runner flags, a deprecated alias given set on its flag.

    An alias (`flags.DEPRECATED_ALIASES`) prints one warning line; given with
    its flag, it is an error.
    """
    values = {name: flag_values[name].value for name in flag_defs.RUNNER_FLAGS}
    present = {name for name in flag_defs.RUNNER_FLAGS if flag_values[name].present}
    for old, new in _aliases_given(flag_values).items():
        _require(new not in present, old, f"cannot be given with --{new}, its new name; "
                 f"give only --{new}")
        print(f"warning: --{old} is deprecated; use --{new}", file=sys.stderr)
        values[new] = flag_values[old].value
        present.add(new)
    return values, present


def _aliases_given(flag_values):
    return {old: new for old, new in flag_defs.DEPRECATED_ALIASES.items()
            if old in flag_values and flag_values[old].present}


def _given(flag_values, present):
    """The flags given, as `--name=value` under their new names (config.json's command_line)."""
    old_of = {new: old for old, new in _aliases_given(flag_values).items()}
    return tuple(flag_values[old_of.get(name, name)].serialize().replace(
                     f"--{old_of.get(name, name)}=", f"--{name}=", 1)
                 for name in flag_defs.RUNNER_FLAGS if name in present)


def _require(condition, flag, reason):
    if not condition:
        raise FlagError(flag, reason)


def _finite(value):
    return value is not None and math.isfinite(value)


def _is_float32_rate(value):
    """True if `value` stays a positive, finite number in float32 (not rounded to 0 or inf)."""
    with np.errstate(over="ignore"):
        rounded = np.float32(value)
    return bool(np.isfinite(rounded) and rounded > 0)


def _check_basic(v, present):
    if v["lr"] is None:
        v["lr"] = flag_defs.DEFAULT_LR[v["optimizer"]]
    _require(_finite(v["lr"]) and v["lr"] > 0, "lr", f"must be > 0, received {v['lr']}")
    _require(_is_float32_rate(v["lr"]), "lr", f"must be a positive float32 number (in "
             f"[{_FLOAT32.smallest_subnormal:g}, {_FLOAT32.max:g}]; the optimizer computes in "
             f"float32), received {v['lr']}")
    _require(1 <= v["epochs"] <= MAX_TOTAL_STEPS, "epochs",
             f"must be in [1, {MAX_TOTAL_STEPS}], received {v['epochs']}")
    _require(v["batch_size"] >= 1, "batch_size", f"must be >= 1, received {v['batch_size']}")
    _require(0 <= v["seed"] <= MAX_SEED, "seed",
             f"must be in [0, {MAX_SEED}] (NumPy's seed range), received {v['seed']}")
    for name in ("steps_per_execution", "backup_every", "eval_every"):
        _require(v[name] >= 1, name, f"must be >= 1, received {v[name]}")
    _require(v["lr_log_freq"] >= 0, "lr_log_freq", f"must be >= 0 (0: automatic), received "
             f"{v['lr_log_freq']}")
    # Keras 3.15's TensorFlow trainer fails (InvalidArgumentError in its multi-step
    # loop) under tf.distribute with more than one step per execution, a plain
    # Keras model too.
    _require(v["steps_per_execution"] == 1 or v["strategy"] == "default", "steps_per_execution",
             f"must be 1 with --strategy={v['strategy']} (Keras's TensorFlow trainer fails "
             "under tf.distribute with more steps per execution)")
    _require(_finite(v["warmup_epochs"]) and v["warmup_epochs"] >= 0, "warmup_epochs",
             f"must be >= 0, received {v['warmup_epochs']}")
    _require(_finite(v["weight_decay"]) and v["weight_decay"] >= 0, "weight_decay",
             f"must be >= 0, received {v['weight_decay']}")
    for name in ("momentum", "nesterov"):
        _require(v["optimizer"] == "sgd" or name not in present, name,
                 f"is only used by --optimizer=sgd, received --optimizer={v['optimizer']}")
    _require(_finite(v["momentum"]) and 0 <= v["momentum"] < 1, "momentum",
             f"must be in [0, 1), received {v['momentum']}")
    _require(not (v["nesterov"] and v["momentum"] == 0), "nesterov",
             "needs --momentum > 0, received --momentum=0")
    _require(not (v["deterministic"] and v["jit_compile"]), "jit_compile",
             "cannot be combined with --deterministic (XLA is outside op determinism)")
    _check_paths(v, present)
    if v["optimizer"] != "sgd":
        v["momentum"] = v["nesterov"] = None


def _check_paths(v, present):
    name = v["run_name"]
    _require(name is None or (_RUN_NAME.match(name) and ".." not in name), "run_name",
             "must be a plain name (letters, digits, '.', '_', '-'; no path separators), "
             f"received {name!r}")
    _require(bool(v["log_dir"]), "log_dir", "must not be empty")
    _require(not os.path.exists(v["log_dir"]) or os.path.isdir(v["log_dir"]), "log_dir",
             f"exists and is not a directory: {v['log_dir']!r}")
    if v["image_folder"] is not None:
        for other in ("dataset", "data_dir"):
            _require(other not in present, other, "is not used with --image_folder")
        v["dataset"] = None
    else:
        _require(v["data_dir"] is None or v["data_dir"] != "", "data_dir", "must not be empty")


def _data_sizes(v, train_size):
    """Training/test image counts and classes, without reading any image."""
    if v["image_folder"] is not None:
        try:
            folder = data.list_image_folder(v["image_folder"])
        except data.DataError as error:
            raise FlagError("image_folder", str(error)) from None
        available = {"train": len(folder.train_files), "test": len(folder.test_files),
                     "classes": len(folder.classes), "fingerprint": data.fingerprint(folder)}
    else:
        available = dict(data.DATASET_SIZES[v["dataset"]])
    subset = v["train_subset"]
    if subset is not None:
        _require(1 <= subset <= available["train"], "train_subset",
                 f"must be in [1, {available['train']}] (the training images), received {subset}")
        available["train"] = subset
    val_subset = v["val_subset"]
    if val_subset is not None:
        _require(1 <= val_subset <= available["test"], "val_subset",
                 f"must be in [1, {available['test']}] (the test images), received {val_subset}")
        available["test"] = val_subset
    if train_size is not None:
        _require(train_size >= 1, "train_size", f"must be >= 1, received {train_size}")
        available["train"] = train_size
    return available


def _lr_scale(v, present):
    """--lr_scaling's factor (checks --reference_batch_size)."""
    rule, reference = v["lr_scaling"], v["reference_batch_size"]
    if rule == "none":
        _require("reference_batch_size" not in present, "reference_batch_size",
                 "is only used with --lr_scaling=linear or sqrt")
        v["reference_batch_size"] = None
        return 1.0
    _require(reference >= 1, "reference_batch_size", f"must be >= 1, received {reference}")
    ratio = v["batch_size"] / reference
    return ratio if rule == "linear" else math.sqrt(ratio)


def _updates_per_epoch(v, batches):
    """Optimizer updates per epoch: the batches over --gradient_accumulation_steps."""
    k = v["gradient_accumulation_steps"]
    _require(k >= 1, "gradient_accumulation_steps", f"must be >= 1, received {k}")
    _require(batches % k == 0, "gradient_accumulation_steps",
             f"must divide the {batches} batches per epoch (--batch_size={v['batch_size']} over "
             f"the training images), received {k}")
    return batches // k


def _check_plateau(v, present):
    if v["plateau_patience"] == 0:
        for name in flag_defs.PLATEAU_FLAGS:
            _require(name not in present, name, "is only used with --plateau_patience > 0")
            v[name] = None
        return
    _require(v["plateau_patience"] > 0, "plateau_patience",
             f"must be >= 0 (0: off), received {v['plateau_patience']}")
    factor = v["plateau_factor"]
    _require(_finite(factor) and 0 < factor < 1, "plateau_factor",
             f"must be in (0, 1), received {factor:g}")
    _require(_finite(v["plateau_min_lr"]) and 0 <= v["plateau_min_lr"] < v["lr"], "plateau_min_lr",
             f"must be in [0, --lr={v['lr']:g}), received {v['plateau_min_lr']:g}")
    _require(v["plateau_cooldown"] >= 0, "plateau_cooldown",
             f"must be >= 0, received {v['plateau_cooldown']}")
    _require(v["eval_every"] == 1 or not v["plateau_monitor"].startswith("val_"), "eval_every",
             f"must be 1 with --plateau_patience > 0 and --plateau_monitor="
             f"{v['plateau_monitor']} (it needs a validation value every epoch; or monitor "
             f"loss or accuracy), received {v['eval_every']}")


def _check_warmup(v, present, warmup_steps, total_steps, spe):
    epochs = v["warmup_epochs"]
    _require(epochs < v["epochs"] and warmup_steps < total_steps, "warmup_epochs",
             f"must be shorter than training (--epochs={v['epochs']}), received {epochs:g}")
    start = v["warmup_start_lr"]
    if v["schedule"] == "wsd":
        _require("warmup_start_lr" not in present, "warmup_start_lr",
                 "is not used by --schedule=wsd (its warmup starts at --min_lr)")
        v["warmup_start_lr"] = None
        return
    if epochs == 0:
        _require("warmup_start_lr" not in present, "warmup_start_lr",
                 "is only used with --warmup_epochs > 0")
        v["warmup_start_lr"] = None
        return
    _require(warmup_steps >= 1, "warmup_epochs",
             f"must be at least one step (1/{spe} epoch), "
             f"received {epochs:g}")
    _require(_finite(start) and 0 <= start < v["lr"], "warmup_start_lr",
             f"must be in [0, --lr={v['lr']:g}), received {start:g}")
    _require(not (v["lr_update"] == "epoch" and start == 0), "warmup_start_lr",
             "must be > 0 with --lr_update=epoch (the first epoch would train at LR 0)")


def _check_schedule_flags(v, present):
    used = flag_defs.SCHEDULE_FLAGS[v["schedule"]]
    for name in flag_defs.ALL_SCHEDULE_FLAGS:
        if name not in used:
            _require(name not in present, name,
                     f"is not used by --schedule={v['schedule']} (used: "
                     f"{', '.join('--' + u for u in used) or 'none'})")
            v[name] = None
    lr = v["lr"]
    if "factor" in used:
        _require(_finite(v["factor"]) and 0 < v["factor"] <= 1, "factor",
                 f"must be in (0, 1], received {v['factor']:g}")
    if "min_lr" in used:
        _require(_finite(v["min_lr"]) and 0 <= v["min_lr"] < lr, "min_lr",
                 f"must be in [0, --lr={lr:g}), received {v['min_lr']:g}")
    if "end_lr" in used:
        _require(_finite(v["end_lr"]) and 0 <= v["end_lr"] < lr, "end_lr",
                 f"must be in [0, --lr={lr:g}), received {v['end_lr']:g}")
    if "power" in used:
        _require(_finite(v["power"]) and v["power"] > 0, "power",
                 f"must be > 0, received {v['power']:g}")
    if "t_mul" in used:
        _require(_finite(v["t_mul"]) and v["t_mul"] >= 1, "t_mul",
                 f"must be >= 1, received {v['t_mul']:g}")
        _require(_finite(v["m_mul"]) and v["m_mul"] > 0, "m_mul",
                 f"must be > 0, received {v['m_mul']:g}")
    _check_new_schedule_flags(v, present, used)


def _check_new_schedule_flags(v, present, used):
    """The value checks of the flags of exponential ... wsd (their durations: below)."""
    def in_range(name, low, high, low_open=False, high_open=False):
        value = v[name]
        ok = _finite(value) and (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high)
        _require(ok, name, f"must be in {'(' if low_open else '['}{low:g}, {high:g}"
                 f"{')' if high_open else ']'}, received {value:g}")

    if "decay_rate" in used:
        in_range("decay_rate", 0, 1, low_open=True, high_open=True)
    if "pct_start" in used:
        in_range("pct_start", 0, 1, low_open=True, high_open=True)
    for name in ("div_factor", "final_div_factor"):
        if name in used:
            _require(_finite(v[name]) and v[name] >= 1, name, f"must be >= 1, received {v[name]:g}")
    if "max_lr" in used:
        _require(v["max_lr"] is not None, "max_lr", "is required with --schedule=cyclic (the top "
                 "of the cycle; --lr is its bottom)")
        _require(_finite(v["max_lr"]) and v["max_lr"] > v["lr"], "max_lr",
                 f"must be > --lr={v['lr']:g}, received {v['max_lr']:g}")
    if "gamma" in used:
        in_range("gamma", 0, 1, low_open=True)
        _require(v["gamma"] == 1 or v["mode"] == "exp_range", "gamma",
                 f"is only used with --mode=exp_range, received {v['gamma']:g} with "
                 f"--mode={v['mode']}")
    if "upper_bound" in used:
        _require(_finite(v["lower_bound"]), "lower_bound",
                 f"must be a finite number, received {v['lower_bound']:g}")
        _require(_finite(v["upper_bound"]) and v["upper_bound"] > v["lower_bound"], "upper_bound",
                 f"must be > --lower_bound={v['lower_bound']:g}, received {v['upper_bound']:g}")


def _steps_of(v, name, spe, minimum=1):
    """Flag `name` (epochs) in whole steps, checked to be at least `minimum` steps."""
    epochs = v[name]
    _require(_finite(epochs) and epochs >= 0, name, f"must be >= 0 epochs, received {epochs:g}")
    steps = round(epochs * spe)
    _require(steps >= minimum, name,
             f"must be at least {minimum} step(s) ({minimum}/{spe} epoch), received {epochs:g}")
    return steps


def _durations(v, spe, warmup_steps, total_steps):
    """schedule_steps: the durations of exponential ... wsd, by kschedules argument."""
    after = total_steps - warmup_steps
    name = v["schedule"]
    if name == "exponential":
        begin = _steps_of(v, "transition_begin", spe, minimum=0)
        _require(begin < after, "transition_begin",
                 f"must be shorter than the epochs after warmup, received {v['transition_begin']:g}")
        return {"decay_steps": _steps_of(v, "decay_epochs", spe), "transition_begin": begin}
    if name == "inverse_sqrt":
        if v["timescale"] is None:
            v["timescale"] = v["warmup_epochs"] or 1.0
        return {"timescale": _steps_of(v, "timescale", spe)}
    if name == "onecycle":
        _require(v["pct_start"] * after > 1, "pct_start",
                 f"must leave the rise at least one step: pct_start x {after} steps after warmup "
                 f"must be > 1, received {v['pct_start']:g}")
        _require(not v["three_phase"] or 2 * v["pct_start"] * after < after + 1, "pct_start",
                 "must be < (steps + 1) / (2 x steps) with --three_phase (the third phase needs "
                 f"room), received {v['pct_start']:g}")
        return {}
    if name == "cyclic":
        if v["step_size_up"] is None:
            v["step_size_up"] = flag_defs.DEFAULT_STEP_SIZE_UP
        if v["step_size_down"] is None:
            v["step_size_down"] = v["step_size_up"]
        return {"step_size_up": _steps_of(v, "step_size_up", spe),
                "step_size_down": _steps_of(v, "step_size_down", spe)}
    if name == "wsd":
        if v["stable_epochs"] is None:
            decay = flag_defs.DEFAULT_WSD_DECAY_FRACTION * v["epochs"]
            v["stable_epochs"] = round(v["epochs"] - v["warmup_epochs"] - decay, 6)
        stable = _steps_of(v, "stable_epochs", spe, minimum=0)
        _require(stable < after, "stable_epochs",
                 f"must leave the decay at least one step: < {after / spe:g} (the epochs after "
                 f"warmup), received {v['stable_epochs']:g}")
        return {"warmup_steps": warmup_steps, "stable_steps": stable,
                "decay_steps": after - stable}
    return {}


def _schedule_steps(v, spe, warmup_steps, total_steps):
    """(boundaries, first_decay_steps, schedule_steps) of the schedule, in steps."""
    durations = _durations(v, spe, warmup_steps, total_steps)
    if v["schedule"] == "step":
        milestones = _milestones(v)
        v["milestones"] = ",".join(str(m) for m in milestones)
        return tuple(m * spe - warmup_steps for m in milestones), None, durations
    if v["schedule"] == "cosine_restarts":
        after_warmup = v["epochs"] - v["warmup_epochs"]
        if v["t0"] is None:
            v["t0"] = round(flag_defs.DEFAULT_T0_FRACTION * after_warmup, 6)
        t0 = v["t0"]
        _require(_finite(t0) and 0 < t0 <= after_warmup + 1e-9, "t0",
                 f"must be in (0, {after_warmup:g}] (the epochs after warmup), received {t0:g}")
        first = round(t0 * spe)
        _require(first >= 1, "t0", f"must be at least one step (1/{spe} epoch), received {t0:g}")
        return (), min(first, total_steps - warmup_steps), durations
    return (), None, durations


def _milestones(v):
    epochs, warmup = v["epochs"], v["warmup_epochs"]
    text = v["milestones"]
    if text is None:
        milestones = [math.floor(f * epochs + 0.5) for f in flag_defs.DEFAULT_MILESTONE_FRACTIONS]
        origin = f"(the default for --epochs={epochs}; give --milestones)"
    else:
        try:
            milestones = [int(part) for part in text.split(",")]
        except ValueError:
            raise FlagError("milestones", "must be comma-separated whole epochs, "
                            f"received {text!r}") from None
        origin = f"received {text!r}"
    _require(all(b > a for a, b in zip(milestones, milestones[1:])), "milestones",
             f"must be strictly increasing, {origin}")
    _require(milestones[0] > warmup, "milestones",
             f"must all be > --warmup_epochs={warmup:g} (and > 0), {origin}")
    _require(milestones[-1] < epochs, "milestones",
             f"must all be < --epochs={epochs} (a drop at or past the end never applies), {origin}")
    return milestones


def _fmt(value):
    return format(value, "g")


# ----------------------------------------------------------------------------
# The schedule: one row per --schedule, its kschedules arguments besides the peak LR.


def _flags(config, **names):
    """{argument: config.flags[flag]} for `argument=flag` pairs."""
    return {argument: config.flags[flag] for argument, flag in names.items()}


# Schedule name -> the kschedules keyword arguments besides the initial LR.
_ARGUMENTS = {
    "constant": lambda c: {},
    "step": lambda c: {"boundaries": list(c.boundaries), "factor": c.flags["factor"]},
    "cosine": lambda c: {"decay_steps": c.decay_steps,
                         "min_learning_rate": c.effective("min_lr")},
    "cosine_restarts": lambda c: {"first_decay_steps": c.first_decay_steps,
                                  "t_mul": c.flags["t_mul"], "m_mul": c.flags["m_mul"],
                                  "min_learning_rate": c.effective("min_lr")},
    "linear": lambda c: {"decay_steps": c.decay_steps,
                         "end_learning_rate": c.effective("end_lr")},
    "poly": lambda c: {"decay_steps": c.decay_steps, "end_learning_rate": c.effective("end_lr"),
                       "power": c.flags["power"]},
    "exponential": lambda c: {**c.schedule_steps, "decay_rate": c.flags["decay_rate"],
                              "staircase": c.flags["staircase"],
                              "end_learning_rate": c.effective("end_lr") or None},
    "inverse_sqrt": lambda c: dict(c.schedule_steps),
    "onecycle": lambda c: {"total_steps": c.decay_steps,
                           **_flags(c, pct_start="pct_start", anneal_strategy="anneal_strategy",
                                    div_factor="div_factor", final_div_factor="final_div_factor",
                                    three_phase="three_phase")},
    "cyclic": lambda c: {"maximal_learning_rate": c.effective("max_lr"), **c.schedule_steps,
                         **_flags(c, mode="mode", gamma="gamma")},
    "tanh": lambda c: {"decay_steps": c.decay_steps, "min_learning_rate": c.effective("min_lr"),
                       **_flags(c, lower_bound="lower_bound", upper_bound="upper_bound")},
    "wsd": lambda c: {**c.schedule_steps, "min_learning_rate": c.effective("min_lr"),
                      **_flags(c, warmup_shape="warmup_shape", decay_shape="decay_shape")},
}
# The argument each schedule takes the run's (peak) --lr as.
_LR_ARGUMENT = {"constant": "learning_rate", "onecycle": "maximal_learning_rate"}


def schedule_spec(config):
    """The `ScheduleSpec` of a Config (its steps and scaled LRs onto kschedules' arguments)."""
    name = config.flags["schedule"]
    arguments = {_LR_ARGUMENT.get(name, "initial_learning_rate"): config.effective("lr")}
    arguments.update(_ARGUMENTS[name](config))
    warmup = config.warmup_steps if name != "wsd" else 0
    return ScheduleSpec(
        name=name, arguments=tuple(arguments.items()), warmup_steps=warmup,
        warmup_start_lr=config.effective("warmup_start_lr") if warmup else None,
        staircase_steps=config.steps_per_epoch if config.flags["lr_update"] == "epoch" else None)


def default_run_name(v, present):
    """`<schedule>_lr<lr>[_<rule>-ref<b>][_<schedule values>][_w..][_plat..][_acc<k>]_<optimizer>_<model>_e<epochs>..._s<seed>`."""
    parts = [v["schedule"], f"lr{_fmt(v['lr'])}"]
    if v["lr_scaling"] != "none":
        parts.append(f"{v['lr_scaling']}-ref{v['reference_batch_size']}")
    keys = {"milestones": "m", "factor": "f", "min_lr": "min", "t0": "t", "t_mul": "tm",
            "m_mul": "mm", "power": "p", "end_lr": "end", "decay_rate": "dr", "decay_epochs": "de",
            "staircase": "stair", "transition_begin": "tb", "timescale": "ts", "pct_start": "pct",
            "anneal_strategy": "", "div_factor": "div", "final_div_factor": "fdiv",
            "three_phase": "3phase", "max_lr": "max", "step_size_up": "up", "step_size_down": "down",
            "mode": "", "gamma": "g", "lower_bound": "lb", "upper_bound": "ub",
            "stable_epochs": "st", "warmup_shape": "ws-", "decay_shape": "ds-"}
    for name in flag_defs.SCHEDULE_FLAGS[v["schedule"]]:
        value = v[name]
        if isinstance(value, bool):  # A switch: named when on.
            if value:
                parts.append(keys[name])
            continue
        text = value.replace(",", "-") if isinstance(value, str) else _fmt(value)
        parts.append(keys[name] + text)
    if v["warmup_epochs"]:
        parts.append(f"w{_fmt(v['warmup_epochs'])}")
        if v["warmup_start_lr"]:
            parts.append(f"ws{_fmt(v['warmup_start_lr'])}")
    if v["lr_update"] == "epoch":
        parts.append("perepoch")
    if v["plateau_patience"]:
        parts.append(f"plat{v['plateau_patience']}")
        plateau = {"plateau_factor": "f", "plateau_monitor": "", "plateau_min_lr": "min",
                   "plateau_cooldown": "cd"}
        parts += [key + (v[name] if isinstance(v[name], str) else _fmt(v[name]))
                  for name, key in plateau.items() if name in present]
    if v["gradient_accumulation_steps"] > 1:
        parts.append(f"acc{v['gradient_accumulation_steps']}")
    parts += [v["optimizer"], v["model"], f"e{v['epochs']}"]
    extras = {"batch_size": "b", "momentum": "mom", "weight_decay": "wd",
              "train_subset": "n", "val_subset": "v", "eval_every": "ev", "precision": ""}
    for name, key in extras.items():
        if name in present:
            parts.append(key + (v[name] if isinstance(v[name], str) else _fmt(v[name])))
    if v["nesterov"]:
        parts.append("nesterov")
    if v["strategy"] != "default":
        parts.append(v["strategy"])
    if not v["augment"]:
        parts.append("noaug")
    parts.append(f"s{v['seed']}")
    return "_".join(parts)

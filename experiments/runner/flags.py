"""Command-line flags of `experiments.run` (and `experiments.preview`).

Every default of the runner lives in this module and nowhere else. Defaults that
depend on other flags (`--lr` by optimizer, `--milestones` and `--t0` from
`--epochs`) are stated here as constants and resolved in `experiments.runner.config`.

All durations on the command line are in epochs; `experiments.runner.config` converts
them to optimizer steps once.
"""

from absl import flags
from absl import logging as _absl_logging  # noqa: F401  (defines --log_dir first; see below)

FLAGS = flags.FLAGS

# kschedules.SCHEDULES's names (tests/test_experiments/test_config.py ties the two together;
# this module imports no Keras).
SCHEDULES = ("constant", "step", "cosine", "cosine_restarts", "linear", "poly", "exponential",
             "inverse_sqrt", "onecycle", "cyclic", "tanh", "wsd")
ANNEAL_STRATEGIES = ("cos", "linear")
CYCLIC_MODES = ("triangular", "triangular2", "exp_range")
WSD_SHAPES = ("linear", "cosine", "1-sqrt")
OPTIMIZERS = ("sgd", "adam", "adamw")
MODELS = ("simple_cnn", "resnet20")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
STRATEGIES = ("default", "mirrored", "multi_worker")
LR_SCALINGS = ("none", "linear", "sqrt")
PLATEAU_MONITORS = ("val_loss", "val_accuracy", "loss", "accuracy")
# The flags that only --plateau_patience > 0 reads.
PLATEAU_FLAGS = ("plateau_factor", "plateau_monitor", "plateau_min_lr", "plateau_cooldown")

# --lr when not given: the usual peak rate of each optimizer on CIFAR-10.
DEFAULT_LR = {"sgd": 0.1, "adam": 1e-3, "adamw": 1e-3}
# --milestones when not given: 30, 60, 80 for --epochs=100, the same fractions
# of --epochs otherwise (rounded half up; repeats and values outside
# (--warmup_epochs, --epochs) are errors that ask for explicit --milestones).
DEFAULT_MILESTONE_FRACTIONS = (0.3, 0.6, 0.8)
# --t0 when not given: this fraction of the epochs after warmup (10 of 100).
DEFAULT_T0_FRACTION = 0.1
# --stable_epochs when not given (wsd): the epochs after warmup less this fraction
# of --epochs for the decay (10 of 100).
DEFAULT_WSD_DECAY_FRACTION = 0.1
# --step_size_up when not given (cyclic): Smith (2017) advises 2 to 10 epochs.
DEFAULT_STEP_SIZE_UP = 2.0

# The flags each schedule reads; giving any other schedule flag is an error.
SCHEDULE_FLAGS = {
    "constant": (),
    "step": ("milestones", "factor"),
    "cosine": ("min_lr",),
    "cosine_restarts": ("t0", "t_mul", "m_mul", "min_lr"),
    "linear": ("end_lr",),
    "poly": ("power", "end_lr"),
    "exponential": ("decay_rate", "decay_epochs", "staircase", "transition_begin", "end_lr"),
    "inverse_sqrt": ("timescale",),
    "onecycle": ("pct_start", "anneal_strategy", "div_factor", "final_div_factor", "three_phase"),
    "cyclic": ("max_lr", "step_size_up", "step_size_down", "mode", "gamma"),
    "tanh": ("min_lr", "lower_bound", "upper_bound"),
    "wsd": ("stable_epochs", "min_lr", "warmup_shape", "decay_shape"),
}
ALL_SCHEDULE_FLAGS = (
    "milestones", "factor", "min_lr", "t0", "t_mul", "m_mul", "power", "end_lr", "decay_rate",
    "decay_epochs", "staircase", "transition_begin", "timescale", "pct_start", "anneal_strategy",
    "div_factor", "final_div_factor", "three_phase", "max_lr", "step_size_up", "step_size_down",
    "mode", "gamma", "lower_bound", "upper_bound", "stable_epochs", "warmup_shape", "decay_shape",
)

# Names of the runner's flags, in definition order (config.json records them all).
RUNNER_FLAGS = []
# Flags that change how a run is carried out or where it is written, not what it
# computes: a run may be resumed, and a finished one reused, with other values.
NOT_COMPARED = ("log_dir", "overwrite", "steps_per_execution", "backup_every", "lr_log_freq")
# Flags added after runs were recorded, with the value that behaves as before:
# a config.json without them compares equal to these (any other missing flag,
# a schedule's that did not exist then, is None: not read). `rundir.compared_flags`.
ADDED_FLAG_DEFAULTS = {"strategy": "default", "lr_scaling": "none", "reference_batch_size": None,
                       "plateau_patience": 0, "gradient_accumulation_steps": 1,
                       "val_subset": None, "eval_every": 1, "save_best": False}
# Deprecated flag names -> the flag they set (the same value, and one warning line;
# both given: an error). Only the new name is recorded; a config.json recorded with
# the old one is read with the new (`canonical_flags`).
DEPRECATED_ALIASES = {"t_mult": "t_mul"}
# --lr_log_freq=0: about this many learning_rate/step points per run.
LR_LOG_POINTS = 1000


def canonical_flags(recorded):
    """A copy of `recorded` flags (a config.json's) with each deprecated name (`DEPRECATED_ALIASES`)
    renamed to the flag's current one."""
    renamed = dict(recorded)
    for old, new in DEPRECATED_ALIASES.items():
        if old in renamed and new not in renamed:
            renamed[new] = renamed.pop(old)
    return renamed


def _define(kind, name, default, help_text, **kwargs):
    getattr(flags, f"DEFINE_{kind}")(name=name, default=default, help=help_text, **kwargs)
    RUNNER_FLAGS.append(name)


def define_runner_flags():
    """Defines the runner's flags on `absl.flags.FLAGS` (once per process)."""
    if RUNNER_FLAGS:
        return
    # Schedule.
    _define("enum", "schedule", "cosine", "Learning-rate schedule.", enum_values=list(SCHEDULES))
    _define("float", "lr", None, "Initial (peak) learning rate. Default: "
            + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items()) + " by --optimizer.")
    _define("integer", "epochs", 100, "Training epochs.")
    _define("integer", "batch_size", 128, "Global batch size (all replicas together).")
    _define("string", "milestones", None,
            "step: comma-separated epochs at whose start the LR is multiplied by --factor. "
            "Default: 30,60,80 for --epochs=100, else 30/60/80 percent of --epochs.")
    _define("float", "factor", 0.1, "step: multiplier at each milestone, in (0, 1].")
    _define("float", "min_lr", 0.0, "cosine, cosine_restarts, tanh, wsd: the floor (LR at the end "
            "of each cosine, of the tanh, of the decay), < --lr.")
    _define("float", "t0", None, "cosine_restarts: length of the first cycle in epochs. "
            "Default: 10 percent of the epochs after warmup.")
    _define("float", "t_mul", 1.0, "cosine_restarts: factor on the cycle length after each restart, >= 1.")
    flags.DEFINE_float("t_mult", None, "Deprecated name of --t_mul (the same value, with a warning).")
    _define("float", "m_mul", 1.0, "cosine_restarts: factor on the peak LR after each restart, > 0 (kschedules' range; "
            "peaks above --lr are allowed).")
    _define("float", "power", 2.0, "poly: exponent of the polynomial decay, > 0.")
    _define("float", "end_lr", 0.0, "linear, poly: LR at the end of training, < --lr; exponential: "
            "a floor (0: none).")
    _define("float", "decay_rate", 0.95, "exponential: factor on the LR per --decay_epochs, in (0, 1).")
    _define("float", "decay_epochs", 1.0, "exponential: epochs over which the LR is multiplied by "
            "--decay_rate (PyTorch's ExponentialLR per epoch: 1).")
    _define("bool", "staircase", False, "exponential: multiply in whole --decay_epochs steps "
            "(PyTorch's StepLR) instead of continuously.")
    _define("float", "transition_begin", 0.0, "exponential: epochs after warmup at --lr before the "
            "decay starts (optax's transition_begin).")
    _define("float", "timescale", None, "inverse_sqrt: epochs over which the LR falls to "
            "1/sqrt(2) of --lr. Default: --warmup_epochs (Hugging Face's), else 1.")
    _define("float", "pct_start", 0.3, "onecycle: fraction of the epochs after warmup spent rising "
            "to --lr, in (0, 1).")
    _define("enum", "anneal_strategy", "cos", "onecycle: shape of both phases.",
            enum_values=list(ANNEAL_STRATEGIES))
    _define("float", "div_factor", 25.0, "onecycle: --lr / the first LR, >= 1.")
    _define("float", "final_div_factor", 1e4, "onecycle: the first LR / the last, >= 1.")
    _define("bool", "three_phase", False, "onecycle: down to the first LR, then to the last "
            "(PyTorch's three_phase).")
    _define("float", "max_lr", None, "cyclic: the top of the cycle (--lr is its bottom), > --lr. "
            "Required with --schedule=cyclic.")
    _define("float", "step_size_up", None, "cyclic: epochs from the bottom to the top. Default: "
            f"{DEFAULT_STEP_SIZE_UP:g} (Smith 2017: 2 to 10).")
    _define("float", "step_size_down", None, "cyclic: epochs from the top to the bottom. "
            "Default: --step_size_up.")
    _define("enum", "mode", "triangular", "cyclic: triangular (constant height), triangular2 "
            "(halved each cycle), exp_range (times --gamma per step).",
            enum_values=list(CYCLIC_MODES))
    _define("float", "gamma", 1.0, "cyclic, --mode=exp_range: factor on the height per step, "
            "in (0, 1].")
    _define("float", "lower_bound", -7.0, "tanh: start of the tanh's argument (timm's lb).")
    _define("float", "upper_bound", 3.0, "tanh: end of the tanh's argument (timm's ub), "
            "> --lower_bound.")
    _define("float", "stable_epochs", None, "wsd: epochs at --lr after warmup; the decay takes the "
            "rest. Default: the epochs after warmup less "
            f"{DEFAULT_WSD_DECAY_FRACTION:.0%} of --epochs.")
    _define("enum", "warmup_shape", "linear", "wsd: shape of its warmup (--warmup_epochs, from "
            "--min_lr).", enum_values=list(WSD_SHAPES))
    _define("enum", "decay_shape", "cosine", "wsd: shape of its decay to --min_lr.",
            enum_values=list(WSD_SHAPES))
    _define("float", "warmup_epochs", 0.0, "Linear warmup from --warmup_start_lr to --lr over these "
            "first epochs, for any schedule; the schedule then spans the remaining epochs "
            "(wsd: its own warmup, shaped by --warmup_shape, from --min_lr).")
    _define("float", "warmup_start_lr", 0.0, "LR at the first step of warmup, < --lr.")
    _define("enum", "lr_update", "step", "step: a new LR every step; epoch: the LR of each "
            "epoch's first step held for the whole epoch (PyTorch style).", enum_values=["step", "epoch"])
    _define("enum", "lr_scaling", "none", "Scale every LR flag (--lr, --min_lr, --end_lr, "
            "--warmup_start_lr) by the global batch: linear: x batch/ref (Goyal et al. 2017; use it "
            "with --warmup_epochs), sqrt: x sqrt(batch/ref); ref = --reference_batch_size.",
            enum_values=list(LR_SCALINGS))
    _define("integer", "reference_batch_size", 128, "--lr_scaling: the global batch size the LR "
            "flags are stated for.")
    _define("integer", "plateau_patience", 0, "Reduce on plateau on top of the schedule "
            "(kschedules.ReduceLROnPlateau): after this many epochs without improvement of "
            "--plateau_monitor, the schedule is scaled by --plateau_factor. 0: off.")
    _define("float", "plateau_factor", 0.1, "--plateau_patience: factor on the schedule at each "
            "reduction, in (0, 1).")
    _define("enum", "plateau_monitor", "val_loss", "--plateau_patience: the epoch metric watched "
            "(loss: lower is better, accuracy: higher).", enum_values=list(PLATEAU_MONITORS))
    _define("float", "plateau_min_lr", 0.0, "--plateau_patience: the reductions never take the LR "
            "below this (the schedule itself may go lower), in [0, --lr).")
    _define("integer", "plateau_cooldown", 0, "--plateau_patience: epochs after a reduction before "
            "counting again.")
    _define("integer", "gradient_accumulation_steps", 1, "Batches of --batch_size accumulated into "
            "one update (Keras's optimizer argument): every duration in epochs is counted in "
            "updates, and the batches per epoch must be divisible by it.")
    # Optimizer and model.
    _define("enum", "optimizer", "sgd", "Optimizer.", enum_values=list(OPTIMIZERS))
    _define("float", "momentum", 0.9, "sgd: momentum, in [0, 1).")
    _define("bool", "nesterov", False, "sgd: Nesterov momentum.")
    _define("float", "weight_decay", 5e-4, "sgd, adam: an L2 term wd/2 * ||w||^2 of the conv and "
            "dense kernels added to the loss (the logged loss includes it; the gradient wd * w is "
            "PyTorch's weight_decay=wd); adamw: the optimizer's decoupled decay.")
    _define("enum", "model", "simple_cnn", "simple_cnn (3 conv blocks with batch norm, 0.29M "
            "parameters) or resnet20 (He et al. 2016, 0.27M).", enum_values=list(MODELS))
    # Data.
    _define("enum", "dataset", "cifar10", "tensorflow-datasets name (used unless --image_folder).",
            enum_values=["cifar10"])
    _define("string", "data_dir", None, "tensorflow-datasets data directory (default: its own, "
            "~/tensorflow_datasets).")
    _define("string", "image_folder", None, "Read PATH/train/<class>/* and PATH/test/<class>/* "
            "images instead of --dataset (class folders sorted -> labels).")
    _define("integer", "train_subset", None, "Train on this many training images (seeded, "
            "stratified by class). Default: all.")
    _define("bool", "augment", True, "Random crop (4-pixel zero pad) and horizontal flip.")
    _define("integer", "val_subset", None, "Evaluate on this many test images (seeded by --seed, "
            "stratified by class, the same ones every epoch). Default: all.")
    _define("integer", "eval_every", 1, "Evaluate on the test images after every this many "
            "epochs and after the last (history.csv's val_loss and val_accuracy are nan for the "
            "others).")
    # Devices.
    _define("enum", "strategy", "default", "default: one device; mirrored: "
            "tf.distribute.MirroredStrategy over this machine's GPUs (its CPUs when it has none); "
            "multi_worker: MultiWorkerMirroredStrategy over the machines in the TF_CONFIG "
            "environment variable (the chief writes the run directory). --batch_size stays the "
            "global batch and must be divisible by the replicas.", enum_values=list(STRATEGIES))
    # Reproducibility and speed.
    _define("integer", "seed", 0, "Seed of weights, shuffling, subset and augmentation.")
    _define("bool", "deterministic", False, "Deterministic TensorFlow ops (slower).")
    _define("enum", "precision", "float32", "Keras dtype policy; mixed_float16 adds dynamic "
            "loss scaling.", enum_values=list(PRECISIONS))
    _define("bool", "jit_compile", None, "XLA-compile the train step. Default: Keras's choice "
            "(XLA when the model supports it, never with --deterministic).")
    _define("integer", "steps_per_execution", 1, "Train steps per call into compiled code "
            "(Keras's compile argument): batch-level callbacks then run, and wait for the device, "
            "once per this many steps; the LR still changes every step. For GPUs, where a "
            "small model's step is short. Only with --strategy=default.")
    _define("integer", "lr_log_freq", 0, "TensorBoard: learning_rate/step, the LR applied, every "
            f"this many optimizer steps. 0: about {LR_LOG_POINTS} points per run "
            "(every step of a shorter run). Not on JAX (no TensorBoard files there).")
    _define("integer", "backup_every", 1, "Back up the training state (for resuming after an "
            "interruption) every this many epochs and after the last; a resumed run replays "
            "the epochs since the last backup.")
    # Output.
    # absl.logging defines --log_dir too (for log files, which the runner never
    # writes); this later definition replaces it (absl.logging is imported above).
    _define("string", "log_dir", "logs", "Parent folder of run directories.", allow_override=True)
    _define("string", "run_name", None, "Run directory name under --log_dir. Default: made from "
            "the schedule and its key values.")
    _define("bool", "overwrite", False, "Replace a finished or different run of the same name.")
    _define("bool", "save_best", False, "Also keep best.keras: the model after the evaluated "
            "epoch with the highest val_accuracy (summary.json's best_model_epoch). The final "
            "model is always kept, as model.keras.")


PREVIEW_FLAGS = []


def define_preview_flags():
    """Defines the flags only `experiments.preview` has (once per process)."""
    if PREVIEW_FLAGS:
        return
    flags.DEFINE_integer("train_size", None, "Training images per epoch. Default: --train_subset, "
                         "else the number of images in --image_folder/train, else the size "
                         "of --dataset's training split (50,000 for CIFAR-10).")
    flags.DEFINE_string("preview_dir", None, "Deprecated: the folder for <run_name>.png and .csv itself; "
                        "use --log_dir (files go to <log_dir>/preview).")
    flags.DEFINE_boolean("log_y", None, "A log-scale LR axis. Default: on for --schedule=step "
                         "(its drops are factors), off otherwise; --nolog_y turns it off.")
    flags.DEFINE_multi_string("compare", [], "Flags of one schedule to overlay, e.g. "
                              "--compare='--schedule=cosine --lr=0.2' (repeat it): each is the "
                              "command's other flags plus these; writes <log_dir>/preview/compare.png "
                              "and .csv (named after --run_name if given).")
    PREVIEW_FLAGS.extend(["train_size", "preview_dir", "log_y", "compare"])


define_runner_flags()

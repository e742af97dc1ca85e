"""`Config` -> the kschedules learning-rate schedule of a run.

All arithmetic (epochs -> steps, warmup shift, --lr_scaling) is done in
`experiments.config`; this module only maps its step counts and (scaled) LRs
onto kschedules' arguments, one entry of `_ARGUMENTS` per schedule:

    inner    = ks.get(schedule, ...)               decaying over decay_steps
    schedule = ks.Warmup(inner, warmup_steps, warmup_start_lr)   if warmup
                                                   (not wsd: its warmup is its own)
    schedule = ks.Staircase(schedule, steps_per_epoch)           if --lr_update=epoch

Steps are optimizer updates; under --gradient_accumulation_steps the optimizer
gets the schedule wrapped in `ks.PerUpdate` (`experiments.train`).
"""

import kschedules as ks


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
                                  "t_mul": c.flags["t_mult"], "m_mul": c.flags["m_mul"],
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


def schedule_arguments(config):
    """(name, kwargs) of the inner schedule, for `ks.get`."""
    name = config.flags["schedule"]
    kwargs = {_LR_ARGUMENT.get(name, "initial_learning_rate"): config.effective("lr")}
    kwargs.update(_ARGUMENTS[name](config))
    return name, kwargs


def build_schedule(config):
    """The run's `LearningRateSchedule` (see the module docstring)."""
    name, kwargs = schedule_arguments(config)
    schedule = ks.get(name, **kwargs)
    if config.warmup_steps and name != "wsd":
        schedule = ks.Warmup(schedule, warmup_steps=config.warmup_steps,
                             start_learning_rate=config.effective("warmup_start_lr"))
    if config.flags["lr_update"] == "epoch":
        schedule = ks.Staircase(schedule, steps_per_epoch=config.steps_per_epoch)
    return schedule

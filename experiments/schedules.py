"""`Config` -> the kschedules learning-rate schedule of a run.

All arithmetic (epochs -> steps, warmup shift, --lr_scaling) is done in
`experiments.config`; this module only maps its step counts and (scaled) LRs
onto kschedules:

    inner    = ks.get(schedule, ...)               decaying over decay_steps
    schedule = ks.Warmup(inner, warmup_steps, warmup_start_lr)   if warmup
    schedule = ks.Staircase(schedule, steps_per_epoch)           if --lr_update=epoch
"""

import kschedules as ks


def schedule_arguments(config):
    """(name, kwargs) of the inner schedule, for `ks.get`."""
    name, lr = config.flags["schedule"], config.effective("lr")
    if name == "constant":
        return name, {"learning_rate": lr}
    kwargs = {"initial_learning_rate": lr}
    if name == "step":
        kwargs.update(boundaries=list(config.boundaries), factor=config.flags["factor"])
    elif name == "cosine":
        kwargs.update(decay_steps=config.decay_steps, min_learning_rate=config.effective("min_lr"))
    elif name == "cosine_restarts":
        kwargs.update(first_decay_steps=config.first_decay_steps, t_mul=config.flags["t_mult"],
                      m_mul=config.flags["m_mul"], min_learning_rate=config.effective("min_lr"))
    elif name == "linear":
        kwargs.update(decay_steps=config.decay_steps, end_learning_rate=config.effective("end_lr"))
    else:  # poly
        kwargs.update(decay_steps=config.decay_steps, end_learning_rate=config.effective("end_lr"),
                      power=config.flags["power"])
    return name, kwargs


def build_schedule(config):
    """The run's `LearningRateSchedule` (see the module docstring)."""
    name, kwargs = schedule_arguments(config)
    schedule = ks.get(name, **kwargs)
    if config.warmup_steps:
        schedule = ks.Warmup(schedule, warmup_steps=config.warmup_steps,
                             start_learning_rate=config.effective("warmup_start_lr"))
    if config.flags["lr_update"] == "epoch":
        schedule = ks.Staircase(schedule, steps_per_epoch=config.steps_per_epoch)
    return schedule

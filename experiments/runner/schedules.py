"""A run's `config.ScheduleSpec` -> its kschedules learning-rate schedule.

All arithmetic (epochs -> steps, warmup shift, --lr_scaling) and the mapping of
flags onto kschedules' arguments are in `experiments.runner.config` (adding a
schedule to the runner is one row of its `_ARGUMENTS`); this is the building:

    schedule = ks.get(name, **arguments)                 decaying over decay_steps
    schedule = ks.Warmup(schedule, warmup_steps, warmup_start_lr)   if warmup
                                                         (not wsd: its warmup is its own)
    schedule = ks.Staircase(schedule, steps_per_epoch)   if --lr_update=epoch

Steps are optimizer updates; under --gradient_accumulation_steps the optimizer
gets the schedule wrapped in `ks.PerUpdate` (`experiments.runner.train`).
"""

import kschedules as ks


def build_schedule(config):
    """The `LearningRateSchedule` of `config.schedule_spec` (see the module docstring)."""
    spec = config.schedule_spec
    schedule = ks.get(spec.name, **dict(spec.arguments))
    if spec.warmup_steps:
        schedule = ks.Warmup(schedule, warmup_steps=spec.warmup_steps,
                             start_learning_rate=spec.warmup_start_lr)
    if spec.staircase_steps:
        schedule = ks.Staircase(schedule, steps_per_epoch=spec.staircase_steps)
    return schedule

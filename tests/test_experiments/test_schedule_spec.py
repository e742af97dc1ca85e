"""config.ScheduleSpec: the flags -> kschedules arguments table, and the schedule built from it."""

import dataclasses

import pytest
from run_helpers import parse

import kschedules as ks
from experiments.runner import config as config_lib
from experiments.runner import flags as flag_defs
from experiments.runner.schedules import build_schedule


def spec_of(*args):
    parse("--dataset=cifar10", "--train_subset=1280", "--epochs=10", *args)  # 10 steps per epoch
    return config_lib.build_config(flag_defs.FLAGS).schedule_spec


def test_one_table_row_per_schedule():
    assert set(config_lib._ARGUMENTS) == set(flag_defs.SCHEDULES) == set(ks.SCHEDULES)


def test_the_spec_holds_steps_and_scaled_lrs_and_is_frozen():
    spec = spec_of("--schedule=cosine", "--lr=0.1", "--warmup_epochs=2", "--min_lr=0.01",
                   "--lr_scaling=linear", "--batch_size=256", "--train_subset=2560")
    assert spec == config_lib.ScheduleSpec(
        name="cosine", arguments=(("initial_learning_rate", 0.2), ("decay_steps", 80),
                                  ("min_learning_rate", 0.02)),
        warmup_steps=20, warmup_start_lr=0.0, staircase_steps=None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "step"
    assert build_schedule(config_lib.build_config(flag_defs.FLAGS)) == ks.Warmup(
        ks.CosineAnnealing(0.2, 80, min_learning_rate=0.02), warmup_steps=20)


def test_wsd_keeps_its_own_warmup_and_lr_update_epoch_adds_a_staircase():
    spec = spec_of("--schedule=wsd", "--warmup_epochs=1", "--lr_update=epoch")
    assert spec.warmup_steps == 0 and dict(spec.arguments)["warmup_steps"] == 10
    assert spec.staircase_steps == 10

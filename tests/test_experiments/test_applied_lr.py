"""experiments.runner.applied_lr: the LR a run applied at every step, rebuilt from config.json, as drawn."""

import keras
import numpy as np
import pytest

import kschedules as ks
from experiments import plots
from experiments.runner import applied_lr, run
from experiments.runner import config as config_lib
from experiments.runner.flags import FLAGS
from experiments.runner.schedules import build_schedule


def _config_json(*flags, train_size=1000):
    """config.json's flags and derived values (with the serialized schedule) as the runner writes them."""
    FLAGS.unparse_flags()
    run.parse_flags(["run", *flags])
    config = config_lib.build_config(FLAGS, train_size=train_size)
    derived = {**config.derived(), "schedule": keras.saving.serialize_keras_object(build_schedule(config))}
    return {"flags": config.flags, "derived": derived}


def _history(lrs):
    return [{"epoch": float(e), "learning_rate": lr, "loss": 1.0, "accuracy": 0.5, "val_loss": 1.0,
             "val_accuracy": 0.5, "epoch_seconds": 1.0} for e, lr in enumerate(lrs)]


def _drawn(config, history, tmp_path, label="r"):
    """The LR line plot_curves draws for the run: {step: LR} and the x of each step."""
    applied = applied_lr.applied_lr(config, history)
    lines = plots.plot_curves([(label, history, applied)], str(tmp_path / "c.png"))["lr_lines"]
    xs, ys = lines[label]
    return applied, np.asarray(xs), np.asarray(ys)


def test_cosine_restarts_inside_an_epoch_draw_four_sawtooths(tmp_path):
    # 1000 images, batch 128: 8 steps per epoch; t0 = 0.5 epoch = 4 steps; 2 epochs = 16 steps.
    config = _config_json("--schedule=cosine_restarts", "--t0=0.5", "--epochs=2", "--lr=0.1")
    history = _history([0.1, 0.1])  # what the per-epoch record sees: a flat line
    applied, xs, ys = _drawn(config, history, tmp_path)
    assert applied.steps.tolist() == list(range(16))
    assert xs.tolist() == [s / 8 for s in range(17)]  # the last value holds to x = 2 epochs
    peaks = [i for i in range(16) if ys[i] > ys[i - 1] or i == 0]
    assert peaks == [0, 4, 8, 12]
    np.testing.assert_allclose(ys[[0, 4, 8, 12]], 0.1, rtol=1e-6)
    within = 0.1 * 0.5 * (1 + np.cos(np.pi * np.arange(4) / 4))  # one cycle of 4 steps
    np.testing.assert_allclose(ys[:16], np.tile(within, 4), rtol=1e-5, atol=1e-9)
    assert applied_lr.jump_steps(config["flags"], config["derived"])["restarts"] == [4, 8, 12]


def test_warmup_ramps_inside_the_first_epoch(tmp_path):
    config = _config_json("--schedule=constant", "--lr=0.1", "--warmup_epochs=1",
                          "--warmup_start_lr=0.01", "--epochs=2")
    _, xs, ys = _drawn(config, _history([0.01, 0.1]), tmp_path)
    expected = [0.01 + (0.1 - 0.01) * s / 8 for s in range(8)] + [0.1] * 8
    np.testing.assert_allclose(ys[:16], expected, rtol=1e-6)
    assert xs[8] == 1.0


def test_plateau_scale_per_epoch_matches_the_recorded_lr(tmp_path):
    config = _config_json("--schedule=cosine", "--lr=0.1", "--epochs=4", "--plateau_patience=1",
                          "--plateau_factor=0.5")
    cosine = ks.get("cosine", initial_learning_rate=0.1, decay_steps=32)
    # Reductions after epochs 1 and 2 (0-based 0 and 1): scales 1, 0.5, 0.25, 0.25.
    scales = [1.0, 0.5, 0.25, 0.25]
    recorded = [c * float(cosine(8 * e)) for e, c in enumerate(scales)]
    applied, xs, ys = _drawn(config, _history(recorded), tmp_path)
    for e, lr in enumerate(recorded):  # every epoch start is the recorded LR
        assert ys[8 * e] == pytest.approx(lr, rel=1e-6)
    every = [scales[s // 8] * float(cosine(s)) for s in range(32)]
    np.testing.assert_allclose(ys[:32], every, rtol=1e-5)


def test_plateau_floor_as_plateau_scaled(tmp_path):
    # lr = max(scale * s, min(min_lr, s)): in epoch 2 the scaled cosine falls below the floor.
    config = _config_json("--schedule=cosine", "--lr=0.1", "--epochs=2", "--plateau_patience=1",
                          "--plateau_factor=0.5", "--plateau_min_lr=0.02")
    cosine = ks.get("cosine", initial_learning_rate=0.1, decay_steps=16)
    applied = applied_lr.applied_lr(config, _history([0.1, 0.5 * float(cosine(8))]))
    s = np.array([float(cosine(u)) for u in range(16)])
    expected = np.concatenate([s[:8], np.maximum(0.5 * s[8:], np.minimum(0.02, s[8:]))])
    assert expected[12] > 0.5 * s[12]  # the floor binds there
    np.testing.assert_allclose(applied.learning_rate, expected, rtol=1e-5)


def test_accumulation_x_axis_counts_updates_per_epoch(tmp_path):
    # 8 batches per epoch, 2 per update: 4 updates per epoch; step decay after epoch 1 = update 4.
    config = _config_json("--schedule=step", "--milestones=1", "--epochs=2", "--lr=0.1",
                          "--gradient_accumulation_steps=2")
    assert config["derived"]["steps_per_epoch"] == 4
    applied, xs, ys = _drawn(config, _history([0.1, 0.01]), tmp_path)
    assert xs.tolist() == [u / 4 for u in range(9)]
    np.testing.assert_allclose(ys[:8], [0.1] * 4 + [0.01] * 4, rtol=1e-6)
    assert applied.end_epoch == 2.0


def test_only_trained_epochs_are_drawn():
    config = _config_json("--schedule=cosine", "--epochs=4")
    applied = applied_lr.applied_lr(config, _history([0.1, 0.09]))  # stopped after 2 epochs
    assert applied.steps.tolist() == list(range(16)) and applied.end_epoch == 2.0


def _long_step_config(total, spe, boundaries, warmup):
    schedule = ks.Warmup(ks.get("step", initial_learning_rate=0.1, boundaries=boundaries, factor=0.5),
                         warmup_steps=warmup)
    derived = {"schedule": keras.saving.serialize_keras_object(schedule), "steps_per_epoch": spe,
               "total_steps": total, "warmup_steps": warmup, "boundaries": boundaries}
    return {"flags": {"schedule": "step"}, "derived": derived}


def test_long_runs_sample_every_epoch_start_and_both_sides_of_each_drop():
    total, spe, warmup = 50_000, 1_000, 1_200
    config = _long_step_config(total, spe, [2_503, 31_001], warmup)
    applied = applied_lr.applied_lr(config, _history([0.1] * 50))
    assert len(applied.steps) <= applied_lr.MAX_POINTS + 50 + 6
    assert set(range(0, total, spe)) <= set(applied.steps.tolist())
    assert {3_702, 3_703, 32_200, 32_201} <= set(applied.steps.tolist())
    # The drawn step function (each value held to the next point) is the schedule at every step
    # where it is piecewise constant, i.e. after the warmup.
    every = applied_lr.evaluate(keras.saving.deserialize_keras_object(config["derived"]["schedule"]),
                                np.arange(total))
    held = applied.learning_rate[np.searchsorted(applied.steps, np.arange(total), side="right") - 1]
    np.testing.assert_allclose(held[warmup:], every[warmup:], rtol=1e-6)
    # Over 2 points per pixel of a 550-pixel panel.
    assert applied_lr.MAX_POINTS >= 2 * 550


def test_restart_steps_exact_for_t_mul_and_moved_by_lr_update_epoch():
    derived = {"total_steps": 200, "steps_per_epoch": 8, "warmup_steps": 5, "first_decay_steps": 10}
    flags = {"schedule": "cosine_restarts", "t_mul": 1.5}
    # starts 10, 25, 47.5, 81.25, 131.875 -> ceil, + warmup 5
    assert applied_lr.jump_steps(flags, derived)["restarts"] == [15, 30, 53, 87, 137]
    moved = applied_lr.jump_steps({**flags, "lr_update": "epoch"}, derived)["restarts"]
    assert moved == [16, 32, 56, 88, 144]
    schedule = ks.Warmup(ks.get("cosine_restarts", initial_learning_rate=0.1, first_decay_steps=10,
                                t_mul=1.5), warmup_steps=5)
    values = applied_lr.evaluate(schedule, np.arange(200))
    rises = [s for s in range(6, 200) if values[s] > values[s - 1]]
    assert rises == [15, 30, 53, 87, 137]


def test_a_run_recorded_with_the_old_flag_name_t_mult_is_sampled_at_its_restarts():
    # docs/results' runs recorded --t_mult; a run longer than MAX_POINTS is sampled at both sides
    # of every restart, which the flags' t_mul places.
    config = _config_json("--schedule=cosine_restarts", "--t0=1", "--t_mul=1.5", "--epochs=20",
                          train_size=50_000)
    old = {**config, "flags": {("t_mult" if k == "t_mul" else k): v for k, v in config["flags"].items()}}
    history = _history([0.1] * 20)
    restarts = applied_lr.jump_steps(config["flags"], config["derived"])["restarts"]
    assert restarts[:3] == [391, 978, 1858]  # cycles of 391, 586.5, 879.75 steps: ceil(977.5), ceil(1857.25)
    new_steps, old_steps = (applied_lr.applied_lr(c, history).steps for c in (config, old))
    assert config["derived"]["total_steps"] > applied_lr.MAX_POINTS
    np.testing.assert_array_equal(old_steps, new_steps)
    assert {s + d for s in restarts for d in (-1, 0, 1) if s + d >= 0} <= set(old_steps.tolist())


def test_without_a_schedule_the_per_epoch_staircase_says_so(tmp_path):
    history = _history([0.1, 0.05, 0.01])
    assert applied_lr.applied_lr({"flags": {}, "derived": {"steps_per_epoch": 4}}, history) is None
    lines = plots.plot_curves([("old", history, None)], str(tmp_path / "c.png"))["lr_lines"]
    assert list(lines) == ["old" + plots.PER_EPOCH_NOTE]
    xs, ys = lines["old" + plots.PER_EPOCH_NOTE]
    assert list(xs) == [0, 1, 2, 3] and list(ys) == [0.1, 0.05, 0.01, 0.01]


@pytest.mark.parametrize("flags", [
    # val_accuracy on 20 test images stalls: plateau reductions inside the run.
    ["--batch_size=8", "--plateau_patience=1", "--plateau_monitor=val_accuracy", "--plateau_factor=0.5"],
    # updates of 2 batches of 4: 4 updates per epoch.
    ["--batch_size=4", "--gradient_accumulation_steps=2"],
    ["--batch_size=8", "--schedule=cosine_restarts", "--t0=0.5", "--warmup_epochs=1"],
], ids=["plateau", "accumulation", "restarts_warmup"])
def test_a_real_runs_curve_is_the_lr_tensorboard_logged_at_every_update(flags, tmp_path):
    from run_helpers import make_image_folder, read_scalars, run_quietly

    from experiments.runner import rundir
    from experiments.runner.train import LR_STEP_TAG

    folder = make_image_folder(tmp_path / "images")
    argv = [f"--image_folder={folder}", f"--log_dir={tmp_path}", "--run_name=r", "--train_subset=32",
            "--epochs=4", "--lr=0.05", "--schedule=cosine", "--lr_log_freq=1", *flags]
    status, _, err = run_quietly(argv)
    assert status == 0, err
    run_dir = rundir.read_run(str(tmp_path / "r"))
    applied = applied_lr.applied_lr(run_dir.config, run_dir.history)
    logged = read_scalars(str(tmp_path / "r" / "tensorboard" / "train"), LR_STEP_TAG)
    assert [s for s, _ in logged] == applied.steps.tolist() == list(range(16))
    np.testing.assert_allclose(applied.learning_rate, [v for _, v in logged], rtol=1e-5)
    assert applied.end_epoch == 4.0
    if "--plateau_patience=1" in flags:  # the run did reduce its LR, so the scale is tested
        schedule = keras.saving.deserialize_keras_object(run_dir.config["derived"]["schedule"])
        assert run_dir.history[-1]["learning_rate"] < 0.99 * float(schedule(12))

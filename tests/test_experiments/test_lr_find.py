"""Tests for experiments/lr_find.py: the LR range test on tiny models and a tiny image folder."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from experiments import lr_find


def test_exponential_lrs_hand_values():
    np.testing.assert_allclose(lr_find.exponential_lrs(1e-3, 10.0, 5), [1e-3, 1e-2, 1e-1, 1.0, 10.0], rtol=1e-12)
    lrs = lr_find.exponential_lrs(2e-4, 3.0, 50)
    assert lrs[0] == pytest.approx(2e-4) and lrs[-1] == pytest.approx(3.0)
    np.testing.assert_allclose(lrs[1:] / lrs[:-1], (3.0 / 2e-4) ** (1 / 49), rtol=1e-12)


def test_smooth_is_the_bias_corrected_moving_average():
    # beta = 0.5: avg = 0.5*2 = 1 -> 1/0.5 = 2; avg = 0.5*1 + 0.5*4 = 2.5 -> 2.5/0.75; ...
    got = lr_find.smooth([2.0, 4.0, 1.0], 0.5)
    np.testing.assert_allclose(got, [2.0, 2.5 / 0.75, (0.5 * 2.5 + 0.5) / 0.875], rtol=1e-12)
    assert lr_find.smooth([3.0, 3.0, 3.0], 0.9) == pytest.approx([3.0, 3.0, 3.0])  # no bias towards 0


def test_suggest_min_over_ten_and_steepest():
    lrs = list(lr_find.exponential_lrs(1e-4, 1.0, 41))  # 10 points per decade
    # Flat, then falling fastest around lr 1e-2 (index 20), minimum at index 30 (1e-1), then rising.
    curve = [2.0 - 1.0 / (1 + math.exp(-(i - 20) / 2.0)) for i in range(31)] + [1.0 + 0.2 * k for k in range(1, 11)]
    suggested, min_lr, steepest = lr_find.suggest(lrs, curve)
    assert min_lr == pytest.approx(lrs[30]) and suggested == pytest.approx(lrs[30] / 10)
    assert steepest == pytest.approx(lrs[20])
    assert lr_find.suggest(lrs[:2], [1.0, 0.5])[2] is None
    with pytest.raises(ValueError, match="suggest: smoothed must hold a finite loss"):
        lr_find.suggest([1e-3], [math.nan])


def _tiny_problem():
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 8)).astype("float32")
    y = np.argmax(x @ rng.normal(size=(8, 3)), axis=1).astype("int32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.BatchNormalization(), keras.layers.Dense(3)])
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(512, seed=0).batch(32)
    return model, dataset, x, y


def test_range_test_finds_a_sensible_range_and_leaves_model_and_optimizer_untouched():
    import keras

    model, dataset, x, y = _tiny_problem()
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=False)
    model.train_on_batch(x[:32], y[:32])  # the optimizer has state (momentum, 1 step)
    weights = [w.copy() for w in model.get_weights()]  # includes batch-norm moving statistics
    opt_state = [v.numpy().copy() for v in model.optimizer.variables]
    result = lr_find.range_test(model, dataset, start_lr=1e-4, end_lr=100.0, num_steps=100, jit_compile=False)
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)
    for before, after in zip(opt_state, model.optimizer.variables):
        np.testing.assert_array_equal(before, after.numpy())
    assert int(model.optimizer.iterations.numpy()) == 1
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(0.05)
    # The loss fell and then blew up before 100: the test stopped early.
    assert "4x its minimum" in result.stop_reason or "not finite" in result.stop_reason
    assert result.steps_run < 100
    assert min(result.smoothed_losses) < 0.8 * result.smoothed_losses[0]
    # Sensible: well inside the range, below where the loss turned up, the usual SGD decade.
    assert 1e-2 <= result.suggested_lr <= 1.0
    assert result.suggested_lr == pytest.approx(result.min_loss_lr / 10)
    assert result.min_loss_lr < result.learning_rates[-1]
    assert result.learning_rates[result.steps_run // 10] <= result.steepest_lr <= result.min_loss_lr
    np.testing.assert_allclose(result.learning_rates, lr_find.exponential_lrs(1e-4, 100.0, 100)[: result.steps_run])
    np.testing.assert_allclose(result.smoothed_losses, lr_find.smooth(result.losses, lr_find.DEFAULT_SMOOTHING), rtol=1e-9)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"start_lr": 1.0, "end_lr": 0.1}, "start_lr must be in"),
        ({"num_steps": 2}, "num_steps must be >= 3"),
        ({"smoothing": 1.0}, "smoothing must be in"),
        ({"divergence_factor": 1.0}, "divergence_factor must be > 1"),
    ],
)
def test_range_test_bad_arguments(kwargs, message):
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match=message):
        lr_find.range_test(model, [], optimizer=keras.optimizers.SGD(), **kwargs)
    with pytest.raises(ValueError, match="optimizer must be given"):
        lr_find.range_test(model, [])


def _image_folder(root, size=8, per_class=6):
    from PIL import Image

    rng = np.random.default_rng(1)
    for split in ("train", "test"):
        for label, name in enumerate(("cat", "dog")):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 100, size=(size, size, 3)) + 120 * label
                Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i}.png")
    return root


def _cli(args, cwd):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-m", "experiments.lr_find"] + args, capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=240)


def test_command_line_writes_curve_and_suggestion_and_refuses_to_overwrite(tmp_path):
    folder = _image_folder(tmp_path / "images")
    out = tmp_path / "logs" / "lr_find"  # <log_dir>/lr_find
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    common = [f"--image_folder={folder}", "--batch_size=4", "--num_steps=12", "--start_lr=1e-3", "--stop_lr=1",
              "--jit_compile=false", "--noaugment"]
    args = common + [f"--log_dir={tmp_path / 'logs'}"]
    done = _cli(args, repo)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "suggested LR:" in done.stdout and "divided by 10" in done.stdout
    saved = json.loads((out / "lr_find.json").read_text())
    assert saved["method"] == lr_find.METHOD
    assert saved["suggested_lr"] == pytest.approx(saved["min_loss_lr"] / 10)
    assert saved["flags"]["batch_size"] == 4 and saved["train_size"] == 12 and saved["num_steps"] == 12
    rows = (out / "lr_find.csv").read_text().strip().splitlines()
    assert rows[0] == "step,learning_rate,loss,smoothed_loss" and len(rows) - 1 == saved["steps_run"]
    first_lr = float(rows[1].split(",")[1])
    assert first_lr == pytest.approx(1e-3)
    assert (out / "lr_find.png").stat().st_size > 1000
    # A second call would replace the result: refused, one line, exit 2, nothing changed.
    before = (out / "lr_find.json").read_text()
    again = _cli(args, repo)
    assert again.returncode == 2 and "--overwrite" in again.stderr.strip().splitlines()[-1]
    assert (out / "lr_find.json").read_text() == before
    # The deprecated --out names the folder itself: the same one, with a warning line.
    old = _cli(common + [f"--out={out}"], repo)
    assert old.stderr.strip().splitlines()[-2:] == [
        "warning: --out is deprecated; use --log_dir (files go to <log_dir>/lr_find)",
        f"error: --log_dir: {out} already holds lr_find.json, lr_find.csv, lr_find.png; "
        "pass --overwrite to replace them"]
    both = _cli(args + [f"--out={tmp_path / 'other'}"], repo)
    assert both.returncode == 2 and both.stderr.strip().splitlines()[-1] == (
        "error: --out: cannot be given with --log_dir, its new name; give only --log_dir")
    named = _cli(common + [f"--out={tmp_path / 'other'}", "--run_name=lr_find_b4"], repo)
    assert named.returncode == 2 and named.stderr.strip().splitlines()[-1] == (
        "error: --run_name: names the folder under --log_dir; it cannot be given with the deprecated --out")
    unused = _cli(common + ["--schedule=step", f"--log_dir={tmp_path / 'other'}"], repo)
    assert unused.returncode == 2 and "--schedule: not used by lr_find" in unused.stderr
    assert not (tmp_path / "other").exists()

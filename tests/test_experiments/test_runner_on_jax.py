"""experiments.run on Keras's JAX backend (experiments.runner.backends, experiments.runner.data_jax).

Every JAX process is a child (KERAS_BACKEND=jax, JAX_PLATFORMS=cpu): the backend
is fixed per process and this one runs TensorFlow. One child runs the in-process
entry several times (a full run, divergence, mixed_bfloat16 + XLA, the refused
--dataset and --strategy) and the augmentation checks, then reports whether TensorFlow got
into it; two more kill a run with SIGKILL and resume it. The parent checks
the files against references it computes itself (the schedule from
config.json, crops by numpy).
"""

import csv
import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import hooked_run
from run_helpers import (HOOKED_RUN, check_completed_summary, make_image_folder, read_history,
                         read_json)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HEADER = "epoch,learning_rate,loss,accuracy,val_loss,val_accuracy,epoch_seconds"
# 24 of the 40 training images, batch 8: 3 steps per epoch. Warmup 1 epoch from
# 0.01 to 0.05, then cosine over 6 steps: epochs start at steps 0, 3, 6.
TINY = ["--train_subset=24", "--epochs=3", "--batch_size=8", "--lr=0.05", "--schedule=cosine",
        "--warmup_epochs=1", "--warmup_start_lr=0.01"]
ENV = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "2",
       # The children share compiled XLA programs (the kill/resume runs reuse
       # the first run's): seconds instead of a compilation each on this CPU.
       "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}

# argv: image folder, log dir, output folder; runs go under the log dir.
CHILD = textwrap.dedent("""
    import contextlib, io, json, os, sys
    import numpy as np
    from experiments.runner import run

    folder, log_dir, out = sys.argv[1:4]
    tiny = json.loads(sys.argv[4])
    results = {}

    def call(name, *argv, logs=log_dir):
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            status = run.run_command(["run", f"--log_dir={logs}", f"--run_name={name}", *argv])
        results[name] = {"status": status, "out": stdout.getvalue(), "err": stderr.getvalue()}

    call("tiny", f"--image_folder={folder}", *tiny)
    call("cifar", "--epochs=1", logs=os.path.join(log_dir, "cifar_logs"))
    call("mirrored", f"--image_folder={folder}", "--strategy=mirrored", "--epochs=1",
         logs=os.path.join(log_dir, "mirrored_logs"))
    call("boom", f"--image_folder={folder}", "--train_subset=24", "--batch_size=8",
         "--epochs=4", "--schedule=constant", "--lr=1e12", "--deterministic")
    call("bf16", f"--image_folder={folder}", *tiny, "--epochs=2", "--precision=mixed_bfloat16",
         "--jit_compile")
    import keras
    results["policy_after_bf16"] = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("float32")

    import jax
    from experiments.runner import data_jax
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, 8, 10, 3), dtype=np.uint8)  # h != w
    augmented = data_jax.augment_batch(keras.ops.convert_to_tensor(images), jax.random.key(3))
    again = data_jax.augment_batch(keras.ops.convert_to_tensor(images), jax.random.key(3))
    x = rng.integers(0, 256, (20, 8, 10, 3), dtype=np.uint8)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    train = data_jax.DeviceBatches(x, np.arange(20), 8, mean, std, seed=5, augment=True)
    val = data_jax.DeviceBatches(x, np.arange(20), 8, mean, std)
    saved = {"images": images, "augmented": np.asarray(augmented), "again": np.asarray(again),
             "x": x, "mean": mean, "std": std}
    for tag, epoch in (("e0", 0), ("e1", 1), ("e0_again", 0)):
        train.set_epoch(epoch)
        for b in range(len(train)):
            saved[f"{tag}_x{b}"], saved[f"{tag}_y{b}"] = map(np.asarray, train[b])
    for b in range(len(val)):
        saved[f"val_x{b}"], saved[f"val_y{b}"] = map(np.asarray, val[b])
    results["train_batches"], results["val_batches"] = len(train), len(val)
    np.savez(os.path.join(out, "batches.npz"), **saved)
    results["tensorflow_modules"] = [m for m in sys.modules if m.split(".")[0] == "tensorflow"]
    print(json.dumps(results))
""")

# A run through the in-process entry that reports TensorFlow's absence (resume).
RESUME = textwrap.dedent("""
    import json, sys
    from experiments.runner import run
    status = run.run_command(["run", *sys.argv[1:]])
    print(json.dumps({"status": status,
                      "tensorflow_modules": [m for m in sys.modules
                                             if m.split(".")[0] == "tensorflow"]}))
""")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return {**ENV, "JAX_COMPILATION_CACHE_DIR": str(tmp_path_factory.mktemp("xla_cache"))}


def _child(env, script, *argv):
    result = subprocess.run([sys.executable, "-c", script, *argv], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    # 40 test images: 5 whole batches of 8 (one evaluation program to compile).
    return make_image_folder(tmp_path_factory.mktemp("images"), test_per_class=4)


@pytest.fixture(scope="module")
def child(env, folder, tmp_path_factory):
    log_dir, out = tmp_path_factory.mktemp("logs"), tmp_path_factory.mktemp("out")
    results = _child(env, CHILD, folder, str(log_dir), str(out), json.dumps(TINY))
    results["log_dir"] = log_dir
    results["batches"] = dict(np.load(out / "batches.npz"))
    return results




def schedule_lrs(run_dir, steps):
    """The LRs at `steps` of the schedule config.json records (evaluated here, on TensorFlow)."""
    import keras

    import kschedules  # noqa: F401  (registers the schedules)

    schedule = keras.saving.deserialize_keras_object(
        read_json(os.path.join(run_dir, "config.json"))["derived"]["schedule"])
    return [float(schedule(s)) for s in steps]


def test_a_run_on_jax_writes_every_file_with_the_schedules_lrs(child):
    assert child["tiny"]["status"] == 0, child["tiny"]["err"][-2000:]
    run_dir = child["log_dir"] / "tiny"
    header, rows = read_history(run_dir)
    assert header == HEADER
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    expected = schedule_lrs(run_dir, [0, 3, 6])
    assert expected == pytest.approx([0.01, 0.05, 0.025], rel=1e-6)
    assert [r["learning_rate"] for r in rows] == pytest.approx(expected, rel=1e-6)
    for r in rows:
        assert math.isfinite(r["loss"]) and math.isfinite(r["val_loss"])
        assert 0 <= r["accuracy"] <= 1 and 0 <= r["val_accuracy"] <= 1 and r["epoch_seconds"] > 0
    with open(run_dir / "learning_rate.csv") as f:
        logged = list(csv.DictReader(f))
    assert [int(r["step"]) for r in logged] == [0, 3, 6]
    assert [float(r["learning_rate"]) for r in logged] == [r["learning_rate"] for r in rows]
    assert (run_dir / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(os.listdir(run_dir)) == ["config.json", "curves.png", "history.csv",
                                           "learning_rate.csv", "model.keras", "summary.json"]


def test_summary_agrees_with_the_history(child):
    run_dir = child["log_dir"] / "tiny"
    _, rows = read_history(run_dir)
    summary = read_json(run_dir / "summary.json")
    assert len(rows) == 3
    check_completed_summary(summary, rows)
    assert summary["resumed_from_epoch"] == 0


def test_config_records_jax_and_what_was_skipped_which_is_said_once(child):
    import keras

    record = read_json(child["log_dir"] / "tiny" / "config.json")
    environment = record["environment"]
    assert (environment["backend"], environment["tensorflow"]) == ("jax", None)
    assert environment["keras"] == keras.__version__ and environment["devices"]
    assert list(record["skipped"]) == ["tensorboard/"]
    lines = [line for line in child["tiny"]["out"].splitlines() if line.startswith("skipped")]
    reason = record["skipped"]["tensorboard/"]
    assert lines == [f"skipped on the jax backend: tensorboard/: {reason}"]


def test_no_tensorflow_in_the_jax_process(child):
    assert child["tensorflow_modules"] == []


def test_dataset_on_jax_is_a_one_line_error_naming_image_folder(child):
    result = child["cifar"]
    assert result["status"] == 2
    assert result["err"].startswith("error: --dataset: ") and result["err"].count("\n") == 1
    assert "--image_folder" in result["err"] and "TensorFlow" in result["err"]
    assert not (child["log_dir"] / "cifar_logs").exists()


def test_strategy_on_jax_is_a_one_line_error(child):
    result = child["mirrored"]
    assert result["status"] == 2
    assert result["err"].startswith("error: --strategy: mirrored is tf.distribute")
    assert result["err"].count("\n") == 1
    assert not (child["log_dir"] / "mirrored_logs").exists()


def test_divergence_on_jax_stops_and_is_recorded_deterministic_is_skipped(child):
    result = child["boom"]
    assert result["status"] == 0, result["err"][-2000:]
    run_dir = child["log_dir"] / "boom"
    _, rows = read_history(run_dir)
    summary = read_json(run_dir / "summary.json")
    assert summary["status"] == "diverged" and summary["diverged_epoch"] == len(rows) - 1 < 3
    assert not math.isfinite(rows[-1]["loss"]) and all(math.isfinite(r["loss"]) for r in rows[:-1])
    assert not (run_dir / "backup").exists()
    skipped = read_json(run_dir / "config.json")["skipped"]
    assert set(skipped) == {"tensorboard/", "--deterministic"}
    assert result["out"].count("skipped on the jax backend: --deterministic: ") == 1


def test_mixed_bfloat16_with_jit_compile_trains_on_jax(child):
    result = child["bf16"]
    assert result["status"] == 0, result["err"][-2000:]
    assert child["policy_after_bf16"] == "mixed_bfloat16"
    run_dir = child["log_dir"] / "bf16"
    _, rows = read_history(run_dir)
    assert [r["learning_rate"] for r in rows] == pytest.approx(schedule_lrs(run_dir, [0, 3]),
                                                                rel=1e-6)
    assert all(math.isfinite(r["loss"]) for r in rows)
    assert read_json(run_dir / "config.json")["flags"]["jit_compile"] is True
    # Epoch 0 is the float32 run's warmup on the same batches, in bfloat16.
    _, float32 = read_history(child["log_dir"] / "tiny")
    assert rows[0]["loss"] == pytest.approx(float32[0]["loss"], rel=0.05)
    assert rows[0]["loss"] != float32[0]["loss"]  # computed in another precision


def _padded(image):
    return np.pad(image, [(4, 4), (4, 4), (0, 0)])


def _crop_and_flip(augmented, original):
    """(row offset, column offset, flipped): `augmented` is that crop of the padded original.

    None when it is no crop of it.
    """
    padded = _padded(original.astype(np.float64))
    height, width = original.shape[:2]
    for dy in range(9):
        for dx in range(9):
            crop = padded[dy:dy + height, dx:dx + width]
            for flipped, candidate in ((False, crop), (True, crop[:, ::-1])):
                if np.array_equal(candidate, augmented):
                    return dy, dx, flipped
    return None


def test_augmentation_is_a_shifted_crop_of_the_padded_image_or_its_mirror(child):
    b = child["batches"]
    assert b["augmented"].shape == b["images"].shape and b["augmented"].dtype == np.uint8
    np.testing.assert_array_equal(b["augmented"], b["again"])  # same key, same batch
    found = [_crop_and_flip(a, x) for a, x in zip(b["augmented"], b["images"])]
    assert None not in found
    # Every offset of 0..8 in both directions and both flips occur in 64 images.
    assert {f[0] for f in found} == set(range(9)) and {f[1] for f in found} == set(range(9))
    assert {f[2] for f in found} == {False, True}


def test_device_batches_are_normalised_crops_in_a_seeded_order_per_epoch(child):
    b = child["batches"]
    x, mean, std = b["x"], b["mean"] * 255, b["std"] * 255
    assert (child["train_batches"], child["val_batches"]) == (3, 3)  # ceil(20 / 8)
    orders = {}
    for tag in ("e0", "e1", "e0_again"):
        labels = np.concatenate([b[f"{tag}_y{i}"] for i in range(3)])
        assert [len(b[f"{tag}_y{i}"]) for i in range(3)] == [8, 8, 4]
        assert sorted(labels) == list(range(20))  # each image once per epoch
        orders[tag] = labels
        for i in range(3):
            pixels = b[f"{tag}_x{i}"].astype(np.float64) * std + mean
            np.testing.assert_allclose(pixels, np.rint(pixels), atol=1e-3)
            for image, label in zip(np.rint(pixels), b[f"{tag}_y{i}"]):
                assert _crop_and_flip(image, x[label]) is not None
    assert not np.array_equal(orders["e0"], orders["e1"])
    np.testing.assert_array_equal(orders["e0"], orders["e0_again"])
    for i in range(3):
        np.testing.assert_array_equal(b[f"e0_x{i}"], b[f"e0_again_x{i}"])
    val = np.concatenate([b[f"val_x{i}"] for i in range(3)]).astype(np.float64)
    np.testing.assert_allclose(val * std + mean, x, atol=1e-3)
    np.testing.assert_array_equal(np.concatenate([b[f"val_y{i}"] for i in range(3)]), np.arange(20))


def test_resume_after_kill_9_on_jax_matches_the_uninterrupted_run(child, env, folder, tmp_path):
    argv = [f"--image_folder={folder}", f"--log_dir={tmp_path}", "--run_name=tiny", *TINY]
    # The killed attempt runs 3 steps per epoch in calls of 2 then 1; the resume and the
    # uninterrupted run one at a time: the same numbers.
    killed = subprocess.run([*HOOKED_RUN, *argv, "--steps_per_execution=2"], cwd=REPO,
                            env={**env, hooked_run.KILL_ENV: "1:after_backup"},
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr[-2000:]
    run_dir = tmp_path / "tiny"
    assert len(read_history(run_dir)[1]) == 2 and (run_dir / "backup").exists()
    assert not (run_dir / "summary.json").exists()

    resumed = _child(env, RESUME, *argv)
    assert resumed == {"status": 0, "tensorflow_modules": []}
    _, rows = read_history(run_dir)
    _, uninterrupted = read_history(child["log_dir"] / "tiny")
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    # The same batches, augmentation and weights: the same numbers.
    for column in ("learning_rate", "loss", "accuracy", "val_loss", "val_accuracy"):
        assert [r[column] for r in rows] == pytest.approx(
            [r[column] for r in uninterrupted], rel=1e-5, abs=1e-6), column
    summary = read_json(run_dir / "summary.json")
    assert (summary["epochs_completed"], summary["resumed_from_epoch"]) == (3, 2)
    assert not (run_dir / "backup").exists()


def test_nothing_is_skipped_on_tensorflow(folder):
    from run_helpers import parse

    from experiments.runner import backends
    from experiments.runner import config as config_lib

    config = config_lib.build_config(parse(f"--image_folder={folder}", "--deterministic"))
    assert backends.uses_tensorflow() and backends.skipped(config) == {}

"""model.keras and --save_best's best.keras (experiments.runner.saving): what they hold,
that a fresh process loads them after `import kschedules`, and best.keras across resume."""

import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from run_helpers import REPO, TINY, parse, read_history, read_json, run_quietly

from experiments.runner import config as config_lib
from experiments.runner import data, rundir

# Loads each model in a fresh process that imports only kschedules and Keras, and
# reports its optimizer, its step count and its evaluation on the arrays given.
LOADER = textwrap.dedent("""
    import json, sys
    import numpy as np
    import kschedules, keras

    arrays = np.load(sys.argv[1])
    results = {}
    for path in sys.argv[3:]:
        model = keras.models.load_model(path)
        optimizer = model.optimizer
        loss, accuracy = model.evaluate(arrays["x"], arrays["y"], batch_size=8, verbose=0)
        results[path] = {
            "optimizer": type(optimizer).__name__,
            "schedule": type(optimizer._learning_rate).__name__,
            "iterations": int(optimizer.iterations.numpy()),
            "loss": float(loss), "accuracy": float(accuracy),
            "kernel": np.asarray(model.weights[0]).ravel()[:5].tolist()}
    with open(sys.argv[2], "w") as f:
        json.dump(results, f)
""")


@pytest.fixture(scope="module")
def runs(tiny_folder, tmp_path_factory):
    """Two finished TINY runs with --save_best (plain; gradient accumulation) and what a
    fresh process loading their models reports."""
    log_dir = str(tmp_path_factory.mktemp("saved"))
    made = {}
    for name, extra in (("plain", []), ("accumulated", ["--gradient_accumulation_steps=3"])):
        argv = [f"--image_folder={tiny_folder}", f"--log_dir={log_dir}", f"--run_name={name}",
                *TINY, "--save_best", *extra]
        status, out, err = run_quietly(argv)
        assert status == 0, err
        made[name] = {"argv": argv, "dir": os.path.join(log_dir, name), "out": out}
    x, y = _val_arrays(made["plain"])
    npz = os.path.join(log_dir, "val.npz")
    np.savez(npz, x=x, y=y)
    paths = [os.path.join(made[name]["dir"], file) for name in made
             for file in (rundir.MODEL, rundir.BEST_MODEL)]
    out = os.path.join(log_dir, "loaded.json")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "-c", LOADER, npz, out, *paths], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return {"runs": made, "loaded": read_json(out)}


def _val_arrays(run):
    """The run's test images, normalised as the runner does (config.json's mean and std)."""
    config = config_lib.build_config(parse(*run["argv"]))
    arrays = data.load(config)
    normal = read_json(os.path.join(run["dir"], rundir.CONFIG))["derived"]["normalization"]
    x = (arrays.x_test.astype(np.float32) - np.multiply(normal["mean"], 255)) / np.multiply(
        normal["std"], 255)
    return x.astype(np.float32), arrays.y_test


def _loaded(runs, name, file):
    return runs["loaded"][os.path.join(runs["runs"][name]["dir"], file)]


@pytest.mark.parametrize("name", ["plain", "accumulated"])
def test_model_keras_is_the_final_model(runs, name):
    run_dir = runs["runs"][name]["dir"]
    summary = read_json(os.path.join(run_dir, rundir.SUMMARY))
    loaded = _loaded(runs, name, rundir.MODEL)
    # Its evaluation on the run's test images is the last epoch's validation.
    assert loaded["accuracy"] == pytest.approx(summary["final_val_accuracy"], abs=1e-6)
    assert loaded["loss"] == pytest.approx(summary["final_val_loss"], rel=1e-4)
    # The optimizer with its state: 3 epochs of 3 batches (one update per 3 when accumulating).
    assert loaded["iterations"] == (9 if name == "plain" else 3)
    assert loaded["schedule"] == ("Warmup" if name == "plain" else "PerUpdate")
    assert not any(f.startswith("partial-") for f in os.listdir(run_dir))
    assert not os.path.exists(os.path.join(run_dir, rundir.BACKUP))


@pytest.mark.parametrize("name", ["plain", "accumulated"])
def test_best_keras_is_the_best_epochs_model(runs, name):
    run_dir = runs["runs"][name]["dir"]
    summary = read_json(os.path.join(run_dir, rundir.SUMMARY))
    _, rows = read_history(run_dir)
    best = max(range(len(rows)), key=lambda i: rows[i]["val_accuracy"])  # the first of ties
    assert summary["best_model_epoch"] == summary["best_epoch"] == best
    loaded = _loaded(runs, name, rundir.BEST_MODEL)
    assert loaded["accuracy"] == pytest.approx(rows[best]["val_accuracy"], abs=1e-6)
    assert loaded["loss"] == pytest.approx(rows[best]["val_loss"], rel=1e-4)
    steps_per_epoch = 3 if name == "plain" else 1
    assert loaded["iterations"] == (best + 1) * steps_per_epoch


def test_a_run_without_save_best_has_model_keras_only(tiny_folder, tmp_path):
    status, _, err = run_quietly([f"--image_folder={tiny_folder}", f"--log_dir={tmp_path}",
                                  "--run_name=r", *TINY, "--epochs=2"])
    assert status == 0, err
    files = os.listdir(tmp_path / "r")
    assert rundir.MODEL in files and rundir.BEST_MODEL not in files
    assert "best_model_epoch" not in read_json(tmp_path / "r" / rundir.SUMMARY)


def test_a_run_finished_before_model_keras_existed_stays_complete(runs, tmp_path):
    # An older run directory: no model.keras, no save_best in its config.json.
    import shutil

    run = runs["runs"]["plain"]
    old = tmp_path / "plain"
    shutil.copytree(run["dir"], old)
    os.remove(old / rundir.MODEL)
    record = read_json(old / rundir.CONFIG)
    for name in ("save_best", "eval_every", "val_subset"):
        del record["flags"][name]
    (old / rundir.CONFIG).write_text(json.dumps(record))
    argv = [a for a in run["argv"] if a != "--save_best" and not a.startswith("--log_dir")]
    status, out, err = run_quietly([*argv, f"--log_dir={tmp_path}"])
    assert status == 0, err
    assert "is complete (summary.json exists); nothing to do" in out
    assert not os.path.exists(old / rundir.MODEL)


# BestModel's bookkeeping across a kill and resume, on a one-weight model: each "epoch" sets
# the weight to its number, so a file's weight says which epoch's model it holds.


def _model():
    import keras

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def _epoch(callback, model, epoch, val_accuracy, run_dir, backup_after=None):
    """Trains "epoch": history row, BestModel, then (with `backup_after`) a backup record."""
    model.layers[0].kernel.assign([[float(epoch)]])
    with open(os.path.join(run_dir, rundir.HISTORY), "a") as f:
        if epoch == 0:
            f.write(",".join(rundir.HISTORY_COLUMNS) + "\n")
        f.write(f"{epoch},0.1,1.0,0.5,1.0,{val_accuracy},1.0\n")
    callback.on_epoch_end(epoch, {} if math.isnan(val_accuracy) else
                          {"val_loss": 1.0, "val_accuracy": val_accuracy})
    if backup_after:
        os.makedirs(os.path.join(run_dir, rundir.BACKUP), exist_ok=True)
        rundir.write_json_atomic(os.path.join(run_dir, rundir.BACKUP, rundir.METADATA),
                                 {"epoch": epoch + 1, "batch": 0, "weights": "w.weights.h5"})


def _resume(run_dir, model, first_epoch):
    """A new BestModel as a resumed fit makes it (history.csv cut to the backup's epochs)."""
    from experiments.runner import saving

    with open(os.path.join(run_dir, rundir.HISTORY)) as f:
        lines = f.readlines()[:first_epoch + 1]
    with open(os.path.join(run_dir, rundir.HISTORY), "w") as f:
        f.writelines(lines)
    callback = saving.BestModel(str(run_dir))
    callback.set_model(model)
    callback.on_epoch_begin(first_epoch)
    return callback


def _best_weight(run_dir):
    import keras

    if not os.path.exists(os.path.join(run_dir, rundir.BEST_MODEL)):
        return None
    return float(keras.models.load_model(os.path.join(run_dir, rundir.BEST_MODEL)).weights[0][0, 0])


@pytest.mark.parametrize("backups, kill_after, first_epoch, expected", [
    # Backups after every epoch; the best (epoch 2: 0.6) was backed up, then the killed
    # attempt found a better epoch 3 (0.7) before its backup: epoch 3 is replayed.
    ((0, 1, 2), 3, 3, 2),
    # A backup after epoch 1 only; epochs 2 and 3 (0.6, 0.7, both new bests) are replayed,
    # so best.keras must go back to epoch 1 (0.5).
    ((1,), 3, 2, 1),
    # No backup yet: everything is replayed, no best.keras is left.
    ((), 3, 0, None),
    # The best was backed up and nothing better came: best.keras stays.
    ((0, 1, 2, 3), 3, 4, 3),
])
def test_best_keras_after_a_kill_is_the_best_of_the_epochs_kept(tmp_path, backups, kill_after,
                                                                first_epoch, expected):
    from experiments.runner import saving

    run_dir = str(tmp_path)
    model = _model()
    callback = saving.BestModel(run_dir)
    callback.set_model(model)
    callback.on_epoch_begin(0)
    for epoch, value in enumerate([0.3, 0.5, 0.6, 0.7][:kill_after + 1]):
        _epoch(callback, model, epoch, value, run_dir, backup_after=epoch in backups)
    assert _best_weight(run_dir) == kill_after  # the killed attempt's best
    callback = _resume(run_dir, model, first_epoch)
    assert _best_weight(run_dir) == expected
    assert (callback.record or {}).get("epoch") == expected
    # The replay: epoch first_epoch again, worse this time: best.keras keeps the kept best
    # (with none kept, the replayed epoch is the first best).
    if first_epoch < 4:
        _epoch(callback, model, first_epoch, 0.05, run_dir)
        assert _best_weight(run_dir) == (first_epoch if expected is None else expected)
        _epoch(callback, model, first_epoch + 1, 0.9, run_dir)
        assert _best_weight(run_dir) == first_epoch + 1


def test_epochs_without_validation_never_become_the_best(tmp_path):
    from experiments.runner import saving

    model = _model()
    callback = saving.BestModel(str(tmp_path))
    callback.set_model(model)
    callback.on_epoch_begin(0)
    for epoch, value in enumerate([math.nan, 0.4, math.nan, 0.4, 0.3]):
        _epoch(callback, model, epoch, value, str(tmp_path))
    assert _best_weight(str(tmp_path)) == 1  # a tie keeps the earlier epoch


def test_killed_then_resumed_run_keeps_both_models_right(tiny_folder, tmp_path):
    import keras
    import kschedules  # noqa: F401  (what loading a run's model needs)

    from run_helpers import HOOKED_RUN
    import hooked_run

    argv = [f"--image_folder={tiny_folder}", f"--log_dir={tmp_path}", "--run_name=r", *TINY,
            "--save_best"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    killed = subprocess.run([*HOOKED_RUN, *argv], cwd=REPO, capture_output=True, text=True,
                            timeout=300, env={**env, hooked_run.KILL_ENV: "2:before_backup"})
    run_dir = tmp_path / "r"
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert not (run_dir / rundir.MODEL).exists()  # written only once training ends
    resumed = subprocess.run([*HOOKED_RUN, *argv], cwd=REPO, capture_output=True, text=True,
                             timeout=300, env=env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resume at epoch 3/3" in resumed.stdout
    summary = read_json(run_dir / rundir.SUMMARY)
    _, rows = read_history(str(run_dir))
    best = max(range(3), key=lambda i: rows[i]["val_accuracy"])
    assert summary["best_model_epoch"] == summary["best_epoch"] == best
    assert int(keras.models.load_model(run_dir / rundir.MODEL).optimizer.iterations) == 9
    assert int(keras.models.load_model(run_dir / rundir.BEST_MODEL).optimizer.iterations) == \
        3 * (best + 1)

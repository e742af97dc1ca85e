"""TensorBoard output of the runner, read back by a real TensorBoard server on 127.0.0.1: two runs
per training, one LR chart, the HParams dashboard's hparams and metrics; TensorFlow's start-up noise
on stderr."""

import csv
import glob
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import keras
import pytest
from run_helpers import REPO, read_json, read_scalars, run_quietly

from experiments.runner import backends

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="tensorboard/ needs TensorFlow: skipped on the jax backend "
           "(experiments.runner.backends.skipped)")

# 24 images, batch 8: 3 steps per epoch; --lr_log_freq=1: the LR of every step.
RUNS = {"cos": ["--schedule=cosine"], "restarts": ["--schedule=cosine_restarts", "--t0=1"]}
COMMON = ["--train_subset=24", "--epochs=2", "--batch_size=8", "--lr=0.05", "--lr_log_freq=1"]


@pytest.fixture(scope="module")
def log_dir(tiny_folder, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("tensorboard_runs"))
    for name, flags in RUNS.items():
        status, _, err = run_quietly([f"--image_folder={tiny_folder}", f"--log_dir={root}",
                                      f"--run_name={name}", *COMMON, *flags])
        assert status == 0, err
    return root


def test_the_lr_is_one_chart_in_the_train_run(log_dir):
    tensorboard = os.path.join(log_dir, "cos", "tensorboard")
    assert not glob.glob(os.path.join(tensorboard, "events.*"))  # no third run
    train = os.path.join(tensorboard, "train")
    with open(os.path.join(log_dir, "cos", "learning_rate.csv")) as f:
        applied = [float(row["learning_rate"]) for row in csv.DictReader(f)]
    epoch_start = read_scalars(train, "learning_rate/epoch_start")
    assert [step for step, _ in epoch_start] == [0, 1]
    assert [float(v) for _, v in epoch_start] == pytest.approx(applied, rel=1e-6)
    assert [step for step, _ in read_scalars(train, "learning_rate/step")] == list(range(6))
    # Keras's end-of-epoch value (epoch 0's would be epoch 1's start) is not written.
    for run in ("train", "validation"):
        assert read_scalars(os.path.join(tensorboard, run), "epoch_learning_rate") == []
    assert [s for s, _ in read_scalars(train, "epoch_loss")] == [0, 1]  # Keras's own still there


def test_a_resumed_run_writes_its_hparams_once(tiny_folder, tmp_path, capfd):
    from experiments.runner import hparams

    argv = [f"--image_folder={tiny_folder}", f"--log_dir={tmp_path}", "--run_name=r", *COMMON]
    assert run_quietly(argv)[0] == 0
    train = os.path.join(tmp_path, "r", "tensorboard", "train")
    assert hparams.has_hparams(train)
    os.remove(os.path.join(tmp_path, "r", "summary.json"))  # as if killed before the summary
    capfd.readouterr()
    assert run_quietly(argv)[0] == 0
    # Reading the event files back logs nothing from C++ (tf.data.TFRecordDataset would).
    assert "tf_record" not in capfd.readouterr().err
    assert len(read_scalars(train, "_hparams_/session_start_info")) == 1
    assert not hparams.has_hparams(os.path.join(tmp_path, "r", "tensorboard", "validation"))


def test_hparams_of_the_schedule_flags():
    from experiments.runner.hparams import hparams_of

    flags = {"schedule": "cosine_restarts", "lr": 0.1, "optimizer": "sgd", "batch_size": 64,
             "warmup_epochs": 0.5, "epochs": 3, "seed": 2, "t0": None, "t_mul": 2.0,
             "m_mul": 1.0, "min_lr": 0.0, "milestones": "1,2", "power": 2.0}
    assert hparams_of(flags) == {"schedule": "cosine_restarts", "lr": 0.1, "optimizer": "sgd",
                                 "batch_size": 64, "warmup_epochs": 0.5, "epochs": 3, "seed": 2,
                                 "t_mul": 2.0, "m_mul": 1.0, "min_lr": 0.0}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)


@pytest.fixture(scope="module")
def server(log_dir):
    """The URL of `tensorboard --logdir=log_dir` on 127.0.0.1, once it answers."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", f"--logdir={log_dir}", "--host=127.0.0.1",
         f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                # Both trainings read: both train runs hold their hparams.
                if len(_get(f"{url}/data/plugin/hparams/session_groups", _SESSIONS)
                       .get("sessionGroups", [])) == len(RUNS):
                    break
            except OSError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "no TensorBoard"
            time.sleep(1)
        yield url
    finally:
        process.kill()
        process.wait()


_SESSIONS = {"experimentName": "", "startIndex": 0, "sliceSize": 100, "includeMetrics": True,
             "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE",
                                 "STATUS_RUNNING"], "colParams": []}


def test_each_training_is_two_runs_named_by_the_run_first(server):
    assert sorted(_get(f"{server}/data/runs")) == sorted(
        f"{name}/tensorboard/{part}" for name in RUNS for part in ("train", "validation"))


def test_the_hparams_dashboard_lists_both_runs_with_their_flags_and_summary(server, log_dir):
    experiment = _get(f"{server}/data/plugin/hparams/experiment",
                      {"experimentName": "", "includeMetrics": True})
    names = {info["name"] for info in experiment["hparamInfos"]}
    assert {"schedule", "lr", "optimizer", "batch_size", "warmup_epochs", "seed", "t0"} <= names
    metrics = {info["name"]["tag"] for info in experiment["metricInfos"]}
    assert {"summary/final_val_accuracy", "summary/best_val_accuracy",
            "summary/final_loss"} <= metrics
    groups = _get(f"{server}/data/plugin/hparams/session_groups", _SESSIONS)["sessionGroups"]
    by_session = {g["sessions"][0]["name"]: g for g in groups}
    assert sorted(by_session) == sorted(f"{name}/tensorboard/train" for name in RUNS)
    for name in RUNS:
        group = by_session[f"{name}/tensorboard/train"]
        assert group["name"] == name  # the Trial ID column: the run's name
        flags = read_json(os.path.join(log_dir, name, "config.json"))["flags"]
        summary = read_json(os.path.join(log_dir, name, "summary.json"))
        shown = group["hparams"]
        assert shown["schedule"] == flags["schedule"] and shown["optimizer"] == flags["optimizer"]
        for flag in ("lr", "batch_size", "warmup_epochs", "seed", "epochs"):
            assert shown[flag] == pytest.approx(flags[flag]), flag
        assert ("t0" in shown) == (flags["schedule"] == "cosine_restarts")
        if "t0" in shown:
            assert shown["t0"] == pytest.approx(flags["t0"]) == 1.0
        values = {m["name"]["tag"]: m["value"] for m in group["metricValues"]}
        for key in ("final_val_accuracy", "best_val_accuracy", "final_loss"):
            assert values[f"summary/{key}"] == pytest.approx(summary[key], rel=1e-6), key


NOISE = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
         "I0000 00:00:1796301762.378181    8001 port.cc:153] oneDNN custom operations are on. "
         "You may see slightly different numerical results.\n"
         "I0000 00:00:1796301762.378609    8001 cudart_stub.cc:31] Could not find cuda drivers "
         "on your machine, GPU will not be used.\n"
         "E0000 00:00:1796302177.580147   14883 cuda_platform.cc:52] failed call to cuInit: "
         "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n")
REAL = "E0000 00:00:1796302177.580147   14883 some_op.cc:52] a real error\n"


def test_start_up_noise_is_dropped_and_other_lines_kept():
    assert backends.without_start_up_noise(NOISE + REAL + NOISE, gpu=False) == REAL
    kept = backends.without_start_up_noise(NOISE, gpu=True)  # a GPU machine: the driver's lines
    assert "cudart_stub" in kept and "cuInit" in kept and "oneDNN" not in kept


def _child(code, **env):
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          env={**environment, **env}, timeout=300)


def test_the_first_import_of_keras_is_quiet_unless_the_user_set_the_log_level():
    imports = "from experiments.runner import backends; print(backends.name())"
    quiet = _child(imports)
    assert quiet.returncode == 0 and quiet.stdout == "tensorflow\n", quiet.stderr
    assert quiet.stderr == ""
    # A line that is not noise, written to fd 2 (as C++ does) while the filter is on, comes through.
    passed = _child("import os; from experiments.runner import backends\n"
                    "with backends.quiet_tensorflow_start():\n"
                    f"    os.write(2, {(NOISE + REAL).encode()!r})\n")
    assert passed.returncode == 0 and passed.stderr == REAL
    user_set = _child("import os; from experiments.runner import backends\n"
                      "with backends.quiet_tensorflow_start():\n"
                      f"    os.write(2, {NOISE.encode()!r})\n", TF_CPP_MIN_LOG_LEVEL="0")
    assert user_set.stderr == NOISE


def test_the_report_figures_first_import_of_keras_is_quiet_too():
    # experiments.report and the suite draw curves from a rebuilt schedule (runner/applied_lr.py):
    # their first `import keras`, and the CUDA driver's lines at the first op, are filtered as well.
    schedule = {"module": "kschedules.cosine", "class_name": "CosineAnnealing",
                "config": {"initial_learning_rate": 0.1, "decay_steps": 4, "min_learning_rate": 0.0},
                "registered_name": "kschedules>CosineAnnealing"}
    config = {"flags": {"schedule": "cosine"},
              "derived": {"steps_per_epoch": 2, "total_steps": 4, "schedule": schedule}}
    drawn = _child("from experiments.runner import applied_lr\n"
                   f"lr = applied_lr.applied_lr({config!r}, [{{'learning_rate': 0.1}}] * 2)\n"
                   "print(lr.learning_rate.round(4).tolist())")
    assert drawn.returncode == 0 and drawn.stderr == "", drawn.stderr
    # 0.1 * (1 + cos(pi * s / 4)) / 2 at s = 0..3
    assert drawn.stdout == "[0.1, 0.0854, 0.05, 0.0146]\n"

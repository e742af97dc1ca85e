"""--strategy (experiments.runner.distribute) and --lr_scaling: flag errors, LR arithmetic, and real runs.

The runs: MirroredStrategy over two logical CPU devices (a child process, then
one making a one-device run of the same global batch), and MultiWorkerMirroredStrategy
with two worker processes on 127.0.0.1, killed after its first epoch and
resumed, meanwhile. Every child process runs in its own process group, killed in a
`finally` whatever happens, under a timeout.
"""

import contextlib
import glob
import json
import math
import os
import signal
import socket
import subprocess
import sys

import pytest
import hooked_run
from run_helpers import (HOOKED_RUN, make_image_folder, parse, read_history, read_json, run_quietly,
                         two_at_a_time)

from experiments.runner import config as config_lib
from experiments.runner import rundir

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# 24 training images, global batch 8: 3 steps per epoch. The LR flags are stated
# for batch 4 and scaled linearly: x 8/4 = 2 (warmup 0.02 -> 0.1, then cosine).
TINY = ["--train_subset=24", "--epochs=3", "--batch_size=8", "--lr=0.05", "--schedule=cosine",
        "--warmup_epochs=1", "--warmup_start_lr=0.01", "--lr_scaling=linear",
        "--reference_batch_size=4"]
TINY_LRS = [0.02, 0.1, 0.05]
RUN_FILES = ("config.json", "history.csv", "learning_rate.csv", "summary.json", "curves.png")
TIMEOUT_S = 150


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("images"))


def rows_of(run_dir):
    return read_history(run_dir)[1]


def assert_complete_run_dir(run_dir):
    for name in RUN_FILES:
        assert os.path.isfile(os.path.join(run_dir, name)), name
    for split in ("train", "validation"):
        assert glob.glob(os.path.join(run_dir, "tensorboard", split, "events.*")), split
    assert not os.path.exists(os.path.join(run_dir, "backup"))


# ---------------------------------------------------------------------------
# Flags and --lr_scaling arithmetic (no strategy is started).


@pytest.mark.parametrize("rule,factor", [("linear", 1024 / 128), ("sqrt", math.sqrt(1024 / 128)),
                                         ("linear", 64 / 128), ("sqrt", math.sqrt(64 / 128))])
def test_lr_scaling_multiplies_every_lr_flag(rule, factor):
    batch = round(factor * 128) if rule == "linear" else round(factor**2 * 128)
    config = config_lib.build_config(parse(
        f"--lr_scaling={rule}", f"--batch_size={batch}", "--lr=0.1", "--schedule=cosine",
        "--min_lr=0.001", "--warmup_epochs=2", "--warmup_start_lr=0.01", "--epochs=10"),
        train_size=8192)
    assert config.lr_scale == pytest.approx(factor, rel=1e-12)
    derived = config.derived()
    assert derived["effective_lr"] == pytest.approx(0.1 * factor, rel=1e-12)
    assert derived["effective_lr_flags"] == pytest.approx(
        {"lr": 0.1 * factor, "min_lr": 0.001 * factor, "warmup_start_lr": 0.01 * factor},
        rel=1e-12)
    assert config.flags["lr"] == 0.1 and config.flags["reference_batch_size"] == 128
    # The schedule runs on the scaled values: warmup start, peak, and the cosine's end.
    from experiments.runner.schedules import build_schedule

    schedule = build_schedule(config)
    warmup, total = config.warmup_steps, config.total_steps
    assert float(schedule(0)) == pytest.approx(0.01 * factor, rel=1e-5)
    assert float(schedule(warmup)) == pytest.approx(0.1 * factor, rel=1e-5)
    assert float(schedule(total)) == pytest.approx(0.001 * factor, rel=1e-5)


def test_no_lr_scaling_by_default():
    config = config_lib.build_config(parse("--batch_size=512", "--lr=0.1"), train_size=1000)
    assert config.lr_scale == 1.0 and config.flags["reference_batch_size"] is None
    assert config.derived()["effective_lr"] == 0.1
    assert config.flags["strategy"] == "default"


def test_run_name_shows_the_scaling_and_strategy():
    config = config_lib.build_config(parse(
        "--lr_scaling=sqrt", "--reference_batch_size=256", "--strategy=mirrored", "--epochs=5"),
        train_size=1000)
    assert config.flags["run_name"] == "cosine_lr0.1_sqrt-ref256_min0_sgd_simple_cnn_e5_mirrored_s0"


def test_run_directory_from_before_these_flags_still_resumes(tmp_path):
    config = config_lib.build_config(parse(f"--log_dir={tmp_path}", "--run_name=old"),
                                     train_size=1000)
    os.makedirs(config.run_dir)
    old = {k: v for k, v in config.flags.items()
           if k not in ("strategy", "lr_scaling", "reference_batch_size")}
    rundir.write_json_atomic(os.path.join(config.run_dir, "config.json"), {"flags": old})
    assert rundir.state(config) == "resume"


BAD = [
    ("strategy", ["--strategy=horovod"]),
    ("lr_scaling", ["--lr_scaling=cubic"]),
    ("reference_batch_size", ["--reference_batch_size=256"]),  # without --lr_scaling
    ("reference_batch_size", ["--lr_scaling=linear", "--reference_batch_size=0"]),
]


@pytest.mark.parametrize("flag,args", BAD, ids=[" ".join(a) for _, a in BAD])
def test_bad_flags_exit_2_and_write_nothing(flag, args, tmp_path):
    status, _, err = run_quietly([f"--log_dir={tmp_path / 'logs'}", *args])
    assert status == 2 and err.startswith(f"error: --{flag}: ") and err.count("\n") == 1, err
    assert not (tmp_path / "logs").exists()


_CLUSTER = {"worker": ["127.0.0.1:2001", "127.0.0.1:2002"]}
BAD_TF_CONFIG = [
    (None, "needs the TF_CONFIG environment variable"),
    ("", "needs the TF_CONFIG environment variable"),
    ("{cluster: 1}", "is not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    (json.dumps({"task": {"type": "worker", "index": 0}}), "needs \"cluster\""),
    (json.dumps({"cluster": {"worker": ["127.0.0.1"]}, "task": {"type": "worker", "index": 0}}),
     "non-empty list of \"host:port\""),
    (json.dumps({"cluster": {"ps": ["a:1"], "worker": ["b:2"]}, "task": {"type": "worker"}}),
     "'ps' is not supported"),
    (json.dumps({"cluster": _CLUSTER}), "needs \"task\""),
    (json.dumps({"cluster": _CLUSTER, "task": {"type": "chief", "index": 0}}), "needs \"task\""),
    (json.dumps({"cluster": _CLUSTER, "task": {"type": "worker", "index": 2}}),
     "task index must be in [0, 2)"),
    (json.dumps({"cluster": {"worker": ["a:1", "a:1"]}, "task": {"type": "worker"}}),
     "lists an address twice"),
]


@pytest.mark.parametrize("value,reason", BAD_TF_CONFIG, ids=[r for _, r in BAD_TF_CONFIG])
def test_multi_worker_without_a_usable_tf_config_exits_2_and_writes_nothing(
        value, reason, folder, tmp_path, monkeypatch):
    if value is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", value)
    status, _, err = run_quietly([f"--image_folder={folder}", f"--log_dir={tmp_path / 'logs'}",
                                  "--strategy=multi_worker", *TINY])
    assert status == 2 and err.startswith("error: --strategy: ") and err.count("\n") == 1, err
    assert reason in err, err
    assert not (tmp_path / "logs").exists()


def test_chief_is_the_chief_task_else_worker_0():
    from experiments.runner import distribute

    def task(cluster, task_type, index):
        spec = {"cluster": cluster, "task": {"type": task_type, "index": index}}
        return distribute.read_tf_config({"TF_CONFIG": json.dumps(spec)})

    workers = {"worker": ["h1:1", "h2:1", "h3:1"]}
    assert [task(workers, "worker", i).is_chief for i in range(3)] == [True, False, False]
    assert task(workers, "worker", 2).num_workers == 3
    with_chief = {"chief": ["h0:1"], **workers}
    assert task(with_chief, "chief", 0).is_chief
    assert not any(task(with_chief, "worker", i).is_chief for i in range(3))
    assert task(with_chief, "worker", 0).num_workers == 4
    assert task(with_chief, "worker", 1).name == "worker1"


# ---------------------------------------------------------------------------
# MirroredStrategy over two logical CPU devices, next to a one-device run.

_MIRRORED_SCRIPT = """
import contextlib, io, json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from experiments.runner import run
log_dir, strategy, *common = sys.argv[1:]
statuses = {}
bad = (("bad", "--batch_size=7"), ("bad_last", "--train_subset=25"))
for name, flag in bad if strategy == "mirrored" else ():
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        statuses[name] = run.run_command(["run", f"--log_dir={log_dir}/bad",
                                          "--strategy=mirrored", *common, flag])
    statuses[name + "_stderr"] = err.getvalue()
statuses[strategy] = run.run_command(["run", f"--log_dir={log_dir}", f"--run_name={strategy}",
                                      f"--strategy={strategy}", *common])
print("STATUSES " + json.dumps(statuses))
"""


def start(args, env, log_path):
    """A child process in its own process group, output to `log_path`."""
    with open(log_path, "w") as log:
        return subprocess.Popen(args, cwd=REPO, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
                                                     **env},
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def kill_group(process):
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def tail(path, chars=3000):
    with open(path, errors="replace") as f:
        return f.read()[-chars:]


def _mirrored_child(folder, log_dir, strategy):
    """(exit status, log path) of a _MIRRORED_SCRIPT child: the bad batches and the mirrored
    run, or the default (one-device) run."""
    log_path = f"{log_dir}.{strategy}.log"
    process = start([sys.executable, "-c", _MIRRORED_SCRIPT, str(log_dir), strategy,
                     f"--image_folder={folder}", *TINY], {}, log_path)
    try:
        process.wait(timeout=TIMEOUT_S)
    finally:
        kill_group(process)
    return process.returncode, log_path


@pytest.fixture(scope="module")
def children(folder, tmp_path_factory):
    """The real runs' child processes, two jobs at a time: the multi-worker attempts (two
    workers each, which wait on each other a lot) and the two mirrored children in turn.

    {"mirrored": [(exit status, log path)], "multi_worker": `_multi_worker`'s result}.
    """
    log_dir = tmp_path_factory.mktemp("mirrored")
    root = tmp_path_factory.mktemp("multi_worker")
    multi, mirrored_children = two_at_a_time([
        lambda: _multi_worker(folder, root),
        lambda: [_mirrored_child(folder, log_dir, strategy)
                 for strategy in ("mirrored", "default")]])
    return {"mirrored_log_dir": str(log_dir), "mirrored": mirrored_children,
            "multi_worker": multi}


@pytest.fixture(scope="module")
def mirrored(children):
    statuses = {}
    for code, log_path in children["mirrored"]:
        lines = [line for line in tail(log_path, 10**6).splitlines()
                 if line.startswith("STATUSES ")]
        assert code == 0 and lines, tail(log_path)
        statuses.update(json.loads(lines[-1][len("STATUSES "):]))
    return {"log_dir": children["mirrored_log_dir"], "statuses": statuses}


def test_batch_not_divisible_by_the_replicas_exits_2_and_writes_nothing(mirrored):
    statuses = mirrored["statuses"]
    assert statuses["bad"] == 2
    err = statuses["bad_stderr"]
    assert err.startswith("error: --batch_size: must be divisible by the 2 replicas of "
                          "--strategy=mirrored") and err.endswith("received 7\n"), err
    assert err.count("\n") == 1
    assert not os.path.exists(os.path.join(mirrored["log_dir"], "bad"))


def test_last_batch_smaller_than_the_replicas_exits_2_and_writes_nothing(mirrored):
    # 25 images, batch 8: the last batch holds 1 image for 2 replicas (Keras would
    # fail on the empty one).
    statuses = mirrored["statuses"]
    assert statuses["bad_last"] == 2
    err = statuses["bad_last_stderr"]
    assert err.startswith("error: --batch_size: leaves 1 training image(s) in the last batch "
                          "(25 % 8), fewer than the 2 replicas") and err.count("\n") == 1, err
    assert not os.path.exists(os.path.join(mirrored["log_dir"], "bad"))


def test_mirrored_trains_with_the_lrs_of_the_one_device_run(mirrored):
    assert mirrored["statuses"]["default"] == 0 and mirrored["statuses"]["mirrored"] == 0
    single = os.path.join(mirrored["log_dir"], "default")
    replicated = os.path.join(mirrored["log_dir"], "mirrored")
    assert_complete_run_dir(replicated)
    lrs = [r["learning_rate"] for r in rows_of(single)]
    assert [r["learning_rate"] for r in rows_of(replicated)] == lrs
    assert lrs == pytest.approx(TINY_LRS, rel=1e-6)
    assert all(math.isfinite(r["loss"]) for r in rows_of(replicated))
    record = read_json(os.path.join(replicated, "config.json"))
    derived = record["derived"]
    assert (derived["num_replicas"], derived["per_replica_batch_size"]) == (2, 4)
    assert (derived["steps_per_epoch"], derived["total_steps"]) == (3, 9)
    assert derived["lr_scale"] == 2.0 and derived["effective_lr"] == pytest.approx(0.1)
    assert record["flags"]["lr"] == 0.05 and record["flags"]["reference_batch_size"] == 4
    assert any(d.endswith("CPU:1") for d in record["environment"]["devices"])
    assert read_json(os.path.join(single, "config.json"))["derived"]["num_replicas"] == 1


# ---------------------------------------------------------------------------
# MultiWorkerMirroredStrategy: two worker processes on loopback, killed and resumed.


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def run_workers(argvs, tmp_dirs, logs, chief_env=None):
    """Runs one runner process per worker (worker 0 is the chief); returns their exit codes.

    With `chief_env` (a test kill), the other workers are killed once the chief exits.
    """
    cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(len(tmp_dirs))]}
    processes = []
    try:
        for index, (argv, tmp_dir, log) in enumerate(zip(argvs, tmp_dirs, logs)):
            tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
            env = {"TF_CONFIG": json.dumps(tf_config), "TMPDIR": str(tmp_dir),
                   **(chief_env or {} if index == 0 else {})}
            processes.append(start([*HOOKED_RUN, *argv], env, log))
        processes[0].wait(timeout=TIMEOUT_S)
        if chief_env:
            return [processes[0].returncode]
        for process in processes[1:]:
            process.wait(timeout=TIMEOUT_S)
        return [p.returncode for p in processes]
    finally:
        for process in processes:
            kill_group(process)


@pytest.fixture(scope="module")
def multi_worker(children):
    result = children["multi_worker"]
    if isinstance(result, AssertionError):
        raise result
    return result


def _multi_worker(folder, root):
    """The attempts below; an AssertionError (returned) where one went wrong."""
    try:
        return _multi_worker_attempts(folder, root)
    except AssertionError as error:
        return error


def _multi_worker_attempts(folder, root):
    log_dir, tmp_dirs = root / "logs", [root / "tmp0", root / "tmp1"]
    for tmp_dir in tmp_dirs:
        tmp_dir.mkdir()
    argv = [f"--image_folder={folder}", f"--log_dir={log_dir}", "--run_name=mw",
            "--strategy=multi_worker", *TINY]
    # Attempt 1: the chief is killed (-9) after its epoch-0 backup, as by a preemption;
    # the other worker is then killed too.
    logs = [root / "first0.log", root / "first1.log"]
    codes = run_workers([argv, argv], tmp_dirs, logs,
                        {hooked_run.KILL_ENV: "0:after_backup"})
    assert codes == [-9], tail(logs[0])
    run_dir = log_dir / "mw"
    assert len(rows_of(run_dir)) == 1 and (run_dir / "backup").is_dir()
    # Worker 1 cannot see the chief's run directory (another --log_dir, as
    # without a shared file system): it would start at epoch 0, the chief at 1.
    elsewhere = root / "elsewhere"
    unshared = [root / "unshared0.log", root / "unshared1.log"]
    before = sorted(os.listdir(run_dir)), (run_dir / "history.csv").read_bytes()
    unshared_codes = run_workers([argv, [*argv, f"--log_dir={elsewhere}"]], tmp_dirs, unshared)
    unshared_result = {"codes": unshared_codes, "logs": unshared,
                       "unchanged": before == (sorted(os.listdir(run_dir)),
                                               (run_dir / "history.csv").read_bytes()),
                       "elsewhere_exists": elsewhere.exists()}
    # Attempt 2: the same command resumes at epoch 1 and finishes.
    logs = [root / "second0.log", root / "second1.log"]
    codes = run_workers([argv, argv], tmp_dirs, logs)
    assert codes == [0, 0], tail(logs[0]) + tail(logs[1])
    return {"log_dir": log_dir, "run_dir": run_dir, "tmp_dirs": tmp_dirs, "logs": logs,
            "unshared": unshared_result}


def test_multi_worker_chief_writes_a_complete_run_and_workers_leave_nothing(multi_worker):
    run_dir = multi_worker["run_dir"]
    assert_complete_run_dir(run_dir)
    assert os.listdir(multi_worker["log_dir"]) == ["mw"]
    # Worker 1 wrote only into a temporary directory, gone now (a leftover of the
    # killed attempt too). (TensorFlow leaves its own autograph files in TMPDIR.)
    for tmp_dir in multi_worker["tmp_dirs"]:
        assert not glob.glob(os.path.join(tmp_dir, "kschedules-*")), os.listdir(tmp_dir)
    assert "worker1 done; the chief writes" in tail(multi_worker["logs"][1])
    derived = read_json(run_dir / "config.json")["derived"]
    assert (derived["num_workers"], derived["num_replicas"]) == (2, 2)
    assert derived["per_replica_batch_size"] == 4
    summary = read_json(run_dir / "summary.json")
    assert summary["status"] == "completed" and summary["epochs_completed"] == 3
    assert summary["resumed_from_epoch"] == 1


def test_workers_that_would_resume_differently_all_stop_with_exit_2(multi_worker):
    result = multi_worker["unshared"]
    assert result["codes"] == [2, 2], [tail(log) for log in result["logs"]]
    for log in result["logs"]:
        errors = [line for line in tail(log, 10**6).splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and errors[0].startswith(
            "error: --log_dir: the workers would resume from different epochs ([0, 1])"), errors
        assert "Traceback" not in tail(log, 10**6)
    assert result["unchanged"] and not result["elsewhere_exists"]


def test_multi_worker_resumed_run_matches_mirrored_batch_for_batch(multi_worker, mirrored):
    rows = rows_of(multi_worker["run_dir"])
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    assert [r["learning_rate"] for r in rows] == pytest.approx(TINY_LRS, rel=1e-6)
    # Two workers x 1 replica, sharded by batch, see each step the per-replica
    # batches of MirroredStrategy's 2 replicas: the training losses agree
    # (also after the resume, where worker 1 reloaded the chief's backup).
    reference = rows_of(os.path.join(mirrored["log_dir"], "mirrored"))
    for column in ("loss", "accuracy"):
        assert [r[column] for r in rows] == pytest.approx(
            [r[column] for r in reference], rel=1e-4, abs=1e-6), column

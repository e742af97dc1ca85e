"""Tests for `--parallel`: the suite's runs several at once (experiments/parallel.py).

Two kinds. The scheduling (the LR tuning stage before the runs that need it, the
progress line, failures, runs in use, Ctrl-C) with `FakeRunner` (tests/test_experiments/test_suite.py)
in a pool of threads, fast. Then real trainings on a local Ray with 2 CPUs: two at
once (the start and end times each run's log records overlap), the report a
sequential suite writes from the same runs, a suite stopped with SIGINT mid-way
and started again (nothing trained twice).
"""

import datetime
import glob
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
from run_helpers import make_image_folder, read_history, snapshot
from test_suite import FakeRunner

from experiments import parallel, studies, suite
from experiments.runner import runlock

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROGRESS = re.compile(r"^\[suite\] .+ \| \d+ done, (\d+ failed, )?\d+ running, \d+ left; elapsed \d+:\d\d:\d\d, "
                      r"estimated remaining (\d+:\d\d:\d\d|unknown until a run finishes)$")


class ThreadPool:
    """A stand-in for parallel.RayPool: `slots` threads, each job `runner(job.command)`; records spans."""

    def __init__(self, runner, slots=2, seconds=0.05):
        self.runner, self.slots, self.seconds = runner, slots, seconds
        self.ended, self.busy, self.spans = queue.Queue(), set(), {}
        self.stop_requested = threading.Event()
        self.closed = False

    def capacity(self):
        return self.slots

    def free(self):
        return self.slots - len(self.busy)

    def start(self, job):
        handle = object()
        self.busy.add(handle)

        def work():
            began = time.monotonic()
            code = 143 if self.stop_requested.wait(self.seconds) else self.runner(job.command)
            self.spans[job.label] = (began, time.monotonic())
            self.ended.put((handle, parallel.Outcome(code)))

        threading.Thread(target=work, daemon=True).start()
        return handle

    def wait(self, timeout):
        try:
            handle, outcome = self.ended.get(timeout=timeout)
        except queue.Empty:
            return []
        self.busy.discard(handle)
        return [(handle, outcome)]

    def stop_all(self):
        self.stop_requested.set()

    def close(self):
        self.closed = True


def _progress_lines(out):
    lines = [line for line in out.splitlines() if line.startswith("[suite]")]
    events = [line for line in lines if " | " in line]
    assert events and all(PROGRESS.match(line) for line in events), "\n".join(events)
    return events


# ----------------------------------------------------------------------------
# Flags and Ray's absence (no Ray started).


def test_parallel_1_never_imports_ray(tmp_path):
    code = (
        "import sys; sys.path[:0] = ['tests', 'tests/test_experiments']\n"
        "from test_suite import FakeRunner\n"
        "from experiments import suite\n"
        f"status = suite.main(['--exercise=poly', '--epochs=4', '--lr=0.1', '--log_dir={tmp_path}'], "
        "call=FakeRunner())\n"
        "assert status == 0, status\n"
        "print('ray' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"
    assert os.path.exists(tmp_path / "poly" / "report_e4" / "report.md")


def test_parallel_without_ray_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    fake = FakeRunner()
    log_dir = tmp_path / "l"
    assert suite.main(["--exercise=poly", "--lr=0.1", "--parallel=2", f"--log_dir={log_dir}"], call=fake) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["suite: --parallel > 1 runs the trainings on Ray, which is not installed: "
                   "pip install -e \".[ray]\" (or pass --parallel=1)"]
    assert fake.commands == [] and not log_dir.exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--parallel=0"], "argument --parallel: must be >= 1, received 0"),
        (["--gpus_per_run=1"], "--gpus_per_run applies only with --parallel > 1"),
        (["--ray_address=auto"], "--ray_address applies only with --parallel > 1"),
        (["--parallel=2", "--cpus_per_run=0"], "argument --cpus_per_run: must be > 0, received 0"),
        (["--parallel=2", "--gpus_per_run=1.5"], "argument --gpus_per_run: must be 0 to 1 or a whole number"),
        (["--parallel=2", "--gpus_per_run=-1"], "argument --gpus_per_run: must be 0 to 1 or a whole number"),
        (["--parallel=2", "--ray_address=somewhere"], "--ray_address must be auto or HOST:PORT, received 'somewhere'"),
        (["--parallel=3", "--gpus_per_run=1"], "--parallel=3 runs of --gpus_per_run=1 need 3 GPUs, this machine has 2"),
    ],
)
def test_bad_parallel_flags_exit_2_with_one_line(extra, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(parallel, "local_gpu_count", lambda: 2)
    log_dir = tmp_path / "l"
    argv = ["--exercise=poly", "--lr=0.1", f"--log_dir={log_dir}"] + extra
    try:
        status = suite.main(argv, call=FakeRunner(), make_pool=None)
    except SystemExit as e:
        status = e.code
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not log_dir.exists()


def test_local_gpu_count_reads_cuda_visible_devices(monkeypatch):
    for visible, count in (("0,1", 2), ("", 0), ("3", 1), ("0,-1,2", 1)):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
        assert parallel.local_gpu_count() == count


# ----------------------------------------------------------------------------
# Scheduling, with a pool of threads.


def test_tuning_ends_before_the_runs_that_need_its_lr(tmp_path, capsys):
    log_dir = str(tmp_path / "logs")
    fake = FakeRunner(min_loss_lr=0.1)
    pool = ThreadPool(fake, slots=3)
    images = make_image_folder(tmp_path / "imgs", classes=2, train_per_class=2, test_per_class=1)
    argv = ["--exercise=all", "--epochs=10", f"--log_dir={log_dir}", "--parallel=3", f"--image_folder={images}"]
    assert suite.main(argv, make_pool=lambda: pool) == 0
    spans = pool.spans
    range_test = spans.pop("the LR range test")
    sweep = {k: v for k, v in spans.items() if k in ("step/constant_lr0.01_e10_seed0", "step/constant_lr0.03_e10_seed0",
                                                    "step/constant_lr0.1_e10_seed0")}
    warmup = {k: v for k, v in spans.items() if k.startswith("warmup/")}
    tuned = {k: v for k, v in spans.items() if k not in sweep and k not in warmup}
    assert len(sweep) == 3 and len(warmup) == 6 and len(tuned) == 9 + 7 + 4
    assert all("_lr0.03" in k or "_lr0.09" in k for k in tuned)  # the sweep's winner, and 3x it
    assert range_test[1] <= min(start for start, _ in sweep.values())
    assert max(end for _, end in sweep.values()) <= min(start for start, _ in tuned.values())
    # The warmup runs need no LR: they fill the free slots meanwhile.
    assert min(start for start, _ in warmup.values()) < range_test[1]
    assert len(fake.commands) == 1 + 3 + 6 + 20 and pool.closed
    out = capsys.readouterr().out
    events = _progress_lines(out)
    assert "started step/constant_lr0.01_e10_seed0 (LR sweep, new)" in out
    assert "| 0 done, 1 running, 29 left;" in events[0]  # the 30 jobs counted from the start
    assert events[-1].split(" | ")[1].startswith("30 done, 0 running, 0 left; ")
    assert events[-1].endswith("estimated remaining 0:00:00")
    for exercise in studies.NAMES:
        assert os.path.exists(os.path.join(log_dir, exercise, "report_e10", "report.md"))


def test_data_from_tensorflow_datasets_is_loaded_by_one_run_first(tmp_path, capsys):
    # Without --image_folder the first run may download and prepare CIFAR-10: the others wait
    # until it has loaded the data (its config.json exists; the fake writes it when it starts).
    pool = ThreadPool(FakeRunner(), slots=2, seconds=0.3)
    argv = ["--exercise=poly", "--epochs=4", "--lr=0.1", f"--log_dir={tmp_path}", "--parallel=2"]
    assert suite.main(argv, make_pool=lambda: pool) == 0
    first, second, third, fourth = sorted(pool.spans.values())
    assert second[0] >= first[0] + 0.3  # only once the first wrote its config.json
    assert third[0] < second[1] and fourth[0] >= third[0]  # then two at once
    capsys.readouterr()
    # Again: nothing to train, and no pool (no Ray) is started.
    assert suite.main(argv, make_pool=lambda: pytest.fail("a pool was started")) == 0
    out = capsys.readouterr().out
    assert "started" not in out
    assert _progress_lines(out) == [
        "[suite] 4 run(s) finished already, skipped (poly/linear_lr0.1_e4_seed0, poly/poly_p0.5_lr0.1_e4_seed0, "
        "poly/poly_p2_lr0.1_e4_seed0, ...) | 4 done, 0 running, 0 left; elapsed 0:00:00, estimated remaining 0:00:00"]


def test_a_failed_run_is_reported_with_its_log_and_the_others_go_on(tmp_path, capsys):
    log_dir = tmp_path / "logs"
    fake = FakeRunner(fail_names={"poly_p0.5_lr0.1_e4"})
    argv = ["--exercise=poly", "--epochs=4", "--lr=0.1", f"--log_dir={log_dir}", "--parallel=2"]
    assert suite.main(argv, make_pool=lambda: ThreadPool(fake)) == 1
    captured = capsys.readouterr()
    log = log_dir / "poly" / "logs" / "poly_p0.5_lr0.1_e4_seed0.log"
    assert (f"[suite] poly/poly_p0.5_lr0.1_e4_seed0 failed (exit status 1); its output: {log}; the others go on | "
            in captured.out)
    assert len(fake.commands) == 4
    assert "1 of 4 runs failed" in captured.err
    assert _progress_lines(captured.out)[-1].split(" | ")[1].startswith("3 done, 1 failed, 0 running, 0 left")


def test_a_run_in_use_is_not_started_twice(tmp_path, capsys):
    log_dir = tmp_path / "logs"
    fake = FakeRunner()
    argv = ["--exercise=poly", "--epochs=4", "--lr=0.1", f"--log_dir={log_dir}", "--parallel=2"]
    with runlock.acquire(str(log_dir / "poly"), "poly_p2_lr0.1_e4_seed0"):
        assert suite.main(argv, make_pool=lambda: ThreadPool(fake)) == 1
    out = capsys.readouterr().out
    assert f"poly/poly_p2_lr0.1_e4_seed0 is in use by process {os.getpid()}, not started twice | " in out
    assert len(fake.commands) == 3 and not any("--run_name=poly_p2_lr0.1_e4_seed0" in c for c in fake.commands)


def test_ctrl_c_stops_every_run_and_says_how_to_resume(tmp_path, capsys):
    fake = FakeRunner()
    pool = ThreadPool(fake, seconds=30)
    waits = []

    def wait(timeout):  # Ctrl-C while both runs train
        waits.append(timeout)
        if len(waits) == 1:
            raise KeyboardInterrupt
        return ThreadPool.wait(pool, timeout)

    pool.wait = wait
    argv = ["--exercise=poly", "--epochs=4", "--lr=0.1", f"--log_dir={tmp_path / 'l'}", "--parallel=2",
            "--image_folder=imgs"]
    began = time.monotonic()
    assert suite.main(argv, make_pool=lambda: pool) == 130
    assert time.monotonic() - began < 10  # the runs stopped when asked, not after their 30 s
    captured = capsys.readouterr()
    assert "[suite] stopping 2 running job(s): each stops before its next batch" in captured.out
    assert "run the same command again to resume" in captured.err
    assert pool.stop_requested.is_set() and pool.closed and not pool.busy
    assert fake.commands == []


# ----------------------------------------------------------------------------
# Real trainings on a local Ray with 2 CPUs.

ATTEMPT = re.compile(r"^\[suite\] (\S+) start on \S+ \(CUDA_VISIBLE_DEVICES='([^']*)'\)")
END = re.compile(r"^\[suite\] (\S+) end: exit status (-?\d+)")


def _attempts(log_path):
    """[{start, end, devices, exit, epochs}] of each attempt in a run's log (epochs: those it completed)."""
    attempts = []
    with open(log_path) as f:
        for line in f:
            if m := ATTEMPT.match(line):
                attempts.append({"start": datetime.datetime.fromisoformat(m[1]), "devices": m[2], "epochs": []})
            elif m := END.match(line):
                attempts[-1].update(end=datetime.datetime.fromisoformat(m[1]), exit=int(m[2]))
            elif m := re.match(r"^epoch (\d+)/\d+ ", line):
                attempts[-1]["epochs"].append(int(m[1]))
    return attempts


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("images"), train_per_class=4, test_per_class=2)


def _argv(images, log_dir, epochs):
    return ["--exercise=poly", f"--epochs={epochs}", "--lr=0.05", "--batch_size=16", f"--image_folder={images}",
            f"--log_dir={log_dir}"]


def _held(run_dirs):
    return [d for d in run_dirs if runlock.holder(*os.path.split(d)) is not None]


def _suite(argv, env, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "experiments.suite"] + argv, cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def test_on_ray_two_at_once_stopped_resumed_nothing_twice_and_the_sequential_report(images, tmp_path, capsys):
    """Four runs of 6 epochs, --parallel=2 on a local Ray with 2 CPUs; Ctrl-C once one run has
    finished and another is under way (3 epochs or more to go); the same command again; then a
    sequential suite."""
    # Two simulated GPUs: Ray gives each run its own (CUDA_VISIBLE_DEVICES), TensorFlow finds none.
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="0,1")
    log_dir = tmp_path / "logs"
    epochs = 6
    argv = _argv(images, log_dir, epochs)
    names = [f"{d}_lr0.05_e{epochs}_b16_seed0" for d in ("linear", "poly_p0.5", "poly_p2", "poly_p3")]
    REPORT = os.path.join(f"report_e{epochs}_b16", "report.md")  # named as the runs
    dirs = [str(log_dir / "poly" / n) for n in names]
    logs = {d: os.path.join(log_dir, "poly", "logs", os.path.basename(d) + ".log") for d in dirs}

    process = _suite(argv + ["--parallel=2", "--cpus_per_run=1"], env, start_new_session=True)
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline and process.poll() is None:
        finished = [d for d in dirs if os.path.exists(os.path.join(d, "summary.json"))]
        if finished and any(d not in finished and os.path.exists(os.path.join(d, "history.csv"))
                            and 1 <= len(read_history(d)[1]) <= epochs - 3 for d in dirs):
            break  # mid-way: a run finished, another with epochs to go
        time.sleep(0.1)
    assert process.poll() is None, process.communicate()
    os.killpg(process.pid, signal.SIGINT)  # the terminal's Ctrl-C
    out, err = process.communicate(timeout=90)
    assert process.returncode == 130, err
    assert "[suite] interrupted: run the same command again to resume" in err
    assert re.search(r"^\[suite\] stopping [12] running job\(s\)", out, re.M)
    assert _held(dirs) == []  # every run stopped: none still trains
    _progress_lines(out)
    finished = [d for d in dirs if os.path.exists(os.path.join(d, "summary.json"))]
    stopped = [d for d in dirs if d not in finished and os.path.exists(os.path.join(d, "config.json"))]
    assert finished and stopped
    before = {d: snapshot(d) for d in finished}

    rerun = _suite(argv + ["--parallel=2"], env)
    out, err = rerun.communicate(timeout=240)
    assert rerun.returncode == 0, err
    print(out)
    assert f"{len(finished)} run(s) finished already, skipped" in out
    assert _progress_lines(out)[-1].split(" | ")[1].startswith("4 done, 0 running, 0 left;")
    for d in finished:
        assert snapshot(d) == before[d]  # not started again
    for d in stopped:
        assert f"started poly/{os.path.basename(d)} (resuming)" in out
    attempts = {d: _attempts(logs[d]) for d in dirs}
    for d in dirs:
        _, rows = read_history(d)
        assert [r["epoch"] for r in rows] == list(range(epochs))
        trained = [e for a in attempts[d] for e in a["epochs"]]
        assert sorted(trained) == list(range(1, epochs + 1)), (d, attempts[d])  # each epoch once
        if d not in finished:  # (one that had written its summary may end by the SIGTERM)
            assert attempts[d][-1]["exit"] == 0

    # Two at once, each on its own GPU, never more.
    spans = sorted((a["start"], a["end"], a["devices"]) for d in dirs for a in attempts[d])
    (s1, e1, d1), (s2, e2, d2) = spans[:2]
    assert s2 < e1 and {d1, d2} == {"0", "1"}
    for start, _, _ in spans:
        assert sum(s <= start < e for s, e, _ in spans) <= 2

    # A sequential suite over the same runs trains nothing and writes the same report.
    parallel_report = (log_dir / "poly" / REPORT).read_text()
    capsys.readouterr()
    assert suite.main(argv, call=lambda command: pytest.fail(f"trained again: {command}")) == 0
    assert capsys.readouterr().out.count("finished already, skipped") == 4
    assert (log_dir / "poly" / REPORT).read_text() == parallel_report

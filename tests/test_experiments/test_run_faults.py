"""experiments.run under faults (issue 14): a second process, damaged or leftover files, a full
disk, an unwritable --log_dir, SIGTERM and SIGINT. Tiny generated image folder, 3 epochs of
3 steps; most cases work on copies of one run killed (kill -9) after the backup of epoch 2.
"""

import errno
import io
import os
import pathlib
import shutil
import signal
import subprocess
import time

import pytest
import hooked_run
from run_helpers import (HOOKED_RUN, REPO, TINY, TINY_LRS, read_history, read_json, run_quietly, snapshot,
                         stderr_lines)

from experiments import report, suite
from experiments.runner import config as config_lib
from experiments.runner import runlock, train

# TINY (run_helpers), as in test_run_end_to_end: 3 steps per epoch, LR 0.01, 0.05, 0.025 at
# the epochs' starts.
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


@pytest.fixture(scope="module")
def folder(tiny_folder):
    return tiny_folder


def argv_for(folder, log_dir, *extra):
    return [f"--image_folder={folder}", f"--log_dir={log_dir}", "--run_name=r", *TINY, *extra]


def _runner(argv, **kwargs):
    return [*HOOKED_RUN, *argv], dict(cwd=REPO, text=True, **kwargs)


@pytest.fixture(scope="module")
def interrupted(child_jobs, killed_runs, folder):
    """<log_dir>/r killed by SIGKILL at the end of epoch 1: rows 0-1, backup at epoch 2.

    The one test_run_end_to_end resumes too (run_helpers.KILLS, made once): copy it.
    """
    (killed,) = child_jobs.get(killed_runs.jobs("1:after_backup")).values()
    (attempt,) = killed["attempts"]
    assert attempt["returncode"] == -9, attempt["stderr"][-2000:]
    assert killed_runs.argv(killed["log_dir"]) == argv_for(folder, killed["log_dir"])
    return pathlib.Path(killed["log_dir"])


def copy_of(run, tmp_path):
    """A copy of the log folder `run`; returns (log_dir, run_dir)."""
    log_dir = tmp_path / "logs"
    shutil.copytree(run, log_dir)
    return log_dir, log_dir / "r"


def one_error_line(err, start="error: --run_name: "):
    lines = stderr_lines(err)
    assert len(lines) == 1 and lines[0].startswith(start), err
    return lines[0]


# --- 1. One process per run directory.


def test_a_second_process_is_refused_naming_the_holder_and_sigint_stops_the_first(folder, tmp_path):
    """The first process pauses after epoch 0 (test hook); meanwhile the same command, and the
    suite, are refused; then SIGINT stops the first at its next safe point."""
    marker = tmp_path / "paused"
    log_dir = tmp_path / "logs"
    run_dir = log_dir / "r"
    argv = argv_for(folder, log_dir)
    command, options = _runner(argv, env={**ENV, hooked_run.PAUSE_ENV: f"0:{marker}"},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = subprocess.Popen(command, **options)
    try:
        deadline = time.monotonic() + 150
        while not marker.exists():
            assert first.poll() is None, "the first process ended without pausing"
            assert time.monotonic() < deadline, "the first process never paused"
            time.sleep(0.05)
        before = snapshot(run_dir)
        status, out, err = run_quietly(argv)
        line = one_error_line(err)
        assert status == 2
        assert line == (f"error: --run_name: {str(run_dir)!r} is in use by process {first.pid} (it "
                        f"holds {str(log_dir / '.r.lock')!r}); wait until it ends or stop it, then "
                        "run the same command again")
        assert snapshot(run_dir) == before
        # The suite does not start a run another process holds.
        planned = suite.PlannedRun("step", "r", str(run_dir), argv)
        calls, progress = [], io.StringIO()
        assert suite.execute([planned], call=calls.append, stream=progress) == [planned]
        assert calls == [] and f"in use by process {first.pid}, not started twice" in progress.getvalue()
        first.send_signal(signal.SIGINT)
        marker.unlink()
        out, err = first.communicate(timeout=150)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 128 + signal.SIGINT, err[-2000:]
    assert "Traceback" not in err
    assert stderr_lines(err)[-1] == ("interrupted by SIGINT: the run resumes at epoch 2/3 when the "
                                     "same command is run again")
    _, rows = read_history(run_dir)
    assert [r["epoch"] for r in rows] == [0]
    assert read_json(run_dir / "backup" / "training_metadata.json")["epoch"] == 1
    assert os.listdir(log_dir) == ["r"]  # the lock file went with its process


def test_the_lock_names_its_holder_and_a_dead_holders_file_is_no_lock(tmp_path):
    log_dir = tmp_path / "a" / "b"
    (tmp_path / "a").mkdir()
    with runlock.acquire(str(log_dir), "r"):
        assert (log_dir / ".r.lock").read_text().split()[0] == str(os.getpid())
        assert runlock.holder(str(log_dir), "r") == f"process {os.getpid()}"
        with pytest.raises(config_lib.FlagError, match=f"is in use by process {os.getpid()}"):
            runlock.acquire(str(log_dir), "r")
    assert runlock.holder(str(log_dir), "r") is None
    assert not log_dir.exists() and (tmp_path / "a").exists()  # only what it created is removed
    # A kill -9 leaves the file; the kernel has dropped the lock with the process.
    log_dir.mkdir()
    (log_dir / ".r.lock").write_text("999999999 elsewhere\n")
    assert runlock.holder(str(log_dir), "r") is None
    with runlock.acquire(str(log_dir), "r"):
        assert runlock.holder(str(log_dir), "r") == f"process {os.getpid()}"


# --- 2, 4, 6. Resuming checks the files against the backup.


def _drop_line(path, index):
    lines = path.read_text().splitlines(keepends=True)
    del lines[index]
    path.write_text("".join(lines))


def _cut(path, keep):
    os.truncate(path, keep(os.path.getsize(path)))


def _weights(run_dir):
    (name,) = [n for n in os.listdir(run_dir / "backup") if n.endswith(".weights.h5")]
    return run_dir / "backup" / name


DAMAGE = {
    "history row deleted": (lambda d: _drop_line(d / "history.csv", 1), "history.csv line 2"),
    "history deleted": (lambda d: (d / "history.csv").unlink(), "history.csv is missing"),
    "history last row torn": (lambda d: _cut(d / "history.csv", lambda n: n - 8),
                              "history.csv line 3 (epoch 1) is cut short"),
    "learning_rate deleted": (lambda d: (d / "learning_rate.csv").unlink(),
                              "learning_rate.csv is missing"),
    "learning_rate row torn": (lambda d: _cut(d / "learning_rate.csv", lambda n: n - 1),
                               "learning_rate.csv line 3 (epoch 1) is cut short"),
    "metadata empty": (lambda d: _cut(d / "backup" / "training_metadata.json", lambda n: 0),
                       "training_metadata.json is empty"),
    "metadata truncated": (lambda d: _cut(d / "backup" / "training_metadata.json", lambda n: 10),
                           "training_metadata.json is not valid JSON"),
    "config empty": (lambda d: _cut(d / "config.json", lambda n: 0), "config.json is empty"),
    "weights deleted": (lambda d: _weights(d).unlink(), "epoch-2.weights.h5 is missing"),
    "weights empty": (lambda d: _cut(_weights(d), lambda n: 0), "epoch-2.weights.h5 cannot be read"),
    "weights truncated": (lambda d: _cut(_weights(d), lambda n: n // 2),
                          "epoch-2.weights.h5 cannot be read"),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_damage_the_backup_covers_is_refused_in_one_line(case, interrupted, folder, tmp_path):
    log_dir, run_dir = copy_of(interrupted, tmp_path)
    damage, expected = DAMAGE[case]
    damage(run_dir)
    before = snapshot(run_dir)
    status, out, err = run_quietly(argv_for(folder, log_dir))
    line = one_error_line(err)
    assert status == 2 and expected in line and line.endswith(
        "pass --overwrite to train the run again from the start"), line
    assert snapshot(run_dir) == before and os.listdir(log_dir) == ["r"]


@pytest.mark.parametrize("name", ["history.csv", "learning_rate.csv"])
def test_a_file_deleted_while_training_stops_the_run(name, folder, tmp_path, monkeypatch):
    log_dir = tmp_path / "logs"
    original = train.EpochRecorder.on_epoch_begin

    def delete_at_epoch_1(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 1:
            os.remove(log_dir / "r" / name)

    monkeypatch.setattr(train.EpochRecorder, "on_epoch_begin", delete_at_epoch_1)
    status, out, err = run_quietly(argv_for(folder, log_dir))
    line = one_error_line(err)
    assert status == 2 and f"{log_dir / 'r' / name} " in line
    assert "changed or deleted while the run was training" in line
    assert not (log_dir / "r" / "summary.json").exists()


def test_no_backup_yet_trains_the_recorded_epochs_again_and_says_so(interrupted, folder,
                                                                    tmp_path):
    log_dir, run_dir = copy_of(interrupted, tmp_path)
    (run_dir / "backup" / "training_metadata.json").unlink()  # as if killed during the first
    status, out, err = run_quietly(argv_for(folder, log_dir))
    assert status == 0, err
    assert "(resume at epoch 1/3; no backup yet, so the 2 recorded epoch(s) are trained again)" in out
    _, rows = read_history(run_dir)
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    assert read_json(run_dir / "summary.json")["resumed_from_epoch"] == 0


def test_stopped_in_its_first_epoch_trains_again_from_the_start(interrupted, folder, tmp_path):
    # A SIGTERM during epoch 0 (as a parallel suite's Ctrl-C sends): config.json, no history.csv.
    log_dir, run_dir = copy_of(interrupted, tmp_path)
    shutil.rmtree(run_dir / "backup")
    (run_dir / "history.csv").unlink()
    status, out, err = run_quietly(argv_for(folder, log_dir))
    assert status == 0, err
    assert "(resume at epoch 1/3)" in out
    _, rows = read_history(run_dir)
    assert [r["epoch"] for r in rows] == [0, 1, 2]


# --- 9. SIGTERM (in this process), then resume.


@pytest.fixture(scope="module")
def finished(interrupted, folder, tmp_path_factory):
    """The killed run resumed, stopped by SIGTERM at epoch 2's start, and resumed again (with a
    SIGTERM after its last batch, which lets it finish)."""
    log_dir, run_dir = copy_of(interrupted, tmp_path_factory.mktemp("sigterm"))
    argv = argv_for(folder, log_dir)
    original_begin, original_end = train.EpochRecorder.on_epoch_begin, train.EpochRecorder.on_epoch_end

    def sigterm_at_epoch_2(self, epoch, logs=None):
        original_begin(self, epoch, logs)
        if epoch == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    def sigterm_after_the_last(self, epoch, logs=None):
        original_end(self, epoch, logs)
        if epoch == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    def unhandled(signum, frame):
        raise AssertionError("SIGTERM reached the test's own handler, not the runner's")

    previous = signal.signal(signal.SIGTERM, unhandled)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(train.EpochRecorder, "on_epoch_begin", sigterm_at_epoch_2)
            stopped = run_quietly(argv)
        after_stop = read_history(run_dir)[1]
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(train.EpochRecorder, "on_epoch_end", sigterm_after_the_last)
            resumed = run_quietly(argv)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return {"log_dir": log_dir, "dir": run_dir, "argv": argv, "stopped": stopped,
            "rows_after_stop": after_stop, "resumed": resumed}


def test_sigterm_stops_at_a_safe_point_and_says_how_to_resume(finished):
    status, out, err = finished["stopped"]
    assert status == 128 + signal.SIGTERM
    assert stderr_lines(err) == ["interrupted by SIGTERM: the run resumes at epoch 3/3 when the "
                                 "same command is run again"]
    assert [r["epoch"] for r in finished["rows_after_stop"]] == [0, 1]
    status, out, err = finished["resumed"]
    assert status == 0, err  # its SIGTERM came after the last batch: it finished
    assert "(resume at epoch 3/3)" in out and stderr_lines(err) == []
    _, rows = read_history(finished["dir"])
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    assert [r["learning_rate"] for r in rows] == pytest.approx(TINY_LRS, rel=1e-6)
    assert read_json(finished["dir"] / "summary.json")["resumed_from_epoch"] == 2


# --- 3, 10. A finished run's summary.json and leftovers.


@pytest.mark.parametrize("content,expected", [
    ("", "summary.json is empty"),
    ('{"status": "compl', "summary.json is not valid JSON"),
    ("[]", "summary.json must hold a JSON object"),
])
def test_a_damaged_summary_is_an_error_naming_the_file(content, expected, finished, folder,
                                                      tmp_path):
    log_dir, run_dir = copy_of(finished["log_dir"], tmp_path)
    (run_dir / "summary.json").write_text(content)
    before = snapshot(run_dir)
    status, out, err = run_quietly(argv_for(folder, log_dir))
    line = one_error_line(err)
    assert status == 2 and f"{run_dir / 'summary.json'} " in line and expected in line
    assert line.endswith("pass --overwrite to train the run again")
    assert snapshot(run_dir) == before
    # The suite does not take it for finished: it runs the runner, which says the above.
    assert not suite.is_finished(suite.PlannedRun("step", "r", str(run_dir), []))


def test_report_names_a_damaged_summary(finished, tmp_path, capsys):
    log_dir, run_dir = copy_of(finished["log_dir"], tmp_path)
    (run_dir / "summary.json").write_text("")
    assert report.main([str(run_dir), "--log_dir", str(tmp_path / "report")]) == 2
    assert capsys.readouterr().err == f"{run_dir / 'summary.json'} is empty\n"


def test_a_backup_left_next_to_summary_is_removed(finished, interrupted, folder, tmp_path):
    log_dir, run_dir = copy_of(finished["log_dir"], tmp_path)
    shutil.copytree(interrupted / "r" / "backup", run_dir / "backup")
    before = snapshot(run_dir)
    status, out, err = run_quietly(argv_for(folder, log_dir))
    assert status == 0 and "removed the backup/ its last attempt left" in out, err
    assert not (run_dir / "backup").exists()
    assert snapshot(run_dir) == {k: v for k, v in before.items() if not k.startswith("backup")}


# --- 5. A kill while config.json was being written.


def test_a_start_up_leftover_is_started_again(folder, tmp_path):
    log_dir = tmp_path / "logs"
    (log_dir / "r").mkdir(parents=True)
    (log_dir / "r" / "config.json.tmp").write_text('{"fla')
    (log_dir / ".r.lock").write_text("999999999 elsewhere\n")  # and its dead process's lock file
    status, out, err = run_quietly(argv_for(folder, log_dir, "--epochs=2"))
    assert status == 0, err
    assert sorted(os.listdir(log_dir / "r")) == ["config.json", "curves.png", "history.csv",
                                                 "learning_rate.csv", "model.keras", "summary.json",
                                                 "tensorboard"]
    assert read_json(log_dir / "r" / "config.json")["flags"]["run_name"] == "r"
    assert os.listdir(log_dir) == ["r"]


# --- 7. A full disk while writing the backup.


def test_a_full_disk_while_writing_the_backup_keeps_the_last_one(folder, tmp_path, monkeypatch):
    import keras

    log_dir = tmp_path / "logs"
    backup = log_dir / "r" / "backup"
    original = keras.Model.save_weights
    calls = []

    def disk_full_at_the_second(self, filepath, *args, **kwargs):
        calls.append(filepath)
        if len(calls) < 2:
            return original(self, filepath, *args, **kwargs)
        with open(filepath, "wb") as f:
            f.write(b"\x89HDF\r\n\x1a\n" + bytes(4096))  # what got written before the disk filled
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(keras.Model, "save_weights", disk_full_at_the_second)
    argv = argv_for(folder, log_dir)
    status, out, err = run_quietly(argv)
    assert status == 1
    assert one_error_line(err, "error: no space left") == (
        f"error: no space left on {log_dir} (writing {backup / 'partial-epoch-2.weights.h5'}); "
        "the run resumes at epoch 2/3 when there is room")
    assert sorted(os.listdir(backup)) == ["epoch-1.weights.h5", "training_metadata.json"]
    assert read_json(backup / "training_metadata.json")["epoch"] == 1
    monkeypatch.undo()  # room again
    status, out, err = run_quietly(argv)
    assert status == 0, err
    _, rows = read_history(log_dir / "r")
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    assert [r["learning_rate"] for r in rows] == pytest.approx(TINY_LRS, rel=1e-6)
    assert read_json(log_dir / "r" / "summary.json")["resumed_from_epoch"] == 1


def test_a_really_full_small_file_system(folder, tmp_path):
    """On a 4 MB tmpfs the second backup (2.4 MB each) finds no room; where one can be mounted."""
    mount = tmp_path / "small"
    mount.mkdir()
    mounted = shutil.which("mount") and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True).returncode == 0
    if not mounted:
        pytest.skip("cannot mount a tmpfs here (needs root); the monkeypatched ENOSPC test "
                    "covers the same path")
    try:
        log_dir = mount / "logs"
        status, out, err = run_quietly(argv_for(folder, log_dir))
        assert status == 1
        line = one_error_line(err, "error: no space left")
        assert line.endswith("the run resumes at epoch 2/3 when there is room"), line
        backup = log_dir / "r" / "backup"
        assert sorted(os.listdir(backup)) == ["epoch-1.weights.h5", "training_metadata.json"]
    finally:  # lazily if busy (a file left open), never a mount left behind
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], check=True)


# --- 8. An unusable --log_dir, before any data is read.


def _read_only_dir(tmp_path):
    path = tmp_path / "read_only"
    path.mkdir()
    path.chmod(0o555)
    return str(path)


@pytest.mark.parametrize("make,reason", [
    (lambda t: "/proc/kschedules-cannot-exist/logs", "cannot create"),
    (lambda t: str(t / "a_file" / "logs"), "cannot create"),
    (_read_only_dir, "cannot write in"),
])
def test_an_unusable_log_dir_is_one_line_before_reading_data(make, reason, folder, tmp_path,
                                                             monkeypatch):
    (tmp_path / "a_file").write_text("")
    log_dir = make(tmp_path)
    if "read_only" in log_dir and os.geteuid() == 0:
        pytest.skip("root writes into a read-only folder; the other two cases cover the check")

    def no_reading(config):
        raise AssertionError("data read before --log_dir was checked")

    from experiments.runner import data

    monkeypatch.setattr(data, "load", no_reading)
    status, out, err = run_quietly(argv_for(folder, log_dir))
    line = one_error_line(err, "error: --log_dir: ")
    assert status == 2 and reason in line and repr(log_dir) in line, line
    assert not os.path.exists(log_dir) or os.listdir(log_dir) == []

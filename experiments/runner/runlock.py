"""One process per run directory: an exclusive lock beside it, and the write probes.

The lock is `fcntl.flock` on `<log_dir>/.<run_name>.lock`: beside the run
directory, not in it, so that it stays held while `--overwrite` deletes and
recreates the directory (run names never start with '.', so the file cannot be
taken for a run). The kernel drops a flock when its process ends in any way,
`kill -9` included: a lock file left behind is never a stale lock, and the
next process takes it over. The holder writes `<pid> <host>` into the file, so
that a second process can say who holds the run; on release it deletes the
file (while still holding it) and the `--log_dir` folders it created.

A process that opened the file just before the previous holder deleted it
would lock a deleted file; `acquire` checks that the file it locked is still
the one at the path, and starts again if not.

Creating the lock file is the probe that `--log_dir` can be written;
`check_writable` probes any other folder (the run directory of a resume).
"""

import fcntl
import os
import socket
import tempfile
import time

from experiments.runner.config import FlagError

# Files a probe creates and removes at once (a kill in between leaves one behind).
PROBE_PREFIX = ".write-probe-"
# A lock held for an instant by `holder`: how long `acquire` keeps trying.
_RETRIES, _RETRY_SECONDS = 5, 0.05


def lock_path(log_dir, run_name):
    return os.path.join(log_dir, f".{run_name}.lock")


class RunLock:
    """A held run lock; `release()` (or leaving its `with` block) frees it."""

    def __init__(self, path, fd, created_dirs):
        self.path, self._fd, self._created = path, fd, created_dirs

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()

    def release(self):
        if self._fd is None:
            return
        try:
            os.unlink(self.path)  # still locked: nobody else holds this file
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None
        _remove_dirs(self._created)


def acquire(log_dir, run_name):
    """Takes the lock of `<log_dir>/<run_name>` (creating `log_dir` if needed).

    Raises:
        FlagError: (--log_dir) it cannot be created or written; (--run_name)
            another process holds the run.
    """
    created = _make_dirs(log_dir)
    path = lock_path(log_dir, run_name)
    try:
        fd = _lock(path, log_dir, run_name)
    except BaseException:
        _remove_dirs(created)
        raise
    lock = RunLock(path, fd, created)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
    except OSError as error:
        lock.release()
        raise FlagError("log_dir", f"cannot write in {log_dir!r} ({error.strerror}); "
                        "choose another --log_dir or make room") from None
    return lock


def _lock(path, log_dir, run_name):
    """An open, flock-ed descriptor of the file now at `path`."""
    for attempt in range(_RETRIES):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as error:
            raise FlagError("log_dir", f"cannot write in {log_dir!r} ({error.strerror}); "
                            "choose a writable --log_dir") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            who = _read_holder(fd)
            os.close(fd)
            if attempt + 1 < _RETRIES:
                time.sleep(_RETRY_SECONDS)
                continue
            raise FlagError("run_name", f"{os.path.join(log_dir, run_name)!r} is in use by "
                            f"{who} (it holds {path!r}); wait until it ends or stop it, then "
                            "run the same command again") from None
        if _is_current(fd, path):
            return fd
        os.close(fd)  # locked a file its last holder had just deleted: again
    raise FlagError("run_name", f"could not lock {path!r}: other processes keep replacing it")


def holder(log_dir, run_name):
    """Who holds the run's lock ('process 123', '... on host h'), or None; creates nothing."""
    path = lock_path(log_dir, run_name)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_holder(fd)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def check_writable(directory, flag):
    """Creates and removes a probe file in `directory`; FlagError(`flag`) if it cannot."""
    try:
        fd, probe = tempfile.mkstemp(prefix=PROBE_PREFIX, dir=directory)
        os.close(fd)
        os.remove(probe)
    except OSError as error:
        raise FlagError(flag, f"cannot write in {directory!r} ({error.strerror})") from None


def _make_dirs(log_dir):
    """Creates `log_dir`; returns the folders it created, outermost first."""
    missing, path = [], os.path.abspath(log_dir)
    while not os.path.lexists(path):
        missing.append(path)
        path = os.path.dirname(path)
    try:
        os.makedirs(log_dir, exist_ok=True)
    except OSError as error:
        raise FlagError("log_dir", f"cannot create {log_dir!r} ({error.strerror}); "
                        "choose a writable --log_dir") from None
    return missing[::-1]


def _remove_dirs(created):
    for directory in reversed(created):  # innermost first; kept if not empty
        try:
            os.rmdir(directory)
        except OSError:
            break


def _is_current(fd, path):
    try:
        here = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (here.st_dev, here.st_ino)


def _read_holder(fd):
    """'process <pid>' (with ' on <host>' when not this one) from a lock file."""
    for _ in range(3):  # the holder writes its line right after locking
        os.lseek(fd, 0, os.SEEK_SET)
        fields = os.read(fd, 512).decode(errors="replace").split()
        if fields:
            host = f" on {fields[1]}" if len(fields) > 1 and fields[1] != socket.gethostname() else ""
            return f"process {fields[0]}{host}"
        time.sleep(0.02)
    return "another process"

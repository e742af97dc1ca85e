"""SIGTERM and SIGINT: stop at the next safe point instead of dying mid-step.

Inside `handling()` either signal is only recorded. The runner calls `check()`
at its safe points (after loading the data, before training) and the training
callback `train.StopOnSignal` before every batch (training and validation)
and every epoch; `check()` raises `Interrupted` once a signal has arrived.
Nothing is being written at those points, and the run resumes from its last
backup; the epoch that was under way is trained again. A signal that arrives
after the last batch lets the run finish (summary.json and exit status 0).
Outside the main thread (where Python cannot set handlers) nothing changes.
"""

import contextlib
import signal
import threading

SIGNALS = (signal.SIGTERM, signal.SIGINT)
_received = []


class Interrupted(Exception):
    """A signal arrived; `exit_status` is 128 + its number, as a shell reports it."""

    def __init__(self, signum):
        self.signum = signum
        self.name = signal.Signals(signum).name
        self.exit_status = 128 + signum
        super().__init__(self.name)


@contextlib.contextmanager
def handling():
    """Records SIGTERM and SIGINT instead of their default actions, within the block."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    _received.clear()
    for s in SIGNALS:
        signal.signal(s, _record)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)
        _received.clear()


def _record(signum, frame):
    _received.append(signum)


def check():
    """Raises `Interrupted` if a signal arrived since `handling()` began."""
    if _received:
        raise Interrupted(_received[0])

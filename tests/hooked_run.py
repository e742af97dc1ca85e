"""`python -m experiments.run` with the tests' fault hooks, read from the environment.

    python tests/hooked_run.py RUNNER_FLAGS...

EXPERIMENTS_TEST_SIGKILL="<epoch>:before_backup" or "<epoch>:after_backup": the process
SIGKILLs itself at the end of that (0-based) epoch, before or after the runner's backup
callback has run (a preemption, to test resuming). EXPERIMENTS_TEST_PAUSE="<epoch>:<path>":
at the end of that epoch, after its backup, the process writes its PID into <path> and waits
until the file is removed (up to 300 s). Neither set: the runner exactly.

The hooks are callbacks put next to the runner's backup callback in the list it gives
`Model.fit`, so the production code has no hook of its own.
"""

import os
import runpy
import signal
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KILL_ENV = "EXPERIMENTS_TEST_SIGKILL"
PAUSE_ENV = "EXPERIMENTS_TEST_PAUSE"


def _with_hooks(callbacks):
    """`callbacks` (the runner's) with the hooks the environment asks for."""
    import keras

    from experiments.runner import train

    def at_epoch_end(epoch, action):
        return keras.callbacks.LambdaCallback(
            on_epoch_end=lambda end, logs=None: action() if end == epoch else None)

    def kill():
        os.kill(os.getpid(), signal.SIGKILL)

    def pause(path):
        with open(path, "w") as f:
            f.write(f"{os.getpid()}\n")
        deadline = time.monotonic() + 300
        while os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.02)

    callbacks = list(callbacks)
    position = next(i for i, c in enumerate(callbacks)
                    if isinstance(c, train.AtomicBackupAndRestore))
    if os.environ.get(PAUSE_ENV):
        epoch, path = os.environ[PAUSE_ENV].split(":", 1)
        callbacks.insert(position + 1, at_epoch_end(int(epoch), lambda: pause(path)))
    if os.environ.get(KILL_ENV):
        epoch, point = os.environ[KILL_ENV].split(":")
        callbacks.insert(position + (point == "after_backup"), at_epoch_end(int(epoch), kill))
    return callbacks


def _install():
    """Wraps the runner's training step so that its `Model.fit` gets the hooks.

    Keras is imported only where the runner imports it (its `_train`), as without hooks.
    """
    from experiments.runner import run

    train_run = run._train

    def _train(*args, **kwargs):
        import keras

        fit = keras.Model.fit

        def fit_with_hooks(model, *fit_args, callbacks=None, **fit_kwargs):
            return fit(model, *fit_args, callbacks=_with_hooks(callbacks or []), **fit_kwargs)

        keras.Model.fit = fit_with_hooks
        try:
            return train_run(*args, **kwargs)
        finally:
            keras.Model.fit = fit

    run._train = _train


if __name__ == "__main__":
    sys.path.insert(0, REPO)
    sys.path.remove(os.path.dirname(os.path.abspath(__file__)))  # as `python -m` from REPO
    _install()
    runpy.run_module("experiments.run", run_name="__main__", alter_sys=True)

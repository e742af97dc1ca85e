"""What the commands of experiments/ share: a one-line error with exit status 2, argparse helpers.

The runner, preview, lr_find and the benchmarks (absl flags) report a bad
flag with `fail`: ``error: --flag: reason``. The suite and the report
(argparse) use `Parser`, whose errors read ``<command>: <message>``.
"""

import argparse
import math
import sys


def fail(error, stream=None):
    """Prints `error: <message>` on one line and exits with status 2."""
    print(f"error: {error}", file=stream or sys.stderr)
    raise SystemExit(2)


class Parser(argparse.ArgumentParser):
    """`python -m experiments.<command>`'s parser; an error is one line `<command>: ...`, exit status 2."""

    def __init__(self, command, **kwargs):
        self.command = command
        super().__init__(prog=f"python -m experiments.{command}", **kwargs)

    def error(self, message):
        self.exit(2, f"{self.command}: {message}\n")


def positive_int(text):
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, received {text}")
    return value


def positive_float(text):
    """argparse type: a finite number > 0."""
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be > 0, received {text}")
    return value

"""What the commands of experiments/ share: a one-line error with exit status 2, argparse helpers.

The runner, preview, lr_find and the benchmarks (absl flags) report a bad
flag with `fail`: ``error: --flag: reason``. The suite and the report
(argparse) use `Parser`, whose errors read ``<command>: <message>``.

Every command writes under ``--log_dir`` (`output_folder`); the older names
of that folder (preview's ``--preview_dir``, lr_find's and report's ``--out``)
still work, with one warning line (`flag_folder` for absl flags,
`Parser.output_folder` for argparse).
"""

import argparse
import difflib
import math
import os
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

    def unknown_flag(self, arg, names=(), reason="unknown flag"):
        """Exits with ``<command>: --x: unknown flag (did you mean --y?)``; `names`: more known flags."""
        name = arg[2:].split("=", 1)[0]
        self.exit(2, f"{self.command}: --{name}: {reason}{did_you_mean(name, self._names() + list(names))}\n")

    def check_names(self, args, names=(), reason="unknown flag"):
        """`unknown_flag` for the first ``--x`` in `args` that is neither this parser's (nor, as
        argparse allows, the start of one) nor in `names`; called before parsing, so that a
        misspelt flag is named before argparse reports the required one it hides."""
        known = self._names()
        for arg in args:
            name = arg[2:].split("=", 1)[0] if arg.startswith("--") and arg != "--" else None
            if name and name not in names and not any(k.startswith(name) for k in known):
                self.unknown_flag(arg, names, reason)

    def _names(self):
        return [o[2:] for a in self._actions for o in a.option_strings if o.startswith("--")]

    def output_folder(self, options, old, default):
        """`output_folder` of --log_dir (None: `default`) and the deprecated --`old`; both: `error`."""
        try:
            return output_folder(old, getattr(options, old), options.log_dir or default,
                                 options.log_dir is not None)
        except ValueError as error:
            self.error(str(error))

    def parse_args(self, args=None, namespace=None):
        """As argparse's, an unknown flag named with the closest known one (`check_names`)."""
        self.check_names(sys.argv[1:] if args is None else args)
        options, rest = self.parse_known_args(args, namespace)
        for arg in rest:
            if arg.startswith("--"):
                self.unknown_flag(arg)
        if rest:
            self.error(f"unrecognized arguments: {' '.join(rest)}")
        return options


def output_folder(old, old_value, log_dir, log_dir_given, subfolder=""):
    """The folder a command writes to: `<log_dir>/<subfolder>`, or the deprecated --`old`'s.

    --`old` (None: not given) names that folder itself, as before --log_dir;
    it prints one warning line on stderr.

    Raises:
        ValueError: ``--old: cannot be given with --log_dir, ...`` if both were given.
    """
    if old_value is None:
        return os.path.join(log_dir, subfolder) if subfolder else log_dir
    if log_dir_given:
        raise ValueError(f"--{old}: cannot be given with --log_dir, its new name; give only --log_dir")
    where = os.path.join("<log_dir>", subfolder) if subfolder else "<log_dir>"
    print(f"warning: --{old} is deprecated; use --log_dir (files go to {where})", file=sys.stderr)
    return old_value


def flag_folder(flag_values, old, subfolder):
    """`output_folder` of the absl flags --log_dir and the deprecated --`old`; both given: `fail`."""
    try:
        return output_folder(old, flag_values[old].value, flag_values["log_dir"].value,
                             flag_values["log_dir"].present, subfolder)
    except ValueError as error:
        fail(error)


def did_you_mean(name, names):
    """`` (did you mean --lr_scaling?)`` for the flag in `names` closest to `name`, else ``""``."""
    close = difflib.get_close_matches(name, names, n=1)
    return f" (did you mean --{close[0]}?)" if close else ""


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

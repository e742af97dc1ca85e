"""Train a CNN on CIFAR-10 (or any image folder) with a kschedules schedule.

Usage:
    python -m experiments.run [--schedule=cosine] [--lr=LR] [--epochs=100] [--flag=value ...]
    python -m experiments.run --schedule=poly --power=0.5 --epochs=30
    python -m experiments.run --image_folder=PATH --train_subset=5000 --epochs=5

Writes <log_dir>/<run_name>/ (config.json, history.csv, learning_rate.csv,
summary.json, curves.png, tensorboard/); the same command again resumes an
interrupted run, or says a finished one is complete. A bad flag prints one
line `error: --flag: reason` and exits with status 2. Every flag is below;
the README has them by topic.
"""

from absl import app
from absl import flags as absl_flags

from experiments.runner import flags as runner_flags
from experiments.runner import run

absl_flags.adopt_module_key_flags(runner_flags)  # --help lists the runner's flags

if __name__ == "__main__":
    app.run(run.command_main, flags_parser=run.parse_flags)

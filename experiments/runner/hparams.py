"""A run in TensorBoard's HParams dashboard: its flags as hparams, summary.json's as metrics.

`HParamsWriter` writes into <run>/tensorboard/train (the run TensorBoard shows
for the training; the dashboard's session is that folder):

    hparams (once, when training starts)   HPARAMS: --schedule, --lr, the schedule's own
                                           flags (flags.SCHEDULE_FLAGS), --optimizer,
                                           --batch_size, --warmup_epochs, --epochs, --seed
    metrics (scalars, when training ends)  METRICS: summary.json's final_val_accuracy,
                                           best_val_accuracy, final_loss, at the last epoch

A resumed run finds its hparams in the folder's event files and writes none
again; a run stopped before its end has no metrics. Needs TensorFlow (and
TensorBoard's `tensorboard.plugins.hparams.api`): on JAX it is skipped with the
rest of tensorboard/ (`experiments.runner.backends`).
"""

import glob
import os

import keras

from experiments.runner import flags as flag_defs
from experiments.runner import rundir

# The flags every run shows as hparams, before its schedule's own (flags.SCHEDULE_FLAGS).
HPARAMS = ("schedule", "lr", "optimizer", "batch_size", "warmup_epochs", "epochs", "seed")
# summary.json key -> the scalar tag the dashboard shows as a metric.
METRICS = {"final_val_accuracy": "summary/final_val_accuracy",
           "best_val_accuracy": "summary/best_val_accuracy",
           "final_loss": "summary/final_loss"}


def hparams_of(flags):
    """{name: value}: the HParams a run with `flags` (config.json's) shows, unset flags left out."""
    names = HPARAMS + flag_defs.SCHEDULE_FLAGS[flags["schedule"]]
    return {name: flags[name] for name in names if flags.get(name) is not None}


def metrics_of(summary):
    """{tag: value} of METRICS from a summary (summary.json's keys); None values left out."""
    return {tag: summary[key] for key, tag in METRICS.items() if summary.get(key) is not None}


def has_hparams(log_dir):
    """Whether an event file directly in `log_dir` holds a run's hparams.

    Read as TensorBoard reads them (a record cut short by a kill is skipped), quietly:
    `tf.data.TFRecordDataset` logs a line on stderr for each file.
    """
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import metadata

    for path in sorted(glob.glob(os.path.join(log_dir, "events.out.tfevents.*"))):
        for event in EventFileLoader(path).Load():
            if any(v.tag == metadata.SESSION_START_INFO_TAG for v in event.summary.value):
                return True
    return False


class HParamsWriter(keras.callbacks.Callback):
    """Writes the run's hparams into `log_dir` when training starts (unless there already) and
    its summary metrics when it ends.

    Args:
        run_dir: The run directory (its history.csv gives the metrics, as it gives summary.json's).
        log_dir: The folder TensorBoard shows as the run (<run>/tensorboard/train).
        flags: The run's flags (config.json's).
    """

    def __init__(self, run_dir, log_dir, flags):
        super().__init__()
        self.run_dir, self.log_dir, self.flags = run_dir, log_dir, flags

    def on_train_begin(self, logs=None):
        if has_hparams(self.log_dir):
            return
        from tensorboard.plugins.hparams import api as hp

        # trial_id: the dashboard's Trial ID column shows the run's name (else a hash).
        self._write(lambda: hp.hparams(hparams_of(self.flags),
                                       trial_id=self.flags["run_name"]))

    def on_train_end(self, logs=None):
        history = rundir.read_history(self.run_dir)
        if not history:
            return
        summary = rundir.summarize(history, self.flags["epochs"], None)
        import tensorflow as tf

        def scalars():
            for tag, value in metrics_of(summary).items():
                tf.summary.scalar(tag, value, step=len(history) - 1)

        self._write(scalars)

    def _write(self, write):
        import tensorflow as tf

        writer = tf.summary.create_file_writer(self.log_dir)
        try:
            # record_if(True): Keras's TensorBoard(update_freq=N) may leave another open.
            with writer.as_default(), tf.summary.record_if(True):
                write()
        finally:
            writer.close()

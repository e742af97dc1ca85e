"""tf.distribute for the runner: `--strategy=mirrored` and `--strategy=multi_worker`.

TensorFlow backend only. `experiments.run` imports this module only when
--strategy is not `default`; a default run never touches it.

    mirrored       tf.distribute.MirroredStrategy over this machine's GPUs (its
                   logical CPUs when it has none), one process.
    multi_worker   tf.distribute.MultiWorkerMirroredStrategy: one process per
                   machine (each over its GPUs, else its CPU), the cluster and
                   this process's task read from the TF_CONFIG variable:
                   {"cluster": {"worker": ["host1:2222", "host2:2222"]},
                    "task": {"type": "worker", "index": 0}}

Batches. --batch_size stays the global batch. Keras's `fit` splits every
global batch of the runner's pipeline into one batch per replica, so steps per
epoch, every schedule boundary and the LR of every step are those of a
one-device run with the same global batch. With several workers every process
holds the same arrays and builds the same pipeline (an epoch's order and
augmentation depend on the seed and the epoch only), and the pipeline is
sharded with `AutoShardPolicy.DATA`: each global batch is cut into per-replica
batches and each worker keeps its own replicas' share, so the workers together
train on each global batch exactly once per step. (FILE sharding does not apply
to in-memory arrays: AUTO would fall back to DATA with a warning; OFF would
feed every worker the whole global batch, each image counted once per worker.)
The cost: every worker gathers and augments the whole global batch and
discards the other workers' share.

Chief and workers. The chief is the `chief` task when TF_CONFIG names one, else
worker 0 (TensorFlow's rule). Every process runs the same `fit` with the same
callbacks (their reads of mirrored variables can be collective), but only the
chief writes the run directory; every other worker writes into a private
temporary directory (`worker_output_dir`), removed when the process ends,
normally or by an exception, and at its next start after a kill.

Resume. Every process reads the chief's run directory (its state, history and
backup), so --log_dir must be one shared directory, at the same path, on every
machine for a multi-worker run to resume. `check_agreement` compares, across
all workers, the flags, the data sizes and the epoch each would resume from,
and stops every worker with an error before anything is written when they
differ. (Without a shared --log_dir a new run trains normally; rerunning a
finished one makes the chief exit at once and leaves the others waiting for it.)

Batch normalization. Each replica normalizes with the statistics of its own
per-replica batch and keeps its own moving averages (Keras's behaviour under
tf.distribute, like PyTorch DDP without SyncBatchNorm); the chief's are the
ones saved. A run on N replicas therefore matches a one-device run of the same
global batch in steps, schedule and LR per step, not to the last digit in loss.
"""

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile

import tensorflow as tf

from experiments.runner.config import FlagError
from experiments.runner.rundir import BACKUP, PATH_FLAGS, compared_flags

TF_CONFIG = "TF_CONFIG"
_JOBS = ("chief", "worker")
# Flags that may differ between the workers of one run (paths on each machine).


@dataclasses.dataclass(frozen=True)
class ClusterTask:
    """This process's place in a TF_CONFIG cluster.

    Attributes:
        cluster: job name ("chief", "worker") -> list of "host:port".
        task_type, task_index: this process's job and index in it.
    """

    cluster: dict
    task_type: str
    task_index: int

    @property
    def num_workers(self):
        return sum(len(addresses) for addresses in self.cluster.values())

    @property
    def is_chief(self):
        """The chief task if the cluster has one, else worker 0."""
        if "chief" in self.cluster:
            return self.task_type == "chief"
        return self.task_index == 0

    @property
    def name(self):
        return f"{self.task_type}{self.task_index}"


@dataclasses.dataclass(frozen=True)
class Distribution:
    """A started strategy and this process's role in it.

    Attributes:
        strategy: the `tf.distribute.Strategy`.
        num_replicas: replicas in sync (devices of all workers together).
        num_workers: processes; 1 for mirrored.
        is_chief: whether this process writes the run directory.
        task: "local" (mirrored) or the TF_CONFIG task, e.g. "worker1".
    """

    strategy: object
    num_replicas: int
    num_workers: int
    is_chief: bool
    task: str


def read_tf_config(environ=None):
    """Parses and checks TF_CONFIG into a `ClusterTask`.

    Raises:
        FlagError: (--strategy) TF_CONFIG unset, not JSON, or not a cluster
            of "chief"/"worker" jobs of "host:port" addresses with this
            process's task in it.
    """
    environ = os.environ if environ is None else environ
    text = environ.get(TF_CONFIG, "").strip()
    if not text:
        raise FlagError("strategy", f"multi_worker needs the {TF_CONFIG} environment variable "
                        "(the cluster and this process's task), which is not set; e.g. "
                        + _EXAMPLE)
    try:
        spec = json.loads(text)
    except ValueError as error:
        raise FlagError("strategy", f"{TF_CONFIG} is not valid JSON ({error}); e.g. "
                        + _EXAMPLE) from None
    if not isinstance(spec, dict):
        _bad(f"must be a JSON object, received {text!r}")
    cluster, task = spec.get("cluster"), spec.get("task")
    if not isinstance(cluster, dict) or not cluster:
        _bad(f"needs \"cluster\": an object of job name -> [\"host:port\", ...], received "
             f"{cluster!r}")
    for job, addresses in cluster.items():
        if job not in _JOBS:
            _bad(f"cluster job {job!r} is not supported (jobs: chief, worker)")
        if (not isinstance(addresses, list) or not addresses
                or not all(_is_address(a) for a in addresses)):
            _bad(f"cluster job {job!r} must be a non-empty list of \"host:port\", received "
                 f"{addresses!r}")
        if len(set(addresses)) != len(addresses):
            _bad(f"cluster job {job!r} lists an address twice: {addresses!r}")
    if len(cluster.get("chief", [])) > 1:
        _bad(f"the cluster can have one chief, received {cluster['chief']!r}")
    if not isinstance(task, dict) or task.get("type") not in cluster:
        _bad(f"needs \"task\": {{\"type\": one of {sorted(cluster)}, \"index\": n}}, received "
             f"{task!r}")
    index = task.get("index", 0)
    if type(index) is not int or not 0 <= index < len(cluster[task["type"]]):
        _bad(f"task index must be in [0, {len(cluster[task['type']])}) for job "
             f"{task['type']!r}, received {index!r}")
    return ClusterTask({job: list(a) for job, a in cluster.items()}, task["type"], index)


_EXAMPLE = ('TF_CONFIG=\'{"cluster": {"worker": ["host1:2222", "host2:2222"]}, '
            '"task": {"type": "worker", "index": 0}}\'')


def _bad(reason):
    raise FlagError("strategy", f"multi_worker: {TF_CONFIG} {reason}")


def _is_address(address):
    if not isinstance(address, str) or ":" not in address:
        return False
    host, port = address.rsplit(":", 1)
    return bool(host) and port.isdigit() and 0 < int(port) < 65536


def create(config):
    """Starts `config`'s --strategy ("mirrored" or "multi_worker"); returns a `Distribution`.

    multi_worker must be created before any other TensorFlow op runs in the
    process, and waits until every worker of TF_CONFIG has started.

    Raises:
        FlagError: (--strategy) no TensorFlow backend, or TF_CONFIG missing
            or malformed; (--batch_size) not divisible by the replicas, or a
            last partial batch (training or test images) smaller than the
            replicas, which would leave a replica with no image (Keras's
            per-replica step fails on an empty batch).
    """
    import keras

    name, batch_size = config.flags["strategy"], config.flags["batch_size"]
    sizes = {"training": config.train_size, "test": config.val_size}

    if keras.backend.backend() != "tensorflow":
        raise FlagError("strategy", f"{name} needs the TensorFlow backend (KERAS_BACKEND="
                        f"tensorflow), received {keras.backend.backend()}")
    if name == "multi_worker":
        task = read_tf_config()
        # Checked before the start, which waits for the other workers.
        gpus = len(tf.config.list_physical_devices("GPU"))
        _check_batches(batch_size, task.num_workers * max(gpus, 1), name,
                       f"{task.num_workers} workers x {max(gpus, 1)} "
                       + ("GPUs" if gpus else "CPU"), sizes)
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        num_workers, is_chief, task_name = task.num_workers, task.is_chief, task.name
        devices = strategy.extended.worker_devices
    else:
        devices = [d.name for d in tf.config.list_logical_devices("GPU")
                   or tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices)
        num_workers, is_chief, task_name = 1, True, "local"
    replicas = strategy.num_replicas_in_sync
    _check_batches(batch_size, replicas, name,
                   f"{num_workers} x {len(devices)}: {', '.join(_short(d) for d in devices)}", sizes)
    return Distribution(strategy, replicas, num_workers, is_chief, task_name)


def _short(device):
    return device.rsplit("device:", 1)[-1]


def _check_batches(batch_size, replicas, name, detail, sizes):
    if batch_size % replicas:
        raise FlagError("batch_size", f"must be divisible by the {replicas} replicas of "
                        f"--strategy={name} ({detail}), received {batch_size}")
    for split, size in sizes.items():
        last = size % batch_size
        if 0 < last < replicas:
            raise FlagError("batch_size", f"leaves {last} {split} image(s) in the last batch "
                            f"({size} % {batch_size}), fewer than the {replicas} replicas of "
                            f"--strategy={name}: choose a batch size whose last batch is full "
                            f"or has >= {replicas} images, received {batch_size}")


def check_agreement(distribution, config, status):
    """Stops every worker (FlagError) unless all have the same flags and resume epoch.

    Compared: every flag but the paths (`rundir.PATH_FLAGS`), the image counts and
    classes, and the epoch each worker would resume from (`resume_epoch`).
    Collective: every worker must call it. A no-op for one worker.
    """
    if distribution.num_workers == 1:
        return
    flags = compared_flags(config.flags, ignore=PATH_FLAGS)
    flags["sizes"] = [config.train_size, config.val_size, config.num_classes]
    digest = hashlib.sha256(json.dumps(flags, sort_keys=True).encode()).digest()
    local = [int.from_bytes(digest[:7], "big"), resume_epoch(config.run_dir, status)]
    strategy = distribution.strategy
    values = strategy.experimental_distribute_values_from_function(
        lambda context: tf.constant([local], tf.int64))
    gathered = strategy.gather(values, axis=0).numpy()
    if (gathered[:, 0] != gathered[0, 0]).any():
        raise FlagError("strategy", "the workers were started with different flags or data "
                        "sizes; start every worker with the same command (only TF_CONFIG "
                        "differs) on the same data")
    if (gathered[:, 1] != gathered[0, 1]).any():
        raise FlagError("log_dir", "the workers would resume from different epochs "
                        f"({sorted(set(gathered[:, 1].tolist()))}): every worker must see the "
                        f"chief's run directory {config.run_dir!r}, so --log_dir must be one "
                        "shared directory at the same path on every machine")


def resume_epoch(run_dir, status):
    """The epoch a run would start at: that of its backup when resuming, else 0."""
    path = os.path.join(run_dir, BACKUP, "training_metadata.json")
    if status != "resume" or not os.path.exists(path):
        return 0
    with open(path) as f:
        return int(json.load(f)["epoch"])


def shard_by_data(pipelines):
    """`data.Pipelines` whose datasets a multi-worker `fit` shards by batch (see module doc)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataclasses.replace(pipelines, train=pipelines.train.with_options(options),
                               val=pipelines.val.with_options(options))


def fit(distribution, config, model, pipelines, status):
    """`train.fit` for this process's role: the chief into the run directory, other
    workers into a temporary one (resuming from the chief's backup); returns its
    `EpochRecorder`.
    """
    from experiments.runner import train

    restore = os.path.join(config.run_dir, BACKUP) if status == "resume" else None
    with worker_output_dir(distribution, config.run_dir) as out_dir, \
            _keras_multi_worker_fixes(distribution.strategy, model, pipelines.train):
        return train.fit(config, model, shard_by_data(pipelines), out_dir,
                         restore_dir=None if out_dir == config.run_dir else restore)


@contextlib.contextmanager
def _keras_multi_worker_fixes(strategy, model, train_dataset):
    """Works around two bugs of Keras 3's `fit` under MultiWorkerMirroredStrategy.

    keras-team/keras#20585 (open; here Keras 3.15, TensorFlow 2.21):
    1. `fit` builds the model by reducing its first distributed batch with
       `strategy.reduce`, which MultiWorkerMirroredStrategy cannot do for a
       tuple of per-replica tensors (ValueError: "Attempt to convert a value
       (PerReplica...)"). Here the model, its metrics and its optimizer are
       built before `fit`, under the strategy, from one undistributed batch,
       and that step of `fit` is skipped for this model.
    2. Each step's logs (every replica's own metric values) are averaged with
       `strategy.reduce("MEAN", value, axis=0)`, which fails on scalars
       ("Invalid reduction dimension 0 for input with 0 dimensions"). Here the
       mean over replicas is taken with axis=None, which is what it means for
       a scalar. (Epoch logs come from the metrics' variables, summed over all
       replicas on read, and are the same on every worker.)
    A no-op for MirroredStrategy, which Keras handles.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        yield
        return
    from keras.src.backend.tensorflow import trainer as keras_trainer

    original = keras_trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and isinstance(
                strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return tf.nest.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original(values, strategy, reduction)

    with strategy.scope():
        model._symbolic_build(data_batch=next(iter(train_dataset)))
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    keras_trainer.reduce_per_replica = reduce_per_replica
    try:
        yield
    finally:
        keras_trainer.reduce_per_replica = original
        del model._maybe_symbolic_build


@contextlib.contextmanager
def worker_output_dir(distribution, run_dir):
    """Yields where this process writes: `run_dir` on the chief, else a temporary directory.

    A non-chief worker's directory is named after the run and the task (so the
    next start removes what a killed attempt left) and is removed on exit,
    also when the body raises.
    """
    if distribution.is_chief:
        yield run_dir
        return
    tag = hashlib.sha256(os.path.abspath(run_dir).encode()).hexdigest()[:12]
    path = os.path.join(tempfile.gettempdir(), f"kschedules-{distribution.task}-{tag}")
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)

"""Several runs of the suite at once, on Ray (``python -m experiments.suite --parallel=N``).

Each run is the same ``python -m experiments.run ...`` subprocess as in a
sequential suite, started by a Ray actor that holds ``--cpus_per_run`` CPUs
and ``--gpus_per_run`` GPUs, so that Ray hands every run its own devices
(``CUDA_VISIBLE_DEVICES``). The suite starts and stops a local Ray instance
sized for N runs, or, with ``--ray_address``, uses an existing cluster.

`Scheduler` keeps up to N runs going; it knows nothing of Ray, only of a pool
(`RayPool`, or a fake in the tests): ``free()``, ``start(job)``, ``wait(t)``,
``stop_all()``, ``close()``. It prints one progress line per event (runs done,
running and left, elapsed, estimated remaining), writes each run's output to
``<log_dir>/<exercise>/logs/<run_name>.log`` (appended on every attempt, with
the start and end of each), never starts a run another process holds (the
runner's lock, `experiments.runner.runlock`), and on Ctrl-C asks every run to stop
before its next batch (SIGTERM; the runner saves nothing half-done) and waits
for them. A run's subprocess also dies with the actor that started it
(PR_SET_PDEATHSIG, SIGKILL), so a suite killed outright leaves nothing
training.

Ray is imported only here, and only when a pool is created: ``--parallel=1``
never imports it.
"""

import dataclasses
import datetime
import logging
import math
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time

from experiments.runner import rundir, runlock

# How long Ctrl-C waits for the runs to stop at their next batch.
STOP_SECONDS = 60.0
# The driver's environment variables that every run gets, on every node.
FORWARDED_ENV_PREFIXES = ("KERAS_", "TF_", "XLA_", "JAX_", "EXPERIMENTS_")
# Started as `python -c LAUNCHER <actor pid> <python> -m experiments.run ...`:
# asks the kernel to SIGKILL the process when the actor's thread ends, checks
# the actor is still its parent (it may have died in between), then becomes
# the run. PR_SET_PDEATHSIG (1) survives exec; Linux only, elsewhere skipped.
LAUNCHER = (
    "import ctypes, os, signal, sys\n"
    "try:\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)\n"
    "except (AttributeError, OSError):\n"
    "    pass\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit(137)\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class SetupError(ValueError):
    """Ray missing, a cluster out of reach or too small; the message is one line."""


def import_ray():
    """The `ray` module; SetupError (one line) if it is not installed."""
    try:
        import ray
    except ImportError:
        raise SetupError(
            "suite: --parallel > 1 runs the trainings on Ray, which is not installed: "
            "pip install -e \".[ray]\" (or pass --parallel=1)"
        ) from None
    return ray


def local_gpu_count():
    """GPUs of this machine: CUDA_VISIBLE_DEVICES when set, else `nvidia-smi -L`'s lines."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        count = 0
        for item in visible.split(","):
            item = item.strip()
            if not item or item.startswith("-"):  # CUDA stops at the first invalid id
                break
            count += 1
        return count
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU ")) if out.returncode == 0 else 0


# ----------------------------------------------------------------------------
# What is run, and what came of it.


@dataclasses.dataclass
class Job:
    """One subprocess: a run (`run` is its suite.PlannedRun) or the LR range test (`run` None)."""

    label: str  # "poly/linear_lr0.1_seed0", "the LR range test"
    command: list
    log_path: str
    run: object = None
    stage: str = ""  # "LR sweep" for the tuning runs

    @property
    def key(self):
        return self.run.run_dir if self.run is not None else self.log_path


@dataclasses.dataclass
class Outcome:
    """How a job ended: its exit status, or `error` if it could not be run at all."""

    exit_status: int = None
    error: str = None
    seconds: float = None


def run_job(run):
    """The Job of a planned run: its output goes to <log_dir>/<exercise>/logs/<run_name>.log."""
    log_path = os.path.join(os.path.dirname(run.run_dir), "logs", os.path.basename(run.run_dir) + ".log")
    return Job(f"{run.exercise}/{run.name}", run.command, log_path, run)


def range_test_job(command, out_dir):
    return Job("the LR range test", command, os.path.join(out_dir, "logs", "lr_find.log"))


def last_line(path):
    """The last non-empty line of a log (what a failed runner said last), or ''."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 4096))
            lines = [line.strip() for line in f.read().decode(errors="replace").splitlines()]
    except OSError:
        return ""
    lines = [line for line in lines if line and not line.startswith("[suite]")]
    return lines[-1][:300] if lines else ""


# ----------------------------------------------------------------------------
# The scheduler.


def _clock(seconds):
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Scheduler:
    """Runs jobs on a pool, up to its free slots at once, with one progress line per event.

    Args:
        make_pool: called once, when the first job is to start (a suite whose
            runs are all finished starts no pool).
        data_first: the data comes from tensorflow-datasets, which the first
            run may have to download and prepare: until that run has loaded
            it (its config.json exists) or ended, no other job starts.
    """

    def __init__(self, make_pool, stream=None, clock=time.monotonic, data_first=False):
        self.make_pool = make_pool
        self.pool = None
        self.stream = stream or sys.stdout
        self.clock = clock
        self.start_time = clock()
        self.data_first = data_first
        self.gate = None  # the job the others wait for (data_first)
        self.state = {}  # job key -> "queued", "running", "done", "failed"
        self.queue = []  # queued jobs, in order
        self.running = {}  # pool handle -> (job, clock at start)
        self.outcomes = {}  # job key -> Outcome
        self.seconds = []  # durations of the runs trained here
        self.background = []  # runs that may fill free slots whatever is waited for
        self.expected = 0  # runs not planned yet (those that need the tuned LR)

    # The suite's engine interface (see suite.Sequential).

    def plan_ahead(self, background=(), expected=0):
        """Runs to start in free slots meanwhile, and how many more will be planned later."""
        self.background = list(background)
        self.expected = expected

    def range_test(self, command, out_dir):
        job = range_test_job(command, out_dir)
        self.state.pop(job.key, None)  # a range test that failed before is tried again
        self.outcomes.pop(job.key, None)
        self._add([job])
        self._until_done([job])
        outcome = self.outcomes[job.key]
        return 1 if outcome.exit_status is None else outcome.exit_status

    def execute(self, runs, what="run"):
        """Trains the unfinished `runs` (and background runs in free slots); returns the failed ones."""
        stage = "LR sweep" if what != "run" else ""
        jobs = [dataclasses.replace(run_job(r), stage=stage) for r in runs]
        self._add(jobs)
        self._until_done(jobs)
        return [job.run for job in jobs if self.state[job.key] == "failed"]

    def stop(self):
        """Asks every running job to stop (SIGTERM) and waits up to STOP_SECONDS for them.

        A second Ctrl-C stops the wait; `close` then kills what is left.
        """
        if not self.running:
            return
        self._line(f"stopping {len(self.running)} running job(s): each stops before its next batch "
                   "(Ctrl-C again: stop waiting)")
        self.pool.stop_all()
        deadline = self.clock() + STOP_SECONDS
        try:
            while self.running and self.clock() < deadline:
                for handle, outcome in self.pool.wait(1.0):
                    job, _ = self.running.pop(handle)
                    self.state[job.key] = "failed"
                    self.outcomes[job.key] = outcome
        except KeyboardInterrupt:
            pass
        if self.running:
            self._line(f"{len(self.running)} job(s) still running: killed (a run resumes from its last "
                       "backup)")

    def close(self):
        """Stops what still runs (see `stop`) and the pool."""
        try:
            self.stop()
        finally:
            if self.pool is not None:
                self.pool.close()
                self.pool = None

    # Inside.

    def _add(self, jobs, planned=True):
        """Queues the jobs not seen yet; finished runs are done at once (one line for them all).

        `planned`: the jobs were counted in `expected` (background runs are not).
        """
        new = [j for j in jobs if j.key not in self.state]
        skipped = []
        for job in new:
            if job.run is not None and _is_finished(job.run):
                self.state[job.key] = "done"
                skipped.append(job)
            else:
                self.state[job.key] = "queued"
                self.queue.append(job)
        if planned:
            self.expected = max(0, self.expected - len(new))
        if skipped:
            names = ", ".join(j.label for j in skipped[:3]) + (", ..." if len(skipped) > 3 else "")
            self._line(f"{len(skipped)} run(s) finished already, skipped ({names})")

    def _until_done(self, jobs):
        self._add([run_job(r) for r in self.background], planned=False)
        while any(self.state[j.key] in ("queued", "running") for j in jobs):
            self._fill(jobs)
            for handle, outcome in self.pool.wait(1.0 if self._gated() else 5.0):
                self._finished(handle, outcome)

    def _gated(self):
        """True while the others wait for `gate` to load the data (see data_first)."""
        job = self.gate
        if job is None:
            return False
        if self.state[job.key] != "running" or (
                job.run is not None and os.path.exists(os.path.join(job.run.run_dir, rundir.CONFIG))):
            self.gate = None
            return False
        return True

    def _fill(self, jobs):
        """Starts queued jobs in free slots: those waited for first, then background runs."""
        waited = {j.key for j in jobs}
        allowed = waited | {r.run_dir for r in self.background}
        order = sorted((j for j in self.queue if j.key in allowed), key=lambda j: j.key not in waited)
        if not order:
            return
        if self.pool is None:
            self.pool = self.make_pool()
        for job in order:
            if self._gated() or self.pool.free() == 0:
                return
            self.queue.remove(job)
            status = ""
            if job.run is not None:
                holder = runlock.holder(*os.path.split(job.run.run_dir))
                if holder is not None:
                    self.state[job.key] = "failed"
                    self._line(f"{job.label} is in use by {holder}, not started twice")
                    continue
                status = "resuming" if os.path.exists(os.path.join(job.run.run_dir, rundir.CONFIG)) else "new"
            handle = self.pool.start(job)
            self.running[handle] = (job, self.clock())
            self.state[job.key] = "running"
            if self.data_first:
                self.data_first, self.gate = False, job
            detail = ", ".join(x for x in (job.stage, status) if x)
            self._line(f"started {job.label}" + (f" ({detail})" if detail else ""))

    def _finished(self, handle, outcome):
        job, started = self.running.pop(handle)
        self.outcomes[job.key] = outcome
        seconds = outcome.seconds if outcome.seconds is not None else self.clock() - started
        ok = outcome.exit_status == 0 and (job.run is None or _is_finished(job.run))
        self.state[job.key] = "done" if ok else "failed"
        if job.run is not None and outcome.exit_status is not None:
            self.seconds.append(seconds)
        if ok:
            self._line(f"finished {job.label} in {_clock(seconds)}")
            return
        if outcome.error:
            why = outcome.error
        else:
            said = last_line(job.log_path)
            why = f"exit status {outcome.exit_status}" + (f": {said}" if said else "")
        self._line(f"{job.label} failed ({why}); its output: {job.log_path}; the others go on")

    def _line(self, event):
        states = list(self.state.values())
        done, failed = states.count("done"), states.count("failed")
        running = len(self.running)
        left = states.count("queued") + self.expected
        counts = f"{done} done, " + (f"{failed} failed, " if failed else "") + f"{running} running, {left} left"
        print(f"[suite] {event} | {counts}; elapsed {_clock(self.clock() - self.start_time)}, "
              f"estimated remaining {self._remaining(left)}", file=self.stream, flush=True)

    def _remaining(self, left):
        if not (left or self.running):
            return _clock(0)
        if not self.seconds:
            return "unknown until a run finishes"
        mean = sum(self.seconds) / len(self.seconds)
        now = self.clock()
        busy = sum(max(mean - (now - t0), 0.0) for job, t0 in self.running.values() if job.run is not None)
        slots = max(1, self.pool.capacity() if self.pool is not None else 1)
        return _clock((busy + left * mean) / slots)


def _is_finished(run):
    from experiments import suite  # the suite imports this module

    return suite.is_finished(run)


# ----------------------------------------------------------------------------
# Ray.


class Trainer:
    """A Ray actor that runs one job at a time as a subprocess (see `LAUNCHER`).

    Concurrency 2: `stop` is served while `run` waits for its subprocess.
    """

    def __init__(self, gpus):
        self._gpus = gpus
        self._proc = None
        self._stopped = False
        self._lock = threading.Lock()

    def host(self):
        return socket.gethostname()

    def run(self, command, cwd, env, log_path):
        """Runs `command` (its python replaced by this node's) in `cwd`; returns an outcome dict."""
        import ray

        child_env = dict(os.environ)
        child_env.update(env)
        child_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (env.get("PYTHONPATH"), os.environ.get("PYTHONPATH")) if p)
        if self._gpus:
            ids = ray.get_runtime_context().get_accelerator_ids().get("GPU", [])
            child_env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in ids)
        else:
            child_env["CUDA_VISIBLE_DEVICES"] = ""  # --gpus_per_run=0: no GPU, not all of them
        command = [sys.executable] + list(command[1:])
        host = socket.gethostname()
        try:
            os.makedirs(os.path.dirname(log_path), exist_ok=True)
            log = open(log_path, "a")
        except OSError as error:
            return {"error": f"cannot write {log_path} on {host}: {error.strerror}"}
        with log:
            start = time.time()
            log.write(f"[suite] {_iso(start)} start on {host} (CUDA_VISIBLE_DEVICES="
                      f"{child_env['CUDA_VISIBLE_DEVICES']!r}): {shlex.join(command)}\n")
            log.flush()
            with self._lock:
                if self._stopped:
                    return {"exit_status": 143, "seconds": 0.0}
                try:
                    self._proc = subprocess.Popen(
                        [sys.executable, "-c", LAUNCHER, str(os.getpid())] + command, cwd=cwd,
                        env=child_env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                        start_new_session=True)  # a terminal's Ctrl-C reaches the suite, which stops it
                except OSError as error:
                    return {"error": f"cannot start the run on {host} in {cwd}: {error}"}
            while True:
                try:
                    code = self._proc.wait(timeout=0.5)
                    break
                except subprocess.TimeoutExpired:
                    pass
            end = time.time()
            log.write(f"[suite] {_iso(end)} end: exit status {code} after {end - start:.1f} s\n")
        return {"exit_status": code, "seconds": end - start}

    def stop(self):
        with self._lock:
            self._stopped = True
            if self._proc is not None and self._proc.poll() is None:
                self._proc.send_signal(signal.SIGTERM)


def _iso(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat(timespec="milliseconds")


def forwarded_env(gpus_per_run):
    """The variables every run gets: the driver's Keras/TF/XLA/JAX ones and the package path."""
    env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIXES)}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_ROOT, os.environ.get("PYTHONPATH")) if p)
    if 0 < gpus_per_run < 1:  # runs share a GPU: neither framework may take all its memory
        env.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
        env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    return env


class RayPool:
    """`slots` Trainer actors of `cpus` CPUs and `gpus` GPUs each, on a started Ray."""

    def __init__(self, ray, slots, cpus, gpus):
        self.ray = ray
        self.actor_class = ray.remote(max_concurrency=2)(Trainer).options(num_cpus=cpus, num_gpus=gpus)
        self.gpus = gpus
        self.env = forwarded_env(gpus)
        self.cwd = os.getcwd()
        self.starting = {}  # ready-check ref -> actor (placed once it answers)
        self.idle = []
        self.busy = {}  # run ref -> actor
        for _ in range(slots):
            self._add_actor()

    def _add_actor(self):
        actor = self.actor_class.remote(self.gpus)
        self.starting[actor.host.remote()] = actor

    def capacity(self):
        return len(self.idle) + len(self.busy) + len(self.starting)

    def free(self):
        self._collect_ready(0)
        return len(self.idle)

    def start(self, job):
        actor = self.idle.pop()
        ref = actor.run.remote(job.command, self.cwd, self.env, job.log_path)
        self.busy[ref] = actor
        return ref

    def _collect_ready(self, timeout):
        if not self.starting:
            return
        ready, _ = self.ray.wait(list(self.starting), num_returns=len(self.starting), timeout=timeout)
        for ref in ready:
            actor = self.starting.pop(ref)
            try:
                self.ray.get(ref)
                self.idle.append(actor)
            except self.ray.exceptions.RayError:
                self._add_actor()

    def wait(self, timeout):
        """[(handle, Outcome)] of the jobs that ended within `timeout` seconds (maybe none)."""
        refs = list(self.busy) + list(self.starting)
        if not refs:
            time.sleep(timeout)
            return []
        ready, _ = self.ray.wait(refs, num_returns=1, timeout=timeout)
        ended = []
        for ref in ready:
            if ref in self.starting:
                self._collect_ready(0)
                continue
            actor = self.busy.pop(ref)
            try:
                result = self.ray.get(ref)
                self.idle.append(actor)
            except self.ray.exceptions.RayError as error:  # the actor or its node died
                result = {"error": "its Ray worker failed: " + str(error).strip().splitlines()[-1][:300]}
                self._add_actor()
            ended.append((ref, Outcome(result.get("exit_status"), result.get("error"), result.get("seconds"))))
        return ended

    def stop_all(self):
        for actor in self.busy.values():
            actor.stop.remote()

    def close(self):
        self.ray.shutdown()  # kills the actors; their subprocesses die with them


def parse_address(text):
    """'auto' or HOST:PORT, else SetupError naming --ray_address."""
    host, _, port = text.rpartition(":")
    if text == "auto" or (host and port.isdigit() and 0 < int(port) < 65536):
        return text
    raise SetupError(f"suite: --ray_address must be auto or HOST:PORT, received {text!r}")


def pool_factory(parallel, cpus_per_run, gpus_per_run, address=None):
    """Checks what can be checked before starting Ray; returns (make_pool, gpus_per_run).

    Raises:
        SetupError: Ray is not installed; this machine has too few GPUs for
            `parallel` runs of `gpus_per_run` each.
    """
    ray = import_ray()
    if address is not None:
        return (lambda: _cluster_pool(ray, parallel, cpus_per_run, gpus_per_run, address)), gpus_per_run
    gpus = local_gpu_count()
    if gpus_per_run is None:
        gpus_per_run = 1.0 if gpus else 0.0
    needed = parallel * gpus_per_run
    if needed > gpus + 1e-9:
        raise SetupError(
            f"suite: --parallel={parallel} runs of --gpus_per_run={gpus_per_run:g} need {needed:g} GPUs, "
            f"this machine has {gpus}; lower --parallel or --gpus_per_run (0.5: two runs per GPU, 0: CPU only)"
        )

    def make_pool():
        _quiet_init(ray, num_cpus=math.ceil(parallel * cpus_per_run - 1e-9), num_gpus=gpus,
                    include_dashboard=False)
        return RayPool(ray, parallel, cpus_per_run, gpus_per_run)

    return make_pool, gpus_per_run


def _quiet_init(ray, **kwargs):
    """ray.init with Ray's own messages off the terminal (its logs stay in /tmp/ray)."""
    ray.init(log_to_driver=False, logging_level=logging.ERROR, configure_logging=True, **kwargs)


def _reachable(address, seconds=5.0):
    """None if HOST:PORT accepts a TCP connection within `seconds`, else why not
    (Ray itself retries an unreachable address for minutes)."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=seconds):
            return None
    except OSError as error:
        return error.strerror or type(error).__name__


def _cluster_pool(ray, parallel, cpus_per_run, gpus_per_run, address):
    why = None if address == "auto" else _reachable(address)
    if why is not None:
        raise SetupError(f"suite: --ray_address={address}: cannot reach a Ray cluster there ({why}); "
                         "start one with `ray start --head`")
    try:
        _quiet_init(ray, address=address)
    except (ConnectionError, RuntimeError, ValueError) as error:
        detail = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise SetupError(f"suite: --ray_address={address}: cannot connect to a Ray cluster ({detail})") from None
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    if gpus_per_run is None:
        gpus_per_run = 1.0 if any(n.get("GPU", 0) for n in nodes) else 0.0
    if not any(n.get("CPU", 0) >= cpus_per_run and n.get("GPU", 0) >= gpus_per_run for n in nodes):
        have = "; ".join(f"{n.get('CPU', 0):g} CPUs, {n.get('GPU', 0):g} GPUs" for n in nodes)
        ray.shutdown()
        raise SetupError(f"suite: no node of the Ray cluster at --ray_address={address} has --cpus_per_run="
                         f"{cpus_per_run:g} CPUs and --gpus_per_run={gpus_per_run:g} GPUs (nodes: {have})")
    return RayPool(ray, parallel, cpus_per_run, gpus_per_run)

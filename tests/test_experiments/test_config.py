"""experiments.runner.config: flag checks (exit status 2, one line, nothing on disk) and step arithmetic."""

import math
import os
import subprocess
import sys

import pytest
from run_helpers import make_image_folder, parse

from experiments.runner import config as config_lib
from experiments.runner import run, train

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("images"))  # 40 train, 20 test


def config_for(*args, train_size=1000):
    """Config of `args` with 1000 training images: batch 128 -> 8 steps per epoch."""
    return config_lib.build_config(parse(*args), train_size=train_size)


# (flag named in the message, arguments): each must fail.
BAD = [
    ("schedule", ["--schedule=exponentially"]),
    ("lr", ["--lr=-0.1"]),
    ("lr", ["--lr=0"]),
    ("lr", ["--lr=nan"]),
    ("epochs", ["--epochs=0"]),
    ("epochs", ["--epochs=ten"]),
    ("batch_size", ["--batch_size=0"]),
    ("milestones", ["--schedule=step", "--milestones=30,x"]),
    ("milestones", ["--schedule=step", "--milestones=60,30"]),
    ("milestones", ["--schedule=step", "--milestones=30,30"]),
    ("milestones", ["--schedule=step", "--milestones=30,100"]),
    ("milestones", ["--schedule=step", "--milestones=0,50"]),
    ("milestones", ["--schedule=step", "--warmup_epochs=30", "--milestones=30,60"]),
    ("milestones", ["--schedule=step", "--epochs=2"]),  # defaults 1,1,2 collide
    ("factor", ["--schedule=step", "--factor=0"]),
    ("factor", ["--schedule=step", "--factor=1.5"]),
    ("factor", ["--schedule=cosine", "--factor=0.5"]),  # not used by cosine
    ("power", ["--schedule=cosine", "--power=2"]),
    ("milestones", ["--schedule=poly", "--milestones=30,60"]),
    ("min_lr", ["--schedule=poly", "--min_lr=0.001"]),
    ("end_lr", ["--schedule=constant", "--end_lr=0.001"]),
    ("t0", ["--schedule=step", "--t0=5"]),
    ("min_lr", ["--schedule=cosine", "--min_lr=0.2"]),
    ("min_lr", ["--schedule=cosine", "--lr=0.1", "--min_lr=0.1"]),
    ("min_lr", ["--schedule=cosine_restarts", "--min_lr=-0.01"]),
    ("power", ["--schedule=poly", "--power=0"]),
    ("end_lr", ["--schedule=linear", "--end_lr=0.5"]),
    ("t_mul", ["--schedule=cosine_restarts", "--t_mul=0.5"]),
    ("t_mult", ["--schedule=cosine_restarts", "--t_mult=2", "--t_mul=2"]),
    ("m_mul", ["--schedule=cosine_restarts", "--m_mul=0"]),
    ("t0", ["--schedule=cosine_restarts", "--t0=200"]),
    ("t0", ["--schedule=cosine_restarts", "--warmup_epochs=90", "--t0=20"]),
    ("t0", ["--schedule=cosine_restarts", "--t0=0"]),
    # The 0.2 schedules: ranges, relations, and each flag only with its schedule.
    ("decay_rate", ["--schedule=exponential", "--decay_rate=1"]),
    ("decay_rate", ["--schedule=exponential", "--decay_rate=0"]),
    ("decay_epochs", ["--schedule=exponential", "--decay_epochs=0"]),
    ("transition_begin", ["--schedule=exponential", "--transition_begin=100"]),
    ("decay_rate", ["--schedule=cosine", "--decay_rate=0.9"]),
    ("staircase", ["--schedule=poly", "--staircase"]),
    ("timescale", ["--schedule=inverse_sqrt", "--timescale=0"]),
    ("timescale", ["--schedule=onecycle", "--timescale=2"]),
    ("pct_start", ["--schedule=onecycle", "--pct_start=1"]),
    ("pct_start", ["--schedule=onecycle", "--pct_start=0.6", "--three_phase"]),
    ("div_factor", ["--schedule=onecycle", "--div_factor=0.5"]),
    ("final_div_factor", ["--schedule=onecycle", "--final_div_factor=0"]),
    ("anneal_strategy", ["--schedule=onecycle", "--anneal_strategy=exp"]),
    ("three_phase", ["--schedule=cyclic", "--max_lr=1", "--three_phase"]),
    ("max_lr", ["--schedule=cyclic"]),
    ("max_lr", ["--schedule=cyclic", "--max_lr=0.05"]),
    ("max_lr", ["--schedule=cosine", "--max_lr=1"]),
    ("step_size_up", ["--schedule=cyclic", "--max_lr=1", "--step_size_up=0"]),
    ("step_size_down", ["--schedule=cyclic", "--max_lr=1", "--step_size_down=-1"]),
    ("mode", ["--schedule=cyclic", "--max_lr=1", "--mode=sawtooth"]),
    ("gamma", ["--schedule=cyclic", "--max_lr=1", "--gamma=0.99"]),  # triangular
    ("gamma", ["--schedule=cyclic", "--max_lr=1", "--mode=exp_range", "--gamma=1.5"]),
    ("upper_bound", ["--schedule=tanh", "--lower_bound=3", "--upper_bound=3"]),
    ("lower_bound", ["--schedule=wsd", "--lower_bound=-3"]),
    ("min_lr", ["--schedule=tanh", "--min_lr=0.5"]),
    ("stable_epochs", ["--schedule=wsd", "--stable_epochs=100"]),
    ("stable_epochs", ["--schedule=wsd", "--warmup_epochs=10", "--stable_epochs=90"]),
    ("warmup_start_lr", ["--schedule=wsd", "--warmup_epochs=5", "--warmup_start_lr=0.01"]),
    ("decay_shape", ["--schedule=wsd", "--decay_shape=sqrt"]),
    ("warmup_epochs", ["--warmup_epochs=100"]),
    ("warmup_epochs", ["--warmup_epochs=-1"]),
    ("warmup_start_lr", ["--warmup_start_lr=0.01"]),  # without warmup
    ("warmup_start_lr", ["--warmup_epochs=5", "--warmup_start_lr=0.5"]),
    ("warmup_start_lr", ["--warmup_epochs=5", "--lr_update=epoch"]),  # epoch 0 at LR 0
    ("lr_update", ["--lr_update=batch"]),
    ("optimizer", ["--optimizer=rmsprop"]),
    ("momentum", ["--optimizer=adam", "--momentum=0.5"]),
    ("nesterov", ["--optimizer=adamw", "--nesterov"]),
    ("momentum", ["--momentum=1"]),
    ("nesterov", ["--momentum=0", "--nesterov"]),
    ("weight_decay", ["--weight_decay=-1e-4"]),
    ("model", ["--model=vgg16"]),
    ("precision", ["--precision=float16"]),
    ("jit_compile", ["--deterministic", "--jit_compile"]),
    ("steps_per_execution", ["--steps_per_execution=0"]),
    ("steps_per_execution", ["--strategy=mirrored", "--steps_per_execution=2"]),
    ("backup_every", ["--backup_every=0"]),
    ("run_name", ["--run_name=a/b"]),
    ("run_name", ["--run_name=.."]),
    ("run_name", ["--run_name=-x"]),
    ("train_subset", ["--train_subset=0"]),
    ("train_subset", ["--train_subset=50001"]),
    ("no_such_flag", ["--no_such_flag=1"]),
    # Bad input the runner used to accept (issue 14).
    ("seed", ["--seed=4294967296"]),  # NumPy takes 32 bits
    ("lr", ["--lr=1e-320"]),  # 0 in float32
    ("lr", ["--lr=1e39"]),  # inf in float32
    ("lr", ["--lr=1e-44", "--lr_scaling=linear", "--batch_size=1"]),  # 0 once scaled
    ("epochs", ["--epochs=100000000000000000000000"]),  # beyond int64
    ("epochs", ["--epochs=6000000", "--schedule=constant"]),  # 391 steps each: > 2**31 steps
    ("flagfile", ["--flagfile=/no/such/flagfile"]),
    ("flagfile", ["--flagfile"]),
]


@pytest.mark.parametrize("flag,args", BAD, ids=[f"{f}:{' '.join(a)}" for f, a in BAD])
def test_bad_flag_exits_2_with_one_line_and_writes_nothing(flag, args, tmp_path, capsys):
    log_dir = tmp_path / "logs"
    status = run.run_command(["run", f"--log_dir={log_dir}", *args])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and err.startswith(f"error: --{flag}: "), err
    assert not log_dir.exists()


def test_t_mult_is_a_deprecated_alias_of_t_mul(capsys):
    new = config_for("--schedule=cosine_restarts", "--t0=2", "--t_mul=2")
    assert capsys.readouterr().err == ""
    old = config_for("--schedule=cosine_restarts", "--t0=2", "--t_mult=2")
    assert capsys.readouterr().err == "warning: --t_mult is deprecated; use --t_mul\n"
    assert old.flags == new.flags and old.flags["t_mul"] == 2.0 and "t_mult" not in old.flags
    assert old.schedule_spec == new.schedule_spec
    assert old.command_line == new.command_line and "--t_mul=2.0" in old.command_line
    assert old.flags["run_name"] == "cosine_restarts_lr0.1_t2_tm2_mm1_min0_sgd_simple_cnn_e100_s0"


def test_t_mult_and_t_mul_together_is_an_error_naming_both():
    with pytest.raises(config_lib.FlagError, match=r"^--t_mult: cannot be given with --t_mul"):
        config_for("--schedule=cosine_restarts", "--t_mult=2", "--t_mul=2")


FOLDER_BAD = [
    ("image_folder", lambda f, t: [f"--image_folder={t}/missing"]),
    ("image_folder", lambda f, t: [f"--image_folder={f}/train"]),  # no train/ inside
    ("image_folder", lambda f, t: [f"--image_folder={f}/train/class0/0000.png"]),  # a file
    ("train_subset", lambda f, t: [f"--image_folder={f}", "--train_subset=41"]),
    ("data_dir", lambda f, t: [f"--image_folder={f}", f"--data_dir={t}"]),
    ("dataset", lambda f, t: [f"--image_folder={f}", "--dataset=cifar10"]),
]


@pytest.mark.parametrize("flag,make", FOLDER_BAD, ids=[f for f, _ in FOLDER_BAD])
def test_bad_data_flags(flag, make, folder, tmp_path, capsys):
    log_dir = tmp_path / "logs"
    status = run.run_command(["run", f"--log_dir={log_dir}", *make(folder, tmp_path)])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith(f"error: --{flag}: ") and err.count("\n") == 1, err
    assert not log_dir.exists()


@pytest.mark.parametrize("args,expected", [
    (["--seed=4294967296"], "error: --seed: must be in [0, 4294967295] (NumPy's seed range), "
                            "received 4294967296\n"),
    (["--lr=1e-320"], "error: --lr: must be a positive float32 number (in [1.4013e-45, "
                      "3.40282e+38]; the optimizer computes in float32), received 1e-320\n"),
    (["--flagfile=/no/such/flagfile"], "error: --flagfile: cannot open '/no/such/flagfile': No "
                                       "such file or directory\n"),
    (["--epochs=100000000000000000000000"], "error: --epochs: must be in [1, 2147483647], "
                                            "received 100000000000000000000000\n"),
])
def test_bad_input_messages(args, expected, tmp_path, capsys):
    assert run.run_command(["run", f"--log_dir={tmp_path / 'logs'}", *args]) == 2
    assert capsys.readouterr().err == expected


def test_a_file_as_image_folder_is_not_a_directory(folder, tmp_path, capsys):
    path = os.path.join(folder, "train", "class0", "0000.png")
    assert run.run_command(["run", f"--image_folder={path}", f"--log_dir={tmp_path}/l"]) == 2
    assert capsys.readouterr().err.startswith(f"error: --image_folder: {path!r} is not a directory")


@pytest.mark.parametrize("layout,reason", [
    ({"train/a/x.png": b"", "test/b/y.png": b""}, "same class folders"),
    ({"train/a/x.png": b"", "test/a/notes.txt": b""}, "is not an image"),
    ({"train/a/x.png": b"", "train/stray.png": b"", "test/a/y.png": b""}, "only class folders"),
    ({"train/a/x.png": b"", "test/a/.keep": b""}, "has no images"),
])
def test_malformed_image_folders(layout, reason, tmp_path, capsys):
    for relative, content in layout.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(content)
    log_dir = tmp_path / "logs"
    assert run.run_command(["run", f"--image_folder={tmp_path}", f"--log_dir={log_dir}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --image_folder: ") and reason in err, err
    assert not log_dir.exists()


@pytest.mark.parametrize("args,expected", [
    (["--schedule=step", "--milestones=30,60,30"], "error: --milestones: must be strictly "
                                                   "increasing, received '30,60,30'\n"),
    (["--epochs=many"], "error: --epochs: "),
])
def test_bad_flag_in_a_real_process(args, expected, tmp_path):
    log_dir = tmp_path / "logs"
    result = subprocess.run([sys.executable, "-m", "experiments.run", f"--log_dir={log_dir}",
                             *args], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith(expected) and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not log_dir.exists()


def test_steps_per_epoch_uses_the_global_batch_and_rounds_up():
    config = config_for("--epochs=10", "--batch_size=128")
    assert (config.steps_per_epoch, config.total_steps) == (8, 80)  # ceil(1000 / 128) = 8
    assert config.decay_steps == 80 and config.warmup_steps == 0
    assert config.derived()["per_replica_batch_size"] == 128
    assert config_for("--batch_size=100").steps_per_epoch == 10  # exact division


def test_warmup_shortens_the_decay_so_it_ends_with_training():
    config = config_for("--epochs=10", "--warmup_epochs=2")
    assert (config.warmup_steps, config.decay_steps, config.total_steps) == (16, 64, 80)
    assert config_for("--epochs=10", "--warmup_epochs=0.5").warmup_steps == 4


def test_milestones_stay_at_absolute_epochs_after_warmup():
    config = config_for("--schedule=step", "--epochs=10", "--milestones=3,6,8",
                        "--warmup_epochs=2")
    # absolute steps 24, 48, 64; the inner schedule starts at step 16
    assert config.boundaries == (8, 32, 48)
    assert config_for("--schedule=step", "--epochs=10", "--milestones=3,6,8").boundaries == (
        24, 48, 64)


@pytest.mark.parametrize("epochs,expected", [(100, "30,60,80"), (10, "3,6,8"), (7, "2,4,6"),
                                             (5, "2,3,4"), (20, "6,12,16")])
def test_default_milestones(epochs, expected):
    assert config_for("--schedule=step", f"--epochs={epochs}").flags["milestones"] == expected


def test_default_t0_is_a_tenth_of_the_epochs_after_warmup():
    config = config_for("--schedule=cosine_restarts", "--epochs=20")
    assert config.flags["t0"] == 2.0 and config.first_decay_steps == 16
    config = config_for("--schedule=cosine_restarts", "--epochs=20", "--warmup_epochs=2")
    assert config.flags["t0"] == 1.8 and config.first_decay_steps == 14  # round(14.4)


def test_lr_default_depends_on_the_optimizer():
    assert config_for().flags["lr"] == 0.1
    assert config_for("--optimizer=adam").flags["lr"] == 1e-3
    assert config_for("--optimizer=adamw", "--lr=0.004").flags["lr"] == 0.004


def test_steps_per_execution_reaches_compile():
    model = train.build_model(config_for("--steps_per_execution=4"), (32, 32, 3), 10)
    assert model.steps_per_execution == 4


def test_unused_schedule_flags_are_recorded_as_none():
    flags = config_for("--schedule=cosine").flags
    assert flags["min_lr"] == 0.0
    assert all(flags[name] is None for name in ("milestones", "factor", "t0", "power", "end_lr"))


def test_default_run_name_shows_the_schedule_and_given_values():
    assert config_for("--schedule=poly", "--power=0.5", "--epochs=30").flags["run_name"] == (
        "poly_lr0.1_p0.5_end0_sgd_simple_cnn_e30_s0")
    name = config_for("--schedule=step", "--epochs=10", "--warmup_epochs=2",
                      "--warmup_start_lr=0.01", "--batch_size=256", "--seed=3").flags["run_name"]
    assert name == "step_lr0.1_m3-6-8_f0.1_w2_ws0.01_sgd_simple_cnn_e10_b256_s3"
    assert config_for("--run_name=mine").run_dir == os.path.join("logs", "mine")


def test_command_line_records_the_given_flags():
    config = config_for("--schedule=step", "--epochs=10", "--noaugment")
    assert config.command_line == ("--schedule=step", "--epochs=10", "--noaugment")


def test_image_folder_sizes_are_counted_without_reading_images(folder):
    config = config_lib.build_config(parse(f"--image_folder={folder}", "--batch_size=8"))
    assert (config.train_size, config.val_size, config.num_classes) == (40, 20, 10)
    assert config.steps_per_epoch == 5 and config.flags["dataset"] is None
    config = config_lib.build_config(parse(f"--image_folder={folder}", "--train_subset=12",
                                           "--batch_size=8"))
    assert (config.train_size, config.steps_per_epoch) == (12, 2)


# Schedule values, computed by hand: 8 steps per epoch, 10 epochs, lr 0.1.
@pytest.mark.parametrize("args,expected", [
    # warmup 2 epochs (16 steps) from 0.01, then step x0.1 at epochs 3, 6, 8 (steps 24, 48, 64)
    (["--schedule=step", "--milestones=3,6,8", "--warmup_epochs=2", "--warmup_start_lr=0.01"],
     {0: 0.01, 8: 0.055, 15: 0.01 + 0.09 * 15 / 16, 16: 0.1, 23: 0.1, 24: 0.01, 47: 0.01,
      48: 0.001, 63: 0.001, 64: 1e-4, 79: 1e-4}),
    # cosine over the 64 steps after warmup, to min_lr 0.001
    (["--schedule=cosine", "--warmup_epochs=2", "--min_lr=0.001"],
     {0: 0.0, 8: 0.05, 16: 0.1, 48: 0.0505, 79: 0.001 + 0.099 * (1 + math.cos(math.pi * 63 / 64)) / 2}),
    # poly power 2 over 64 steps after warmup: 0.1 * (1 - t/64)^2
    (["--schedule=poly", "--warmup_epochs=2"], {16: 0.1, 48: 0.025, 64: 0.00625, 79: 0.1 / 64**2}),
    (["--schedule=linear", "--end_lr=0.02"], {0: 0.1, 40: 0.06, 79: 0.1 - 0.08 * 79 / 80}),
    # restarts after warmup: t0 = 2 epochs = 16 steps, t_mul 2: cycles at 16, 32, 64
    (["--schedule=cosine_restarts", "--warmup_epochs=2", "--t0=2", "--t_mul=2"],
     {16: 0.1, 24: 0.05, 32: 0.1, 48: 0.05, 64: 0.1}),
    (["--schedule=constant", "--warmup_epochs=1", "--warmup_start_lr=0.02"],
     {0: 0.02, 4: 0.06, 8: 0.1, 79: 0.1}),
    # held per epoch: every step of epoch e has the LR of step 8e
    (["--schedule=cosine", "--lr_update=epoch"],
     {0: 0.1, 7: 0.1, 8: 0.05 * (1 + math.cos(math.pi * 8 / 80)),
      15: 0.05 * (1 + math.cos(math.pi * 8 / 80)), 79: 0.05 * (1 + math.cos(math.pi * 72 / 80))}),
    (["--schedule=step", "--milestones=3,6,8", "--warmup_epochs=2", "--warmup_start_lr=0.01",
      "--lr_update=epoch"], {7: 0.01, 8: 0.055, 15: 0.055, 16: 0.1, 24: 0.01, 79: 1e-4}),
])
def test_schedule_values_by_hand(args, expected):
    from experiments.runner.schedules import build_schedule

    schedule = build_schedule(config_for("--epochs=10", *args))
    for step, value in expected.items():
        assert float(schedule(step)) == pytest.approx(value, rel=1e-5, abs=1e-7), step


def test_runner_schedules_are_the_library_registry():
    import kschedules as ks

    from experiments.runner import flags as flag_defs

    assert list(flag_defs.SCHEDULES) == list(ks.SCHEDULES)
    assert set(flag_defs.SCHEDULE_FLAGS) == set(ks.SCHEDULES)
    used = {name for names in flag_defs.SCHEDULE_FLAGS.values() for name in names}
    assert used == set(flag_defs.ALL_SCHEDULE_FLAGS)


# The 0.2 schedules: flags -> the kschedules arguments, 8 steps per epoch, 10 epochs.
@pytest.mark.parametrize("args,name,kwargs", [
    (["--schedule=exponential", "--decay_rate=0.5", "--decay_epochs=2", "--transition_begin=1",
      "--staircase", "--end_lr=0.001"], "ExponentialDecay",
     dict(initial_learning_rate=0.1, decay_steps=16, decay_rate=0.5, staircase=True,
          transition_begin=8, end_learning_rate=0.001)),
    (["--schedule=exponential"], "ExponentialDecay",  # defaults: x0.95 per epoch, no floor
     dict(initial_learning_rate=0.1, decay_steps=8, decay_rate=0.95, staircase=False,
          transition_begin=0, end_learning_rate=None)),
    (["--schedule=inverse_sqrt", "--warmup_epochs=2"], "InverseSqrtDecay",  # timescale = warmup
     dict(initial_learning_rate=0.1, timescale=16)),
    (["--schedule=inverse_sqrt", "--timescale=0.5"], "InverseSqrtDecay",
     dict(initial_learning_rate=0.1, timescale=4)),
    (["--schedule=onecycle", "--warmup_epochs=1", "--pct_start=0.25", "--anneal_strategy=linear",
      "--div_factor=10", "--final_div_factor=100", "--three_phase"], "OneCycle",
     dict(maximal_learning_rate=0.1, total_steps=72, pct_start=0.25, anneal_strategy="linear",
          div_factor=10.0, final_div_factor=100.0, three_phase=True)),
    (["--schedule=cyclic", "--lr=0.01", "--max_lr=0.1", "--step_size_up=1.5"], "Cyclic",
     dict(initial_learning_rate=0.01, maximal_learning_rate=0.1, step_size_up=12,
          step_size_down=12, mode="triangular", gamma=1.0)),
    (["--schedule=cyclic", "--lr=0.01", "--max_lr=0.1", "--step_size_down=0.5",
      "--mode=exp_range", "--gamma=0.99"], "Cyclic",
     dict(initial_learning_rate=0.01, maximal_learning_rate=0.1, step_size_up=16,
          step_size_down=4, mode="exp_range", gamma=0.99)),
    (["--schedule=tanh", "--min_lr=0.001", "--lower_bound=-6", "--upper_bound=2"], "TanhDecay",
     dict(initial_learning_rate=0.1, decay_steps=80, min_learning_rate=0.001, lower_bound=-6.0,
          upper_bound=2.0)),
    (["--schedule=wsd", "--warmup_epochs=2", "--min_lr=0.001", "--decay_shape=1-sqrt"],
     "WarmupStableDecay",  # stable: 10 - 2 - 10% of 10 = 7 epochs; the decay takes the last 1
     dict(initial_learning_rate=0.1, warmup_steps=16, stable_steps=56, decay_steps=8,
          min_learning_rate=0.001, warmup_shape="linear", decay_shape="1-sqrt")),
    (["--schedule=wsd", "--stable_epochs=5", "--lr_scaling=linear", "--batch_size=256",
      "--min_lr=0.001"], "WarmupStableDecay",  # LRs scaled x2; 1000 / 256 -> 4 steps an epoch
     dict(initial_learning_rate=0.2, warmup_steps=0, stable_steps=20, decay_steps=20,
          min_learning_rate=0.002, warmup_shape="linear", decay_shape="cosine")),
])
def test_new_schedules_get_their_arguments_in_steps(args, name, kwargs):
    from experiments.runner.schedules import build_schedule

    schedule = build_schedule(config_for("--epochs=10", *args))
    assert type(schedule).__name__ == ("Warmup" if "--warmup_epochs=1" in args or (
        "--warmup_epochs=2" in args and name != "WarmupStableDecay") else name)
    inner = schedule.schedule if type(schedule).__name__ == "Warmup" else schedule
    assert type(inner).__name__ == name
    assert inner.get_config() == pytest.approx(kwargs)


def test_new_schedules_name_their_runs():
    assert config_for("--schedule=cyclic", "--lr=0.01", "--max_lr=0.1").flags["run_name"] == (
        "cyclic_lr0.01_max0.1_up2_down2_triangular_g1_sgd_simple_cnn_e100_s0")
    assert config_for("--schedule=onecycle", "--three_phase").flags["run_name"] == (
        "onecycle_lr0.1_pct0.3_cos_div25_fdiv10000_3phase_sgd_simple_cnn_e100_s0")


def test_unknown_runner_flag_names_the_closest(tmp_path, capsys):
    assert run.run_command(["run", f"--log_dir={tmp_path}/l", "--lr_scalin=linear"]) == 2
    assert capsys.readouterr().err == "error: --lr_scalin: unknown flag (did you mean --lr_scaling?)\n"
    assert not (tmp_path / "l").exists()


def test_the_image_folder_fingerprint_ignores_where_it_lies(folder, tmp_path):
    import shutil

    from experiments.runner import data

    copy = shutil.copytree(folder, tmp_path / "copy")
    here, there = (config_lib.build_config(parse(f"--image_folder={f}")).data for f in (folder, copy))
    assert here == there and here["counts"] == {"train": [4] * 10, "test": [2] * 10}
    os.rename(os.path.join(copy, "test", "class1", "0000.png"), os.path.join(copy, "test", "class1", "x.png"))
    renamed = data.fingerprint(data.list_image_folder(str(copy)))
    assert renamed["counts"] == here["counts"] and renamed["files_sha256"] != here["files_sha256"]

"""Tests for experiments/suite.py: planning, dedup, names, milestone arithmetic, skipping and resuming.

The runner is never started: `suite.main` takes the subprocess call as an argument and
these tests pass a fake that writes a run folder following the contract.
"""

import json
import math
import os
import sys

import pytest
from run_helpers import make_run

from experiments import lr_find, studies, suite
from experiments.runner.flags import FLAGS, RUNNER_FLAGS
from experiments.studies import common



def _value(text):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text, text)


class FakeRunner:
    """Stands in for `python -m experiments.run` / `experiments.lr_find`; records every command."""

    def __init__(self, fail_names=(), min_loss_lr=0.1):
        self.commands = []
        self.fail_names = set(fail_names)
        self.min_loss_lr = min_loss_lr

    def __call__(self, command):
        assert command[:2] == [sys.executable, "-m"]
        self.commands.append(command)
        flags = {a[2:].split("=", 1)[0]: _value(a.split("=", 1)[1]) for a in command[3:] if "=" in a}
        recorded = {name: FLAGS[name].default for name in RUNNER_FLAGS}  # like the runner: every flag
        recorded.update(flags)
        if command[2] == "experiments.lr_find":  # <log_dir>/<run_name>, as lr_find writes
            out = os.path.join(flags["log_dir"], flags["run_name"])
            os.makedirs(out, exist_ok=True)
            with open(os.path.join(out, "lr_find.json"), "w") as f:
                json.dump({"suggested_lr": self.min_loss_lr / 10, "min_loss_lr": self.min_loss_lr,
                           "method": "LR at the minimum of the smoothed loss divided by 10",
                           "flags": {k: recorded[k] for k in lr_find.RECORDED_FLAGS}}, f)
            return 0
        assert command[2] == "experiments.run"
        failed = flags["run_name"].rsplit("_seed", 1)[0] in self.fail_names
        epochs = flags["epochs"]
        # Final accuracy peaks at lr 0.03 (the sweep's middle candidate for min_loss_lr 0.1).
        penalty = 0.1 * abs(math.log10(flags["lr"] / 0.03))
        accs = [0.1 + 0.5 * (e + 1) / epochs + 0.01 * flags["seed"] - penalty for e in range(epochs)]
        make_run(flags["log_dir"], flags["run_name"], accs, [2.0 - 0.1 * e for e in range(epochs)],
                 wall=3.0, defaults=recorded, derived={"train_size": 100}, history_lr=flags["lr"],
                 epoch_seconds=1.0, history=not failed, seed=flags["seed"], log_dir=flags["log_dir"])
        if failed:
            return 1
        return 0


def _options(**overrides):
    argv = ["--exercise", "step", "--epochs", "10", "--lr", "0.1"]
    options, _, _ = suite.parse_args(argv)
    for k, v in overrides.items():
        setattr(options, k, v)
    return options


@pytest.mark.parametrize(
    "fractions, epochs, expected",
    [
        ((0.3, 0.6, 0.8), 100, [30, 60, 80]),
        ((0.3, 0.6, 0.8), 10, [3, 6, 8]),
        ((0.5, 0.75), 10, [5, 8]),  # 7.5 rounds half up
        ((0.25, 0.5, 0.75), 10, [3, 5, 8]),
        ((0.25, 0.5, 0.75), 4, [1, 2, 3]),
        ((0.3, 0.6, 0.8), 7, [2, 4, 6]),
    ],
)
def test_milestone_epochs(fractions, epochs, expected):
    assert common.milestone_epochs(fractions, epochs) == expected


@pytest.mark.parametrize("fractions, epochs", [((0.3, 0.6, 0.8), 3), ((0.5, 0.75), 2), ((0.25, 0.5, 0.75), 1)])
def test_milestones_too_short_fail_clearly(fractions, epochs):
    with pytest.raises(suite.SuiteError, match=f"--epochs={epochs} is too short .* strictly increasing, > 0 and < {epochs}"):
        common.milestone_epochs(fractions, epochs)


def test_parse_seeds():
    assert suite.parse_seeds("3") == [0, 1, 2]
    assert suite.parse_seeds("0,4") == [0, 4]
    assert suite.parse_seeds("7,") == [7]
    for bad in ("0", "-1", "a", "1,1", "2,-3", ","):
        with pytest.raises(suite.SuiteError, match="--seeds must"):
            suite.parse_seeds(bad)


def test_step_definitions_run_the_base_setting_once():
    defs = suite.definitions("step", 10, lr=0.1)
    names = [d.name for d in defs]
    assert names == [
        "constant_lr0.1",
        "step_x0.1_m3-6-8_lr0.1",  # base run == the grid's (0.1, 30/60/80%) entry: listed once
        "step_x0.2_m3-6-8_lr0.1",
        "step_x0.5_m3-6-8_lr0.1",
        "step_x0.1_m5-8_lr0.1",
        "step_x0.2_m5-8_lr0.1",
        "step_x0.5_m5-8_lr0.1",
        "step_x0.1_m3-5-8_lr0.1",
        "step_x0.2_m3-5-8_lr0.1",
        "step_x0.5_m3-5-8_lr0.1",
    ]
    assert dict(defs[0].flags) == {"schedule": "constant", "lr": 0.1}
    assert dict(defs[4].flags) == {"schedule": "step", "lr": 0.1, "milestones": "5,8", "factor": 0.1}
    # Milestone sets that round to the same epochs train once: of 4 epochs, 30/60/80% and
    # 25/50/75% are both epochs 1,2,3, so 1 constant + 3 factors x 2 distinct sets.
    short = [d.name for d in suite.definitions("step", 4, lr=0.1)]
    assert len(short) == 7 == len(set(short))
    assert "step_x0.5_m1-2-3_lr0.1" in short and "step_x0.5_m2-3_lr0.1" in short


def test_cosine_poly_warmup_definitions():
    cosine = suite.definitions("cosine", 20, lr=0.05, higher_lr_factor=3.0)
    assert [d.name for d in cosine] == [
        "step_x0.1_m6-12-16_lr0.05", "cosine_lr0.05", "cosine_lr0.15",
        "restarts_t2_tm1_lr0.05", "restarts_t2_tm2_lr0.05", "restarts_t5_tm1_lr0.05", "restarts_t5_tm2_lr0.05",
    ]
    assert dict(cosine[4].flags) == {"schedule": "cosine_restarts", "lr": 0.05, "t0": 2.0, "t_mul": 2.0}
    poly = suite.definitions("poly", 20, lr=0.05)
    assert [(dict(d.flags)["schedule"], dict(d.flags).get("power")) for d in poly] == [
        ("linear", None), ("poly", 0.5), ("poly", 2.0), ("poly", 3.0)]
    warmup = suite.definitions("warmup", 8, adam_lr=0.02, sgd_lr=0.8, warmup_epochs=5.0)
    assert [d.name for d in warmup] == [
        "adam_constant_lr0.02", "adam_warmup5_constant_lr0.02", "adam_warmup5_cosine_lr0.02",
        "sgd_constant_lr0.8", "sgd_warmup5_constant_lr0.8", "sgd_warmup5_cosine_lr0.8",
    ]
    assert dict(warmup[2].flags) == {"optimizer": "adam", "schedule": "cosine", "lr": 0.02, "warmup_epochs": 5.0}
    with pytest.raises(suite.SuiteError, match="--epochs must be > --warmup_epochs=5 .* received --epochs=5"):
        suite.definitions("warmup", 5)


def test_plan_runs_crosses_definitions_with_seeds(tmp_path):
    options = _options(seeds=[0, 3], log_dir=str(tmp_path), train_subset=500, image_folder="imgs")
    runs = suite.plan_runs(["poly"], 0.1, options, passthrough=["--weight_decay=0.001"])
    # The budget (--epochs, --train_subset) and the passed-through flag are in the names
    # (not the image folder's path).
    s = "_e10_n500_weight-decay0.001"
    assert [r.name for r in runs] == [
        f"linear_lr0.1{s}_seed0", f"poly_p0.5_lr0.1{s}_seed0", f"poly_p2_lr0.1{s}_seed0", f"poly_p3_lr0.1{s}_seed0",
        f"linear_lr0.1{s}_seed3", f"poly_p0.5_lr0.1{s}_seed3", f"poly_p2_lr0.1{s}_seed3", f"poly_p3_lr0.1{s}_seed3",
    ]
    r = runs[5]
    assert r.run_dir == os.path.join(str(tmp_path), "poly", f"poly_p0.5_lr0.1{s}_seed3")
    assert r.command[:3] == [sys.executable, "-m", "experiments.run"]
    assert r.args == [
        "--epochs=10", "--train_subset=500", "--image_folder=imgs", "--schedule=poly", "--lr=0.1",
        "--power=0.5", "--seed=3", f"--log_dir={tmp_path}/poly", f"--run_name=poly_p0.5_lr0.1{s}_seed3",
        "--weight_decay=0.001",
    ]


def test_suite_trains_reports_then_skips_finished_runs(tmp_path, capsys):
    log_dir = str(tmp_path / "logs")
    argv = ["--exercise", "poly", "--epochs", "4", "--seeds", "2", "--lr", "0.1", "--log_dir", log_dir,
            "--train_subset", "64"]
    fake = FakeRunner()
    assert suite.main(argv, call=fake) == 0
    assert len(fake.commands) == 8
    out = capsys.readouterr().out
    assert ("[suite] run 1 of 8 (poly/linear_lr0.1_e4_n64_seed0): starting; elapsed 0:00:00, estimated remaining "
            "unknown") in out
    assert "run 8 of 8 (poly/poly_p3_lr0.1_e4_n64_seed1): starting" in out
    report_md = open(os.path.join(log_dir, "poly", "report_e4_n64", "report.md")).read()  # named as its runs
    assert "given with --lr" in report_md and "poly_p0.5_lr0.1" in report_md
    assert "| `linear_lr0.1_e4_n64` | 2 |" in report_md
    assert os.path.exists(os.path.join(log_dir, "poly", "report_e4_n64", "curves.png"))
    # Again: every run is finished, nothing is trained, the report is regenerated.
    fake2 = FakeRunner()
    assert suite.main(argv, call=fake2) == 0
    assert fake2.commands == []
    out = capsys.readouterr().out
    assert out.count("finished already, skipped") == 8
    assert "estimated remaining 0:00:00" in out


def test_interrupted_run_is_resumed_and_failures_reported(tmp_path, capsys):
    log_dir = str(tmp_path / "logs")
    argv = ["--exercise", "poly", "--epochs", "4", "--lr", "0.1", "--log_dir", log_dir]
    interrupted = os.path.join(log_dir, "poly", "poly_p2_lr0.1_e4_seed0")
    os.makedirs(interrupted)
    open(os.path.join(interrupted, "config.json"), "w").write("{}")
    fake = FakeRunner(fail_names={"poly_p0.5_lr0.1_e4"})
    assert suite.main(argv, call=fake) == 1
    captured = capsys.readouterr()
    assert "(poly/poly_p2_lr0.1_e4_seed0): resuming" in captured.out
    assert "poly_p0.5_lr0.1_e4_seed0 failed (exit status 1); continuing" in captured.out
    assert "1 of 4 runs failed" in captured.err
    assert len(fake.commands) == 4  # the failure did not stop the others
    report_md = open(os.path.join(log_dir, "poly", "report_e4", "report.md")).read()
    assert "Planned but not finished (failed or interrupted): `poly_p0.5_lr0.1_e4_seed0`" in report_md


def test_a_run_in_use_by_another_process_is_not_started_twice(tmp_path, capsys):
    from experiments.runner import runlock

    log_dir = str(tmp_path / "logs")
    argv = ["--exercise", "poly", "--epochs", "4", "--lr", "0.1", "--log_dir", log_dir]
    busy = os.path.join(log_dir, "poly", "poly_p2_lr0.1_e4_seed0")
    fake = FakeRunner()
    with runlock.acquire(os.path.dirname(busy), os.path.basename(busy)):  # as a runner would
        assert suite.main(argv, call=fake) == 1
    captured = capsys.readouterr()
    assert f"(poly/poly_p2_lr0.1_e4_seed0): in use by process {os.getpid()}, not started twice" in captured.out
    assert len(fake.commands) == 3 and not any("poly_p2_lr0.1_e4_seed0" in a for c in fake.commands for a in c)
    assert "1 of 4 runs failed or were in use by another process" in captured.err
    # Free again: the next suite trains it.
    assert suite.main(argv, call=fake) == 0 and len(fake.commands) == 4


@pytest.mark.parametrize("recorded, message", [
    ({"epochs": 6}, "--epochs=6, this plan has --epochs=4"),
    # Flags this plan leaves at the runner's default but the finished run changed.
    ({"model": "resnet20"}, "--model=resnet20, this plan has --model=simple_cnn (the runner's default)"),
    ({"train_subset": 5000, "momentum": None},  # momentum None: not read, not compared
     "--train_subset=5000, this plan has --train_subset=None (the runner's default)"),
])
def test_finished_run_with_other_flags_is_an_error(tmp_path, capsys, recorded, message):
    # Another budget makes other run folders (`test_another_budget_...`); a finished run in
    # the planned folder whose config.json says otherwise is refused.
    log_dir = str(tmp_path / "logs")
    base = ["--exercise", "poly", "--lr", "0.1", "--log_dir", log_dir, "--epochs", "4"]
    assert suite.main(base, call=FakeRunner()) == 0
    config_path = os.path.join(log_dir, "poly", "linear_lr0.1_e4_seed0", "config.json")
    config = json.load(open(config_path))
    config["flags"].update(recorded)
    json.dump(config, open(config_path, "w"))
    fake = FakeRunner()
    assert suite.main(base, call=fake) == 2
    assert f"suite: {os.path.dirname(config_path)} finished with {message}; use another --log_dir" in (
        capsys.readouterr().err)
    assert fake.commands == []


def test_finished_run_is_reused_with_other_execution_flags(tmp_path, capsys):
    # --steps_per_execution and --backup_every change how a run is carried out, not its numbers.
    base = ["--exercise", "poly", "--lr", "0.1", "--epochs", "4", "--log_dir", str(tmp_path)]
    assert suite.main(base, call=FakeRunner()) == 0
    fake = FakeRunner()
    assert suite.main(base + ["--steps_per_execution=8", "--backup_every=5"], call=fake) == 0
    assert fake.commands == []
    assert capsys.readouterr().out.count("finished already, skipped") == 4


def test_sweep_candidates_and_choice(tmp_path):
    assert suite.sweep_candidates({"min_loss_lr": 0.1}) == [0.01, 0.03, 0.1]
    assert suite.sweep_candidates({"min_loss_lr": 0.0548}) == [0.0055, 0.016, 0.055]
    options = _options(seeds=[4, 5], log_dir=str(tmp_path))
    runs = suite.sweep_runs([0.01, 0.03, 0.1], options)
    assert [r.run_dir for r in runs] == [os.path.join(str(tmp_path), "step", f"constant_lr{x}_e10_seed4")
                                         for x in ("0.01", "0.03", "0.1")]
    with pytest.raises(suite.SuiteError, match="no run of the constant-LR sweep finished"):
        suite.choose_lr(runs)
    for run, acc in zip(runs, [0.5, float("nan"), 0.5]):  # a tie and a diverged run
        os.makedirs(run.run_dir)
        with open(os.path.join(run.run_dir, "summary.json"), "w") as f:
            json.dump({"status": "completed", "final_val_accuracy": acc}, f)
    lr, best = suite.choose_lr(runs)
    assert lr == 0.01 and best is runs[0]  # ties go to the smaller LR; NaN never wins


def test_base_lr_tuned_by_range_test_and_sweep(tmp_path, capsys):
    SUFFIX = "_e10_n64_b16_epoch_weight-decay0.001"  # the runs' and the reports' (suite.name_suffix)
    log_dir = str(tmp_path / "logs")
    argv = ["--exercise", "step", "--epochs", "10", "--log_dir", log_dir, "--train_subset", "64",
            "--batch_size", "16", "--seeds", "2", "--lr_update=epoch", "--weight_decay=0.001"]
    fake = FakeRunner(min_loss_lr=0.1)
    assert suite.main(argv, call=fake) == 0
    lr_find = fake.commands[0]
    assert lr_find[2] == "experiments.lr_find"
    # Its folder is named after its budget and flags, as the runs are (not --epochs: it trains --num_steps).
    assert f"--log_dir={log_dir}" in lr_find and "--run_name=lr_find_n64_b16_weight-decay0.001" in lr_find
    assert "--batch_size=16" in lr_find and "--train_subset=64" in lr_find
    assert os.path.exists(os.path.join(log_dir, "lr_find_n64_b16_weight-decay0.001", "lr_find.json"))
    # The range test gets the pass-through flags it uses, not those it would refuse.
    assert "--weight_decay=0.001" in lr_find and "--lr_update=epoch" not in lr_find
    assert all("--lr_update=epoch" in c for c in fake.commands[1:])
    names = [next(a for a in c if a.startswith("--run_name=")).split("=", 1)[1] for c in fake.commands[1:]]
    assert names[:3] == [
        f"constant_lr{lr}_e10_n64_b16_epoch_weight-decay0.001_seed0" for lr in ("0.01", "0.03", "0.1")]
    # 0.03 won (the fake's accuracy peaks there): every step run starts from it, seed 1 of the
    # constant run is added, and seed 0 of the sweep's winner is not trained twice.
    assert "step_x0.1_m3-6-8_lr0.03_e10_n64_b16_epoch_weight-decay0.001_seed0" in names and "constant_lr0.03_e10_n64_b16_epoch_weight-decay0.001_seed1" in names
    assert len(names) == len(set(names)) == 3 + (10 - 1) + 10
    assert not any("lr0.01" in n or "lr0.1_" in n for n in names[3:])
    # The budget and the passed-through flags are in every name (another --weight_decay: other folders).
    assert all(n.endswith(("_e10_n64_b16_epoch_weight-decay0.001_seed0", "_e10_n64_b16_epoch_weight-decay0.001_seed1")) for n in names)
    out = capsys.readouterr().out
    assert "[suite] LR sweep run 1 of 3 (step/constant_lr0.01_e10_n64_b16_epoch_weight-decay0.001_seed0): starting" in out
    assert "[suite] base LR 0.03: best final val accuracy of the constant-LR sweep" in out
    report_md = open(os.path.join(log_dir, "step", "report" + SUFFIX, "report.md")).read()
    assert "Base LR of the SGD runs: 0.03, tuned by a short sweep: constant-LR runs at 0.01, 0.03, 0.1 (seed 0)" in report_md
    assert "minimum-loss LR, 0.1, times 0.1, 0.3, 1" in report_md
    assert "Constant-LR sweep: `constant_lr0.03_e10_n64_b16_epoch_weight-decay0.001`" in report_md
    rows = [line.split("|")[1].strip() for line in report_md.splitlines() if line.startswith("| `")]
    assert rows[:4] == ["`constant_lr0.01_e10_n64_b16_epoch_weight-decay0.001`", "`constant_lr0.03_e10_n64_b16_epoch_weight-decay0.001`", "`constant_lr0.1_e10_n64_b16_epoch_weight-decay0.001`", "`step_x0.1_m3-6-8_lr0.03_e10_n64_b16_epoch_weight-decay0.001`"]
    assert "against" in report_md and "for the constant LR (`constant_lr0.03_e10_n64_b16_epoch_weight-decay0.001`)" in report_md
    for png in ("curves_base.png", "curves_challenge.png"):
        assert os.path.exists(os.path.join(log_dir, "step", "report" + SUFFIX, png))
    # The range test and the sweep are reused: nothing runs again.
    fake2 = FakeRunner()
    assert suite.main(argv, call=fake2) == 0 and fake2.commands == []
    # The cosine study reuses them too, and starts from the same LR.
    fake3 = FakeRunner()
    assert suite.main(["--exercise", "cosine"] + argv[2:], call=fake3) == 0
    assert len(fake3.commands) == 2 * 7 and all("--log_dir=" + log_dir + "/cosine" in c for c in fake3.commands)
    assert any("--run_name=cosine_lr0.09_e10_n64_b16_epoch_weight-decay0.001_seed1" in c for c in fake3.commands)  # 3 x 0.03
    cosine_md = open(os.path.join(log_dir, "cosine", "report" + SUFFIX, "report.md")).read()
    assert "Base LR of the SGD runs: 0.03, tuned by a short sweep" in cosine_md


def test_failed_range_test_stops_the_suite(tmp_path, capsys):
    def broken(command):
        return 1

    assert suite.main(["--exercise", "poly", "--epochs", "4", "--log_dir", str(tmp_path / "l")], call=broken) == 1
    assert "the LR range test failed" in capsys.readouterr().err


def test_warmup_study_report(tmp_path):
    log_dir = tmp_path / "logs"
    fake = FakeRunner()
    argv = ["--exercise", "warmup", "--epochs", "8", "--warmup_epochs", "2", "--log_dir", str(log_dir)]
    assert suite.main(argv, call=fake) == 0
    assert len(fake.commands) == 6  # no range test: the warmup study has its own large LRs
    assert any("--optimizer=adam" in c and "--lr=0.1" in c and "--warmup_epochs=2" in c for c in fake.commands)
    text = (log_dir / "warmup" / "report_e8" / "report.md").read_text()
    assert "max loss, epochs 1-5" in text  # the 2 warmup epochs and 3 at the full LR
    assert "Deliberately large LRs: Adam 0.1, SGD 1; warmup: linear from 0 over the first 2 epochs." in text
    for png in ("early_loss.png", "curves_adam.png", "curves_sgd.png"):
        assert (log_dir / "warmup" / "report_e8" / png).exists()


def test_dry_run_prints_commands_and_creates_nothing(tmp_path, capsys):
    log_dir = tmp_path / "logs"
    fake = FakeRunner()
    argv = ["--exercise", "all", "--epochs", "10", "--seeds", "0,5", "--log_dir", str(log_dir), "--dry_run"]
    assert suite.main(argv, call=fake) == 0
    assert fake.commands == [] and not log_dir.exists()
    lines = capsys.readouterr().out.strip().splitlines()
    assert "experiments.lr_find" in lines[0]
    commands = [line for line in lines if "experiments.run" in line]
    # step 10 + cosine 7 + poly 4 + warmup 6 definitions, 2 seeds each.
    assert len(commands) == 2 * (10 + 7 + 4 + 6)
    assert any("--lr=LR" in c and "--run_name=constant_lrLR_e10_seed5" in c for c in commands)
    assert any("--lr=3xLR" in c for c in commands)
    assert any("--optimizer=adam" in c and "--warmup_epochs=5" in c and "--schedule=cosine" in c for c in commands)


def test_dry_run_after_the_range_test_prints_the_sweep(tmp_path, capsys):
    log_dir = tmp_path / "logs"
    (log_dir / "lr_find").mkdir(parents=True)
    (log_dir / "lr_find" / "lr_find.json").write_text(json.dumps({"min_loss_lr": 0.5, "suggested_lr": 0.05}))
    fake = FakeRunner()
    assert suite.main(["--exercise", "poly", "--epochs", "4", "--log_dir", str(log_dir), "--dry_run"], call=fake) == 0
    assert fake.commands == [] and sorted(os.listdir(log_dir)) == ["lr_find"]
    out = capsys.readouterr().out
    for lr in ("0.05", "0.15", "0.5"):
        assert f"--log_dir={log_dir}/step --run_name=constant_lr{lr}_e4_seed0" in out
    assert "# LR below: the constant LR of the sweep above" in out and "--run_name=poly_p2_lrLR_e4_seed0" in out


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--schedule=step"], "--schedule is set by the run definitions"),
        (["--optimizer=adam"], "--optimizer is set by the run definitions of --exercise=warmup"),
        (["--weight_decay", "0.001"], "pass runner flags as --name=value"),
        (["--colour=red"], "neither a suite nor a runner flag"),
        (["--seeds", "0"], "--seeds must"),
        (["--epochs", "0"], "--epochs"),
    ],
)
def test_bad_flags_exit_2_with_one_line(tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as e:
        suite.main(["--exercise", "warmup", "--log_dir", str(tmp_path / "l")] + extra, call=FakeRunner())
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "l").exists()


def test_too_short_epochs_fail_before_anything_runs(tmp_path, capsys):
    fake = FakeRunner()
    assert suite.main(["--exercise", "step", "--epochs", "3", "--log_dir", str(tmp_path / "l")], call=fake) == 2
    assert fake.commands == [] and not (tmp_path / "l").exists()
    assert "too short" in capsys.readouterr().err


@pytest.mark.parametrize("epochs", [7, 10, 30, 100])
def test_every_planned_command_passes_the_runners_flag_checks(tmp_path, epochs):
    """The runner's own validation (experiments.runner.config) accepts each planned run, with no data read."""
    from experiments.runner import config as config_lib
    from experiments.runner.flags import FLAGS

    options = _options(epochs=epochs, seeds=[0, 1], log_dir=str(tmp_path), train_subset=1000, warmup_epochs=5.0)
    runs = suite.plan_runs(list(studies.NAMES), 0.05, options, passthrough=["--weight_decay=0.001"])
    sweep = suite.sweep_runs([0.005, 0.015, 0.05], options, passthrough=["--weight_decay=0.001"])
    assert sweep[2] == runs[0]  # the sweep's winner is the step study's constant run
    assert len({r.run_dir for r in runs}) == len(runs)
    runs += sweep[:2]
    try:
        for run in runs:
            FLAGS.unparse_flags()
            FLAGS(["experiments.run"] + run.args)
            config = config_lib.build_config(FLAGS)
            assert config.run_dir == run.run_dir
            assert config.flags["epochs"] == epochs and config.flags["seed"] in (0, 1)
    finally:
        FLAGS.unparse_flags()


def test_ctrl_c_says_how_to_resume(tmp_path, capsys):
    def interrupted(command):
        raise KeyboardInterrupt

    argv = ["--exercise", "poly", "--epochs", "4", "--lr", "0.1", "--log_dir", str(tmp_path / "l")]
    assert suite.main(argv, call=interrupted) == 130
    assert "run the same command again to resume" in capsys.readouterr().err


def test_passed_through_flags_that_change_results_make_other_run_folders(tmp_path, capsys):
    base = ["--exercise", "poly", "--lr", "0.1", "--epochs", "4", "--log_dir", str(tmp_path)]
    assert suite.main(base, call=FakeRunner()) == 0
    adam = FakeRunner()
    assert suite.main(base + ["--optimizer=adam"], call=adam) == 0
    assert len(adam.commands) == 4  # not the SGD runs, not an error
    assert [n for n in sorted(os.listdir(tmp_path / "poly")) if n.startswith("linear")] == [
        "linear_lr0.1_e4_adam_seed0", "linear_lr0.1_e4_seed0"]
    again = FakeRunner()
    assert suite.main(base + ["--optimizer=adam"], call=again) == 0 and again.commands == []


def test_suite_help_lists_the_runner_flags_it_passes_through(capsys):
    with pytest.raises(SystemExit):
        suite.parse_args(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "runner flags (passed through to experiments.run)" in out
    for name in ("epochs", "train_subset", "image_folder", "model", "batch_size"):
        assert f"--{name}" in out and " ".join(FLAGS[name].help.split()[-3:]) in out
    assert "Any other runner flag" in out and "passes through unchanged" in out


def test_unknown_suite_flag_names_the_closest(capsys):
    with pytest.raises(SystemExit) as e:
        suite.parse_args(["--exercise", "poly", "--dryrun"])
    assert e.value.code == 2
    assert capsys.readouterr().err == ("suite: --dryrun: neither a suite nor a runner flag "
                                       "(did you mean --dry_run?)\n")
    # A misspelt required flag is named as such, not reported missing; a misspelt runner flag too.
    for argv, err in ((["--exercize", "poly"], "--exercize: neither a suite nor a runner flag "
                       "(did you mean --exercise?)"),
                      (["--exercise", "poly", "--optimzer=adam"], "--optimzer: neither a suite nor "
                       "a runner flag (did you mean --optimizer?)")):
        with pytest.raises(SystemExit) as e:
            suite.parse_args(argv)
        assert e.value.code == 2 and capsys.readouterr().err == f"suite: {err}\n"
    # argparse's abbreviations still work (--exer: --exercise).
    assert suite.parse_args(["--exer", "poly"])[1] == ("poly",)


def _fake_with_data(fake):
    """`fake`, recording the image folder's fingerprint in config.json as the runner does."""
    from experiments.runner import data, rundir

    def call(command):
        status = fake(command)
        flags = dict(a[2:].split("=", 1) for a in command[3:] if "=" in a)
        if command[2] == "experiments.run" and "image_folder" in flags:
            path = os.path.join(flags["log_dir"], flags["run_name"], "config.json")
            config = json.load(open(path))
            config[rundir.DATA] = data.fingerprint(data.list_image_folder(flags["image_folder"]))
            json.dump(config, open(path, "w"))
        return status
    return call


def test_runs_are_reused_from_a_copy_of_the_images_elsewhere_not_from_other_images(tmp_path, capsys):
    import shutil

    from run_helpers import make_image_folder

    first = make_image_folder(tmp_path / "mine", classes=2, train_per_class=3, test_per_class=2)
    copy = shutil.copytree(first, tmp_path / "theirs")
    base = ["--exercise", "poly", "--lr", "0.1", "--epochs", "3", "--log_dir", str(tmp_path / "logs")]
    assert suite.main(base + ["--image_folder", first], call=_fake_with_data(FakeRunner())) == 0
    reused = FakeRunner()
    assert suite.main(base + ["--image_folder", str(copy)], call=reused) == 0 and reused.commands == []
    os.remove(os.path.join(copy, "train", "class0", sorted(os.listdir(os.path.join(copy, "train", "class0")))[0]))
    assert suite.main(base + ["--image_folder", str(copy)], call=FakeRunner()) == 2
    assert "other images than --image_folder=" in capsys.readouterr().err


def _folder(command):
    """The folder a fake command wrote: <--log_dir>/<--run_name>."""
    flags = dict(a[2:].split("=", 1) for a in command[3:] if "=" in a)
    return os.path.join(flags["log_dir"], flags["run_name"])


def test_another_budget_makes_other_run_folders_in_the_same_log_dir(tmp_path, capsys):
    log_dir = str(tmp_path / "logs")
    small = ["--exercise", "poly", "--log_dir", log_dir, "--epochs", "4", "--train_subset", "64"]
    large = ["--exercise", "poly", "--log_dir", log_dir, "--epochs", "6", "--train_subset", "128"]
    first, second = FakeRunner(), FakeRunner()
    assert suite.main(small, call=first) == 0
    assert suite.main(large, call=second) == 0  # not refused: the small budget's runs are not its own
    # Each: the range test, the 3 sweep runs, the 4 poly runs, in folders named after its budget.
    assert len(first.commands) == len(second.commands) == 1 + 3 + 4
    made = [[_folder(c) for c in fake.commands] for fake in (first, second)]
    assert not set(made[0]) & set(made[1])
    assert made[0][0] == os.path.join(log_dir, "lr_find_n64") and made[1][0] == os.path.join(log_dir, "lr_find_n128")
    assert all(d.endswith("_e4_n64_seed0") for d in made[0][1:])
    assert all(d.endswith("_e6_n128_seed0") for d in made[1][1:])
    for folders, epochs, subset in ((made[0], 4, 64), (made[1], 6, 128)):  # each folder: its budget's run
        for folder in folders[1:]:
            recorded = json.load(open(os.path.join(folder, "config.json")))["flags"]
            assert (recorded["epochs"], recorded["train_subset"]) == (epochs, subset)
    assert json.load(open(os.path.join(made[1][0], "lr_find.json")))["flags"]["train_subset"] == 128
    # Each budget's report in its own folder, of its own runs: neither replaced the other.
    for suffix, other in (("_e4_n64", "_e6_n128"), ("_e6_n128", "_e4_n64")):
        text = open(os.path.join(log_dir, "poly", "report" + suffix, "report.md")).read()
        assert f"linear_lr0.03{suffix}_seed0" in text and other not in text
    assert not os.path.exists(os.path.join(log_dir, "poly", "report.md"))
    # A rerun of either trains nothing: its range test, sweep and runs are all found.
    for argv in (small, large):
        capsys.readouterr()
        again = FakeRunner()
        assert suite.main(argv, call=again) == 0 and again.commands == []
        assert capsys.readouterr().out.count("finished already, skipped") == 3 + 4
    # Another --epochs alone shares the range test (it trains --num_steps, not --epochs).
    longer = FakeRunner()
    assert suite.main(small[:-4] + ["--epochs", "6", "--train_subset", "64"], call=longer) == 0
    assert [c[2] for c in longer.commands] == ["experiments.run"] * (3 + 4)
    assert all(_folder(c).endswith("_e6_n64_seed0") for c in longer.commands)


def test_runs_named_before_the_budget_was_in_names_are_reused(tmp_path, capsys):
    # Runs (and a range test) recorded as <definition>_seed<k> and lr_find/, like docs/results.
    log_dir = tmp_path / "logs"
    argv = ["--exercise", "poly", "--log_dir", str(log_dir), "--epochs", "4", "--train_subset", "64"]
    assert suite.main(argv, call=FakeRunner()) == 0
    for study in ("poly", "step"):
        for name in os.listdir(log_dir / study):
            if "_e4_n64" in name and not name.startswith("report"):
                old = log_dir / study / name.replace("_e4_n64", "")
                os.rename(log_dir / study / name, old)
                config = json.load(open(old / "config.json"))
                config["flags"]["run_name"] = old.name
                json.dump(config, open(old / "config.json", "w"))
    os.rename(log_dir / "lr_find_n64", log_dir / "lr_find")
    capsys.readouterr()
    again = FakeRunner()
    assert suite.main(argv, call=again) == 0 and again.commands == []
    out = capsys.readouterr().out
    assert out.count("finished already, skipped") == 3 + 4 and "(poly/linear_lr0.03_seed0): finished already" in out
    assert os.path.exists(log_dir / "poly" / "report.md")  # runs named as before: the report too
    # Another budget does not take them: its own range test and runs.
    other = FakeRunner()
    assert suite.main(argv[:-2] + ["--train_subset", "128"], call=other) == 0
    assert _folder(other.commands[0]) == str(log_dir / "lr_find_n128") and len(other.commands) == 1 + 3 + 4
    # The runner's default budget names its range test lr_find/ too: one of another budget there is refused.
    assert suite.main(argv[:-2], call=FakeRunner()) == 2
    assert capsys.readouterr().err == (
        f"suite: the LR range test in {log_dir / 'lr_find'} ran with --train_subset=64, this plan has "
        "--train_subset=None; use another --log_dir (or move it away)\n")

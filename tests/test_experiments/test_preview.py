"""experiments.preview: the LR curve of a planned run, without training."""

import csv
import math

import pytest
from run_helpers import make_image_folder

from experiments import preview


def read_csv(path):
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def test_preview_writes_every_steps_lr(tmp_path, capsys):
    # 1000 images, batch 128: 8 steps per epoch; 10 epochs = 80 steps; warmup 2 epochs = 16
    # steps from 0.01; step x0.1 at epochs 3, 6, 8 (steps 24, 48, 64).
    status = preview.run_command(["preview", "--schedule=step", "--milestones=3,6,8",
                                  "--epochs=10", "--warmup_epochs=2", "--warmup_start_lr=0.01",
                                  "--train_size=1000", f"--log_dir={tmp_path}", "--run_name=p"])
    assert status == 0
    rows = read_csv(tmp_path / "preview" / "p.csv")
    assert [r["step"] for r in rows] == list(range(80))
    assert rows[12]["epoch"] == 1.5
    lr = [r["learning_rate"] for r in rows]
    expected = {0: 0.01, 8: 0.055, 16: 0.1, 23: 0.1, 24: 0.01, 47: 0.01, 48: 0.001, 64: 1e-4,
                79: 1e-4}
    for step, value in expected.items():
        assert lr[step] == pytest.approx(value, rel=1e-6), step
    with open(tmp_path / "preview" / "p.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    out = capsys.readouterr().out
    assert "10 epochs x 8 steps" in out and "= 80 steps" in out


def test_preview_values_equal_the_runners_schedule(tmp_path):
    from experiments.runner import config as config_lib
    from experiments.runner.flags import FLAGS
    from experiments.runner.schedules import build_schedule

    args = ["--schedule=cosine_restarts", "--epochs=12", "--t0=2", "--t_mult=2",
            "--warmup_epochs=1", "--lr_update=epoch", "--warmup_start_lr=0.001",
            "--train_size=300", "--batch_size=64", f"--log_dir={tmp_path}", "--run_name=c"]
    assert preview.run_command(["preview", *args]) == 0
    schedule = build_schedule(config_lib.build_config(FLAGS, train_size=300))
    rows = read_csv(tmp_path / "preview" / "c.csv")
    assert len(rows) == 12 * 5  # ceil(300 / 64) = 5 steps per epoch
    for row in rows:
        assert row["learning_rate"] == pytest.approx(float(schedule(int(row["step"]))),
                                                     rel=1e-6, abs=1e-9)
    assert rows[5]["learning_rate"] == pytest.approx(0.1)  # warmup over: cycle 1 starts
    assert rows[15]["learning_rate"] == pytest.approx(0.1)  # restart after t0 = 2 epochs


@pytest.mark.parametrize("extra,steps_per_epoch", [
    ([], math.ceil(50_000 / 128)),  # CIFAR-10's training set
    (["--train_subset=1000"], 8),
    (["--train_size=640", "--train_subset=1000"], 5),  # --train_size wins
])
def test_train_size_sources(extra, steps_per_epoch, tmp_path):
    assert preview.run_command(["preview", "--epochs=2", f"--log_dir={tmp_path}", "--run_name=s",
                                *extra]) == 0
    assert len(read_csv(tmp_path / "preview" / "s.csv")) == 2 * steps_per_epoch


def test_train_size_from_an_image_folder(tmp_path):
    folder = make_image_folder(tmp_path / "images", classes=2, train_per_class=5,
                               test_per_class=1)
    assert preview.run_command(["preview", "--epochs=3", "--batch_size=4", f"--log_dir={tmp_path}",
                                f"--image_folder={folder}", "--run_name=f"]) == 0
    assert len(read_csv(tmp_path / "preview" / "f.csv")) == 3 * 3  # ceil(10 / 4)


def test_files_go_to_log_dir_preview_and_the_old_preview_dir_still_works(tmp_path, capsys):
    args = ["preview", "--epochs=2", "--train_size=640", "--run_name=a"]
    assert preview.run_command([*args, f"--log_dir={tmp_path}"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and f"wrote {tmp_path / 'preview' / 'a'}.csv and" in captured.out
    # --preview_dir (deprecated): the folder itself, as before, with one warning line.
    old = tmp_path / "old"
    assert preview.run_command([*args, f"--preview_dir={old}"]) == 0
    assert capsys.readouterr().err == ("warning: --preview_dir is deprecated; use --log_dir "
                                       "(files go to <log_dir>/preview)\n")
    assert read_csv(old / "a.csv") == read_csv(tmp_path / "preview" / "a.csv")
    # Both: one line, exit 2, nothing written.
    both = tmp_path / "both"
    assert preview.run_command([*args, f"--log_dir={both}", f"--preview_dir={both}"]) == 2
    assert capsys.readouterr().err == ("error: --preview_dir: cannot be given with --log_dir, its new name; "
                                       "give only --log_dir\n")
    assert not both.exists()


def test_bad_flag_exits_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    assert preview.run_command(["preview", "--schedule=cosine", "--power=2",
                                f"--log_dir={out}"]) == 2
    assert capsys.readouterr().err.startswith("error: --power: ")
    assert preview.run_command(["preview", "--train_size=0", f"--log_dir={out}"]) == 2
    assert capsys.readouterr().err.startswith("error: --train_size: ")
    assert not out.exists()


# The 0.2 schedules, 10 epochs x 8 steps: the preview's every value against the
# kschedules schedule built by hand from the same numbers in steps.
NEW_SCHEDULES = {
    "exponential": (["--decay_rate=0.5", "--decay_epochs=2", "--transition_begin=1"],
                    lambda ks: ks.ExponentialDecay(0.1, 16, 0.5, transition_begin=8)),
    "inverse_sqrt": (["--warmup_epochs=1"],
                     lambda ks: ks.Warmup(ks.InverseSqrtDecay(0.1, 8), 8)),
    "onecycle": ([], lambda ks: ks.OneCycle(0.1, 80)),
    "cyclic": (["--lr=0.01", "--max_lr=0.1", "--step_size_up=1", "--mode=triangular2"],
               lambda ks: ks.Cyclic(0.01, 0.1, 8, 8, mode="triangular2")),
    "tanh": (["--min_lr=0.001"], lambda ks: ks.TanhDecay(0.1, 80, min_learning_rate=0.001)),
    "wsd": (["--warmup_epochs=2", "--stable_epochs=6", "--warmup_shape=cosine"],
            lambda ks: ks.WarmupStableDecay(0.1, 16, 48, 16, warmup_shape="cosine")),
}


@pytest.mark.parametrize("name", list(NEW_SCHEDULES))
def test_preview_draws_every_new_schedule(name, tmp_path):
    import kschedules as ks

    extra, expected = NEW_SCHEDULES[name]
    assert preview.run_command(["preview", f"--schedule={name}", "--epochs=10", "--train_size=1000",
                                f"--log_dir={tmp_path}", "--run_name=n", *extra]) == 0
    rows = read_csv(tmp_path / "preview" / "n.csv")
    assert [r["step"] for r in rows] == list(range(80))
    schedule = expected(ks)
    for row in rows:
        assert row["learning_rate"] == pytest.approx(float(schedule(int(row["step"]))),
                                                     rel=1e-6, abs=1e-9), row["step"]
    with open(tmp_path / "preview" / "n.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("extra,scale", [
    (["--schedule=step"], "log"),  # default on for step decay
    (["--schedule=step", "--nolog_y"], "linear"),
    (["--schedule=cosine"], "linear"),
    (["--schedule=cosine", "--log_y"], "log"),
])
def test_log_y_default_on_for_step_only(extra, scale, tmp_path, capsys):
    assert preview.run_command(["preview", "--epochs=10", "--train_size=1000",
                                f"--log_dir={tmp_path}", "--run_name=y", *extra]) == 0
    assert capsys.readouterr().out.strip().endswith(f"({scale} LR axis)")


def test_restart_steps_are_printed_like_drops(tmp_path, capsys):
    # 8 steps per epoch, t0 = 0.5 epoch = 4 steps, 2 epochs: restarts at steps 4, 8, 12.
    assert preview.run_command(["preview", "--schedule=cosine_restarts", "--t0=0.5", "--epochs=2",
                                "--train_size=1000", f"--log_dir={tmp_path}", "--run_name=r"]) == 0
    out = capsys.readouterr().out
    assert "restarts at steps 4 (epoch 0.5): 0.1, 8 (epoch 1): 0.1, 12 (epoch 1.5): 0.1\n" in out
    assert preview.run_command(["preview", "--schedule=step", "--milestones=3,6", "--epochs=10",
                                "--train_size=1000", f"--log_dir={tmp_path}", "--run_name=d"]) == 0
    assert "drops at steps 24 (epoch 3): 0.01, 48 (epoch 6): 0.001\n" in capsys.readouterr().out


def test_compare_overlays_schedules_in_one_png_and_csv(tmp_path, capsys):
    common = ["--epochs=10", "--train_size=1000", f"--log_dir={tmp_path}"]
    assert preview.run_command(["preview", *common, "--compare=--schedule=step --milestones=3,6",
                                "--compare=--schedule=cosine_restarts --t0=2"]) == 0
    rows = list(csv.DictReader(open(tmp_path / "preview" / "compare.csv", newline="")))
    labels = ["--schedule=step --milestones=3,6", "--schedule=cosine_restarts --t0=2"]
    assert [r["compare"] for r in rows] == [labels[0]] * 80 + [labels[1]] * 80
    for label, extra in zip(labels, (["--schedule=step", "--milestones=3,6"],
                                     ["--schedule=cosine_restarts", "--t0=2"])):
        assert preview.run_command(["preview", *common, "--run_name=one", *extra]) == 0
        alone = read_csv(tmp_path / "preview" / "one.csv")
        mine = [r for r in rows if r["compare"] == label]
        assert [float(r["learning_rate"]) for r in mine] == [r["learning_rate"] for r in alone]
        assert [float(r["epoch"]) for r in mine] == [r["epoch"] for r in alone]
    with open(tmp_path / "preview" / "compare.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert "--schedule=cosine_restarts --t0=2: restarts at steps 16 (epoch 2)" in capsys.readouterr().out


@pytest.mark.parametrize("value,message", [
    ("--schedule=cosine --power=2", "--power"),  # a flag the schedule does not read
    ("--no_such_flag=1", "no_such_flag"),
    ("--epochs=abc", "epochs"),
    ("cosine", "every part must be a --flag"),
    ("--preview_dir=x", "the runner's flags only"),
    ("--schedule='cosine", "cannot split"),
])
def test_bad_compare_exits_2_and_writes_nothing(value, message, tmp_path, capsys):
    out = tmp_path / "out"
    assert preview.run_command(["preview", "--compare=--schedule=step", f"--compare={value}",
                                f"--log_dir={out}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --compare: ") and message in err and len(err.splitlines()) == 1
    assert not out.exists()

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
                                  "--train_size=1000", f"--preview_dir={tmp_path}", "--run_name=p"])
    assert status == 0
    rows = read_csv(tmp_path / "p.csv")
    assert [r["step"] for r in rows] == list(range(80))
    assert rows[12]["epoch"] == 1.5
    lr = [r["learning_rate"] for r in rows]
    expected = {0: 0.01, 8: 0.055, 16: 0.1, 23: 0.1, 24: 0.01, 47: 0.01, 48: 0.001, 64: 1e-4,
                79: 1e-4}
    for step, value in expected.items():
        assert lr[step] == pytest.approx(value, rel=1e-6), step
    with open(tmp_path / "p.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    out = capsys.readouterr().out
    assert "10 epochs x 8 steps" in out and "= 80 steps" in out


def test_preview_values_equal_the_runners_schedule(tmp_path):
    from experiments.runner import config as config_lib
    from experiments.runner.flags import FLAGS
    from experiments.runner.schedules import build_schedule

    args = ["--schedule=cosine_restarts", "--epochs=12", "--t0=2", "--t_mult=2",
            "--warmup_epochs=1", "--lr_update=epoch", "--warmup_start_lr=0.001",
            "--train_size=300", "--batch_size=64", f"--preview_dir={tmp_path}", "--run_name=c"]
    assert preview.run_command(["preview", *args]) == 0
    schedule = build_schedule(config_lib.build_config(FLAGS, train_size=300))
    rows = read_csv(tmp_path / "c.csv")
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
    assert preview.run_command(["preview", "--epochs=2", f"--preview_dir={tmp_path}", "--run_name=s",
                                *extra]) == 0
    assert len(read_csv(tmp_path / "s.csv")) == 2 * steps_per_epoch


def test_train_size_from_an_image_folder(tmp_path):
    folder = make_image_folder(tmp_path / "images", classes=2, train_per_class=5,
                               test_per_class=1)
    assert preview.run_command(["preview", "--epochs=3", "--batch_size=4", f"--preview_dir={tmp_path}",
                                f"--image_folder={folder}", "--run_name=f"]) == 0
    assert len(read_csv(tmp_path / "f.csv")) == 3 * 3  # ceil(10 / 4)


def test_bad_flag_exits_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    assert preview.run_command(["preview", "--schedule=cosine", "--power=2",
                                f"--preview_dir={out}"]) == 2
    assert capsys.readouterr().err.startswith("error: --power: ")
    assert preview.run_command(["preview", "--train_size=0", f"--preview_dir={out}"]) == 2
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
                                f"--preview_dir={tmp_path}", "--run_name=n", *extra]) == 0
    rows = read_csv(tmp_path / "n.csv")
    assert [r["step"] for r in rows] == list(range(80))
    schedule = expected(ks)
    for row in rows:
        assert row["learning_rate"] == pytest.approx(float(schedule(int(row["step"]))),
                                                     rel=1e-6, abs=1e-9), row["step"]
    with open(tmp_path / "n.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"

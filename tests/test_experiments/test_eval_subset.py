"""--val_subset (a stratified, seeded subset of the test images) and --eval_every (validation
after every N-th epoch and the last): the data, the flags' checks, and a run's files."""

import math
import os
import re

import numpy as np
import pytest
from run_helpers import TINY, make_image_folder, parse, read_history, read_json, run_quietly

from experiments import report
from experiments.runner import config as config_lib
from experiments.runner import data, rundir


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """10 classes, 4 training and 6 test images each (60 test images)."""
    return make_image_folder(tmp_path_factory.mktemp("images"), train_per_class=4,
                             test_per_class=6)


def _arrays(folder, *flags):
    return data.load(config_lib.build_config(parse(f"--image_folder={folder}", *flags)))


def test_val_subset_is_stratified_seeded_and_from_the_test_split(folder):
    full = _arrays(folder)
    assert len(full.y_test) == 60
    subset = _arrays(folder, "--val_subset=20", "--seed=3")
    assert np.bincount(subset.y_test, minlength=10).tolist() == [2] * 10
    # Each image kept is the test image of its label (none from the training split).
    for image, label in zip(subset.x_test, subset.y_test):
        same = [np.array_equal(image, x) for x, y in zip(full.x_test, full.y_test) if y == label]
        assert sum(same) == 1
    # The same seed picks the same images; another seed others; 25 of 60: 2 or 3 a class.
    again = _arrays(folder, "--val_subset=20", "--seed=3")
    assert np.array_equal(again.x_test, subset.x_test)
    other = _arrays(folder, "--val_subset=20", "--seed=4")
    assert not np.array_equal(other.x_test, subset.x_test)
    counts = np.bincount(_arrays(folder, "--val_subset=25").y_test, minlength=10)
    assert counts.sum() == 25 and set(counts.tolist()) == {2, 3}
    # The training images are not touched by it.
    assert np.array_equal(subset.x_train, full.x_train)


def test_eval_epochs_are_every_nth_and_the_last():
    def epochs(*flags):
        return config_lib.build_config(parse(*flags)).eval_epochs

    assert epochs("--epochs=3", "--eval_every=2") == [2, 3]
    assert epochs("--epochs=6", "--eval_every=3") == [3, 6]
    assert epochs("--epochs=7", "--eval_every=3") == [3, 6, 7]
    assert epochs("--epochs=2", "--eval_every=5") == [2]
    assert epochs("--epochs=3") == [1, 2, 3]


BAD = [
    ("val_subset", ["--val_subset=0"]),
    ("val_subset", ["--val_subset=61"]),  # the folder has 60 test images
    ("val_subset", ["--val_subset=10001", "--dataset=cifar10"]),
    ("eval_every", ["--eval_every=0"]),
    # The plateau callback watches a validation metric every epoch.
    ("eval_every", ["--eval_every=2", "--plateau_patience=2"]),
    ("eval_every", ["--eval_every=2", "--plateau_patience=2", "--plateau_monitor=val_accuracy"]),
]


@pytest.mark.parametrize("flag,args", BAD, ids=[" ".join(a) for _, a in BAD])
def test_bad_values_exit_2_with_one_line_and_write_nothing(folder, flag, args, tmp_path, capsys):
    log_dir = tmp_path / "logs"
    source = [] if "--dataset=cifar10" in args else [f"--image_folder={folder}"]
    status, _, err = run_quietly([*source, f"--log_dir={log_dir}", *args])
    assert status == 2
    assert err.count("\n") == 1 and err.startswith(f"error: --{flag}: "), err
    assert not log_dir.exists()


def test_eval_every_with_a_training_metric_for_the_plateau_is_accepted():
    config = config_lib.build_config(parse("--eval_every=2", "--plateau_patience=2",
                                           "--plateau_monitor=loss"))
    assert config.flags["eval_every"] == 2


@pytest.fixture(scope="module")
def run(tiny_folder, tmp_path_factory):
    log_dir = str(tmp_path_factory.mktemp("logs"))
    status, out, err = run_quietly([f"--image_folder={tiny_folder}", f"--log_dir={log_dir}",
                                    "--run_name=r", *TINY, "--val_subset=10", "--eval_every=2"])
    assert status == 0, err
    return {"dir": os.path.join(log_dir, "r"), "out": out, "log_dir": log_dir}


def test_only_epochs_2_and_3_are_evaluated(run):
    _, rows = read_history(run["dir"])
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    assert math.isnan(rows[0]["val_loss"]) and math.isnan(rows[0]["val_accuracy"])
    for r in rows[1:]:
        assert math.isfinite(r["val_loss"]) and r["val_loss"] > 0
        # Accuracy over the 10 images of the subset: a whole number of them.
        assert r["val_accuracy"] * 10 == pytest.approx(round(r["val_accuracy"] * 10), abs=1e-5)
    with open(os.path.join(run["dir"], rundir.HISTORY)) as f:
        assert f.read().splitlines()[1].split(",")[4:6] == ["nan", "nan"]
    lines = [line for line in run["out"].splitlines() if line.startswith("epoch ")]
    assert re.match(r"epoch 1/3  lr \S+  loss \S+  acc \S+  not evaluated  \d+\.\ds  eta ", lines[0])
    assert "val_acc" in lines[1] and "val_acc" in lines[2]
    assert "10 test images (--val_subset) evaluated every 2 epochs and after the last" in run["out"]


def test_summary_and_config_record_the_subset_and_the_evaluated_epochs(run):
    _, rows = read_history(run["dir"])
    summary = read_json(os.path.join(run["dir"], rundir.SUMMARY))
    best = max((1, 2), key=lambda i: rows[i]["val_accuracy"])
    assert summary["best_epoch"] == best and summary["best_val_accuracy"] == rows[best]["val_accuracy"]
    assert summary["final_val_accuracy"] == rows[2]["val_accuracy"]
    record = read_json(os.path.join(run["dir"], rundir.CONFIG))
    assert record["flags"]["val_subset"] == 10 and record["flags"]["eval_every"] == 2
    assert record["derived"]["val_size"] == 10
    assert os.path.getsize(os.path.join(run["dir"], rundir.CURVES)) > 0


def test_the_report_reads_a_run_with_skipped_evaluations(run, tmp_path):
    assert report.main([run["dir"], "--log_dir", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "report.md").read_text()
    assert "`eval_every=2`" in text and "`val_subset=10`" in text
    assert "val_size=10" in text


def test_a_run_differing_in_eval_every_or_val_subset_is_another_run(run, tiny_folder):
    for extra in (["--val_subset=10", "--eval_every=1"], ["--val_subset=20", "--eval_every=2"]):
        status, _, err = run_quietly([f"--image_folder={tiny_folder}", f"--log_dir={run['log_dir']}",
                                      "--run_name=r", *TINY, *extra])
        assert status == 2 and "holds a run with other flags" in err, err


def test_the_cosine_studys_largest_fall_skips_epochs_without_validation():
    from experiments.studies import cosine

    history = [{"val_accuracy": v} for v in (math.nan, 0.5, math.nan, 0.42, math.nan, 0.55)]
    assert cosine.largest_val_fall(history) == pytest.approx(0.08)


def test_the_default_run_name_shows_them():
    name = config_lib.build_config(parse("--val_subset=100", "--eval_every=2")).flags["run_name"]
    assert name == "cosine_lr0.1_min0_sgd_simple_cnn_e100_v100_ev2_s0"
    assert config_lib.build_config(parse("--save_best")).flags["run_name"] == \
        "cosine_lr0.1_min0_sgd_simple_cnn_e100_s0"

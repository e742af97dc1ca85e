"""rundir.compared_flags: one answer to "which flags make two runs different", for runner, suite, report, distribute."""

import pytest
from run_helpers import make_run

from experiments import report
from experiments.runner import flags as flag_defs
from experiments.runner import rundir


@pytest.mark.parametrize("name, value", [
    ("backup_every", 5), ("steps_per_execution", 8), ("lr_log_freq", 10), ("overwrite", True),
    ("log_dir", "elsewhere"),
])
def test_runs_differing_only_in_how_they_ran_are_one_configuration(tmp_path, name, value):
    # The runner resumes such a run with the other value (flags.NOT_COMPARED), so
    # the report must not split it off (it did for --backup_every and the rest).
    assert name in flag_defs.NOT_COMPARED
    a = make_run(tmp_path, "cos_seed0", [0.2, 0.4], [2.0, 1.5], seed=0)
    b = make_run(tmp_path, "cos_seed1", [0.3, 0.5], [2.0, 1.4], seed=1, **{name: value})
    groups = report.group_runs([rundir.read_run(d) for d in (a, b)])
    assert [(g.label, len(g.runs)) for g in groups] == [("cos", 2)]


def test_a_real_flag_still_splits(tmp_path):
    a = make_run(tmp_path, "a", [0.2, 0.4], [2.0, 1.5])
    b = make_run(tmp_path, "b", [0.3, 0.5], [2.0, 1.4], backup_every=3, lr=0.05)
    assert len(report.group_runs([rundir.read_run(d) for d in (a, b)])) == 2


def test_flags_missing_from_an_older_config_behave_as_before():
    new = {name: None for name in flag_defs.RUNNER_FLAGS}
    new.update(schedule="cosine", lr=0.1, strategy="default", lr_scaling="none", plateau_patience=0,
               gradient_accumulation_steps=1, reference_batch_size=None)
    old = {k: v for k, v in new.items()
           if k not in ("strategy", "lr_scaling", "plateau_patience", "gradient_accumulation_steps",
                        "decay_rate", "warmup_shape", "reference_batch_size")}
    assert rundir.compared_flags(old) == rundir.compared_flags(new)
    assert rundir.compared_flags(dict(new, plateau_patience=3)) != rundir.compared_flags(new)
    # --reference_batch_size is not read without --lr_scaling.
    assert rundir.compared_flags(dict(new, reference_batch_size=128)) == rundir.compared_flags(new)


def test_each_question_leaves_out_its_own_flags():
    flags = {name: name for name in flag_defs.RUNNER_FLAGS}
    assert set(flag_defs.RUNNER_FLAGS) - set(rundir.compared_flags(flags)) == set(flag_defs.NOT_COMPARED)
    assert set(flag_defs.RUNNER_FLAGS) - set(rundir.compared_flags(flags, ignore=rundir.REPLICATE_FLAGS)) \
        == set(flag_defs.NOT_COMPARED) | {"seed", "run_name", "data_dir", "save_best"}
    # The workers of one multi-worker run must agree on everything but paths.
    assert set(flag_defs.RUNNER_FLAGS) - set(rundir.compared_flags(flags, ignore=rundir.PATH_FLAGS)) \
        == {"log_dir", "image_folder", "data_dir"}


def test_reports_show_paths_as_PATH(tmp_path):
    # config.json keeps the path as given; the report names no folder of this machine.
    a = make_run(tmp_path / "runs", "a", [0.2, 0.4], [2.0, 1.5], image_folder="/home/me/data/cifar10")
    b = make_run(tmp_path / "runs", "b", [0.3, 0.5], [2.0, 1.4], image_folder="/home/me/data/cifar10", lr=0.05)
    assert report.main([a, b, "--log_dir", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "report.md").read_text()
    assert "`image_folder=PATH/cifar10`" in text and "/home/me" not in text


def test_an_older_config_with_t_mult_compares_equal_to_t_mul(tmp_path):
    new = {name: None for name in flag_defs.RUNNER_FLAGS}
    new.update(schedule="cosine_restarts", lr=0.1, t0=2.0, t_mul=2.0)
    old = {("t_mult" if k == "t_mul" else k): v for k, v in new.items()}
    assert rundir.compared_flags(old) == rundir.compared_flags(new)
    assert rundir.compared_flags(dict(old, t_mult=1.0)) != rundir.compared_flags(new)
    run = rundir.read_run(make_run(tmp_path, "r", [0.2], [2.0], t_mult=2.0))
    assert run.flags["t_mul"] == 2.0 and "t_mult" not in run.flags


def test_the_data_is_compared_by_content_not_by_path():
    flags = {name: None for name in flag_defs.RUNNER_FLAGS}
    here, there = dict(flags, image_folder="/home/me/cifar10"), dict(flags, image_folder="/data/c10")
    assert rundir.compared_flags(here) == rundir.compared_flags(there)
    assert rundir.compared_flags(here) != rundir.compared_flags(flags)  # a folder, or tensorflow-datasets
    fp = {"source": "image_folder", "classes": ["a", "b"], "counts": {"train": [3, 3], "test": [2, 2]},
          "files_sha256": "0" * 64}
    assert rundir.same_data(fp, dict(fp)) and rundir.same_data(None, fp)  # an older config.json: not compared
    assert not rundir.same_data(fp, dict(fp, files_sha256="1" * 64))
    assert "counts" in rundir.data_difference(fp, dict(fp, counts={"train": [3, 2], "test": [2, 2]}))

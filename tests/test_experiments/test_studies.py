"""Tests for experiments/studies/: the registry, and the suite and the report reading the same studies."""

import types

import pytest
from run_helpers import make_run

from experiments import report, studies, suite
from experiments.studies import STUDIES, cosine, step


def test_the_four_studies_are_registered_in_order():
    assert list(STUDIES) == ["step", "cosine", "poly", "warmup"]
    assert studies.NAMES == ("step", "cosine", "poly", "warmup")
    assert all(name == study.name for name, study in STUDIES.items())
    assert [s.needs_base_lr for s in STUDIES.values()] == [True, True, True, False]
    for study in STUDIES.values():
        assert study.theory
        names = [d.name for d in study.definitions(20, 0.05)]
        assert names and len(names) == len(set(names))


@pytest.mark.parametrize("name", studies.NAMES)
def test_suite_and_report_accept_exactly_the_studies(name):
    options, exercises, _ = suite.parse_args(["--exercise", name, "--lr", "0.1"])
    assert exercises == (name,)
    assert report.parse_args(["logs", "--exercise", name]).exercise == name
    assert suite.parse_args(["--exercise", "all"])[1] == studies.NAMES
    for study in STUDIES.values():  # every study's own flags, with their defaults
        for setting in study.settings:
            assert getattr(options, setting.name) == setting.default
    assert [d.name for d in suite.definitions(name, 20, lr=0.05)] == [
        d.name for d in STUDIES[name].definitions(20, 0.05)]


def test_a_name_that_is_no_study_is_refused_by_suite_and_report(capsys):
    with pytest.raises(SystemExit) as e:
        suite.parse_args(["--exercise", "adam"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        report.parse_args(["logs", "--exercise", "adam"])
    assert e.value.code == 2
    with pytest.raises(suite.SuiteError, match=r"--exercise must be one of \['step', 'cosine', 'poly', 'warmup', 'all'\]"):
        suite.definitions("adam", 20, lr=0.05)
    with pytest.raises(ValueError, match=r"exercise must be one of \['step', 'cosine', 'poly', 'warmup'\]"):
        report.build_report([], "unused", exercise="adam")


@pytest.mark.parametrize("epochs", [7, 10, 20, 100])
def test_the_step_reports_base_run_is_the_step_studys_base_definition(epochs):
    lr = 0.05
    base = step.base(lr, epochs)
    assert dict(base.flags)["factor"] == step.BASE_FACTOR
    assert base in STUDIES["step"].definitions(epochs, lr)
    assert STUDIES["cosine"].definitions(epochs, lr)[0] == base  # the cosine study's reference
    groups = [
        report.Group(d.name, [types.SimpleNamespace(flags={**dict(d.flags), "epochs": epochs})])
        for d in STUDIES["step"].definitions(epochs, lr)
    ]
    const, found = step.roles(groups)
    assert found.label == base.name
    assert const.label == step.constant(lr).name


def test_the_step_report_quotes_the_base_run(tmp_path):
    epochs, lr = 10, 0.05
    dirs = []
    for i, d in enumerate(STUDIES["step"].definitions(epochs, lr)):
        val = [0.2] * 3 + [0.35 + 0.01 * i] * (epochs - 3)
        dirs.append(make_run(tmp_path / "logs", f"{d.name}_seed0", val, [2.0] * epochs, **dict(d.flags)))
    text = open(report.build_report(dirs, str(tmp_path / "out"), exercise="step")).read()
    base = step.base(lr, epochs).name  # step_x0.1_m3-6-8_lr0.05
    assert f"Step decay (`{base}`) ended at 36.00% against 35.00% for the constant LR (`constant_lr0.05`)" in text
    assert f"| {step.JUMP} | 16.00 | `{base}` |" in text  # 0.20 -> 0.36 after the first milestone, epoch 3
    assert f"| {cosine.FALL} |" not in text  # another study's numbers stay out

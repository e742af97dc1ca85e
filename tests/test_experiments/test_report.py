"""Tests for experiments/report.py on tiny synthetic run folders (the run-directory contract)."""

import math
import re
import statistics

import pytest
from run_helpers import make_run

from experiments import report
from experiments.studies import common, cosine, step


def _table_rows(text):
    """{configuration: [cells]} of the results table in report.md."""
    section = text.split("## Results")[1].split("### Key numbers")[0]
    rows = {}
    for line in section.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def _pm(values, digits, scale=1.0):
    values = [v * scale for v in values]
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


@pytest.fixture
def three_configs(tmp_path):
    """Config A (2 seeds), config B (1 seed, diverged), config C (2 seeds, one short of the target)."""
    runs = tmp_path / "logs"
    dirs = [
        make_run(runs, "a_seed0", [0.20, 0.40, 0.52, 0.60], [2.1, 1.6, 1.3, 1.1], seed=0, wall=10.0),
        make_run(runs, "a_seed1", [0.25, 0.45, 0.58, 0.62], [2.0, 1.5, 1.2, 1.0], seed=1, wall=11.0),
        make_run(runs, "b_seed0", [0.10, 0.10, 0.10], [2.3, 9.5, float("nan")], seed=0,
                 diverged_epoch=2, lr=5.0),
        make_run(runs, "c_seed0", [0.30, 0.50, 0.57, 0.64], [1.9, 1.4, 1.2, 0.9], seed=0, schedule="cosine"),
        make_run(runs, "c_seed1", [0.31, 0.50, 0.55, 0.58], [1.8, 1.5, 1.3, 1.2], seed=1, schedule="cosine"),
    ]
    return runs, dirs


def test_find_run_dirs_accepts_runs_and_parents(tmp_path, three_configs):
    runs, dirs = three_configs
    assert report.find_run_dirs([str(runs)]) == sorted(dirs)
    assert report.find_run_dirs([dirs[3], str(runs)])[0] == dirs[3]  # given order first, no duplicates
    assert len(report.find_run_dirs([dirs[3], str(runs)])) == 5
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="must hold run directories"):
        report.find_run_dirs([str(tmp_path / "empty")])
    with pytest.raises(ValueError, match="must be an existing directory"):
        report.find_run_dirs([str(tmp_path / "missing")])


def test_grouping_ignores_only_bookkeeping_flags(tmp_path, three_configs):
    runs, dirs = three_configs
    from experiments.runner import rundir

    groups = report.group_runs([rundir.read_run(d) for d in dirs])
    assert [(g.label, len(g.runs)) for g in groups] == [("a", 2), ("b", 1), ("c", 2)]
    assert groups[0].seeds == [0, 1]
    # A run differing in a real flag (batch size) is its own configuration, labelled apart.
    extra = make_run(runs, "a_seed2", [0.2, 0.3], [2.0, 1.9], seed=2, batch_size=64)
    groups = report.group_runs([rundir.read_run(d) for d in dirs + [extra]])
    assert len(groups) == 4
    labels = [g.label for g in groups]
    assert len(set(labels)) == 4 and any("batch_size=64" in label for label in labels)


def test_table_numbers_recomputed(tmp_path, three_configs):
    runs, dirs = three_configs
    out = tmp_path / "out"
    path = report.build_report(dirs, str(out))
    text = open(path).read()
    rows = _table_rows(text)
    # Target: 95% of the best best-accuracy (0.64) = 0.608.
    assert "epochs to 60.80%" in text
    a, b, c = rows["a"], rows["b"], rows["c"]
    assert a[0] == "2"
    assert a[1] == _pm([0.60, 0.62], 2, 100)
    assert a[2] == _pm([0.60, 0.62], 2, 100)
    assert a[3] == "4 ± 0"  # best epoch counted from 1, whole numbers without decimals
    assert a[4] == "4 (1 of 2 seeds)"  # seed 1 reaches 0.62 >= 0.608 at epoch 4; seed 0 never
    assert a[5] == _pm([1.1, 1.0], 3)
    early_std = [statistics.pstdev([2.1, 1.6, 1.3, 1.1]), statistics.pstdev([2.0, 1.5, 1.2, 1.0])]
    assert a[6] == _pm(early_std, 3)
    assert a[7] == _pm([2.1, 2.0], 3)
    assert a[8] == "0 of 2"
    assert a[9] == _pm([10.0, 11.0], 1)
    # The diverged run: NaN loss inside the early window, diverged at (0-based) epoch 2.
    assert b[3] == "1"  # one seed: not "1.0"
    assert b[4] == "not reached"
    assert b[5] == "n/a" and b[6] == "inf" and b[7] == "inf"
    assert b[8] == "1 of 1 (epoch 3)"
    assert c[1] == _pm([0.64, 0.58], 2, 100)
    assert c[4] == "4 (1 of 2 seeds)"
    # Key numbers: spread of mean final accuracy (c: 61.00, a: 61.00 -> b is the worst at 10.00).
    assert "| spread of mean final val accuracy (points) | 51.00 |" in text
    assert "| diverged runs | 1 of 5 |" in text
    seed_std = max(statistics.stdev([60.0, 62.0]), statistics.stdev([64.0, 58.0]))
    assert f"| largest seed std of final val accuracy (points) | {seed_std:.2f} | `c` |" in text
    for png in ("curves.png", "early_loss.png"):
        assert (out / png).stat().st_size > 1000


def test_epochs_print_whole_numbers_without_decimals():
    assert report.fmt_epochs([2.0]) == "2"
    assert report.fmt_epochs([8.0, 8.0]) == "8 ± 0"
    assert report.fmt_epochs([6.0, 7.0]) == "6.5 ± 0.7"
    assert report.fmt_epochs([6.0, 8.0]) == "7.0 ± 1.4"  # one precision within a cell
    assert report.fmt_epochs([]) == "n/a"


def test_figures_draw_the_lr_of_every_step_averaged_over_seeds(tmp_path):
    import keras

    import kschedules as ks
    from experiments.runner import rundir

    schedule = keras.saving.serialize_keras_object(ks.get("cosine_restarts", initial_learning_rate=0.1,
                                                          first_decay_steps=2))
    derived = {"train_size": 500, "val_size": 100, "steps_per_epoch": 4, "total_steps": 8,
               "warmup_steps": 0, "first_decay_steps": 2, "schedule": schedule}
    dirs = [make_run(tmp_path, f"r_seed{seed}", [0.2, 0.3], [2.0, 1.5], seed=seed, derived=derived,
                     schedule="cosine_restarts") for seed in (0, 1)]
    [(label, rows, applied)] = report._curves(report.group_runs([rundir.read_run(d) for d in dirs]))
    assert label == "r (mean of 2 seeds)" and len(rows) == 2
    assert applied.epochs.tolist() == [s / 4 for s in range(8)]
    assert applied.learning_rate == pytest.approx([0.1, 0.05] * 4)  # a restart every half epoch


def test_epochs_to_target_and_early_stats():
    history = [{"epoch": float(e), "val_accuracy": v, "loss": l}
               for e, (v, l) in enumerate(zip([0.1, 0.3, 0.5, 0.55], [3.0, 1.0, 2.0, 0.5]))]
    assert report.epochs_to_target(history, 0.5) == 3
    assert report.epochs_to_target(history, 0.1) == 1
    assert report.epochs_to_target(history, 0.56) is None
    std, worst = report.early_loss_stats(history, 3)
    assert std == pytest.approx(statistics.pstdev([3.0, 1.0, 2.0])) and worst == 3.0
    assert report.early_loss_stats(history, 10)[1] == 3.0  # window longer than the run
    history[1]["loss"] = float("inf")
    assert report.early_loss_stats(history, 3) == (math.inf, math.inf)
    assert report.early_loss_stats(history[2:], 1) == (0.0, 2.0)


def test_explicit_target_and_unfinished_runs(tmp_path, three_configs):
    runs, dirs = three_configs
    unfinished = make_run(runs, "d_seed0", [0.9], [0.1], finished=False, schedule="step")
    text = open(report.build_report(dirs + [unfinished], str(tmp_path / "o"), target=0.5)).read()
    rows = _table_rows(text)
    assert "d" not in rows and "d_seed0" in text.split("Not included")[1]
    assert rows["a"][4] == "3 ± 0"
    assert rows["c"][4] == "2 ± 0"
    assert "epochs to 50.00%" in text and "given with --target" in text


def test_refuses_to_overwrite_an_existing_report(tmp_path, three_configs, capsys):
    runs, dirs = three_configs
    out = tmp_path / "mine"
    assert report.main([str(runs), "--log_dir", str(out)]) == 0
    (out / "report.md").write_text("my notes")
    assert report.main([str(runs), "--log_dir", str(out)]) == 2
    assert (out / "report.md").read_text() == "my notes"
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"report: --log_dir {out} already holds report.md, curves.png, early_loss.png; "
                   "pass --overwrite to replace them or choose another --log_dir"]
    # A figure alone is enough to refuse: nothing of the user's is replaced silently.
    (out / "report.md").unlink()
    assert report.main([str(runs), "--log_dir", str(out)]) == 2
    assert report.main([str(runs), "--log_dir", str(out), "--overwrite"]) == 0
    assert (out / "report.md").read_text().startswith("# Run comparison")


def test_default_log_dir_is_the_parent_folder(tmp_path, three_configs):
    runs, _ = three_configs
    assert report.main([str(runs)]) == 0
    assert (runs / "report.md").exists()
    # The report folder itself is not mistaken for a run on the next call.
    assert report.main([str(runs), "--log_dir", str(tmp_path / "x")]) == 0


def test_out_is_the_deprecated_name_of_log_dir(tmp_path, three_configs, capsys):
    runs, _ = three_configs
    out = tmp_path / "old"
    assert report.main([str(runs), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.err == "warning: --out is deprecated; use --log_dir (files go to <log_dir>)\n"
    assert (out / "report.md").exists() and f"report: wrote {out / 'report.md'}" in captured.out
    # Both: one line, exit 2, nothing written.
    with pytest.raises(SystemExit) as e:
        report.main([str(runs), "--out", str(tmp_path / "a"), "--log_dir", str(tmp_path / "b")])
    assert e.value.code == 2
    assert capsys.readouterr().err == ("report: --out: cannot be given with --log_dir, its new name; "
                                       "give only --log_dir\n")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--target", "1.5"], "--target"),
        (["--early_epochs", "0"], "--early_epochs"),
        (["--exercise", "nope"], "--exercise"),
        (["--target", "0.5", "--target_fraction", "0.9"], "not allowed with"),
    ],
)
def test_bad_flags_one_line_exit_2(tmp_path, three_configs, capsys, argv, message):
    runs, _ = three_configs
    with pytest.raises(SystemExit) as e:
        report.main([str(runs)] + argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (runs / "report.md").exists()


def _numbers(text):
    text = re.sub(r"`[^`]*`", "", text)  # configuration names are not results
    return re.findall(r"\d+(?:\.\d+)?", text)


def test_every_number_in_the_comparison_is_in_the_tables(tmp_path, three_configs):
    runs, dirs = three_configs
    text = open(report.build_report(dirs, str(tmp_path / "o"))).read()
    tables = text.split("## Results")[1].split("## Figures")[0]
    comparison = text.split("## Comparison")[1]
    found = _numbers(comparison)
    assert len(found) >= 8
    table_numbers = set(re.findall(r"\d+(?:\.\d+)?", tables))
    assert set(found) <= table_numbers, set(found) - table_numbers
    assert "`a` reached the target first" not in comparison  # a and c reach it with one seed only
    assert "Never reached the target: `b`" in comparison
    assert "Caution" not in comparison  # a and c have two seeds


def _step_exercise(root):
    dirs = []
    finals = {}
    grid = [(0.1, "3,6,8"), (0.5, "3,6,8"), (0.1, "5,8"), (0.2, "2,5,8")]
    dirs.append(make_run(root, "constant_seed0", [0.2, 0.3] + [0.4] * 8, [2.0] * 10, schedule="constant"))
    for i, (factor, milestones) in enumerate(grid):
        for seed in (0, 1):
            final = 0.50 + 0.03 * i + 0.01 * seed
            finals.setdefault((factor, milestones), []).append(final)
            dirs.append(make_run(root, f"step_{factor}_{milestones.replace(',', '-')}_seed{seed}",
                                 [0.2] * 3 + [0.35] * 6 + [final], [2.0 - 0.1 * e for e in range(10)], seed=seed,
                                 schedule="step", factor=factor, milestones=milestones))
    return dirs, finals


def test_step_exercise_sensitivity_and_figures(tmp_path):
    dirs, finals = _step_exercise(tmp_path / "logs")
    out = tmp_path / "out"
    text = open(report.build_report(dirs, str(out), exercise="step")).read()
    means = [statistics.mean(v) for v in finals.values()]
    expected = f"{100 * (max(means) - min(means)):.2f}"
    assert f"range of final val accuracy over the 4 step configurations (points) | {expected} |" in text
    assert f"ranges over {expected} points" in text
    assert "Step decay (`step_0.1_3-6-8`) ended at" in text  # 3,6,8 of 10 epochs = 30/60/80%
    # First milestone 3: val accuracy after (0-based) epoch 3 minus after epoch 2, in points.
    assert f"| {step.JUMP} | 15.00 | `step_0.1_3-6-8` |" in text  # 0.20 -> 0.35
    assert f"| {step.JUMP} | 0.00 | `constant` |" in text  # 0.40 -> 0.40
    assert ("At the first drop the validation accuracy changed by 15.00 points over the first epoch at the lower "
            "LR for `step_0.1_3-6-8`, against 0.00 over the same epoch for the constant LR (`constant`)") in text
    assert "## Theory" in text and "noise" in text.split("## Theory")[1]
    for png in ("curves_base.png", "curves_challenge.png", "early_loss.png"):
        assert (out / png).exists()
    comparison = text.split("## Comparison")[1].split("## Theory")[0]
    tables = text.split("## Results")[1].split("## Figures")[0]
    assert set(_numbers(comparison)) <= set(re.findall(r"\d+(?:\.\d+)?", tables))


def test_milestones_match_rounded_fractions():
    assert common.milestones_match({"milestones": "30,60,80", "epochs": 100}, (0.3, 0.6, 0.8))
    assert common.milestones_match({"milestones": [2, 4, 6], "epochs": 7}, (0.3, 0.6, 0.8))  # 2.1, 4.2, 5.6
    assert not common.milestones_match({"milestones": "50,75", "epochs": 100}, (0.3, 0.6, 0.8))
    assert not common.milestones_match({"milestones": None, "epochs": 100}, (0.3, 0.6, 0.8))


def test_warmup_exercise_counts_divergence_per_optimizer(tmp_path):
    root = tmp_path / "logs"
    dirs = [
        make_run(root, "adam_nowarmup_seed0", [0.1, 0.1], [5.0, float("nan")], diverged_epoch=1,
                 optimizer="adam", lr=0.05),
        make_run(root, "adam_warmup_seed0", [0.2, 0.4, 0.5], [2.2, 1.8, 1.5], optimizer="adam", lr=0.05,
                 warmup_epochs=2),
        make_run(root, "sgd_nowarmup_seed0", [0.3, 0.4, 0.5], [2.0, 1.7, 1.4], optimizer="sgd", lr=1.0),
    ]
    out = tmp_path / "o"
    text = open(report.build_report(dirs, str(out), exercise="warmup", early_epochs=2)).read()
    assert "adam: `adam_nowarmup`: diverged 1 of 1 (epoch 2), max early loss inf" in text
    assert "Goyal" in text and "second-moment" in text
    assert "Caution: every configuration has a single seed" in text
    assert (out / "curves_adam.png").exists() and (out / "curves_sgd.png").exists()
    assert "max loss, epochs 1-2" in text


def test_cosine_exercise_measures_the_restart_dips(tmp_path):
    root = tmp_path / "logs"
    dirs = [
        make_run(root, "cosine_seed0", [0.30, 0.45, 0.55, 0.60], [2.0, 1.6, 1.3, 1.1], schedule="cosine"),
        make_run(root, "restarts_t1_seed0", [0.30, 0.50, 0.42, 0.55], [2.0, 1.5, 1.7, 1.2],
                 schedule="cosine_restarts", t0=1.0),
        make_run(root, "restarts_t1_seed1", [0.30, 0.50, 0.46, 0.57], [2.0, 1.5, 1.6, 1.2], seed=1,
                 schedule="cosine_restarts", t0=1.0),
    ]
    assert cosine.largest_val_fall([{"val_accuracy": v} for v in (0.3, 0.5, 0.42, 0.55)]) == pytest.approx(0.08)
    assert cosine.largest_val_fall([{"val_accuracy": v} for v in (0.3, 0.4)]) == 0.0
    text = open(report.build_report(dirs, str(tmp_path / "o"), exercise="cosine")).read()
    fall = f"{statistics.mean([8.0, 4.0]):.2f}"
    assert f"| {cosine.FALL} | {fall} | `restarts_t1` |" in text
    assert f"| {cosine.FALL} | 0.00 | `cosine` |" in text
    assert (f"the largest one-epoch fall of validation accuracy was {fall} points for `restarts_t1`, "
            "against 0.00 for `cosine` without restarts") in text
    comparison = text.split("## Comparison")[1].split("## Theory")[0]
    tables = text.split("## Results")[1].split("## Figures")[0]
    assert set(_numbers(comparison)) <= set(re.findall(r"\d+(?:\.\d+)?", tables))
    assert (tmp_path / "o" / "curves_restarts.png").exists()


def test_a_flag_added_later_counts_as_its_default(tmp_path):
    # Seed 0 was recorded before --strategy / --lr_scaling existed, seed 1 after:
    # one configuration. A real --strategy difference still splits them.
    from experiments.runner import rundir

    old = make_run(tmp_path, "a_seed0", [0.2, 0.3], [2.0, 1.9], seed=0)
    new = make_run(tmp_path, "a_seed1", [0.2, 0.4], [2.0, 1.8], seed=1, strategy="default",
                   lr_scaling="none", reference_batch_size=128)
    other = make_run(tmp_path, "a_seed2", [0.2, 0.4], [2.0, 1.8], seed=2, strategy="mirrored")
    groups = report.group_runs([rundir.read_run(d) for d in (old, new, other)])
    assert sorted(len(g.runs) for g in groups) == [1, 2]

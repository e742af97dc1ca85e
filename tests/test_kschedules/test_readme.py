"""The library part of README.md, run: its `>>>` examples, its table of values, its plotting lines.

The README is what a new user copies first; these tests make its code and printed numbers the
library's real behaviour (as test_doctests.py does for the docstrings).
"""

import doctest
import pathlib
import re

import numpy as np
import pytest

from run_helpers import REPO

README = pathlib.Path(REPO) / "README.md"
# The epochs at which the README's table evaluates every schedule (its header line).
TABLE_EPOCHS = (0, 1, 5, 10, 30, 50, 80, 99)


def _python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def _setup_namespace():
    """The names the README's first code block defines (ks, keras, np, steps_per_epoch, total)."""
    namespace = {}
    exec(_python_blocks()[0], namespace)
    return namespace


def _block_with(text):
    blocks = [block for block in _python_blocks() if text in block]
    assert len(blocks) == 1, f"README.md: expected one python block with {text!r}"
    return blocks[0]


def test_examples_print_what_the_readme_says():
    namespace = _setup_namespace()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    parser = doctest.DocTestParser()
    for number, block in enumerate(_python_blocks()):
        if ">>>" in block:  # each block's examples share the README's names, as in one session
            runner.run(parser.get_doctest(block, namespace, f"README block {number}", str(README), 0),
                       clear_globs=False)
    result = runner.summarize(verbose=False)
    assert result.attempted >= 7
    assert result.failed == 0


def test_table_of_values_is_the_schedules_own():
    namespace = _setup_namespace()
    exec(_block_with("schedules = {"), namespace)
    spe = namespace["steps_per_epoch"]
    lines = [f"{'epoch:':<58}" + "".join(f"{e:8d}" for e in TABLE_EPOCHS)]
    for label, schedule in namespace["schedules"].items():
        values = np.asarray(schedule(np.array(TABLE_EPOCHS) * spe))
        lines.append(f"{label:<58}" + "".join(f"{v:8.4f}" for v in values))
    table = "\n".join(lines)
    assert f"```\n{table}\n```" in README.read_text(), table


def test_plotting_lines_draw_every_step(tmp_path, monkeypatch):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    namespace = _setup_namespace()
    namespace["s"] = namespace["ks"].CosineAnnealing(0.1, namespace["total"])
    monkeypatch.chdir(tmp_path)
    exec(_block_with("plt.plot("), namespace)
    (line,) = plt.gca().get_lines()
    x, y = line.get_data()
    assert len(x) == namespace["total"]
    np.testing.assert_allclose(x[[0, -1]], [0.0, (namespace["total"] - 1) / 391])
    np.testing.assert_allclose(y[0], 0.1, rtol=1e-6)
    assert (tmp_path / "schedule.png").stat().st_size > 0
    plt.close("all")

"""Runs the `Example:` blocks of the library's docstrings, so they cannot rot."""

import doctest
import importlib

import pytest

MODULES = [
    "kschedules.constant",
    "kschedules.step",
    "kschedules.cosine",
    "kschedules.polynomial",
    "kschedules.wrappers",
    "kschedules.exponential",
    "kschedules.inverse_sqrt",
    "kschedules.onecycle",
    "kschedules.cyclic",
    "kschedules.tanh",
    "kschedules.wsd",
    "kschedules.combinators",
    "kschedules.registry",
    "kschedules.callbacks",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0

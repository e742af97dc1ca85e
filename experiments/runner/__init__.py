"""The runner behind `python -m experiments.run`: flags -> config -> run directory -> data -> fit.

A map of its modules, and of who owns which contract: docs/architecture.md.
"""

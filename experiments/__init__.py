"""The runner, the studies and the tools built on kschedules; a map of the modules: docs/architecture.md."""

"""The four learning-rate studies, one module each, registered in `STUDIES`.

A study (`Study`) is everything the suite and the report know about it: its
run definitions and its own suite flags (the suite iterates `STUDIES` to plan
runs), and its focus figures, key numbers, sentences and theory (the report
renders `STUDIES[exercise]`). What the studies share (run-definition
arithmetic, report numbers) is in `common`.

    step.py    constant vs step decay; factor x milestone grid (owns the base step run)
    cosine.py  cosine to zero vs step decay; warm restarts
    poly.py    linear vs polynomial decay of other powers
    warmup.py  large Adam and SGD LRs with and without a linear warmup
"""

from experiments.studies import cosine, poly, step, warmup
from experiments.studies.common import Definition, Setting, Study

STUDIES = {s.name: s for s in (step.STUDY, cosine.STUDY, poly.STUDY, warmup.STUDY)}
NAMES = tuple(STUDIES)

__all__ = ["NAMES", "STUDIES", "Definition", "Setting", "Study"]

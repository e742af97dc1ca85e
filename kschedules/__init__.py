"""kschedules: learning-rate schedules for Keras 3.

Every schedule is a `keras.optimizers.schedules.LearningRateSchedule` whose
arguments are in optimizer steps; pass one to any Keras optimizer.
"""

from kschedules.callbacks import LearningRateLogger
from kschedules.constant import Constant
from kschedules.cosine import CosineAnnealing, CosineAnnealingWarmRestarts
from kschedules.polynomial import LinearDecay, PolynomialDecay
from kschedules.registry import SCHEDULES, get
from kschedules.step import StepDecay
from kschedules.wrappers import Staircase, Warmup

__version__ = "0.1.0"

__all__ = [
    "Constant",
    "CosineAnnealing",
    "CosineAnnealingWarmRestarts",
    "LearningRateLogger",
    "LinearDecay",
    "PolynomialDecay",
    "SCHEDULES",
    "Staircase",
    "StepDecay",
    "Warmup",
    "get",
]

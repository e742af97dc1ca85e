"""kschedules: learning-rate schedules for Keras 3.

Every schedule is a `keras.optimizers.schedules.LearningRateSchedule` whose
arguments are in optimizer steps; pass one to any Keras optimizer.
"""

from kschedules.callbacks import LearningRateLogger
from kschedules.combinators import Product, Sequence
from kschedules.constant import Constant
from kschedules.cosine import CosineAnnealing, CosineAnnealingWarmRestarts
from kschedules.cyclic import Cyclic
from kschedules.exponential import ExponentialDecay
from kschedules.inverse_sqrt import InverseSqrtDecay
from kschedules.onecycle import OneCycle
from kschedules.plateau import PlateauScaled, ReduceLROnPlateau
from kschedules.polynomial import LinearDecay, PolynomialDecay
from kschedules.registry import SCHEDULES, get
from kschedules.step import StepDecay
from kschedules.tanh import TanhDecay
from kschedules.wrappers import PerUpdate, Staircase, Warmup
from kschedules.wsd import WarmupStableDecay

__version__ = "0.2.0"

__all__ = [
    "Constant",
    "CosineAnnealing",
    "CosineAnnealingWarmRestarts",
    "Cyclic",
    "ExponentialDecay",
    "InverseSqrtDecay",
    "LearningRateLogger",
    "LinearDecay",
    "OneCycle",
    "PerUpdate",
    "PlateauScaled",
    "PolynomialDecay",
    "Product",
    "ReduceLROnPlateau",
    "SCHEDULES",
    "Sequence",
    "Staircase",
    "StepDecay",
    "TanhDecay",
    "Warmup",
    "WarmupStableDecay",
    "get",
]

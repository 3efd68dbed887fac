"""skneuro: scikit-learn compatible estimators for computational neuroscience, on torch."""

from ._engine.persist import load, save
from .bumps import SumOfBumpsRegressor
from .reduced_rank import RRExpRegressor, RRLinearRegressor, RRReluRegressor, RRSigmoidRegressor

__version__ = "0.1.0.dev0"

__all__ = [
    "RRExpRegressor",
    "RRLinearRegressor",
    "RRReluRegressor",
    "RRSigmoidRegressor",
    "SumOfBumpsRegressor",
    "__version__",
    "load",
    "save",
]

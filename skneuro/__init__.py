"""skneuro: scikit-learn compatible estimators for computational neuroscience, on torch."""

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
]

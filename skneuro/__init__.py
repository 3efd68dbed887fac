"""skneuro: scikit-learn compatible estimators for computational neuroscience, on torch."""

from ._persist import load, save
from .bumps import SumOfBumpsRegressor
from .latent_regression import MultiSubjectLatentRegressor, SubjectData
from .preprocessing import TrialScaler, TrialTransformer
from .reduced_rank import RRExpRegressor, RRLinearRegressor, RRReluRegressor, RRSigmoidRegressor
from .rnn import MultiRegionRNNRegressor, RateRNNRegressor

__version__ = "0.1.0.dev0"

__all__ = [
    "MultiRegionRNNRegressor",
    "MultiSubjectLatentRegressor",
    "RRExpRegressor",
    "RRLinearRegressor",
    "RRReluRegressor",
    "RRSigmoidRegressor",
    "RateRNNRegressor",
    "SubjectData",
    "SumOfBumpsRegressor",
    "TrialScaler",
    "TrialTransformer",
    "__version__",
    "load",
    "save",
]

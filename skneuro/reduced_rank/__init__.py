"""(Non)linear reduced-rank regression: ``y = g ⊙ f(X w0 w1ᵀ + o1) + o2 + noise``."""

from .._persist import register
from ._estimators import RRExpRegressor, RRLinearRegressor, RRReluRegressor, RRSigmoidRegressor
from ._modules import ReducedRankModule, exp_link

register(
    estimators=[RRExpRegressor, RRLinearRegressor, RRReluRegressor, RRSigmoidRegressor],
    modules=[ReducedRankModule],
)

__all__ = [
    "RRExpRegressor",
    "RRLinearRegressor",
    "RRReluRegressor",
    "RRSigmoidRegressor",
    "ReducedRankModule",
    "exp_link",
]

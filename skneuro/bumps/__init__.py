"""Sum-of-bump function modules and the :class:`SumOfBumpsRegressor`."""

from .._persist import register
from ._estimators import SumOfBumpsRegressor
from ._modules import BumpFcn, BumpSumWithIntercept, SlowSumOfBumpFcns, SumOfBumpFcns, WanderingModule

register(
    estimators=[SumOfBumpsRegressor],
    modules=[BumpFcn, BumpSumWithIntercept, SlowSumOfBumpFcns, SumOfBumpFcns],
)

__all__ = ["BumpFcn", "SlowSumOfBumpFcns", "SumOfBumpFcns", "SumOfBumpsRegressor", "WanderingModule"]

"""Sum-of-bump function modules and the :class:`SumOfBumpsRegressor`."""

from ._estimators import SumOfBumpsRegressor
from ._modules import BumpFcn, SlowSumOfBumpFcns, SumOfBumpFcns, WanderingModule

__all__ = ["BumpFcn", "SlowSumOfBumpFcns", "SumOfBumpFcns", "SumOfBumpsRegressor", "WanderingModule"]

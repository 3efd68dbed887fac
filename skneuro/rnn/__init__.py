"""Constrained leaky rate RNNs (the PsychRNN family).

:class:`RateRNNRegressor` trains a :class:`LeakyRNN` (masks, Dale's law, noise,
hand-written backpropagation through time) on trials; :class:`WeightInitializer`,
:class:`GaussianSpectralRadius` and :class:`AlphaIdentity` (numpy only) set its initial
weights and constraints. The multi-region estimator comes later.
"""

from ._estimators import RateRNNRegressor, Simulation
from ._initializers import AlphaIdentity, GaussianSpectralRadius, WeightInitializer
from ._modules import LeakyRNN

__all__ = [
    "AlphaIdentity",
    "GaussianSpectralRadius",
    "LeakyRNN",
    "RateRNNRegressor",
    "Simulation",
    "WeightInitializer",
]

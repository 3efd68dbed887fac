"""Constrained leaky rate RNNs (the PsychRNN family).

:class:`RateRNNRegressor` trains a :class:`LeakyRNN` (masks, Dale's law, noise,
hand-written backpropagation through time) on trials; :class:`WeightInitializer`,
:class:`GaussianSpectralRadius` and :class:`AlphaIdentity` (numpy only) set its initial
weights and constraints. :class:`MultiRegionRNNRegressor` builds the same module from a
configuration of named brain regions (:func:`parse_config`, :func:`config_from_mrnntorch`).
"""

from .._persist import register
from ._base import Simulation
from ._estimators import RateRNNRegressor
from ._initializers import AlphaIdentity, GaussianSpectralRadius, WeightInitializer
from ._modules import LeakyRNN
from ._multi_region import MultiRegionRNNRegressor
from ._regions import RegionSpec, config_from_mrnntorch, parse_config

register(
    estimators=[MultiRegionRNNRegressor, RateRNNRegressor],
    modules=[LeakyRNN],
    objects=[AlphaIdentity, GaussianSpectralRadius, WeightInitializer],
)

__all__ = [
    "AlphaIdentity",
    "GaussianSpectralRadius",
    "LeakyRNN",
    "MultiRegionRNNRegressor",
    "RegionSpec",
    "RateRNNRegressor",
    "Simulation",
    "WeightInitializer",
    "config_from_mrnntorch",
    "parse_config",
]

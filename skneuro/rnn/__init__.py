"""Constrained leaky rate RNNs (the PsychRNN family).

So far this package holds the :class:`LeakyRNN` torch module (masks, Dale's law, noise,
hand-written backpropagation through time) and the weight initializers
:class:`WeightInitializer`, :class:`GaussianSpectralRadius` and :class:`AlphaIdentity`
(numpy only). The ``RateRNNRegressor`` and ``MultiRegionRNNRegressor`` estimators come
later.
"""

from ._initializers import AlphaIdentity, GaussianSpectralRadius, WeightInitializer
from ._modules import LeakyRNN

__all__ = ["AlphaIdentity", "GaussianSpectralRadius", "LeakyRNN", "WeightInitializer"]

"""Transformers of trial data ``(n_trials, n_steps, n_features)`` for scikit-learn pipelines.

:class:`TrialScaler` standardises each feature over trials and time steps;
:class:`TrialTransformer` applies any 2-D scikit-learn transformer (e.g. ``PCA``) to the
feature axis. Both take the output mask as ``sample_weight``, so
``make_pipeline(TrialScaler(), RateRNNRegressor())`` fits, predicts and scores trials.
"""

from .._persist import register
from ._trial import TrialScaler, TrialTransformer

# TrialTransformer holds an arbitrary scikit-learn transformer: pickle it, it cannot be saved
register(estimators=[TrialScaler])

__all__ = ["TrialScaler", "TrialTransformer"]

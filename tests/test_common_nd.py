"""The replacement check suite over every estimator on 3-D or list input.

sklearn's ``parametrize_with_checks`` feeds 2-D arrays (``tests/test_common.py``); the rate
RNNs take trials and the latent model a list of subjects, so they run
:func:`skneuro.utils.estimator_checks.parametrize_with_checks_nd` on their own data.
The last tests break the contract on purpose and show that the suite notices.
"""

import numpy as np
import pytest

from skneuro.datasets import make_multi_subject_latent_regression
from skneuro.latent_regression import MultiSubjectLatentRegressor
from skneuro.rnn import MultiRegionRNNRegressor, RateRNNRegressor
from skneuro.utils.estimator_checks import (
    SubjectListData,
    TrialData,
    check_fit_returns_self,
    check_inputs_unchanged,
    check_nan_rejected,
    check_not_fitted,
    check_pickle_roundtrip,
    parametrize_with_checks_nd,
)


def _trials(n_trials=8, n_steps=6, n_in=2, n_out=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_trials, n_steps, n_in))
    y = np.cumsum(X, axis=1)[:, :, :n_out] * 0.1
    mask = np.ones_like(y)
    mask[:, :2] = 0.0
    return X, y, mask


CONFIG = {
    "regions": [
        {"name": "a", "n_units": 3, "sign": "excitatory", "learnable_bias": True, "init": 0.5},
        {"name": "b", "n_units": 2, "sign": "inhibitory", "parent": "P"},
        {"name": "c", "n_units": 2},
    ],
    "inputs": [{"name": "u", "n_units": 1, "sign": "excitatory"}, {"name": "v", "n_units": 1}],
    "connections": [
        {"source": "u", "target": "a"},
        {"source": "v", "target": "c"},
        {"source": "a", "target": "P", "density": 0.5},
        {"source": "b", "target": "a"},
        {"source": "c", "target": "a", "density": 0.5},
    ],
    "readout": ["a", "P"],
}

RNN = {"max_iter": 2, "batch_size": 4, "learning_rate": 0.02, "random_state": 0}
RATE_RNN = RateRNNRegressor(n_rec=4, dale_ratio=0.75, rec_noise=0.1, **RNN)
MULTI_REGION = MultiRegionRNNRegressor(CONFIG, rec_noise=0.1, input_noise=0.1, **RNN)
LATENT = {"n_bumps": 3, "max_iter": 3, "random_state": 0}


def _trial_data(param_grid, **method_args):
    X, y, mask = _trials()
    return TrialData(X, y, mask, param_grid=param_grid, method_args=method_args)


def _subject_data():
    X, y = make_multi_subject_latent_regression(3, 30, random_state=0, n_inputs=(4, 6), n_outputs=(3, 5))
    return SubjectListData(X, y, param_grid={"n_components": [1, 2]}, method_args={"predict_modes": (X[2],)})


CASES = [
    (RATE_RNN, _trial_data({"n_rec": [3, 4]}, get_weights=())),
    (
        MULTI_REGION,
        _trial_data(
            {"readout": [["a"], ["P"]]},
            get_weights=(),
            region_activity=(np.arange(7.0), "P"),
            projection=("a", "b"),
            weight_subset=("a",),
        ),
    ),
    # full batch: the moment objective; minibatches with MLP predictors: the per-sample path
    (MultiSubjectLatentRegressor(**LATENT), _subject_data()),
    (
        MultiSubjectLatentRegressor(mode_predictor="mlp", hidden_layer_sizes=(4,), batch_size=10, **LATENT),
        _subject_data(),
    ),
]


@parametrize_with_checks_nd(CASES)
def test_nd_estimators(estimator, check):
    check(estimator)


# ------------------------------------------------- the suite catches violations
class _ModifiesX(RateRNNRegressor):
    def fit(self, X, y, sample_weight=None):
        X[0, 0, 0] += 1.0  # a fit that writes into the caller's array
        return super().fit(X, y, sample_weight=sample_weight)


class _PickleLosesAnAttribute(RateRNNRegressor):
    def __getstate__(self):
        state = super().__getstate__()
        state.pop("b_out_", None)
        return state


class _PickleChangesPredictions(RateRNNRegressor):
    def __setstate__(self, state):
        super().__setstate__(state)
        self.W_out_ = self.W_out_ * (1 + 1e-9)
        with __import__("torch").no_grad():
            self.module_.b_out.add_(1e-9)


class _FitWithoutChecks(RateRNNRegressor):
    def predict(self, X):
        return np.nan_to_num(np.asarray(X, dtype=float))[..., :2] * 0.0


class _NoLossCurve(RateRNNRegressor):
    def fit(self, X, y, sample_weight=None):
        super().fit(X, y, sample_weight=sample_weight)
        del self.loss_curve_
        return self


@pytest.mark.parametrize(
    "cls, check, message",
    [
        (_ModifiesX, check_inputs_unchanged, "inputs"),
        (_PickleLosesAnAttribute, check_pickle_roundtrip, "keys"),
        (_PickleChangesPredictions, check_pickle_roundtrip, "Not equal to tolerance"),
        (_FitWithoutChecks, check_not_fitted, "did not raise NotFittedError"),
        (_FitWithoutChecks, check_nan_rejected, "predict with nan in X"),
        (_NoLossCurve, check_fit_returns_self, "loss_curve_"),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_the_suite_catches_a_broken_estimator(cls, check, message):
    data = _trial_data({"n_rec": [3, 4]}, get_weights=())
    broken = cls(**RATE_RNN.get_params())
    with pytest.raises(AssertionError, match=message):
        check(broken, data=data)
    check(RateRNNRegressor(**RATE_RNN.get_params()), data=data)  # the honest estimator passes

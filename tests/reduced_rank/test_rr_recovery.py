"""Ground-truth recovery for every link (spec §5; also B13: exp and relu start from the data)."""

import numpy as np
import pytest
from scipy.linalg import subspace_angles

from skneuro.datasets import make_reduced_rank_regression
from skneuro.reduced_rank import RRExpRegressor, RRLinearRegressor, RRReluRegressor, RRSigmoidRegressor

ESTIMATORS = {
    "linear": RRLinearRegressor,
    "sigmoid": RRSigmoidRegressor,
    "exp": RRExpRegressor,
    "relu": RRReluRegressor,
}
N_TRAIN, N_TEST = 20_000, 5_000


def _link(link, a):
    if link == "sigmoid":
        return 1.0 / (1.0 + np.exp(-a))
    if link == "exp":
        return np.where(a <= 20, np.exp(np.minimum(a, 20)), np.exp(20.0) * (1 + a - 20))
    if link == "relu":
        return np.maximum(a, 0.0)
    return a


def _true_nll(params, link, X, y):
    """Mean per-sample negative log-likelihood (with 2π) of the generating model."""
    pre = X @ params["w0"] @ params["w1"].T + params.get("o1", 0.0)
    mean = params.get("g", 1.0) * _link(link, pre) + params["o2"]
    v = params["noise_variance"]
    per_sample = np.sum(0.5 * np.log(2 * np.pi * v) + (y - mean) ** 2 / (2 * v), axis=1)
    return per_sample.mean()


@pytest.mark.parametrize("link", list(ESTIMATORS))
def test_recovers_the_generating_model(link):
    X, y, params = make_reduced_rank_regression(
        N_TRAIN + N_TEST, 10, 20, 2, link=link, random_state=0, return_params=True
    )
    X_train, y_train, X_test, y_test = X[:N_TRAIN], y[:N_TRAIN], X[N_TRAIN:], y[N_TRAIN:]
    est = ESTIMATORS[link](n_components=2, random_state=0).fit(X_train, y_train)

    angles = subspace_angles(params["w0"], est.w0_)
    assert angles.max() < 0.05, angles

    W_true = params["w0"] @ params["w1"].T
    relative_error = np.linalg.norm(est.w0_ @ est.w1_.T - W_true) / np.linalg.norm(W_true)
    assert relative_error < 0.05

    gap = -est.log_likelihood(X_test, y_test) - _true_nll(params, link, X_test, y_test)
    assert gap < 0.05
    # the fitted noise variances are those of the generator
    np.testing.assert_allclose(est.noise_variance_, params["noise_variance"], rtol=0.1)

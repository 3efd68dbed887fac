"""Closed-form linear fit and the standard form (spec §2, §5), float64."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LinearRegression, Ridge

from skneuro.reduced_rank import RRLinearRegressor
from skneuro.reduced_rank._closed_form import closed_form_fit, standard_form
from skneuro.utils._linalg import target_scales


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _data(n=300, d=6, p=5, rank=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 3.0, size=d) + rng.normal(size=d)
    W = rng.normal(size=(d, rank)) @ rng.normal(size=(rank, p))
    Y = X @ W + rng.normal(size=p) + rng.normal(size=(n, p)) * rng.uniform(0.2, 3.0, size=p)
    return X, Y


# --------------------------------------------------------------------------- standard form
def test_standard_form_spec_example_and_its_negation():
    w0 = np.array([[0.0, 1.0], [2.0, 0.0]])
    w1 = np.array([[1.0, 0.0], [0.0, -1.0]])
    for sign in (1.0, -1.0):
        new_w0, new_w1, o1, o2, g = standard_form(sign * w0, sign * w1)
        np.testing.assert_allclose(new_w0, [[0.0, -1.0], [2.0, 0.0]], atol=1e-15)
        np.testing.assert_allclose(new_w1, np.eye(2), atol=1e-15)
        assert o1 is None and o2 is None and g is None


def test_standard_form_flips_negative_sigmoid_gains():
    w0 = np.array([[0.0, 1.0], [2.0, 0.0]])
    w1 = np.array([[1.0, 0.0], [0.0, -1.0]])
    g, o1, o2 = np.array([-2.0, 3.0]), np.array([0.5, 0.1]), np.array([1.0, 0.0])
    new_w0, new_w1, new_o1, new_o2, new_g = standard_form(w0, w1, o1, o2, g)
    np.testing.assert_array_equal(new_g, [2.0, 3.0])
    np.testing.assert_array_equal(new_o1, [-0.5, 0.1])
    np.testing.assert_array_equal(new_o2, [-1.0, 0.0])
    # the first target's row of W = w0 w1ᵀ is negated (here W's first column)
    np.testing.assert_allclose(new_w0 @ new_w1.T, (w0 @ w1.T) * [-1.0, 1.0], atol=1e-15)
    X = np.random.default_rng(0).normal(size=(50, 2))
    before = g * _sigmoid(X @ w0 @ w1.T + o1) + o2
    after = new_g * _sigmoid(X @ new_w0 @ new_w1.T + new_o1) + new_o2
    np.testing.assert_allclose(after, before, rtol=0, atol=1e-12)
    # inputs are copied, not modified
    np.testing.assert_array_equal(g, [-2.0, 3.0])
    np.testing.assert_array_equal(w1, [[1.0, 0.0], [0.0, -1.0]])


def test_standard_form_does_not_flip_exp_gains():
    # exp has g but no o1: g ⊙ exp(a) cannot be re-signed, so nothing is flipped
    w0, w1 = np.array([[1.0], [0.0]]), np.array([[1.0], [2.0]])
    _, _, _, o2, g = standard_form(w0, w1, None, np.array([0.0, 1.0]), np.array([-1.0, 2.0]))
    np.testing.assert_array_equal(g, [-1.0, 2.0])
    np.testing.assert_array_equal(o2, [0.0, 1.0])


def test_standard_form_invariants_and_zero_extra_columns():
    rng = np.random.default_rng(1)
    w0, w1 = rng.normal(size=(7, 2)), rng.normal(size=(4, 2))
    # rank 2 written with k = 5 columns: three columns beyond the rank
    w0_k = np.hstack([w0, w0[:, :1] * 0.3, np.zeros((7, 2))])
    w1_k = np.hstack([w1, np.zeros((4, 1)), rng.normal(size=(4, 2))])
    new_w0, new_w1, *_ = standard_form(w0_k, w1_k)
    assert new_w0.shape == (7, 5) and new_w1.shape == (4, 5)
    np.testing.assert_allclose(new_w0 @ new_w1.T, w0 @ w1.T, atol=1e-13)
    assert not new_w0[:, 2:].any() and not new_w1[:, 2:].any()
    np.testing.assert_allclose(new_w1[:, :2].T @ new_w1[:, :2], np.eye(2), atol=1e-14)
    gram = new_w0.T @ new_w0
    np.testing.assert_allclose(gram - np.diag(np.diag(gram)), 0.0, atol=1e-12)
    assert gram[0, 0] >= gram[1, 1] > 0
    for c in range(2):  # the largest-|·| entry of each w1 column is positive
        assert new_w1[np.argmax(np.abs(new_w1[:, c])), c] > 0
    again = standard_form(new_w0, new_w1)
    np.testing.assert_allclose(again[0], new_w0, atol=1e-13)
    np.testing.assert_allclose(again[1], new_w1, atol=1e-13)


def test_standard_form_of_zero_weights_is_zero():
    new_w0, new_w1, *_ = standard_form(np.zeros((3, 2)), np.zeros((4, 2)))
    assert not new_w0.any() and not new_w1.any()


# --------------------------------------------------------------------------- closed form
@pytest.mark.parametrize("alpha", [0.0, 2.5])
def test_full_rank_closed_form_is_sklearn_least_squares(alpha):
    X, Y = _data()
    reference = (LinearRegression() if alpha == 0 else Ridge(alpha=alpha)).fit(X, Y)
    rss_n = ((Y - reference.predict(X)) ** 2).mean(axis=0)
    for k in (5, 6):  # k >= min(d, p) = 5
        est = RRLinearRegressor(n_components=k, alpha=alpha, dtype="float64").fit(X, Y)
        assert est.solver_ == "closed_form" and est.n_iter_ == 1 and est.n_updates_ == 0
        np.testing.assert_allclose(est.w0_ @ est.w1_.T, reference.coef_.T, rtol=0, atol=1e-10)
        np.testing.assert_allclose(est.o2_, reference.intercept_, rtol=0, atol=1e-10)
        np.testing.assert_allclose(est.noise_variance_, rss_n, rtol=1e-10)
        np.testing.assert_allclose(est.predict(X), reference.predict(X), rtol=0, atol=1e-10)


def test_single_target_closed_form_is_sklearn_least_squares():
    X, Y = _data(p=1)
    y = Y[:, 0]
    reference = LinearRegression().fit(X, y)
    est = RRLinearRegressor(n_components=1, dtype="float64").fit(X, y)
    np.testing.assert_allclose((est.w0_ @ est.w1_.T)[:, 0], reference.coef_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(est.o2_, [reference.intercept_], rtol=0, atol=1e-10)
    np.testing.assert_allclose(est.noise_variance_, [np.mean((y - reference.predict(X)) ** 2)], rtol=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", [1, 2])
def test_reweighting_rounds_never_increase_the_nll(seed, k):
    X, Y = _data(seed=seed)
    W, o2, v, history = closed_form_fit(X, Y, k)
    assert len(history) >= 2
    assert np.all(np.diff(history) <= 1e-12 * np.abs(history[:-1]))
    # the last entry is the NLL of the returned parameters
    resid = Y - X @ W - o2
    nll = np.mean(np.sum(0.5 * np.log(v) + resid**2 / (2 * v), axis=1))
    np.testing.assert_allclose(history[-1], nll, rtol=1e-12)
    assert np.linalg.matrix_rank(W) == k


@pytest.mark.parametrize("k", [1, 2, 3])
def test_closed_form_solution_is_a_stationary_point_of_the_objective(k):
    X, Y = _data(n=400)
    est = RRLinearRegressor(n_components=k, dtype="float64").fit(X, Y)
    assert est.solver_ == "closed_form"
    assert np.all(np.diff(est.loss_curve_) <= 1e-12)
    m = est.module_
    objective = m.neg_log_likelihood(m(torch.as_tensor(X)), torch.as_tensor(Y)).mean()
    objective.backward()
    np.testing.assert_allclose(objective.item(), est.loss_curve_[-1], rtol=1e-12)
    for name, param in m.named_parameters():
        assert param.grad.abs().max().item() < 1e-6, name


def test_closed_form_is_not_beaten_by_lbfgs():
    X, Y = _data(n=200, seed=3)
    closed = RRLinearRegressor(n_components=2, dtype="float64").fit(X, Y)
    iterative = RRLinearRegressor(
        n_components=2, dtype="float64", solver="lbfgs", init="random", max_iter=500, tol=1e-12, random_state=0
    ).fit(X, Y)
    assert iterative.solver_ == "lbfgs"
    nll_closed = -closed.log_likelihood(X, Y)
    nll_iterative = -iterative.log_likelihood(X, Y)
    assert nll_closed <= nll_iterative + 1e-9
    assert nll_iterative - nll_closed < 1e-3  # and L-BFGS from a random start gets there too


def test_variance_floor_binds_on_a_noiseless_target():
    X, Y = _data(seed=4)
    Y[:, 2] = X @ np.arange(1.0, 7.0) + 3.0
    est = RRLinearRegressor(n_components=2, dtype="float64", min_var=1e-3).fit(X, Y)
    np.testing.assert_allclose(est.var_floor_, 1e-3 * Y.var(axis=0), rtol=1e-12)
    np.testing.assert_allclose(est.noise_variance_[2], est.var_floor_[2], rtol=1e-8)  # floor + a 1e-12 relative excess
    assert np.all(est.noise_variance_ >= est.var_floor_ * (1 - 1e-12))


def test_target_scales_for_constant_targets():
    Y = np.array([[1.0, 5.0, 2.0], [3.0, 5.0, 2.0], [5.0, 5.0, 2.0]])
    np.testing.assert_allclose(target_scales(Y), [8 / 3, 8 / 3, 8 / 3])
    np.testing.assert_array_equal(target_scales(np.ones((4, 2))), [1.0, 1.0])

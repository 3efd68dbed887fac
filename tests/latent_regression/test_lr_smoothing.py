"""Smoothing of the output modes (``_smoothing.py``): the exact GP mean, its subset-of-regressors form, cost."""

import tracemalloc

import numpy as np
import pytest
from scipy.optimize import approx_fprime

from skneuro.latent_regression._smoothing import (
    _cross_gram,
    _isotropic_hyperparameters,
    _negative_evidence_and_gradient,
    _subset_of_regressors,
    least_squares_modes,
    smooth_modes,
)


def _bumps(points, centres, widths, heights):
    """Each bump with its own widths (free bumps have their own; the process's share one)."""
    return np.exp(-(((points[:, None] - centres[None]) / widths[None]) ** 2).sum(-1)) @ heights


def _draw(n, seed=0, k=2):
    rng = np.random.default_rng(seed)
    q = rng.uniform(size=(n, 3))
    truth = np.column_stack([np.sin(4 * q[:, 0]) + q[:, 1], np.cos(3 * q[:, 2]) * q[:, 0]])[:, :k]
    return q, truth, truth + 0.05 * rng.normal(size=truth.shape)


def test_every_neuron_a_centre_is_the_exact_gp_mean():
    q, _, u = _draw(300)
    widths, ratio = np.array([0.3, 0.3, 0.3]), 0.01
    gram = _cross_gram(q, q, widths)
    exact = gram @ np.linalg.solve(gram + ratio * np.eye(len(q)), u)
    fitted = _cross_gram(q, q, widths) @ _subset_of_regressors(q, u, q, widths, ratio)
    np.testing.assert_allclose(fitted, exact, atol=1e-8)


def test_fewer_centres_match_the_exact_mean():
    """N = 1,500 with 300 centres against all 1,500 (the same hyperparameters): within 0.1 % of the rms.

    Measured: 3e-6 of the rms on new positions.
    """
    q, _, u = _draw(1500)
    new = np.random.default_rng(1).uniform(size=(2000, 3))
    exact = _bumps(new, *smooth_modes(q, u, max_centres=1500, free_bumps=False))
    centres, widths, heights = smooth_modes(q, u, max_centres=300, free_bumps=False)
    assert len(centres) == 300
    approx = _bumps(new, centres, widths, heights)
    assert np.sqrt(np.mean((approx - exact) ** 2)) <= 1e-3 * np.sqrt(np.mean(exact**2))


def test_smoothing_recovers_the_function():
    q, truth, u = _draw(2000)
    centres, widths, heights = smooth_modes(q, u)
    assert np.sqrt(np.mean((_bumps(q, centres, widths, heights) - truth) ** 2)) < 0.02  # noise 0.05; measured 0.008


def test_cost_is_bounded_by_the_centres_not_the_neurons():
    """N = 5,000: at most 1,000 bumps; peak memory (tracemalloc) ~26 MiB against 191 MiB for one N x N float64."""
    q, _, u = _draw(5000, k=2)
    tracemalloc.start()
    try:
        centres, widths, heights = smooth_modes(q, u, free_bumps=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(centres) == len(widths) == len(heights) == 1000
    assert peak < 0.2 * 5000**2 * 8, peak


def _squared_distances(q, span):
    z = q / span
    return np.stack([(z[:, d, None] - z[None, :, d]) ** 2 for d in range(q.shape[1])])


def test_evidence_and_gradient_per_property_length():
    """The value is −log N(Y; 0, a² G + σ² I) summed over columns, less ½ N K log 2π; the gradient
    (in log lengths, log a², log σ²/a²) matches finite differences."""
    q, _, u = _draw(60, seed=3)
    span = np.array([1.0, 0.5, 2.0])
    distances = _squared_distances(q, span)
    theta = np.log([0.3, 0.8, 0.2, 1.5, 0.01 / 1.5])  # lengths, a², σ²/a²
    value, gradient = _negative_evidence_and_gradient(theta, distances, u)
    cov = 1.5 * _cross_gram(q / span, q / span, np.array([0.3, 0.8, 0.2])) + 0.01 * np.eye(len(q))
    _, logdet = np.linalg.slogdet(cov)
    dense = 0.5 * (np.trace(u.T @ np.linalg.solve(cov, u)) + u.shape[1] * logdet)
    assert value == pytest.approx(dense, rel=1e-10)
    numeric = approx_fprime(theta, lambda t: _negative_evidence_and_gradient(t, distances, u)[0], 1e-6)
    np.testing.assert_allclose(gradient, numeric, rtol=1e-4, atol=1e-4)


def _isotropic_fit(q, u, new):
    span = q.max(axis=0) - q.min(axis=0)
    _, length, a2, s2 = _isotropic_hyperparameters(q, u, span)
    return _cross_gram(new, q, length * span) @ _subset_of_regressors(q, u, q, length * span, s2 / a2)


@pytest.mark.parametrize(
    "kind, function",
    [
        ("ignores the third property", lambda r: np.column_stack([np.sin(5 * r[:, 0]) + np.cos(4 * r[:, 1])])),
        ("fast along the third (layers)", lambda r: np.column_stack([np.sin(12 * r[:, 2]) + r[:, 0]])),
    ],
)
def test_each_property_gets_its_own_length(kind, function):
    """Automatic relevance determination: on 300 neurons with 10 % noise, the error (relative to the
    function's variance) falls from 0.0016 to 0.0005 ("ignores") and from 0.0313 to 0.0004 ("layers")
    against one length for every property; measured widths (0.65, 0.79, 99.9) and (5.1, 99.1, 0.31)."""
    rng = np.random.default_rng(0)
    q, new = rng.uniform(size=(300, 3)), rng.uniform(size=(2000, 3))
    u = function(q) + 0.1 * function(q).std() * rng.normal(size=(300, 1))
    centres, widths, heights = smooth_modes(q, u, free_bumps=False)
    span = q.max(axis=0) - q.min(axis=0)
    truth = function(new)
    error = np.mean((_bumps(new, centres, widths, heights) - truth) ** 2) / truth.var()
    isotropic = np.mean((_isotropic_fit(q, u, new) - truth) ** 2) / truth.var()
    assert error < 0.5 * isotropic, (error, isotropic)
    if kind.startswith("ignores"):
        assert widths[0, 2] > 10 * span[2] and max(widths[0, :2]) < span[0]
    else:
        assert widths[0, 2] < 0.5 * min(widths[0, :2])


def test_noise_free_modes_give_a_predictor_float32_can_evaluate():
    """Smooth modes without noise: the evidence favours long lengths and no noise; without a floor on
    σ²/a² the bump heights grow and cancel (measured: floor 1e-12, heights up to 2,080 and float32 error
    0.0045 of the function's sd). With the floor (1e-6): heights up to 261, float32 error 0.00055."""
    rng = np.random.default_rng(1)
    f = lambda r: (r[:, :1] - 0.3) ** 2 + r[:, 1:2] * r[:, :1]  # noqa: E731
    q, new = rng.uniform(size=(600, 3)), rng.uniform(0.05, 0.95, size=(2000, 3))
    centres, widths, heights = smooth_modes(q, f(q), free_bumps=False)
    truth = f(new)
    as32 = [a.astype(np.float32) for a in (new, centres, widths, heights)]
    error32 = np.sqrt(np.mean((_cross_gram(as32[0], as32[1], as32[2][0]) @ as32[3] - truth) ** 2) / truth.var())
    assert np.abs(heights).max() < 1e3 and error32 < 1e-3, (np.abs(heights).max(), error32)


@pytest.mark.parametrize("offset", [0.0, 100.0])
def test_least_squares_modes_equal_ols_on_centred_data(offset, monkeypatch):
    import skneuro.latent_regression._smoothing as smoothing

    monkeypatch.setattr(smoothing, "_BLOCK_ROWS_ELEMENTS", 7 * 30)  # several blocks of rows
    rng = np.random.default_rng(0)
    t = rng.normal(size=(500, 3)) + 2.0
    y = (t @ rng.normal(size=(3, 30)) + offset + rng.normal(size=(500, 30))).astype(np.float32)
    expected = np.linalg.lstsq(t - t.mean(axis=0), y - y.mean(axis=0), rcond=None)[0].T
    np.testing.assert_allclose(least_squares_modes(t.astype(np.float32), y), expected, rtol=1e-4, atol=1e-4)

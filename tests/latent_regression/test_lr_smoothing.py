"""Smoothing of the output modes (``_smoothing.py``): the exact GP mean, its subset-of-regressors form, cost."""

import tracemalloc

import numpy as np
import pytest

from skneuro.latent_regression._smoothing import (
    _cross_gram,
    _subset_of_regressors,
    least_squares_modes,
    smooth_modes,
)


def _bumps(points, centres, widths, heights):
    return _cross_gram(points, centres, widths[0]) @ heights


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
    exact = _bumps(new, *smooth_modes(q, u, max_centres=1500))
    centres, widths, heights = smooth_modes(q, u, max_centres=300)
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
        centres, widths, heights = smooth_modes(q, u)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(centres) == len(widths) == len(heights) == 1000
    assert peak < 0.2 * 5000**2 * 8, peak


@pytest.mark.parametrize("offset", [0.0, 100.0])
def test_least_squares_modes_equal_ols_on_centred_data(offset, monkeypatch):
    import skneuro.latent_regression._smoothing as smoothing

    monkeypatch.setattr(smoothing, "_BLOCK_ROWS_ELEMENTS", 7 * 30)  # several blocks of rows
    rng = np.random.default_rng(0)
    t = rng.normal(size=(500, 3)) + 2.0
    y = (t @ rng.normal(size=(3, 30)) + offset + rng.normal(size=(500, 30))).astype(np.float32)
    expected = np.linalg.lstsq(t - t.mean(axis=0), y - y.mean(axis=0), rcond=None)[0].T
    np.testing.assert_allclose(least_squares_modes(t.astype(np.float32), y), expected, rtol=1e-4, atol=1e-4)

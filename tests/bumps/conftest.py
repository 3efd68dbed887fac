"""The benchmark field of spec §6, shared by the bump tests."""

import numpy as np
import pytest

FIELD_CENTERS = np.array([[0.25, 0.3], [0.7, 0.65], [0.35, 0.8]])
FIELD_WIDTHS = np.array([[0.15, 0.1], [0.12, 0.2], [0.1, 0.1]])
FIELD_MAGNITUDES = np.array([1.0, -0.8, 0.6])


def field(X):
    """Σ of three bumps on [0, 1]²."""
    phi = np.exp(-(((X[:, None, :] - FIELD_CENTERS) / FIELD_WIDTHS) ** 2).sum(-1))
    return phi @ FIELD_MAGNITUDES


@pytest.fixture(scope="session")
def field_data():
    """4,000 noisy training points, 20,000 noisy held-out points and the held-out truth."""
    rng = np.random.default_rng(0)
    X_train = rng.uniform(size=(4000, 2))
    y_train = field(X_train) + 0.1 * rng.normal(size=4000)
    X_test = rng.uniform(size=(20000, 2))
    truth = field(X_test)
    y_test = truth + 0.1 * rng.normal(size=20000)
    return X_train, y_train, X_test, y_test, truth

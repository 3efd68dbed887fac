"""Shared values of the reduced-rank tests."""

import math

import pytest

E = math.e

# spec §5: d = p = 2, k = 1, w0 = [[1], [0]], w1 = [[1], [2]], X = I -> (other parameters, mean)
FORWARD_CASES = {
    "linear": ({"o2": [1.0, -1.0]}, [[2.0, 1.0], [1.0, -1.0]]),
    "sigmoid": (
        {"g": [2.0, 2.0], "o1": [0.0, 0.0], "o2": [0.0, 0.0]},
        [[2 / (1 + math.exp(-1)), 2 / (1 + math.exp(-2))], [1.0, 1.0]],
    ),
    "exp": ({"g": [1.0, 1.0], "o2": [0.0, 0.0]}, [[E, E**2], [1.0, 1.0]]),
    "relu": ({"o1": [-1.0, -1.0], "o2": [0.0, 0.0]}, [[0.0, 1.0], [0.0, 0.0]]),
}


@pytest.fixture
def forward_cases():
    return FORWARD_CASES

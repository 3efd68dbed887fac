"""make_reduced_rank_regression: the ground truth the recovery tests rely on."""

import numpy as np
import pytest
import torch

from skneuro.datasets import make_reduced_rank_regression

LINKS = ["linear", "sigmoid", "exp", "relu"]


def _link(link, a):
    if link == "sigmoid":
        return 1.0 / (1.0 + np.exp(-a))
    if link == "exp":
        return np.where(a <= 20, np.exp(np.minimum(a, 20)), np.exp(20.0) * (1 + a - 20))
    if link == "relu":
        return np.maximum(a, 0.0)
    return a


@pytest.mark.parametrize("link", LINKS)
def test_shapes_parameters_and_noise(link):
    X, y, params = make_reduced_rank_regression(20_000, 7, 6, 3, link=link, random_state=0, return_params=True)
    assert X.shape == (20_000, 7) and y.shape == (20_000, 6)
    assert X.dtype == y.dtype == np.float64
    expected = (
        {"w0", "w1", "o2", "noise_variance"}
        | ({"o1"} if link in ("sigmoid", "relu") else set())
        | ({"g"} if link in ("sigmoid", "exp") else set())
    )
    assert set(params) == expected
    assert params["w0"].shape == (7, 3) and params["w1"].shape == (6, 3)
    # standard form: orthonormal w1 columns, the sign convention
    np.testing.assert_allclose(params["w1"].T @ params["w1"], np.eye(3), atol=1e-12)
    for c in range(3):
        assert params["w1"][np.argmax(np.abs(params["w1"][:, c])), c] > 0
    # parameter ranges of the generator
    assert np.all((params["noise_variance"] >= 0.5) & (params["noise_variance"] <= 1.0))
    if "g" in params:
        assert np.all((params["g"] >= 5.0) & (params["g"] <= 10.0))
    if link == "relu":
        assert np.all((params["o1"] >= -0.2) & (params["o1"] <= 0.2))
    # y is the model mean plus N(0, v) noise
    pre = X @ params["w0"] @ params["w1"].T + params.get("o1", 0.0)
    resid = y - (params.get("g", 1.0) * _link(link, pre) + params["o2"])
    assert np.all(np.abs(resid.mean(axis=0)) < 4 * np.sqrt(params["noise_variance"] / 20_000))
    assert np.all(np.abs(resid.var(axis=0) / params["noise_variance"] - 1) < 5 * np.sqrt(2 / 20_000))
    np.testing.assert_allclose(X.mean(axis=0), 0, atol=4 / np.sqrt(20_000))


def test_reproducible_and_leaves_global_rng_alone():
    np_state, torch_state = np.random.get_state(), torch.get_rng_state().clone()
    a = make_reduced_rank_regression(100, random_state=3)
    b = make_reduced_rank_regression(100, random_state=np.random.default_rng(3))
    c = make_reduced_rank_regression(100, random_state=4)
    make_reduced_rank_regression(100)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    assert np.array_equal(np_state[1], np.random.get_state()[1]) and np_state[2] == np.random.get_state()[2]
    assert torch.equal(torch_state, torch.get_rng_state())


def test_exp_scale_multiplies_w0_of_the_exp_link_only():
    _, _, small = make_reduced_rank_regression(50, link="exp", exp_scale=0.3, random_state=0, return_params=True)
    _, _, full = make_reduced_rank_regression(50, link="exp", exp_scale=1.0, random_state=0, return_params=True)
    np.testing.assert_allclose(small["w0"] @ small["w1"].T, 0.3 * full["w0"] @ full["w1"].T, rtol=1e-12)
    _, _, a = make_reduced_rank_regression(50, link="relu", exp_scale=0.3, random_state=0, return_params=True)
    _, _, b = make_reduced_rank_regression(50, link="relu", exp_scale=1.0, random_state=0, return_params=True)
    np.testing.assert_array_equal(a["w0"], b["w0"])


def test_default_offsets_per_link():
    for link, low, high in (("sigmoid", 5.0, 10.0), ("relu", 5.0, 10.0), ("exp", 0.0, 1.0)):
        _, _, params = make_reduced_rank_regression(10, n_targets=200, link=link, random_state=0, return_params=True)
        o2 = params["o2"]
        if link == "sigmoid":  # the standard form moves g into o2 only where g < 0, never here (g > 0)
            assert np.all(params["g"] > 0)
        assert np.all((o2 >= low) & (o2 <= high))
    _, _, params = make_reduced_rank_regression(10, n_targets=2000, random_state=0, return_params=True)
    assert 9.0 < params["o2"].std() < 11.0


@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"link": "tanh"}, "link"),
        ({"n_samples": 0}, "n_samples"),
        ({"n_features": 2.5}, "n_features"),
        ({"n_targets": -1}, "n_targets"),
        ({"n_components": 0}, "n_components"),
        ({"noise_var_range": (1.0, 0.5)}, "noise_var_range"),
        ({"gain_range": (1.0,)}, "gain_range"),
        ({"o2_range": (3.0, 1.0)}, "o2_range"),
    ],
)
def test_invalid_arguments_raise_naming_them(kwargs, name):
    with pytest.raises(ValueError, match=name):
        make_reduced_rank_regression(**kwargs)

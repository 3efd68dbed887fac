"""The four reduced-rank estimators: sklearn behaviour, outputs, errors (spec §3, §5)."""

import copy
import pickle
import warnings

import numpy as np
import pytest
import torch
from scipy.linalg import subspace_angles
from scipy.stats import norm
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV

from skneuro.datasets import make_reduced_rank_regression
from skneuro.reduced_rank import (
    ReducedRankModule,
    RRExpRegressor,
    RRLinearRegressor,
    RRReluRegressor,
    RRSigmoidRegressor,
)

ESTIMATORS = {
    "linear": RRLinearRegressor,
    "sigmoid": RRSigmoidRegressor,
    "exp": RRExpRegressor,
    "relu": RRReluRegressor,
}
LINKS = list(ESTIMATORS)
HAS_O1 = {"sigmoid", "relu"}
HAS_G = {"sigmoid", "exp"}


def _link(link, a):
    if link == "sigmoid":
        return 1.0 / (1.0 + np.exp(-a))
    if link == "exp":
        return np.where(a <= 20, np.exp(np.minimum(a, 20)), np.exp(20.0) * (1 + a - 20))
    if link == "relu":
        return np.maximum(a, 0.0)
    return a


def _equation(est, link, X):
    """§2's mean on the fitted attributes, in numpy."""
    p = est.w1_.shape[0]
    o1 = est.o1_ if link in HAS_O1 else np.zeros(p)
    g = est.g_ if link in HAS_G else np.ones(p)
    return g * _link(link, X @ est.w0_ @ est.w1_.T + o1) + est.o2_


@pytest.fixture(scope="module")
def data():
    out = {}
    for link in LINKS:
        X, y = make_reduced_rank_regression(300, 6, 5, 2, link=link, random_state=0)
        out[link] = (X, y)
    return out


@pytest.fixture(scope="module")
def fitted(data):
    """One fit per (link, dtype), shared by read-only tests."""
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for link in LINKS:
            X, y = data[link]
            for dtype in ("float32", "float64"):
                out[link, dtype] = ESTIMATORS[link](random_state=0, dtype=dtype, max_iter=50).fit(X, y)
    return out


# --------------------------------------------------------------------------- fitted attributes
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("link", LINKS)
def test_attributes_are_float64_in_standard_form(fitted, data, link, dtype):
    est = fitted[link, dtype]
    X, y = data[link]
    names = (
        ["w0_", "w1_", "o2_", "noise_variance_", "var_floor_"]
        + (["o1_"] if link in HAS_O1 else [])
        + (["g_"] if link in HAS_G else [])
    )
    for name in names:
        value = getattr(est, name)
        assert isinstance(value, np.ndarray) and value.dtype == np.float64, name
    for name in {"o1_", "g_"} - set(names):
        assert not hasattr(est, name)
    assert est.w0_.shape == (6, 2) and est.w1_.shape == (5, 2) and est.noise_variance_.shape == (5,)
    np.testing.assert_allclose(est.w1_.T @ est.w1_, np.eye(2), atol=1e-12)
    gram = est.w0_.T @ est.w0_
    assert abs(gram[0, 1]) < 1e-10 * gram[0, 0] and gram[0, 0] >= gram[1, 1]
    if link == "sigmoid":
        assert np.all(est.g_ >= 0)
    assert np.all(est.noise_variance_ >= est.var_floor_)
    np.testing.assert_allclose(est.var_floor_, 1e-4 * y.var(axis=0), rtol=1e-12)
    assert est.n_features_in_ == 6
    assert len(est.loss_curve_) == est.n_iter_ and all(np.isfinite(est.loss_curve_))
    assert est.device_ == torch.device("cpu")
    # the module holds the same (standardised) parameters, in the training dtype
    module = est.module_
    assert module.w0.dtype == getattr(torch, dtype)
    np.testing.assert_allclose(module.w0.detach().double().numpy(), est.w0_, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        module.v.detach().double().numpy(), est.noise_variance_, rtol=1e-12 if dtype == "float64" else 1e-6
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("link", LINKS)
def test_predict_is_the_equation_on_the_attributes(fitted, data, link, dtype):
    est = fitted[link, dtype]
    X, _ = data[link]
    np.testing.assert_allclose(est.predict(X), _equation(est, link, X), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(est.transform(X), X @ est.w0_, rtol=1e-12, atol=1e-12)
    # the torch module gives the same mean within the training precision
    with torch.no_grad():
        out = est.module_(torch.as_tensor(X, dtype=est.module_.w0.dtype)).double().numpy()
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(out, est.predict(X), rtol=tol, atol=tol * np.abs(est.predict(X)).max())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("link", LINKS)
def test_outputs_are_float64(fitted, data, link, dtype):
    est = fitted[link, dtype]
    X, y = data[link]
    for X_in in (X, X.astype(np.float32)):
        outputs = [est.predict(X_in), est.transform(X_in), est.sample(X_in, random_state=0), *est.latent_rep(X_in)]
        outputs += list(est.vary_latents(np.eye(2), X_in.mean(axis=0), est.transform(X_in)))
        for out in outputs:
            assert isinstance(out, np.ndarray) and out.dtype == np.float64
    assert isinstance(est.log_likelihood(X, y), float) and isinstance(est.score(X, y), float)


@pytest.mark.parametrize("link", LINKS)
def test_latent_rep_parts(fitted, data, link):
    est = fitted[link, "float64"]
    X, _ = data[link]
    mean, scaled, pre, latents = est.latent_rep(X)
    np.testing.assert_array_equal(latents, est.transform(X))
    o1 = est.o1_ if link in HAS_O1 else 0.0
    g = est.g_ if link in HAS_G else 1.0
    np.testing.assert_allclose(pre, latents @ est.w1_.T + o1, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(scaled, g * _link(link, pre), rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(mean, scaled + est.o2_, rtol=1e-14, atol=1e-14)
    np.testing.assert_array_equal(mean, est.predict(X))


def test_score_is_r2_and_log_likelihood_is_the_gaussian_density(fitted, data):
    est = fitted["sigmoid", "float64"]
    X, y = data["sigmoid"]
    np.testing.assert_allclose(est.score(X, y), r2_score(y, est.predict(X)), rtol=1e-14)
    expected = norm.logpdf(y, est.predict(X), np.sqrt(est.noise_variance_)).sum(axis=1).mean()
    np.testing.assert_allclose(est.log_likelihood(X, y), expected, rtol=1e-13)


def test_log_likelihood_hand_computed():
    # spec §5: v = [1, 4], residual [1, 2] -> -(1 + log 2) - log(2π) = -3.531024
    X, y = make_reduced_rank_regression(50, 2, 2, 1, random_state=0)
    est = RRLinearRegressor(n_components=1, dtype="float64").fit(X, y)
    est.noise_variance_ = np.array([1.0, 4.0])
    x = np.array([[0.3, -0.7]])
    observed = est.predict(x) + np.array([1.0, 2.0])
    np.testing.assert_allclose(est.log_likelihood(x, observed), -3.531024, atol=5e-7)
    np.testing.assert_allclose(
        est.log_likelihood(x, observed), norm.logpdf([1.0, 2.0], 0, [1.0, 2.0]).sum(), rtol=1e-14
    )


@pytest.mark.parametrize("link", LINKS)
def test_predict_on_hand_set_attributes(link, forward_cases):
    # spec §5's forward example through the estimator's numpy path
    X, y = make_reduced_rank_regression(40, 2, 2, 1, link=link, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = ESTIMATORS[link](n_components=1, max_iter=2).fit(X, y)
    values, expected = forward_cases[link]
    est.w0_, est.w1_ = np.array([[1.0], [0.0]]), np.array([[1.0], [2.0]])
    for name, value in values.items():
        setattr(est, name + "_", np.array(value))
    np.testing.assert_allclose(est.predict(np.eye(2)), expected, rtol=1e-15, atol=1e-15)


# --------------------------------------------------------------------------- 1-D targets
@pytest.mark.parametrize("link", LINKS)
def test_one_dimensional_target(link):
    X, Y = make_reduced_rank_regression(200, 4, 1, 1, link=link, random_state=2)
    y = Y[:, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = ESTIMATORS[link](random_state=0, max_iter=30).fit(X, y)  # k = 2 > p = 1
    assert est.w0_.shape == (4, 2) and est.w1_.shape == (1, 2)
    assert not est.w0_[:, 1].any() and not est.w1_[:, 1].any()
    assert est.o2_.shape == est.noise_variance_.shape == (1,)
    for out in (est.predict(X), est.sample(X, random_state=0), *est.latent_rep(X)[:3]):
        assert out.shape == (200,)
    assert est.transform(X).shape == (200, 2)
    assert np.isfinite(est.log_likelihood(X, y)) and est.score(X, y) > 0.3
    mean, w0_proj, w1_proj = est.vary_latents(np.eye(2), X.mean(axis=0), est.transform(X))
    assert w0_proj.shape == (4, 2) and w1_proj.shape == (1, 2)
    np.testing.assert_allclose(np.ravel(mean), est.predict(X), rtol=1e-12, atol=1e-12)


def test_vary_latents_of_a_one_dimensional_target_is_one_dimensional():
    # spec §3: with 1-D y every per-sample output is 1-D; vary_latents' mean is one per point
    X, Y = make_reduced_rank_regression(100, 4, 1, 1, random_state=2)
    est = RRLinearRegressor(n_components=1).fit(X, Y[:, 0])
    mean, _, _ = est.vary_latents(np.eye(1), X.mean(axis=0), est.transform(X))
    assert mean.shape == (100,)
    np.testing.assert_allclose(mean, est.predict(X), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- sampling
@pytest.mark.parametrize("link", LINKS)
def test_sample_mean_and_variance(fitted, data, link):
    est = fitted[link, "float64"]
    X, _ = data[link]
    n_draws = 10_000
    x = np.repeat(X[:1], n_draws, axis=0)
    draws = est.sample(x, random_state=0)
    assert draws.shape == (n_draws, 5)
    mean = est.predict(X[:1])[0]
    assert np.all(np.abs(draws.mean(axis=0) - mean) < 4 * np.sqrt(est.noise_variance_ / n_draws))
    # sample variance: standard error sqrt(2/N) relative
    assert np.all(np.abs(draws.var(axis=0) / est.noise_variance_ - 1) < 5 * np.sqrt(2 / n_draws))


def test_sample_is_seeded_locally(fitted, data):
    est = fitted["relu", "float32"]
    X, _ = data["relu"]
    np_state, torch_state = np.random.get_state(), torch.get_rng_state().clone()
    a, b, c = est.sample(X, random_state=1), est.sample(X, random_state=1), est.sample(X, random_state=2)
    est.sample(X)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(np_state[1], np.random.get_state()[1]) and np_state[2] == np.random.get_state()[2]
    assert torch.equal(torch_state, torch.get_rng_state())


# --------------------------------------------------------------------------- vary_latents, align_signs
@pytest.mark.parametrize("link", LINKS)
def test_vary_latents_one_direction_reproduces_predict(fitted, data, link):
    # varying the first latent around x keeps the second at x's value: at x's own
    # coordinate the mean is predict(x)
    est = fitted[link, "float64"]
    X, _ = data[link]
    p_mat = np.array([[1.0], [0.0]])
    for i in range(3):
        coordinate = est.transform(X[i : i + 1]) @ p_mat
        mean, w0_proj, w1_proj = est.vary_latents(p_mat, X[i], coordinate[:, 0])  # 1-D values, m = 1
        np.testing.assert_allclose(mean[0], est.predict(X[i : i + 1])[0], rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(w0_proj, est.w0_[:, :1])
        np.testing.assert_array_equal(w1_proj, est.w1_[:, :1])
    # a rotated orthonormal p_mat spanning everything: the mean input plays no role
    angle = 0.3
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    mean, w0_proj, w1_proj = est.vary_latents(rotation, np.zeros(6) + 100.0, est.transform(X) @ rotation)
    assert w0_proj.shape == (6, 2) and w1_proj.shape == (5, 2)
    np.testing.assert_allclose(mean, est.predict(X), rtol=1e-10, atol=1e-10)


def test_vary_latents_errors(fitted, data):
    est = fitted["linear", "float64"]
    X, _ = data["linear"]
    with pytest.raises(ValueError, match="p_mat"):
        est.vary_latents(np.ones((2, 1)), X[0], np.zeros(3))  # not orthonormal
    with pytest.raises(ValueError, match="p_mat"):
        est.vary_latents(np.eye(3), X[0], np.zeros((3, 3)))  # wrong k
    with pytest.raises(ValueError, match="mean_input"):
        est.vary_latents(np.eye(2), X[0, :3], np.zeros((3, 2)))
    with pytest.raises(ValueError, match="latent_values"):
        est.vary_latents(np.eye(2), X[0], np.zeros(3))  # 1-D only when m = 1
    with pytest.raises(NotFittedError):
        RRLinearRegressor().vary_latents(np.eye(2), X[0], np.zeros((3, 2)))


def test_align_signs_errors(fitted, data):
    est = fitted["linear", "float64"]
    X, y = data["linear"]
    other = RRLinearRegressor(n_components=1).fit(X, y)
    with pytest.raises(ValueError, match="other"):
        est.align_signs(other)
    with pytest.raises(NotFittedError):
        est.align_signs(RRLinearRegressor())


# --------------------------------------------------------------------------- sklearn integration
def test_grid_search_over_n_components_finds_the_true_rank():
    X, y = make_reduced_rank_regression(600, 10, 20, 2, random_state=0)
    search = GridSearchCV(RRLinearRegressor(), {"n_components": [1, 2, 3, 4, 5]}, cv=3).fit(X, y)
    assert search.best_params_ == {"n_components": 2}
    scores = search.cv_results_["mean_test_score"]
    assert scores[1] - scores[0] > 0.05  # rank 1 misses a direction
    by_likelihood = GridSearchCV(
        RRLinearRegressor(), {"n_components": [1, 2, 3, 4, 5]}, cv=3, scoring=lambda est, X, y: est.log_likelihood(X, y)
    ).fit(X, y)
    assert by_likelihood.best_params_ == {"n_components": 2}


def test_grid_search_with_a_nonlinear_link():
    X, y = make_reduced_rank_regression(600, 6, 8, 2, link="sigmoid", random_state=0)
    search = GridSearchCV(RRSigmoidRegressor(random_state=0), {"n_components": [1, 2, 3]}, cv=3).fit(X, y)
    assert search.best_params_ == {"n_components": 2}


@pytest.mark.parametrize("link", LINKS)
def test_pickle_round_trip(fitted, data, link):
    est = fitted[link, "float32"]
    X, y = data[link]
    clone = pickle.loads(pickle.dumps(est))
    for name in ("w0_", "w1_", "o1_", "o2_", "g_", "noise_variance_", "var_floor_"):
        if hasattr(est, name):
            assert np.array_equal(getattr(clone, name), getattr(est, name)), name
    assert clone.loss_curve_ == est.loss_curve_ and clone.n_iter_ == est.n_iter_ and clone.solver_ == est.solver_
    assert np.array_equal(clone.predict(X), est.predict(X))
    assert np.array_equal(clone.sample(X, random_state=3), est.sample(X, random_state=3))
    assert clone.log_likelihood(X, y) == est.log_likelihood(X, y)
    assert clone.get_params() == est.get_params()


def test_feature_names_out(fitted):
    est = fitted["exp", "float32"]
    assert list(est.get_feature_names_out()) == ["rrexpregressor0", "rrexpregressor1"]


@pytest.mark.parametrize(
    "kwargs,expected",
    [
        ({}, "closed_form"),
        ({"l2_w0": 0.1}, "lbfgs"),
        ({"l1_w1": 0.1}, "adam"),
        ({"batch_size": 50}, "closed_form"),
        ({"solver": "adam"}, "adam"),
        ({"solver": "lbfgs"}, "lbfgs"),
        ({"fixed_params": ("o2",)}, "lbfgs"),
    ],
)
def test_solver_resolution_linear(data, kwargs, expected):
    X, y = data["linear"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = RRLinearRegressor(max_iter=5, **kwargs).fit(X, y)
    assert est.solver_ == expected
    assert (est.n_updates_ == 0) == (expected == "closed_form")


@pytest.mark.parametrize(
    "kwargs,expected",
    [({}, "lbfgs"), ({"batch_size": 50}, "adam"), ({"l1_w0": 0.01}, "adam"), ({"l2_w0": 0.01}, "lbfgs")],
)
def test_solver_resolution_nonlinear(data, kwargs, expected):
    X, y = data["relu"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = RRReluRegressor(max_iter=3, **kwargs).fit(X, y)
    assert est.solver_ == expected


def test_l2_penalty_shrinks_the_weights(data):
    X, y = data["linear"]
    norms = []
    for penalty in (0.0, 0.1, 1.0):
        est = RRLinearRegressor(
            l2_w0=penalty, l2_w1=penalty, dtype="float64", solver="lbfgs", max_iter=300, random_state=0
        ).fit(X, y)
        norms.append(np.linalg.norm(est.w0_ @ est.w1_.T))
    assert norms[0] > norms[1] > norms[2]


@pytest.mark.filterwarnings("error::UserWarning")
def test_verbose_two_logs_objective_and_penalties(data, capsys):
    X, y = data["sigmoid"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = RRSigmoidRegressor(max_iter=3, tol=0.0, l2_w0=0.01, l1_w1=0.01, verbose=2).fit(X, y)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == est.n_iter_ + 1 == 4  # one line per epoch, then the summary
    epochs = lines[:-1]
    assert all("objective" in line and "l2_w0" in line and "l1_w1" in line and "l1_w0" not in line for line in epochs)
    assert "stopped: max_iter" in lines[-1]


@pytest.mark.parametrize("link", LINKS)
def test_adam_from_the_closed_form_start_does_not_end_worse(link):
    # Adam's first steps move every coordinate by about learning_rate whatever the gradient;
    # at the closed-form start that can raise the objective: the best epoch must be kept
    X, y = make_reduced_rank_regression(2000, 10, 20, 2, link=link, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = ESTIMATORS[link](solver="adam", dtype="float64", random_state=0).fit(X, y)
    objective = -(est.log_likelihood(X, y) + 0.5 * y.shape[1] * np.log(2 * np.pi))
    assert objective <= min(est.loss_curve_) + 1e-9


def test_verbose_one_shows_a_progress_bar_on_stderr(data, capsys):
    X, y = data["relu"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        RRReluRegressor(max_iter=3, tol=0.0, verbose=1).fit(X, y)
    captured = capsys.readouterr()
    # the bar on stderr, one summary line on stdout
    assert captured.out.strip().splitlines() == [
        "ReducedRankModule: 3 epoch(s), 3 update(s), final objective "
        + captured.out.split("final objective ")[1].split(",")[0]
        + ", stopped: max_iter"
    ]


# --------------------------------------------------------------------------- fixed parameters, warm start
def test_fixed_offset_stays_at_its_initial_value(data):
    X, y = data["linear"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = RRLinearRegressor(dtype="float64", solver="adam", init="random", max_iter=1, random_state=0)
        start.set_params(learning_rate=1e-300).fit(X, y)  # (practically) the random start itself
        est = RRLinearRegressor(
            dtype="float64",
            fixed_params=("o2", "noise_variance"),
            solver="adam",
            init="random",
            learning_rate=0.01,
            max_iter=20,
            random_state=0,
        ).fit(X, y)
    # the random start sets o2 = mean(y), v = var(y) (from the one-pass moments, so equal to
    # rounding); fixed, they are never updated
    np.testing.assert_allclose(est.o2_, y.mean(axis=0), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(est.noise_variance_, y.var(axis=0), rtol=1e-12)
    assert est.loss_curve_[-1] < est.loss_curve_[0]
    assert not np.allclose(est.w0_ @ est.w1_.T, start.w0_ @ start.w1_.T, rtol=0, atol=1e-3)
    assert all(p.requires_grad for p in est.module_.parameters())


@pytest.mark.parametrize("link", LINKS)
def test_warm_start_with_fixed_w0_keeps_the_subspace(data, link):
    X, y = data[link]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = ESTIMATORS[link](dtype="float64", random_state=0, max_iter=20).fit(X, y)
        w0_before, curve_before = est.w0_.copy(), list(est.loss_curve_)
        est.set_params(warm_start=True, fixed_params=("w0",), max_iter=10, solver="adam", learning_rate=0.05)
        est.fit(X, y)
    assert est.solver_ == "adam"
    assert est.loss_curve_ != curve_before
    assert np.max(subspace_angles(w0_before, est.w0_)) < 1e-8


def test_warm_start_needs_matching_shapes(data):
    X, y = data["sigmoid"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = RRSigmoidRegressor(max_iter=3, warm_start=True).fit(X, y)
        with pytest.raises(ValueError):
            est.fit(X[:, :4], y)
        with pytest.raises(ValueError, match="n_targets"):
            est.fit(X, y[:, :3])


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("link", LINKS)
@pytest.mark.parametrize(
    "params,name",
    [
        ({"n_components": 0}, "n_components"),
        ({"n_components": 7}, "n_components"),
        ({"n_components": 1.5}, "n_components"),
        ({"alpha": -1.0}, "alpha"),
        ({"l1_w0": -1.0}, "l1_w0"),
        ({"l2_w0": -0.1}, "l2_w0"),
        ({"l1_w1": -1.0}, "l1_w1"),
        ({"l2_w1": -1.0}, "l2_w1"),
        ({"min_var": -1e-3}, "min_var"),
        ({"solver": "sgd"}, "solver"),
        ({"init": "zeros"}, "init"),
        ({"fixed_params": ("w2",)}, "fixed_params"),
        ({"fixed_params": "w0"}, "fixed_params"),
        ({"max_iter": 0}, "max_iter"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": ((1, 0.01),)}, "learning_rate"),
        ({"learning_rate": "fast"}, "learning_rate"),
        ({"batch_size": 0}, "batch_size"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"tol": -1.0}, "tol"),
        ({"n_iter_no_change": 0}, "n_iter_no_change"),
        ({"dtype": "float16"}, "dtype"),
        ({"device": "gpu"}, "device"),
        ({"random_state": "seed"}, "random_state"),
    ],
)
def test_invalid_parameters_raise_naming_them(data, link, params, name):
    X, y = data[link]
    with pytest.raises(ValueError, match=name):
        ESTIMATORS[link](**params).fit(X, y)


@pytest.mark.parametrize("link,name", [("linear", "o1"), ("linear", "g"), ("exp", "o1"), ("relu", "g")])
def test_fixed_params_must_belong_to_the_link(data, link, name):
    X, y = data[link]
    with pytest.raises(ValueError, match="fixed_params"):
        ESTIMATORS[link](fixed_params=(name,), solver="lbfgs").fit(X, y)


@pytest.mark.parametrize("link", ["sigmoid", "exp", "relu"])
def test_closed_form_solver_needs_the_linear_link(data, link):
    X, y = data[link]
    with pytest.raises(ValueError, match="solver"):
        ESTIMATORS[link](solver="closed_form").fit(X, y)


@pytest.mark.parametrize("kwargs", [{"l2_w0": 0.1}, {"l1_w1": 0.1}, {"fixed_params": ("w0",)}])
def test_closed_form_solver_refuses_penalties_and_fixed_params(data, kwargs):
    X, y = data["linear"]
    with pytest.raises(ValueError, match="closed_form"):
        RRLinearRegressor(solver="closed_form", **kwargs).fit(X, y)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("link", LINKS)
def test_unavailable_device_raises(data, link):
    X, y = data[link]
    with pytest.raises(ValueError, match="device"):
        ESTIMATORS[link](device="cuda:0").fit(X, y)


def _bad_inputs(X, y):
    X_nan, X_inf, y_nan, y_inf = X.copy(), X.copy(), y.copy(), y.copy()
    X_nan[3, 1], X_inf[0, 0], y_nan[5, 2], y_inf[1, 0] = np.nan, np.inf, np.nan, -np.inf
    return {
        "X NaN": (X_nan, y),
        "X inf": (X_inf, y),
        "y NaN": (X, y_nan),
        "y inf": (X, y_inf),
        "X 3-D": (X[:, :, None], y),
        "X 1-D": (X[:, 0], y),
        "y 3-D": (X, y[:, :, None]),
        "rows": (X, y[:-1]),
        "one sample": (X[:1], y[:1]),
        "no features": (X[:, :0], y),
    }


@pytest.mark.parametrize("link", LINKS)
@pytest.mark.parametrize("case", list(_bad_inputs(np.zeros((8, 3)), np.zeros((8, 3)))))
def test_bad_training_data_raise(data, link, case):
    X, y = data[link]
    bad_X, bad_y = _bad_inputs(X, y)[case]
    with pytest.raises(ValueError):
        ESTIMATORS[link]().fit(bad_X, bad_y)


@pytest.mark.parametrize("link", LINKS)
def test_bad_prediction_data_raise(fitted, data, link):
    est = fitted[link, "float32"]
    X, y = data[link]
    X_nan = X.copy()
    X_nan[2, 2] = np.nan
    for method in ("predict", "transform", "latent_rep", "sample"):
        with pytest.raises(ValueError, match="features"):
            getattr(est, method)(X[:, :5])
        with pytest.raises(ValueError, match="NaN"):
            getattr(est, method)(X_nan)
        with pytest.raises(ValueError):
            getattr(est, method)(X[:, :, None])
        with pytest.raises(NotFittedError):
            getattr(ESTIMATORS[link](), method)(X)
    with pytest.raises(ValueError, match="y"):
        est.log_likelihood(X, y[:, :3])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_log_likelihood_rejects_non_finite_targets(fitted, data, bad):
    est = fitted["linear", "float64"]
    X, y = data["linear"]
    y = y.copy()
    y[0, 0] = bad
    with pytest.raises(ValueError):
        est.log_likelihood(X, y)


# --------------------------------------------------------------------------- inputs untouched
@pytest.mark.parametrize("link", LINKS)
def test_inputs_are_never_modified(data, link):
    X, y = data[link]
    X_in, y_in = X.copy(), y.copy()
    fixed = ("w0",)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = ESTIMATORS[link](random_state=0, max_iter=10, fixed_params=fixed, solver="adam").fit(X_in, y_in)
        other = ESTIMATORS[link](random_state=1, max_iter=10).fit(X_in, y_in)
    est_copy = copy.deepcopy(est)
    p_mat, mean_input, values = np.eye(2), X[0].copy(), np.ones((4, 2))
    p_copy, m_copy, v_copy = p_mat.copy(), mean_input.copy(), values.copy()
    est.predict(X_in), est.transform(X_in), est.latent_rep(X_in), est.sample(X_in, random_state=0)
    est.score(X_in, y_in), est.log_likelihood(X_in, y_in), est.vary_latents(p_mat, mean_input, values)
    est.align_signs(other)
    assert np.array_equal(X_in, X) and np.array_equal(y_in, y)
    assert np.array_equal(p_mat, p_copy) and np.array_equal(mean_input, m_copy) and np.array_equal(values, v_copy)
    assert est.fixed_params == fixed
    for name in ("w0_", "w1_", "o2_", "noise_variance_"):
        assert np.array_equal(getattr(est, name), getattr(est_copy, name))
    for (name, a), (_, b) in zip(est.module_.state_dict().items(), est_copy.module_.state_dict().items()):
        assert torch.equal(a, b), name
    # fitting on float32 or Fortran-ordered input copies as well
    X32, yF = X.astype(np.float32), np.asfortranarray(y)
    X32_copy, yF_copy = X32.copy(), yF.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ESTIMATORS[link](max_iter=5).fit(X32, yF)
    assert np.array_equal(X32, X32_copy) and np.array_equal(yF, yF_copy)


def test_keyboard_interrupt_leaves_a_usable_estimator(data, monkeypatch):
    X, y = data["sigmoid"]
    original = ReducedRankModule.neg_log_likelihood
    calls = {"n": 0}

    def interrupted(self, mean, Y):
        if Y.shape[0] == 100:  # the engine's minibatches (300 rows, 3 per epoch)
            calls["n"] += 1
            if calls["n"] == 10:  # first minibatch of epoch 4: Ctrl-C
                raise KeyboardInterrupt
        return original(self, mean, Y)

    monkeypatch.setattr(ReducedRankModule, "neg_log_likelihood", interrupted)
    with pytest.warns(UserWarning, match="interrupted"):
        est = RRSigmoidRegressor(batch_size=100, random_state=0, max_iter=50).fit(X, y)
    assert est.solver_ == "adam" and est.n_iter_ == 3 and len(est.loss_curve_) == 3 and est.n_updates_ == 9
    for name in ("w0_", "w1_", "o1_", "o2_", "g_", "noise_variance_"):
        assert np.all(np.isfinite(getattr(est, name)))
    assert est.score(X, y) > 0.5
    np.testing.assert_allclose(est.predict(X), _equation(est, "sigmoid", X), rtol=1e-12)


def test_module_is_a_reduced_rank_module(fitted):
    est = fitted["relu", "float64"]
    assert isinstance(est.module_, ReducedRankModule) and est.module_.link == "relu"


# --------------------------------------------------------------------------- failed fits leave no half state
def test_a_failed_first_fit_leaves_the_estimator_unfitted(data):
    from sklearn.exceptions import NotFittedError

    X, y = data["linear"]
    est = RRLinearRegressor(n_components=50)
    with pytest.raises(ValueError, match="n_components"):
        est.fit(X, y)
    with pytest.raises(NotFittedError):
        est.predict(X)


def test_a_failed_refit_keeps_the_previous_fit(data):
    X, y = data["sigmoid"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = RRSigmoidRegressor(max_iter=5, random_state=0).fit(X, y)
    before = {
        name: np.copy(getattr(est, name))
        for name in ("w0_", "w1_", "o1_", "o2_", "g_", "noise_variance_", "var_floor_")
    }
    prediction = est.predict(X)
    with pytest.raises(ValueError, match="init"):
        est.set_params(init="bogus").fit(X, y[:, 0])
    for name, value in before.items():
        np.testing.assert_array_equal(getattr(est, name), value)
    np.testing.assert_array_equal(est.predict(X), prediction)


def test_fixed_params_are_released_when_training_raises(data, monkeypatch):
    import skneuro.reduced_rank._estimators as estimators

    X, y = data["linear"]
    est = RRLinearRegressor(solver="lbfgs", max_iter=3, random_state=0).fit(X, y)

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(estimators, "fit_module", broken)
    with pytest.raises(RuntimeError, match="boom"):
        est.set_params(warm_start=True, fixed_params=("w0",)).fit(X, y)
    assert est.module_.w0.requires_grad

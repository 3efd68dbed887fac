"""One test per behaviour of the original code that skneuro changes (spec §4, B1–B13).

Each test fails on the original behaviour it names.
"""

import copy
import warnings

import matplotlib
import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from torch import nn

from skneuro._engine import fit_module
from skneuro.datasets import make_reduced_rank_regression
from skneuro.reduced_rank import RRExpRegressor, RRLinearRegressor, RRReluRegressor, RRSigmoidRegressor

ESTIMATORS = {
    "linear": RRLinearRegressor,
    "sigmoid": RRSigmoidRegressor,
    "exp": RRExpRegressor,
    "relu": RRReluRegressor,
}
LINKS = list(ESTIMATORS)


def _link(link, a):
    if link == "sigmoid":
        return 1.0 / (1.0 + np.exp(-a))
    if link == "exp":
        return np.where(a <= 20, np.exp(np.minimum(a, 20)), np.exp(20.0) * (1 + a - 20))
    if link == "relu":
        return np.maximum(a, 0.0)
    return a


def _true_mean(params, link, X):
    pre = X @ params["w0"] @ params["w1"].T + params.get("o1", 0.0)
    return params.get("g", 1.0) * _link(link, pre) + params["o2"]


def _quiet(fit):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit()


class _GradRecorder(nn.Module):
    """Holds a ReducedRankModule; its pert_grads hook records the accumulated gradient."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.grads = []

    def pert_grads(self, generator):
        self.grads.append(torch.cat([p.grad.flatten().clone() for p in self.inner.parameters()]))

    def bound(self):
        pass


def _nll_sum(wrapper, X, Y):
    m = wrapper.inner
    return m.neg_log_likelihood(m(X), Y).sum()


# B1: chunks were [0:s], [0:2s], ... so early samples counted several times.
@pytest.mark.parametrize("link", LINKS)
def test_b1_chunked_gradient_and_fit_equal_unchunked(link):
    X, y = make_reduced_rank_regression(300, 6, 5, 2, link=link, random_state=0)
    est = _quiet(lambda: ESTIMATORS[link](random_state=0, max_iter=5).fit(X, y))  # float32 module
    grads = {}
    for chunk in (None, 3):
        wrapper = _GradRecorder(copy.deepcopy(est.module_))
        data = (torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32))
        fit_module(wrapper, _nll_sum, data, max_iter=1, chunk_size=chunk, warn_not_converged=False)
        grads[chunk] = wrapper.grads[0]
    scale = grads[None].abs().max().item() + 1e-12
    assert (grads[3] - grads[None]).abs().max().item() < 1e-6 * max(scale, 1.0)
    # whole fits (the default solver) agree to rounding in float64
    fits = [
        _quiet(
            lambda c=c: ESTIMATORS[link](
                random_state=0,
                max_iter=20,
                dtype="float64",
                chunk_size=c,
                solver="lbfgs" if link == "linear" else "auto",
            ).fit(X, y)
        )
        for c in (None, 3)
    ]
    np.testing.assert_allclose(fits[1].loss_curve_, fits[0].loss_curve_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(fits[1].predict(X), fits[0].predict(X), rtol=0, atol=1e-9)


# B2: flooring v wrote v[0] as well whenever any target hit the floor.
@pytest.mark.parametrize("link", LINKS)
def test_b2_noiseless_last_target_leaves_the_first_variance_alone(link):
    X, y, params = make_reduced_rank_regression(400, 6, 5, 2, link=link, random_state=1, return_params=True)
    y[:, -1] = _true_mean(params, link, X)[:, -1]
    est = _quiet(lambda: ESTIMATORS[link](random_state=0, dtype="float64", max_iter=300).fit(X, y))
    resid = y - est.predict(X)
    np.testing.assert_allclose(est.noise_variance_[0], np.mean(resid[:, 0] ** 2), rtol=1e-3)
    assert est.noise_variance_[0] > 100 * est.var_floor_[0]
    np.testing.assert_allclose(est.noise_variance_[-1], est.var_floor_[-1], rtol=1e-3)


# B3: with min_var = 0 Adam pushed v below 0, the clamp set 0 and log(0) gave NaN.
@pytest.mark.parametrize("link", LINKS)
@pytest.mark.parametrize("solver", ["adam", "auto"])
def test_b3_zero_min_var_on_a_noiseless_target_stays_finite(link, solver):
    X, y, params = make_reduced_rank_regression(300, 6, 4, 2, link=link, random_state=2, return_params=True)
    y[:, 1] = _true_mean(params, link, X)[:, 1]
    if solver == "auto" and link != "linear":
        solver = "adam"  # L-BFGS is covered by the linear case (closed form) and the engine tests
    est = _quiet(lambda: ESTIMATORS[link](min_var=0.0, solver=solver, max_iter=50, random_state=0).fit(X, y))
    assert len(est.loss_curve_) >= 1
    assert np.all(np.isfinite(est.loss_curve_))
    assert np.all(np.isfinite(est.noise_variance_)) and np.all(est.noise_variance_ > 0)
    assert np.all(np.isfinite(est.predict(X)))
    assert np.all(est.var_floor_ == 0.0)


# B4: learning rates became numpy arrays (Adam raised TypeError); tuples and np.float32 were rejected.
@pytest.mark.parametrize("link", LINKS)
def test_b4_learning_rate_forms_fit(link):
    X, y = make_reduced_rank_regression(200, 5, 4, 2, link=link, random_state=0)
    fits = {}
    for name, lr in (("float", 0.01), ("pairs", ((0, 0.01),)), ("list", [[0, 0.01]]), ("np.float32", np.float32(0.01))):
        fits[name] = _quiet(
            lambda lr=lr: ESTIMATORS[link](solver="adam", learning_rate=lr, max_iter=5, random_state=0).fit(X, y)
        )
        assert fits[name].n_updates_ == 5
    assert np.array_equal(fits["pairs"].predict(X), fits["float"].predict(X))
    assert np.array_equal(fits["list"].predict(X), fits["float"].predict(X))


# B5: `lr` in adam_params raised TypeError; skneuro has one learning_rate, and Adam uses it.
def test_b5_learning_rate_reaches_adam():
    X, y = make_reduced_rank_regression(200, 5, 4, 2, link="relu", random_state=0)
    assert "adam_params" not in RRReluRegressor().get_params()
    # from a random start, so that the step is kept (full-batch Adam keeps its best epoch)
    est = _quiet(
        lambda: RRReluRegressor(dtype="float64", init="random", solver="adam", max_iter=1, random_state=0).fit(X, y)
    )
    o2_before = est.o2_.copy()
    est.set_params(warm_start=True, solver="adam", learning_rate=0.05, max_iter=1)
    _quiet(lambda: est.fit(X, y))
    # Adam's first step moves every coordinate by lr * g / (|g| + eps); o2 is not touched by the standard form
    step = np.abs(est.o2_ - o2_before)
    assert np.all(step <= 0.05 * (1 + 1e-12)) and step.max() > 0.049  # not the default 0.01


# B6: k >= n_targets took a full-SVD branch (errors, broken shapes, or k silently lowered).
@pytest.mark.parametrize("link", LINKS)
def test_b6_more_components_than_targets(link):
    X, y = make_reduced_rank_regression(200, 8, 3, 2, link=link, random_state=0)
    est = _quiet(lambda: ESTIMATORS[link](n_components=5, random_state=0, max_iter=30).fit(X, y))
    assert est.w0_.shape == (8, 5) and est.w1_.shape == (3, 5)
    assert not est.w0_[:, 3:].any() and not est.w1_[:, 3:].any()
    latents = est.transform(X)
    assert latents.shape == (200, 5) and not latents[:, 3:].any()
    assert est.module_.w0.shape == (8, 5)
    if link == "linear":  # k >= min(d, p): the full-rank least squares, as with k = 3
        full = RRLinearRegressor(n_components=3).fit(X, y)
        np.testing.assert_allclose(est.predict(X), full.predict(X), rtol=0, atol=1e-10)


def test_b6_more_components_than_features_and_targets_is_refused():
    X, y = make_reduced_rank_regression(50, 3, 2, 1, random_state=0)
    with pytest.raises(ValueError, match="n_components"):
        RRLinearRegressor(n_components=4).fit(X, y)


# B7: in-place writes on grad-requiring Parameters raised RuntimeError.
@pytest.mark.parametrize("link", LINKS)
def test_b7_align_signs_undoes_a_negated_column(link):
    X, y = make_reduced_rank_regression(200, 5, 4, 2, link=link, random_state=0)
    est = _quiet(lambda: ESTIMATORS[link](random_state=0, max_iter=20, dtype="float64").fit(X, y))
    flipped = copy.deepcopy(est)
    flipped.w0_ = est.w0_ * [1.0, -1.0]
    flipped.w1_ = est.w1_ * [1.0, -1.0]
    with torch.no_grad():
        flipped.module_.w0.mul_(torch.tensor([1.0, -1.0], dtype=torch.float64))
        flipped.module_.w1.mul_(torch.tensor([1.0, -1.0], dtype=torch.float64))
    snapshot = {name: getattr(flipped, name).copy() for name in ("w0_", "w1_")}
    est_w0 = est.w0_.copy()

    aligned = flipped.align_signs(est)
    np.testing.assert_array_equal(aligned.w0_, est.w0_)
    np.testing.assert_array_equal(aligned.w1_, est.w1_)
    assert torch.equal(aligned.module_.w0, est.module_.w0) and torch.equal(aligned.module_.w1, est.module_.w1)
    np.testing.assert_allclose(aligned.predict(X), est.predict(X), rtol=0, atol=1e-12)
    # neither input changed
    for name, value in snapshot.items():
        np.testing.assert_array_equal(getattr(flipped, name), value)
    assert flipped.module_.w1[0, 1].item() == -est.module_.w1[0, 1].item()
    np.testing.assert_array_equal(est.w0_, est_w0)
    assert aligned is not flipped and aligned.module_ is not flipped.module_


def test_b7_align_signs_of_two_fits_picks_the_closer_sign():
    X, y = make_reduced_rank_regression(600, 5, 4, 2, random_state=0)
    first = RRLinearRegressor().fit(X[:300], y[:300])
    second = RRLinearRegressor().fit(X[300:], y[300:])
    second.w0_, second.w1_ = -second.w0_, -second.w1_
    aligned = second.align_signs(first)
    for c in range(2):
        keep = np.sum((aligned.w0_[:, c] - first.w0_[:, c]) ** 2) + np.sum((aligned.w1_[:, c] - first.w1_[:, c]) ** 2)
        flip = np.sum((aligned.w0_[:, c] + first.w0_[:, c]) ** 2) + np.sum((aligned.w1_[:, c] + first.w1_[:, c]) ** 2)
        assert keep < flip
    np.testing.assert_allclose(aligned.predict(X), second.predict(X), rtol=0, atol=1e-12)


# B8: the default plot_vars=2 was used as a sequence: TypeError whenever x was given.
@pytest.mark.parametrize("link", ["linear", "sigmoid"])
def test_b8_compare_reduced_rank_with_x_and_default_targets(link):
    from matplotlib.figure import Figure

    from skneuro.plotting import compare_reduced_rank

    X, y = make_reduced_rank_regression(300, 5, 4, 2, link=link, random_state=0)
    first = _quiet(lambda: ESTIMATORS[link](random_state=0, max_iter=10).fit(X[:150], y[:150]))
    second = _quiet(lambda: ESTIMATORS[link](random_state=0, max_iter=10).fit(X[150:], y[150:]))
    w0_before = second.w0_.copy()
    fig = compare_reduced_rank(first, second, X=X)
    try:
        assert isinstance(fig, Figure)
        n_vectors = 4 if link == "sigmoid" else 2  # g, o2, o1, v / o2, v
        assert fig.axes[0].get_gridspec().nrows == n_vectors + 3
        visible_prediction_axes = [ax for ax in fig.axes if ax.get_visible() and ax.get_title().startswith("target")]
        assert [ax.get_title() for ax in visible_prediction_axes] == ["target 0", "target 1"]
        np.testing.assert_array_equal(second.w0_, w0_before)
    finally:
        matplotlib.pyplot.close(fig)
    fig = compare_reduced_rank(first, second)
    assert fig.axes[0].get_gridspec().nrows == n_vectors + 2
    matplotlib.pyplot.close(fig)
    fig = compare_reduced_rank(first, second, X=X, targets=[3])
    assert [ax.get_title() for ax in fig.axes if ax.get_visible() and ax.get_title().startswith("target")] == [
        "target 3"
    ]
    matplotlib.pyplot.close(fig)


def test_b8_compare_reduced_rank_with_a_single_target():
    from skneuro.plotting import compare_reduced_rank

    X, y = make_reduced_rank_regression(200, 4, 1, 1, random_state=0)
    first = RRLinearRegressor(n_components=1).fit(X[:100], y[:100, 0])
    second = RRLinearRegressor(n_components=1).fit(X[100:], y[100:, 0])
    fig = compare_reduced_rank(first, second, X=X)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible() and ax.get_title().startswith("target")]
    assert titles == ["target 0"]
    matplotlib.pyplot.close(fig)


# B9: the documented latent values (n, d_vary) failed; the code needed (d_vary, n).
@pytest.mark.parametrize("link", LINKS)
def test_b9_vary_latents_takes_points_by_rows(link):
    X, y = make_reduced_rank_regression(300, 6, 5, 3, link=link, random_state=0)
    est = _quiet(lambda: ESTIMATORS[link](n_components=3, random_state=0, max_iter=30, dtype="float64").fit(X, y))
    rng = np.random.default_rng(0)
    p_mat, _ = np.linalg.qr(rng.normal(size=(3, 2)))  # (k, m) orthonormal
    x_bar = X.mean(axis=0)
    # inputs that differ from x̄ only inside the varied subspace of the latents
    directions = p_mat.T @ np.linalg.pinv(est.w0_)  # (m, d): directions @ w0_ = p_matᵀ
    coefficients = rng.normal(size=(7, 2))
    inputs = x_bar + coefficients @ directions
    latent_values = est.transform(inputs) @ p_mat  # (n_pts, m)
    mean, w0_proj, w1_proj = est.vary_latents(p_mat, x_bar, latent_values)
    assert mean.shape == (7, 5) and w0_proj.shape == (6, 2) and w1_proj.shape == (5, 2)
    np.testing.assert_allclose(w0_proj, est.w0_ @ p_mat, rtol=1e-14)
    np.testing.assert_allclose(w1_proj, est.w1_ @ p_mat, rtol=1e-14)
    np.testing.assert_allclose(mean, est.predict(inputs), rtol=1e-10, atol=1e-10)


# B10: latent_rep existed only for exp, vary_latents only for relu.
@pytest.mark.parametrize("link", LINKS)
def test_b10_latent_rep_and_vary_latents_for_every_link(link):
    X, y = make_reduced_rank_regression(200, 5, 4, 2, link=link, random_state=0)
    est = _quiet(lambda: ESTIMATORS[link](random_state=0, max_iter=20).fit(X, y))
    via_vary = est.vary_latents(np.eye(2), X.mean(axis=0), est.transform(X))[0]
    np.testing.assert_allclose(via_vary, est.predict(X), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(est.latent_rep(X)[0], est.predict(X))


# B11: max_its = 0 raised UnboundLocalError.
@pytest.mark.parametrize("link", LINKS)
def test_b11_max_iter_zero_is_a_clear_error(link):
    X, y = make_reduced_rank_regression(50, 4, 3, 1, link=link, random_state=0)
    with pytest.raises(ValueError, match="max_iter"):
        ESTIMATORS[link](max_iter=0).fit(X, y)


# B12: minibatches from the global numpy RNG, samples from the global torch RNG.
@pytest.mark.parametrize("link", LINKS)
def test_b12_same_seed_same_fit_and_samples_global_rng_untouched(link):
    X, y = make_reduced_rank_regression(200, 5, 4, 2, link=link, random_state=0)
    kwargs = dict(init="random", solver="adam", batch_size=32, max_iter=5)
    np.random.seed(123)
    torch.manual_seed(123)
    np_state, torch_state = np.random.get_state(), torch.get_rng_state().clone()
    a = _quiet(lambda: ESTIMATORS[link](random_state=7, **kwargs).fit(X, y))
    b = _quiet(lambda: ESTIMATORS[link](random_state=7, **kwargs).fit(X, y))
    c = _quiet(lambda: ESTIMATORS[link](random_state=8, **kwargs).fit(X, y))
    samples = [a.sample(X, random_state=1), b.sample(X, random_state=1)]
    _quiet(lambda: ESTIMATORS[link](**kwargs).fit(X, y))  # random_state=None draws fresh entropy
    now = np.random.get_state()
    assert np.array_equal(np_state[1], now[1]) and np_state[2:] == now[2:]
    assert torch.equal(torch_state, torch.get_rng_state())
    assert a.loss_curve_ == b.loss_curve_
    for name in ("w0_", "w1_", "o2_", "noise_variance_"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.w0_, c.w0_)
    assert np.array_equal(samples[0], samples[1])


# B13: exp init ignored the data (g=10, v=1, o2=0); relu init (o2 = min y, o1 = 0, random w) left dead units.
@pytest.mark.parametrize("link", ["exp", "relu"])
def test_b13_initialisation_uses_the_data(link):
    # (the full check is the recovery test; here: no dead relu unit, exp starts near the data)
    X, y, params = make_reduced_rank_regression(2000, 6, 8, 2, link=link, random_state=3, return_params=True)
    est = _quiet(lambda: ESTIMATORS[link](random_state=0, max_iter=1).fit(X, y))
    if link == "relu":
        active = (est.latent_rep(X)[2] > 0).mean(axis=0)
        assert np.all(active > 0.05)
    else:
        assert not np.allclose(est.g_, 10.0) and not np.allclose(est.noise_variance_, 1.0)
    resid_var = np.mean((y - est.predict(X)) ** 2, axis=0)
    np.testing.assert_allclose(resid_var, params["noise_variance"], rtol=0.15)

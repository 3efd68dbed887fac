"""SumOfBumpsRegressor: recovery, prediction formula, equivariance, options and errors (spec §3, §5)."""

import pickle
import tracemalloc

import numpy as np
import pytest
import torch
from sklearn.metrics import r2_score

from skneuro.bumps import SlowSumOfBumpFcns, SumOfBumpFcns, SumOfBumpsRegressor

BUMP_CENTER = np.array([0.4, 0.6])
BUMP_WIDTH = np.array([0.2, 0.15])
BUMP_MAGNITUDE = 1.5


def _one_bump(n=1000, seed=0, noise=0.0, offset=0.0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(n, 2))
    y = offset + BUMP_MAGNITUDE * np.exp(-(((X - BUMP_CENTER) / BUMP_WIDTH) ** 2).sum(1))
    return X, y + noise * rng.normal(size=n)


def _formula(X, centers, widths, magnitudes, intercept, support_p=None):
    """β + Σ_b m_b exp(−Σ_d ((x_d − c_bd)/w_bd)²), written independently of the package."""
    scaled = (X[:, None, :] - centers[None]) / widths[None]
    phi = np.exp(-(scaled**2).sum(-1))
    if support_p is not None:
        phi = phi * (np.abs(scaled) < np.sqrt(-np.log(support_p))).all(-1)
    return phi @ magnitudes + intercept


# ----------------------------------------------------------------- recovery
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_single_bump_recovery(fit_intercept):
    X, y = _one_bump()
    model = SumOfBumpsRegressor(n_bumps=1, fit_intercept=fit_intercept, random_state=0).fit(X, y)
    np.testing.assert_allclose(model.centers_[0], BUMP_CENTER, atol=1e-2)
    np.testing.assert_allclose(model.widths_[0], BUMP_WIDTH, rtol=0.02)
    np.testing.assert_allclose(model.magnitudes_[0], BUMP_MAGNITUDE, rtol=0.02)
    assert abs(model.intercept_) < 0.01


def test_no_intercept_means_no_offset():
    """Before the fix, fit_intercept=False still added the mean of y (intercept_ = 0.127 here)."""
    X, y = _one_bump()
    model = SumOfBumpsRegressor(n_bumps=1, fit_intercept=False, max_iter=5, random_state=0).fit(X, y)
    assert model.intercept_ == 0.0
    np.testing.assert_array_equal(model.y_mean_, [0.0])
    far = np.array([[50.0, 50.0]])  # every bump is ~0 here: the prediction is the intercept
    assert model.predict(far)[0] == pytest.approx(0.0, abs=1e-12)
    with_offset = SumOfBumpsRegressor(n_bumps=1, max_iter=5, random_state=0).fit(X, y + 3.0)
    assert with_offset.predict(far)[0] == pytest.approx(with_offset.intercept_)


def test_field_reaches_the_ceiling(field_data):
    X_train, y_train, X_test, y_test, truth = field_data
    ceiling = r2_score(y_test, truth)
    assert 0.83 < ceiling < 0.85
    model = SumOfBumpsRegressor(random_state=0).fit(X_train, y_train)
    assert model.score(X_test, y_test) >= ceiling - 0.02


# --------------------------------------------------------------- prediction
@pytest.mark.parametrize("support_p", [None, 0.01])
@pytest.mark.parametrize("multioutput", [False, True])
def test_predict_equals_the_formula_and_the_module(support_p, multioutput):
    X, y = _one_bump(n=400, noise=0.05)
    if multioutput:
        y = np.column_stack([y, -2 * y + 1])
    model = SumOfBumpsRegressor(n_bumps=3, support_p=support_p, max_iter=30, random_state=0).fit(X, y)
    X_new = np.random.default_rng(1).uniform(-0.2, 1.2, size=(300, 2))
    prediction = model.predict(X_new)
    expected = _formula(X_new, model.centers_, model.widths_, model.magnitudes_, model.intercept_, support_p)
    np.testing.assert_allclose(prediction, expected, rtol=1e-12, atol=1e-12)
    # the trained float32 module, on the standardised scale, agrees
    with torch.no_grad():
        out = model.module_(torch.as_tensor((X_new - model.x_mean_) / model.x_scale_, dtype=torch.float32))
    module_prediction = out.double().numpy() * model.y_scale_.reshape(
        -1 if multioutput else ()
    ) + model.y_mean_.reshape(-1 if multioutput else ())
    if not multioutput:
        module_prediction = module_prediction.reshape(-1)
    np.testing.assert_allclose(prediction, module_prediction, rtol=1e-5, atol=1e-5 * np.abs(y).max())
    phi = model.bump_activations(X_new)
    assert phi.shape == (300, 3) and phi.dtype == np.float64
    np.testing.assert_allclose(phi @ model.magnitudes_ + model.intercept_, prediction, rtol=1e-12, atol=1e-12)


def test_equivariance_to_affine_input_units():
    X, y = _one_bump(n=500, noise=0.05)
    base = SumOfBumpsRegressor(n_bumps=3, max_iter=50, random_state=0).fit(X, y)
    moved = SumOfBumpsRegressor(n_bumps=3, max_iter=50, random_state=0).fit(X * 1000 + 5, y)
    np.testing.assert_allclose(moved.centers_, base.centers_ * 1000 + 5, rtol=1e-4)
    np.testing.assert_allclose(moved.widths_, base.widths_ * 1000, rtol=1e-4)
    X_new = np.random.default_rng(2).uniform(size=(100, 2))
    np.testing.assert_allclose(moved.predict(X_new * 1000 + 5), base.predict(X_new), rtol=1e-4, atol=1e-6)


def test_target_scale_equivariance():
    X, y = _one_bump(n=500, noise=0.05)
    base = SumOfBumpsRegressor(n_bumps=2, max_iter=40, random_state=0).fit(X, y)
    scaled = SumOfBumpsRegressor(n_bumps=2, max_iter=40, random_state=0).fit(X, 100 * y - 7)
    np.testing.assert_allclose(scaled.magnitudes_, 100 * base.magnitudes_, rtol=1e-4)
    np.testing.assert_allclose(scaled.intercept_, 100 * base.intercept_ - 7, rtol=1e-4)


@pytest.mark.parametrize("n_targets", [None, 1, 3])
def test_multioutput_shapes(n_targets):
    X, y = _one_bump(n=200, noise=0.05)
    if n_targets is not None:
        y = np.column_stack([y * (k + 1) for k in range(n_targets)])
    model = SumOfBumpsRegressor(n_bumps=4, max_iter=10, random_state=0).fit(X, y)
    assert model.centers_.shape == model.widths_.shape == (4, 2)
    assert np.all(model.widths_ > 0)
    if n_targets is None:
        assert model.magnitudes_.shape == (4,) and isinstance(model.intercept_, float)
        assert model.predict(X).shape == (200,)
    else:
        assert model.magnitudes_.shape == (4, n_targets) and model.intercept_.shape == (n_targets,)
        assert model.predict(X).shape == (200, n_targets)
    assert model.bump_activations(X).shape == (200, 4)
    for name in ("centers_", "widths_", "magnitudes_", "x_mean_", "x_scale_", "y_mean_", "y_scale_"):
        assert getattr(model, name).dtype == np.float64
    assert model.predict(X.astype(np.float32)).dtype == np.float64


def test_canonical_order_and_module_agree():
    X, y = _one_bump(n=400, noise=0.05)
    y = y - 0.7 * np.exp(-(((X - [0.8, 0.2]) / 0.1) ** 2).sum(1))
    model = SumOfBumpsRegressor(n_bumps=4, max_iter=40, random_state=0).fit(X, y)
    norms = np.abs(model.magnitudes_)
    assert np.all(np.diff(norms) <= 0)
    bumps = model.module_.bumps
    np.testing.assert_allclose(
        model.x_mean_ + model.x_scale_ * bumps.c.detach().double().numpy(), model.centers_, rtol=1e-12
    )
    np.testing.assert_allclose(model.y_scale_[0] * bumps.m.detach().double().numpy(), model.magnitudes_, rtol=1e-12)


# ------------------------------------------------------- persistence, seeds
def test_pickle_round_trip():
    X, y = _one_bump(n=300, noise=0.05)
    model = SumOfBumpsRegressor(n_bumps=3, max_iter=20, random_state=0).fit(X, y)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict(X), model.predict(X))
    for name in ("centers_", "widths_", "magnitudes_", "x_mean_", "x_scale_", "y_mean_", "y_scale_", "loss_curve_"):
        np.testing.assert_array_equal(getattr(restored, name), getattr(model, name))
    assert restored.intercept_ == model.intercept_ and restored.n_updates_ == model.n_updates_
    for key, value in model.module_.state_dict().items():
        assert torch.equal(restored.module_.state_dict()[key], value)


def test_same_seed_identical_attributes():
    X, y = _one_bump(n=300, noise=0.05)
    fits = [SumOfBumpsRegressor(n_bumps=4, max_iter=20, random_state=7).fit(X, y) for _ in range(2)]
    for name in ("centers_", "widths_", "magnitudes_", "intercept_", "loss_curve_", "n_iter_", "n_updates_"):
        np.testing.assert_array_equal(getattr(fits[0], name), getattr(fits[1], name))


def test_slow_implementation_fits_the_same_model():
    X, y = _one_bump(n=300, noise=0.05)
    fits = [
        SumOfBumpsRegressor(
            n_bumps=3, implementation=impl, dtype="float64", support_p=0.01, max_iter=30, random_state=0
        ).fit(X, y)
        for impl in ("fast", "slow")
    ]
    assert isinstance(fits[0].module_.bumps, SumOfBumpFcns)
    assert isinstance(fits[1].module_.bumps, SlowSumOfBumpFcns)
    for name in ("centers_", "widths_", "magnitudes_", "intercept_"):
        np.testing.assert_allclose(getattr(fits[1], name), getattr(fits[0], name), rtol=1e-9, atol=1e-9)


def test_warm_start_continues():
    X, y = _one_bump(n=300, noise=0.05)
    model = SumOfBumpsRegressor(n_bumps=2, max_iter=10, warm_start=True, random_state=0).fit(X, y)
    first_loss = model.loss_curve_[-1]
    model.fit(X, y)
    assert model.loss_curve_[0] <= first_loss + 1e-6


def test_sample_weight_zero_drops_rows():
    X, y = _one_bump(n=300, noise=0.05)
    weights = np.ones(300)
    y_bad = y.copy()
    y_bad[:50] = 100.0
    weights[:50] = 0.0
    model = SumOfBumpsRegressor(n_bumps=1, max_iter=200, random_state=0).fit(X, y_bad, sample_weight=weights)
    np.testing.assert_allclose(model.centers_[0], BUMP_CENTER, atol=0.03)


def test_inputs_are_not_modified():
    X, y = _one_bump(n=200, noise=0.05)
    X_copy, y_copy = X.copy(), y.copy()
    init = np.array([[0.3, 0.3], [0.6, 0.6]])
    init_copy = init.copy()
    SumOfBumpsRegressor(n_bumps=2, init=init, max_iter=5, random_state=0).fit(X, y)
    np.testing.assert_array_equal(X, X_copy)
    np.testing.assert_array_equal(y, y_copy)
    np.testing.assert_array_equal(init, init_copy)


# --------------------------------------------------------------------- init
def _initial(n_bumps=4, **kwargs):
    """The fitted attributes after a negligible optimisation: the initialisation."""
    X, y = _one_bump(n=300, noise=0.05)
    model = SumOfBumpsRegressor(n_bumps=n_bumps, max_iter=1, learning_rate=1e-12, random_state=0, **kwargs)
    return X, model.fit(X, y)


def _sorted_rows(a):
    return a[np.lexsort(a.T[::-1])]


def test_init_grid_is_cell_centred():
    _, model = _initial(init="grid", bounds=[[0.0, 0.0], [1.0, 1.0]])
    expected = [[0.25, 0.25], [0.25, 0.75], [0.75, 0.25], [0.75, 0.75]]
    np.testing.assert_allclose(_sorted_rows(model.centers_), expected, atol=1e-6)


def test_init_grid_draws_when_there_are_too_many_points():
    _, model = _initial(n_bumps=3, init="grid", bounds=[[0.0, 0.0], [1.0, 1.0]])
    grid = np.array([[0.25, 0.25], [0.25, 0.75], [0.75, 0.25], [0.75, 0.75]])
    distances = np.abs(model.centers_[:, None, :] - grid[None]).max(-1)
    assert np.all(distances.min(1) < 1e-6) and len({int(i) for i in distances.argmin(1)}) == 3


@pytest.mark.parametrize("init", ["random", "kmeans++"])
def test_init_from_training_rows(init):
    X, model = _initial(init=init)
    distances = np.abs(model.centers_[:, None, :] - X[None]).max(-1).min(1)
    assert np.all(distances < 1e-6)
    assert len(np.unique(model.centers_.round(6), axis=0)) == 4


def test_init_array_and_width_options():
    centers = np.array([[0.1, 0.2], [0.3, 0.9], [0.5, 0.5], [0.9, 0.1]])
    widths = np.array([[0.1, 0.2], [0.3, 0.1], [0.2, 0.2], [0.05, 0.4]])
    _, model = _initial(init=centers, width_init=widths)
    np.testing.assert_allclose(_sorted_rows(model.centers_), _sorted_rows(centers), atol=1e-6)
    order = np.lexsort(model.centers_.T[::-1])
    np.testing.assert_allclose(model.widths_[order], widths[np.lexsort(centers.T[::-1])], rtol=1e-6)
    _, model = _initial(width_init=0.5)
    np.testing.assert_allclose(model.widths_, np.tile(0.5 * model.x_scale_, (4, 1)), rtol=1e-6)
    _, model = _initial(n_bumps=1)
    np.testing.assert_allclose(model.widths_, model.x_scale_[None], rtol=1e-6)  # "auto" with one bump: 1 SD


def test_grid_init_with_many_features_never_builds_the_grid():
    """Before the fix the g^D grid was built: 2^20 x 20 floats here, 2^30 x 30 (OOM) in sklearn's checks."""
    rng = np.random.default_rng(0)
    X, y = rng.uniform(size=(40, 20)), rng.normal(size=40)
    SumOfBumpsRegressor(n_bumps=3, init="grid", max_iter=1).fit(X[:, :2], y)  # warm-up imports
    tracemalloc.start()
    try:
        model = SumOfBumpsRegressor(n_bumps=3, init="grid", max_iter=1, learning_rate=1e-12, random_state=0).fit(X, y)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5e6
    lo, hi = X.min(0), X.max(0)
    cell = (model.centers_ - lo) / (hi - lo) * 2 - 0.5  # grid cells 0 or 1 in every dimension
    np.testing.assert_allclose(cell, np.round(cell), atol=1e-5)
    assert len(np.unique(np.round(cell), axis=0)) == 3


def test_zero_weight_rows_do_not_set_the_center_bounds():
    """Default center bounds come from the rows present (weight > 0): weights equal repeated rows."""
    rng = np.random.default_rng(0)
    X, y = _one_bump(n=60, noise=0.05)
    weights = rng.integers(0, 4, size=60)
    X[np.flatnonzero(weights == 0)[0]] = [40.0, -40.0]  # an outlier that is left out
    params = {"n_bumps": 4, "init": "grid", "dtype": "float64", "max_iter": 20, "random_state": 0}
    weighted = SumOfBumpsRegressor(**params).fit(X, y, sample_weight=weights)
    repeated = SumOfBumpsRegressor(**params).fit(np.repeat(X, weights, axis=0), np.repeat(y, weights))
    assert np.all(weighted.centers_ >= -0.01) and np.all(weighted.centers_ <= 1.01)
    np.testing.assert_allclose(weighted.predict(X), repeated.predict(X), rtol=1e-6, atol=1e-6)


def test_every_init_fits():
    X, y = _one_bump(n=500, noise=0.05)
    for init in ("kmeans++", "grid", "random", np.array([[0.3, 0.5], [0.6, 0.6], [0.5, 0.2], [0.8, 0.8]])):
        model = SumOfBumpsRegressor(n_bumps=4, init=init, random_state=0).fit(X, y)
        assert model.score(X, y) > 0.95


# ------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "params,name",
    [
        ({"init": np.zeros((3, 2))}, "init"),
        ({"init": np.zeros((4, 3))}, "init"),
        ({"init": "nope"}, "init"),
        ({"width_init": 0.0}, "width_init"),
        ({"width_init": -1.0}, "width_init"),
        ({"width_init": np.full((4, 2), -0.1)}, "width_init"),
        ({"width_init": np.ones((4, 3))}, "width_init"),
        ({"bounds": np.zeros((3, 2))}, "bounds"),
        ({"bounds": [[1.0, 0.0], [0.0, 1.0]]}, "bounds"),
        ({"width_bounds": [[0.0, 0.1], [1.0, 1.0]]}, "width_bounds"),
        ({"width_bounds": [[0.5, 0.1], [0.2, 1.0]]}, "width_bounds"),
        ({"width_bounds": np.ones(2)}, "width_bounds"),
        ({"support_p": 0.0}, "support_p"),
        ({"support_p": 1.0}, "support_p"),
        ({"support_p": 2.0}, "support_p"),
        ({"c_grad_std": -1.0}, "c_grad_std"),
        ({"w_grad_std": -0.5}, "w_grad_std"),
        ({"n_bumps": 0}, "n_bumps"),
        ({"implementation": "medium"}, "implementation"),
        ({"solver": "lbfgs", "c_grad_std": 0.1}, "c_grad_std"),
        ({"solver": "lbfgs", "w_grad_std": 0.1}, "w_grad_std"),
        ({"solver": "lbfgs", "m_grad_gain": -0.1}, "m_grad_gain"),
    ],
)
def test_invalid_parameters_name_themselves(params, name):
    X, y = _one_bump(n=50)
    params = {"n_bumps": 4, **params}
    with pytest.raises(ValueError, match=name):
        SumOfBumpsRegressor(**params).fit(X, y)


def test_more_bumps_than_samples():
    X, y = _one_bump(n=5)
    with pytest.raises(ValueError, match=r"n_bumps.*n_samples=5"):
        SumOfBumpsRegressor(n_bumps=6).fit(X, y)


def test_predict_with_wrong_number_of_features():
    X, y = _one_bump(n=50)
    model = SumOfBumpsRegressor(n_bumps=2, max_iter=2).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        model.predict(np.zeros((3, 3)))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("where", ["X", "y"])
def test_non_finite_data_is_rejected(bad, where):
    X, y = _one_bump(n=50)
    if where == "X":
        X[3, 1] = bad
    else:
        y[3] = bad
    with pytest.raises(ValueError, match="NaN|infinity"):
        SumOfBumpsRegressor(n_bumps=2).fit(X, y)


def test_a_failed_refit_keeps_the_previous_standardisation():
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(200, 2))
    y = np.exp(-(((X - 0.5) / 0.2) ** 2).sum(1))
    est = SumOfBumpsRegressor(n_bumps=3, max_iter=5, random_state=0).fit(X, y)
    x_mean, centers = est.x_mean_.copy(), est.centers_.copy()
    with pytest.raises(ValueError, match="init"):
        est.set_params(init=np.zeros((2, 2))).fit(X * 1000, y)
    np.testing.assert_array_equal(est.x_mean_, x_mean)
    np.testing.assert_array_equal(est.centers_, centers)

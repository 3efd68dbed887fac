"""RateRNNRegressor: attributes, formulas by hand, constraints, recovery.

The contract shared with the other 3-D and list-input estimators (clone, params, pickling,
idempotent fit, not-fitted errors, bad shapes, NaN, model selection) is checked in
``tests/test_common_nd.py``.
"""

import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import cross_val_score

from skneuro.rnn import LeakyRNN, RateRNNRegressor, WeightInitializer

N_TRIALS, T, N_IN, N_OUT = 24, 12, 2, 2


def _data(n_trials=N_TRIALS, n_steps=T, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_trials, n_steps, N_IN))
    y = np.cumsum(X, axis=1) * 0.1
    mask = np.ones((n_trials, n_steps, N_OUT))
    mask[:, :3] = 0.0
    return X, y, mask


def _est(**kw):
    params = {"n_rec": 8, "max_iter": 3, "batch_size": 8, "learning_rate": 1e-2, "random_state": 0}
    params.update(kw)
    return RateRNNRegressor(**params)


@pytest.fixture(scope="module")
def fitted():
    X, y, mask = _data()
    return _est().fit(X, y, sample_weight=mask), X, y, mask


# ------------------------------------------------------- fitted attributes
def test_fit_returns_self_and_attributes(fitted):
    est, X, y, mask = fitted
    assert est.n_features_in_ == N_IN
    assert est.W_in_.shape == (8, N_IN) and est.W_rec_.shape == (8, 8) and est.W_out_.shape == (N_OUT, 8)
    assert est.dale_signs_.shape == (8,) and (est.dale_signs_ == 1).all()
    assert len(est.loss_curve_) == est.n_iter_ == 3
    assert est.n_updates_ == 9
    assert est.module_.W_rec.dtype == torch.float32  # dtype="float32"; outputs are float64 (test_common_nd)
    sim = est.simulate(X, random_state=0)
    assert sim.outputs.shape == (N_TRIALS, T, N_OUT) and sim.states.shape == sim.rates.shape == (N_TRIALS, T, 8)


# ---------------------------------------------------------------- bad input
def _raises(name, func, *args, **kw):
    with pytest.raises(ValueError, match=name):
        func(*args, **kw)


def test_2d_mask_accepted():
    X, y, mask = _data()
    a = _est(max_iter=1).fit(X, y, sample_weight=mask[:, :, 0])
    b = _est(max_iter=1).fit(X, y, sample_weight=mask)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


def test_bad_params():
    X, y, mask = _data()
    _raises("dale_ratio", _est(dale_ratio=0.0).fit, X, y)
    _raises("dale_ratio", _est(dale_ratio=1.5).fit, X, y)
    _raises("fixed_params", _est(fixed_params=("W_nope",)).fit, X, y)
    _raises("dt/tau", _est(dt=200.0, tau=100.0).fit, X, y)
    _raises("activation", _est(activation="elu").fit, X, y)
    _raises("init", _est(init="nope").fit, X, y)
    wrong = WeightInitializer(N_IN + 1, 8, N_OUT, random_state=0)
    _raises("init", _est(init=wrong).fit, X, y)
    ok = WeightInitializer(N_IN, 8, N_OUT, random_state=0)
    _raises("init", _est(init=ok, dale_ratio=0.5).fit, X, y)


# ------------------------------------------------------------ model selection
# -------------------------------------------------------------- by-hand math
def test_score_by_hand(fitted, monkeypatch):
    est = clone(fitted[0])
    est.__dict__.update({k: v for k, v in vars(fitted[0]).items() if k.endswith("_")})
    y = np.array([0.0, 1.0, 2.0, 3.0]).reshape(1, 4, 1)
    pred = np.array([0.0, 1.0, 2.0, 4.0]).reshape(1, 4, 1)
    monkeypatch.setattr(est, "predict", lambda X: pred.copy())
    X = np.zeros((1, 4, N_IN))
    assert est.score(X, y, sample_weight=np.array([[1.0, 1, 1, 0]])) == pytest.approx(1.0, abs=1e-12)
    assert est.score(X, y) == pytest.approx(0.8, abs=1e-12)
    # two outputs: averaged
    y2, pred2 = np.concatenate([y, y], axis=2), np.concatenate([pred, y], axis=2)
    monkeypatch.setattr(est, "predict", lambda X: pred2.copy())
    assert est.score(X, y2) == pytest.approx(0.9, abs=1e-12)


def test_loss_by_hand():
    # one trial, T 1, two outputs: ŷ = b_out = [1, 3], y = 0, mask [1, 0]
    # loss = Σ m (ŷ - y)² / (B·T·n_out) = 1 / 2
    init = WeightInitializer(
        1,
        3,
        2,
        W_in=np.zeros((3, 1)),
        W_rec=np.zeros((3, 3)),
        W_out=np.zeros((2, 3)),
        b_rec=np.zeros(3),
        b_out=np.array([1.0, 3.0]),
        random_state=0,
    )
    est = RateRNNRegressor(
        3,
        init=init,
        fixed_params=("W_in", "W_rec", "W_out", "b_rec"),
        max_iter=1,
        batch_size=1,
        dtype="float64",
        random_state=0,
    )
    est.fit(np.zeros((1, 1, 1)), np.zeros((1, 1, 2)), sample_weight=np.array([[[1.0, 0.0]]]))
    assert est.loss_curve_[0] == pytest.approx(0.5, rel=1e-12)


# --------------------------------------------------------------- constraints
def test_dale_and_masks_after_fit():
    X, y, mask = _data()
    rng = np.random.default_rng(3)
    n_rec = 10
    rec_conn = (rng.random((n_rec, n_rec)) < 0.6).astype(float)
    in_conn = (rng.random((n_rec, N_IN)) < 0.7).astype(float)
    out_conn = (rng.random((N_OUT, n_rec)) < 0.7).astype(float)
    est = _est(
        n_rec=n_rec,
        dale_ratio=0.8,
        autapses=False,
        rec_connectivity=rec_conn,
        input_connectivity=in_conn,
        output_connectivity=out_conn,
        max_iter=3,
        learning_rate=0.05,
    ).fit(X, y, sample_weight=mask)
    signs = est.dale_signs_
    np.testing.assert_array_equal(signs, [1.0] * 8 + [-1.0] * 2)
    assert (est.W_rec_ * signs[None, :] >= 0).all()
    assert (est.W_out_[:, signs < 0] == 0).all()
    assert (est.W_in_ >= 0).all()
    assert (est.W_rec_[rec_conn == 0] == 0).all()
    assert (np.diag(est.W_rec_) == 0).all()
    assert (est.W_in_[in_conn == 0] == 0).all()
    assert (est.W_out_[out_conn == 0] == 0).all()
    # training did something to the allowed entries
    assert np.abs(est.W_rec_).sum() > 0 and np.abs(est.W_out_).sum() > 0


ALL_FIXED = ("W_in", "W_rec", "W_out", "b_rec", "b_out")


def test_output_bias_starts_from_the_targets():
    X, y, mask = _data()
    y = y + np.array([0.9, -0.3])
    mask[:5, :, 1] = 0.0
    mask[5:, 6:, 0] = 2.0
    start = _est(fixed_params=ALL_FIXED, max_iter=1).fit(X, y, sample_weight=mask)
    np.testing.assert_allclose(start.b_out_, (mask * y).sum((0, 1)) / mask.sum((0, 1)), rtol=1e-6)
    # Dale's law: non-negative readout of non-negative rates, so b_out is a floor: the smallest kept target
    dale = _est(fixed_params=ALL_FIXED, max_iter=1, dale_ratio=0.5).fit(X, y, sample_weight=mask)
    np.testing.assert_allclose(dale.b_out_, np.where(mask > 0, y, np.inf).min((0, 1)), rtol=1e-6)
    zero = _est(fixed_params=ALL_FIXED, max_iter=1, output_bias_init="zero").fit(X, y, sample_weight=mask)
    np.testing.assert_array_equal(zero.b_out_, 0.0)
    own = WeightInitializer(N_IN, 8, N_OUT, b_out=[0.5, -1.0], random_state=0)
    given = _est(fixed_params=ALL_FIXED, max_iter=1, init=own).fit(X, y, sample_weight=mask)
    np.testing.assert_array_equal(given.b_out_, [0.5, -1.0])


def test_output_bias_from_targets_trains_faster_on_offset_targets():
    # targets far from 0: from b_out = 0, Adam needs ~0.9 / learning_rate updates to move the bias there
    X, y, mask = _data()
    y = y + np.array([0.9, 0.1])
    losses = {}
    for start in ("targets", "zero"):
        est = _est(max_iter=5, learning_rate=1e-3, output_bias_init=start).fit(X, y, sample_weight=mask)
        losses[start] = est.loss_curve_[-1]
    assert losses["targets"] < 0.25 * losses["zero"], losses  # 0.051 and 0.273


def test_frozen_unchanged():
    X, y, mask = _data()
    frozen_names = ("W_in", "W_rec", "b_out")
    est = _est(fixed_params=frozen_names, learning_rate=0.05).fit(X, y, sample_weight=mask)
    start = _est(fixed_params=("W_in", "W_rec", "W_out", "b_rec", "b_out"), max_iter=1)
    start.fit(X, y, sample_weight=mask)  # everything frozen: initial weights
    np.testing.assert_array_equal(est.W_in_, start.W_in_)
    np.testing.assert_array_equal(est.W_rec_, start.W_rec_)
    np.testing.assert_array_equal(est.b_out_, start.b_out_)
    assert not np.array_equal(est.W_out_, start.W_out_)
    assert not np.array_equal(est.b_rec_, start.b_rec_)
    for name in frozen_names:
        assert getattr(est.module_, name).requires_grad  # restored after fit


# --------------------------------------------------------------------- noise
def test_simulate_seeded_and_predict_deterministic():
    X, y, mask = _data()
    est = _est(rec_noise=0.1).fit(X, y, sample_weight=mask)
    a = est.simulate(X, random_state=0)
    b = est.simulate(X, random_state=0)
    c = est.simulate(X, random_state=1)
    np.testing.assert_array_equal(a.outputs, b.outputs)
    np.testing.assert_array_equal(a.states, b.states)
    assert not np.array_equal(a.outputs, c.outputs)
    np.testing.assert_array_equal(est.predict(X), est.predict(X))
    quiet = est.simulate(X, noise=False)
    np.testing.assert_array_equal(quiet.outputs, est.predict(X))
    np.testing.assert_array_equal(quiet.rates, est.predict_states(X))
    assert not np.array_equal(a.outputs, est.predict(X))


# ------------------------------------------------------------------ recovery
def test_recovery_of_teacher():
    n_in, n_rec, n_out, n_steps = 2, 20, 2, 30
    teacher = LeakyRNN(n_in, n_rec, n_out, dt=10.0, tau=50.0, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        teacher.W_in.copy_(torch.randn(n_rec, n_in, generator=g, dtype=torch.float64))
        teacher.W_rec.copy_(0.9 * torch.randn(n_rec, n_rec, generator=g, dtype=torch.float64) / n_rec**0.5)
        teacher.W_out.copy_(torch.randn(n_out, n_rec, generator=g, dtype=torch.float64) / n_rec**0.5)
        teacher.b_rec.zero_()
        teacher.b_out.zero_()
        teacher.init_state.fill_(0.1)
    rng = np.random.default_rng(0)
    # smooth inputs: piecewise constant pulses
    U = np.repeat(rng.normal(size=(600, n_steps // 5, n_in)), 5, axis=1)
    with torch.no_grad():
        Y = teacher(torch.tensor(U))[0].numpy()
    train, test = slice(0, 500), slice(500, 600)
    student = RateRNNRegressor(
        n_rec,
        tau=50.0,
        learning_rate=1e-2,
        batch_size=32,
        max_iter=40,
        n_iter_no_change=100,
        random_state=0,
    ).fit(U[train], Y[train])
    r2 = student.score(U[test], Y[test])
    assert r2 >= 0.95, r2


def test_save_weights_round_trips_through_the_initializer(tmp_path):
    from skneuro.datasets.tasks import PerceptualDiscrimination
    from skneuro.rnn import WeightInitializer

    X, y, mask, _ = PerceptualDiscrimination(T=300).generate(32, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = RateRNNRegressor(n_rec=10, dale_ratio=0.8, autapses=False, max_iter=2, batch_size=16, random_state=0)
        est.fit(X, y, sample_weight=mask)
    path = tmp_path / "weights.npz"
    est.save_weights(path)
    loaded = WeightInitializer.load(path)
    W_in, W_rec, W_out = loaded.effective_weights()
    np.testing.assert_allclose(W_rec, est.W_rec_, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(W_in, est.W_in_, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(W_out, est.W_out_, rtol=1e-6, atol=1e-7)
    # the saved weights start a new fit that predicts as the trained one did
    again = RateRNNRegressor(n_rec=10, init=loaded, max_iter=1, learning_rate=1e-12, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again.fit(X, y, sample_weight=mask)
    np.testing.assert_allclose(again.predict(X), est.predict(X), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["input_connectivity", "rec_connectivity"])
def test_connectivity_must_be_zero_or_one(name):
    X = np.zeros((4, 5, 2))
    y = np.zeros((4, 5, 1))
    shape = (3, 2) if name == "input_connectivity" else (3, 3)
    bad = np.full(shape, 0.5)
    with pytest.raises(ValueError, match=name):
        RateRNNRegressor(n_rec=3, max_iter=1, **{name: bad}).fit(X, y)


def test_masked_scoring_in_cross_validation_through_metadata_routing():
    from sklearn import config_context

    from skneuro.datasets.tasks import PerceptualDiscrimination

    X, y, mask, _ = PerceptualDiscrimination(T=300).generate(48, random_state=0)
    with config_context(enable_metadata_routing=True), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = RateRNNRegressor(n_rec=6, max_iter=1, batch_size=16, random_state=0)
        est.set_fit_request(sample_weight=True).set_score_request(sample_weight=True)
        routed = cross_val_score(est, X, y, params={"sample_weight": mask}, cv=3)
        plain = RateRNNRegressor(n_rec=6, max_iter=1, batch_size=16, random_state=0)
        plain.set_fit_request(sample_weight=True).set_score_request(sample_weight=False)
        unmasked = cross_val_score(plain, X, y, params={"sample_weight": mask}, cv=3)
    # the routed scores are the masked R² on each test fold, which differs from the unmasked one
    from sklearn.model_selection import KFold

    for (train, test), score in zip(KFold(3).split(X), routed):
        fold = RateRNNRegressor(n_rec=6, max_iter=1, batch_size=16, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fold.fit(X[train], y[train], sample_weight=mask[train])
        assert score == pytest.approx(fold.score(X[test], y[test], sample_weight=mask[test]))
    assert not np.allclose(routed, unmasked)


@pytest.mark.parametrize("initializer", ["gaussian_spectral_radius", "glorot_unif"])
def test_input_weights_fan_in_scaled(initializer):
    """input_scaling="fan_in": Glorot draws rescaled entrywise by sqrt(F_ij / (2 fan_in_i)), same stream."""
    X, y, mask = _data()
    mask_in = np.ones((200, N_IN))
    mask_in[::3, 0] = 0  # fan_in 1 for every third unit, 2 for the others
    kw = dict(n_rec=200, init=initializer, input_connectivity=mask_in, fixed_params=("W_in",), max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fan_in = _est(**kw).fit(X, y, sample_weight=mask).W_in_
        glorot = _est(input_scaling="glorot", **kw).fit(X, y, sample_weight=mask).W_in_
    fan_out = mask_in.sum(0, keepdims=True)
    rows = mask_in.sum(1, keepdims=True)
    expected = glorot * np.sqrt((rows + fan_out) / (2 * rows)) * mask_in
    np.testing.assert_allclose(fan_in, expected, rtol=1e-6, atol=1e-12)
    full = mask_in.all(1)
    # variance 1/fan_in = 1/2 on fully connected rows (200 * 2 draws: within 15%)
    assert abs(fan_in[full].var() - 0.5) < 0.075


def test_input_scaling_leaves_a_given_initializer_alone():
    X, y, mask = _data()
    init = WeightInitializer(N_IN, 8, N_OUT, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = _est(n_rec=8, init=init, fixed_params=("W_in",), max_iter=1).fit(X, y, sample_weight=mask)
    np.testing.assert_allclose(est.W_in_, init.initializations["W_in"], rtol=1e-6)


def test_weight_penalties_are_sums_over_the_effective_matrices():
    """l1_k·Σ|W_k| + l2_k·ΣW_k² (sums, as every weight penalty in skneuro), by hand from the fitted weights."""
    X, y, mask = _data()
    kw = dict(l1_in=0.3, l1_rec=0.2, l1_out=0.1, l2_in=0.05, l2_rec=0.07, l2_out=0.11, dale_ratio=0.75)
    est = _est(dtype="float64", **kw).fit(X, y, sample_weight=mask)
    W = {"in": est.W_in_, "rec": est.W_rec_, "out": est.W_out_}
    expected = sum(kw[f"l1_{k}"] * np.abs(w).sum() + kw[f"l2_{k}"] * (w**2).sum() for k, w in W.items())
    assert float(est._penalty(est.module_).detach()) == pytest.approx(expected, rel=1e-12)
    means = sum(kw[f"l1_{k}"] * np.abs(w).mean() + kw[f"l2_{k}"] * (w**2).mean() for k, w in W.items())
    assert expected > 2 * means  # PsychRNN's means would be a different penalty

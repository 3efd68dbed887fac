"""MultiRegionRNNRegressor: config errors, masks and signs, region helpers,
mRNNTorch quirks (spec multi_region.md §4), model equations and noise. The contract shared
with the other 3-D and list-input estimators is checked in ``tests/test_common_nd.py``."""

import copy
import json
import pickle

import numpy as np
import pytest
import torch

from skneuro.rnn import MultiRegionRNNRegressor, config_from_mrnntorch
from tests.rnn.test_rnn_estimator import N_IN, N_OUT, _data, _raises

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

N_REC = 12
A, B, C, D = np.r_[0:4], np.r_[4:7], np.r_[7:10], np.r_[10:12]


def _config():
    """a (E, learnable bias), b (I, parent P), c (mixed), d (mixed, learnable, parent P); inputs u (E), v."""
    return {
        "regions": [
            {"name": "a", "n_units": 4, "sign": "excitatory", "base_firing": 0.25, "learnable_bias": True, "init": 0.5},
            {"name": "b", "n_units": 3, "sign": "inhibitory", "base_firing": -0.5, "parent": "P"},
            {"name": "c", "n_units": 3},
            {"name": "d", "n_units": 2, "base_firing": 0.125, "learnable_bias": True, "parent": "P"},
        ],
        "inputs": [{"name": "u", "n_units": 1, "sign": "excitatory"}, {"name": "v", "n_units": 1}],
        "connections": [
            {"source": "u", "target": "a"},
            {"source": "v", "target": "c"},
            {"source": "a", "target": "a", "density": 0.5},  # 2 of 4
            {"source": "a", "target": "P", "density": 0.5},  # b: 1.5 -> 2 of 3, d: 1 of 2
            {"source": "b", "target": "a"},
            {"source": "c", "target": "a", "density": 0.5},  # 2 of 4
            {"source": "c", "target": "c"},
            {"source": "d", "target": "c", "density": 0.5},  # 1.5 -> 2 of 3
        ],
        "readout": ["a", "P"],
    }


UNITS = {"a": A, "b": B, "c": C, "d": D}
REC_COUNTS = {("a", "a"): 2, ("b", "a"): 2, ("d", "a"): 1, ("a", "b"): 4, ("a", "c"): 2, ("c", "c"): 3, ("c", "d"): 2}
ALL_TRAINABLE = ("W_in", "W_rec", "W_out", "b_rec", "b_out")


def _est(config=None, **kw):
    params = {"max_iter": 3, "batch_size": 8, "learning_rate": 0.05, "random_state": 0}
    params.update(kw)
    return MultiRegionRNNRegressor(_config() if config is None else config, **params)


@pytest.fixture(scope="module")
def fitted():
    X, y, mask = _data()
    return _est().fit(X, y, sample_weight=mask), X, y, mask


@pytest.fixture(scope="module")
def initial():
    """Same construction as ``fitted`` with every parameter frozen: the initial effective weights."""
    X, y, mask = _data()
    return _est(fixed_params=ALL_TRAINABLE, max_iter=1).fit(X, y, sample_weight=mask)


# ------------------------------------------------------- fitted attributes
def test_fit_returns_self_and_attributes(fitted):
    est, X, y, mask = fitted
    assert est.n_features_in_ == N_IN
    assert est.W_in_.shape == (N_REC, N_IN) and est.W_rec_.shape == (N_REC, N_REC)
    assert est.W_out_.shape == (N_OUT, N_REC)
    assert est.b_rec_.shape == est.init_state_.shape == (N_REC,) and est.b_out_.shape == (N_OUT,)
    assert all(w.dtype == np.float64 for w in (est.W_in_, est.W_rec_, est.W_out_, est.b_rec_))
    assert len(est.loss_curve_) == est.n_iter_ == 3 and est.n_updates_ == 9
    assert est.region_slices_ == {"a": slice(0, 4), "b": slice(4, 7), "c": slice(7, 10), "d": slice(10, 12)}
    assert est.input_slices_ == {"u": slice(0, 1), "v": slice(1, 2)}
    assert est.config_["regions"][2]["sign"] == "mixed" and est.config_["readout"] == ["a", "P"]
    assert est.rec_mask_.shape == (N_REC, N_REC) and est.input_mask_.shape == (N_REC, N_IN)
    np.testing.assert_array_equal(est.init_state_, np.r_[np.full(4, 0.5), np.zeros(8)])
    assert est.device_ == torch.device("cpu")
    sim = est.simulate(X, random_state=0)
    assert sim.outputs.shape == (len(X), X.shape[1], N_OUT) and sim.states.shape == (len(X), X.shape[1], N_REC)


def test_output_bias_starts_at_the_masked_target_mean(initial):
    _, y, mask = _data()
    np.testing.assert_allclose(initial.b_out_, (mask * y).sum((0, 1)) / mask.sum((0, 1)), rtol=1e-6)
    assert np.abs(initial.b_out_).min() > 1e-3  # not the zero start


def test_masks_are_drawn_from_random_state(fitted):
    est, X, y, mask = fitted
    np.testing.assert_array_equal(_est(max_iter=1).fit(X, y, sample_weight=mask).rec_mask_, est.rec_mask_)
    assert not np.array_equal(_est(max_iter=1, random_state=1).fit(X, y, sample_weight=mask).rec_mask_, est.rec_mask_)


# ---------------------------------------------------------------- bad input
def test_x_last_dim_must_match_config_inputs():
    X, y, _ = _data()
    X3 = np.concatenate([X, X[:, :, :1]], axis=2)
    with pytest.raises(ValueError, match=r"^X has 3 features.*2 units"):
        _est().fit(X3, y)


def test_2d_mask_accepted():
    X, y, mask = _data()
    a = _est(max_iter=1).fit(X, y, sample_weight=mask[:, :, 0])
    b = _est(max_iter=1).fit(X, y, sample_weight=mask)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


def test_bad_params():
    X, y, _ = _data()
    _raises("fixed_params", _est(fixed_params=("W_nope",)).fit, X, y)
    _raises("dt/tau", _est(dt=200.0, tau=100.0).fit, X, y)
    _raises("activation", _est(activation="elu").fit, X, y)
    _raises("spectral_radius", _est(spectral_radius=0.0).fit, X, y)
    _raises("config", _est(config=[1, 2]).fit, X, y)
    _raises("readout", _est(readout="a").fit, X, y)


# ------------------------------------------------------------- config errors
def test_config_errors_through_fit():
    X, y, _ = _data()
    cfg = _config()
    cfg["connections"][2]["target"] = "pfx"
    with pytest.raises(ValueError) as info:
        _est(config=cfg).fit(X, y)
    assert str(info.value) == 'config["connections"][2]["target"]: unknown region "pfx"'
    cfg = _config()
    cfg["readout"] = ["zz"]
    _raises(r'^config\["readout"\]\[0\]: unknown region "zz"', _est(config=cfg).fit, X, y)
    # the readout parameter names itself, then the key path
    _raises(r'^readout: config\["readout"\]\[1\]: unknown region "zz"', _est(readout=["a", "zz"]).fit, X, y)


def test_config_file_str_and_path(tmp_path, fitted):
    est, X, y, mask = fitted
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(_config()))
    for arg in (str(path), path):
        from_file = _est(config=arg).fit(X, y, sample_weight=mask)
        np.testing.assert_array_equal(from_file.predict(X), est.predict(X))
        np.testing.assert_array_equal(from_file.rec_mask_, est.rec_mask_)
        assert from_file.config_ == est.config_
    # readout override with a file config
    over = _est(config=path, readout=["c"], max_iter=1).fit(X, y)
    assert (over.W_out_[:, C] != 0).all() and (np.delete(over.W_out_, C, axis=1) == 0).all()
    assert json.loads(path.read_text()) == _config()


def test_missing_and_bad_json_file(tmp_path):
    X, y, _ = _data()
    with pytest.raises(FileNotFoundError):
        _est(config=tmp_path / "missing.json").fit(X, y)
    with pytest.raises(FileNotFoundError):
        _est(config=str(tmp_path / "missing.json"), readout=["a"]).fit(X, y)
    bad = tmp_path / "bad.json"
    bad.write_text("{'regions': }")
    _raises("^config", _est(config=bad).fit, X, y)


@pytest.mark.parametrize("readout", [None, ["c"]])
def test_caller_dict_never_modified(readout):
    X, y, mask = _data()
    cfg = _config()
    before = copy.deepcopy(cfg)
    est = _est(config=cfg, readout=readout, max_iter=1).fit(X, y, sample_weight=mask)
    assert cfg == before and est.config is cfg
    est.config_["regions"][0]["n_units"] = 100
    assert cfg == before


# ------------------------------------------------------------ masks and signs
def test_masks_counts_and_zero_blocks(fitted):
    est = fitted[0]
    for t, rows in UNITS.items():
        for s, cols in UNITS.items():
            block = est.rec_mask_[np.ix_(rows, cols)]
            np.testing.assert_array_equal(block.sum(axis=0), REC_COUNTS.get((t, s), 0), err_msg=f"{t}<-{s}")
    np.testing.assert_array_equal(est.input_mask_[:, 0], np.r_[np.ones(4), np.zeros(8)])  # u -> a
    np.testing.assert_array_equal(est.input_mask_[:, 1], np.r_[np.zeros(7), np.ones(3), np.zeros(2)])  # v -> c


def test_signs_and_masked_zeros_exact_after_fit(fitted, initial):
    est = fitted[0]
    assert not np.array_equal(est.W_rec_, initial.W_rec_)  # training moved the weights
    assert not np.array_equal(est.W_in_, initial.W_in_)
    assert np.issubdtype(est.dale_signs_.dtype, np.integer)
    np.testing.assert_array_equal(est.dale_signs_, [1] * 4 + [-1] * 3 + [0] * 5)
    for W in (est.W_rec_, initial.W_rec_):
        assert (W[:, A] >= 0).all() and (W[:, B] <= 0).all()
        assert (W[est.rec_mask_ == 0] == 0).all()
        assert (W[est.rec_mask_ == 1] != 0).all()
    mixed = est.W_rec_[:, np.r_[C, D]]
    assert (mixed > 0).any() and (mixed < 0).any()
    assert (est.W_in_[:, 0] >= 0).all() and (est.W_in_[A, 0] > 0).all()  # excitatory input
    assert (est.W_in_[C, 1] > 0).any() and (est.W_in_[C, 1] < 0).any()  # mixed input: both signs
    assert (est.W_in_[est.input_mask_ == 0] == 0).all()


def test_readout_zero_outside_and_override(fitted):
    X, y, mask = _data()
    est = fitted[0]  # readout ["a", "P"] -> a, b, d
    assert (est.W_out_[:, C] == 0).all()
    assert (est.W_out_[:, np.r_[A, B, D]] != 0).all()
    over = _est(readout=["c", "b"], max_iter=1).fit(X, y, sample_weight=mask)
    assert (over.W_out_[:, np.r_[A, D]] == 0).all() and (over.W_out_[:, np.r_[B, C]] != 0).all()
    assert over.config_["readout"] == ["c", "b"]
    default = _config()
    del default["readout"]
    every = _est(config=default, max_iter=1).fit(X, y, sample_weight=mask)
    assert (every.W_out_ != 0).all()


def test_dale_signs_all_mixed_are_zero():
    X, y, mask = _data()
    cfg = {
        "regions": [{"name": "a", "n_units": 3}, {"name": "b", "n_units": 2}],
        "inputs": [{"name": "u", "n_units": 2}],
        "connections": [{"source": "u", "target": "a"}, {"source": "a", "target": "b"}, {"source": "b", "target": "a"}],
    }
    est = _est(config=cfg, max_iter=1).fit(X, y, sample_weight=mask)
    np.testing.assert_array_equal(est.dale_signs_, np.zeros(5, dtype=int))


# ---------------------------------------------------------- §4 quirks: device
def test_default_device_cpu_and_default_fit():
    X, y, mask = _data()
    est = MultiRegionRNNRegressor(_config())
    assert est.device == "cpu"
    est.fit(X, y, sample_weight=mask)
    assert est.device_ == torch.device("cpu") and est.module_.W_rec.device.type == "cpu"
    assert 1 <= est.n_iter_ <= 50


def test_unavailable_cuda_names_device():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    X, y, _ = _data()
    _raises("device", _est(device="cuda").fit, X, y)


# ---------------------------------------------------- §4 quirks: learnable bias
def test_learnable_bias_only_in_learnable_regions(fitted):
    est = fitted[0]
    assert (est.b_rec_[A] != 0.25).all() and (est.b_rec_[D] != 0.125).all()
    np.testing.assert_array_equal(est.b_rec_[B], np.full(3, -0.5))
    np.testing.assert_array_equal(est.b_rec_[C], np.zeros(3))
    assert not est.module_.init_state.requires_grad
    np.testing.assert_array_equal(est.init_state_, np.r_[np.full(4, 0.5), np.zeros(8)])


def test_learnable_bias_after_warm_start():
    X, y, mask = _data()
    est = _est(warm_start=True, max_iter=1).fit(X, y, sample_weight=mask)
    est.fit(X, y, sample_weight=mask)
    np.testing.assert_array_equal(est.b_rec_[B], np.full(3, -0.5))
    np.testing.assert_array_equal(est.b_rec_[C], np.zeros(3))


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_learnable_bias_survives_copy_then_warm_start(how):
    X, y, mask = _data()
    est = _est(warm_start=True, max_iter=1).fit(X, y, sample_weight=mask)
    est = pickle.loads(pickle.dumps(est)) if how == "pickle" else copy.deepcopy(est)
    est.fit(X, y, sample_weight=mask)
    np.testing.assert_array_equal(est.b_rec_[B], np.full(3, -0.5))
    np.testing.assert_array_equal(est.b_rec_[C], np.zeros(3))


# --------------------------------------------------------- §4 quirks: regions
def test_region_activity_order_parent_in_place(fitted):
    est = fitted[0]
    states = np.arange(2 * 3 * N_REC, dtype=float).reshape(2, 3, N_REC)
    np.testing.assert_array_equal(
        est.region_activity(states, "c", "a"), np.concatenate([states[..., C], states[..., A]], -1)
    )
    # P = (b, d), not contiguous: expands in place, between c and a
    np.testing.assert_array_equal(est.region_activity(states, "c", "P", "a"), states[..., np.r_[C, B, D, A]])
    np.testing.assert_array_equal(est.region_activity(states), states)
    np.testing.assert_array_equal(est.region_indices("d", "b"), np.r_[D, B])
    out = est.region_activity(torch.as_tensor(states), "c", "P", "a")
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    np.testing.assert_array_equal(out.numpy(), states[..., np.r_[C, B, D, A]])
    # works on real model outputs too
    rates = est.predict_states(fitted[1][:2])
    np.testing.assert_array_equal(est.region_activity(rates, "P"), rates[..., np.r_[B, D]])


def test_region_activity_errors(fitted):
    est = fitted[0]
    states = np.zeros((2, N_REC))
    for names in (("a", "a"), ("P", "b"), ("d", "P")):
        with pytest.raises(ValueError, match="more than once"):
            est.region_activity(states, *names)
    with pytest.raises(ValueError, match="'ctx'"):
        est.region_activity(states, "a", "ctx")
    with pytest.raises(ValueError, match="'u'"):  # an input is not a region
        est.region_activity(states, "u")
    with pytest.raises(ValueError, match="states"):
        est.region_activity(np.zeros((2, N_REC - 1)), "a")


def test_projection_and_weight_subset(fitted):
    est = fitted[0]
    W, Win = est.W_rec_, est.W_in_
    np.testing.assert_array_equal(est.projection("a", "b"), W[np.ix_(A, B)])
    np.testing.assert_array_equal(est.projection("P", "a"), W[np.ix_(np.r_[B, D], A)])
    np.testing.assert_array_equal(est.projection("c", "d"), W[np.ix_(C, D)])
    np.testing.assert_array_equal(est.projection("a", "u"), Win[A][:, [0]])
    np.testing.assert_array_equal(est.projection("c", "v"), Win[C][:, [1]])
    assert est.projection("a", "d").shape == (4, 2) and (est.projection("a", "d") == 0).all()
    idx = np.r_[C, A]
    np.testing.assert_array_equal(est.weight_subset("c", "a"), W[np.ix_(idx, idx)])
    idx = np.r_[D, B, C]
    np.testing.assert_array_equal(est.weight_subset("d", "b", "c"), W[np.ix_(idx, idx)])
    np.testing.assert_array_equal(est.weight_subset("P"), W[np.ix_(np.r_[B, D], np.r_[B, D])])
    np.testing.assert_array_equal(est.weight_subset(), W)
    with pytest.raises(ValueError, match="'zz'"):
        est.projection("zz", "a")
    with pytest.raises(ValueError, match="more than once"):
        est.weight_subset("b", "P")


# ------------------------------------------------------------------- frozen
def test_frozen_w_rec_exactly_initial(initial):
    X, y, mask = _data()
    est = _est(fixed_params=("W_rec",)).fit(X, y, sample_weight=mask)
    np.testing.assert_array_equal(est.W_rec_, initial.W_rec_)
    assert not np.array_equal(est.W_out_, initial.W_out_)
    assert not np.array_equal(est.W_in_, initial.W_in_)
    assert est.module_.W_rec.requires_grad  # restored after fit
    warm = _est(fixed_params=("W_rec",), warm_start=True, max_iter=1).fit(X, y, sample_weight=mask)
    W_rec, W_out = warm.W_rec_.copy(), warm.W_out_.copy()
    warm.fit(X, y, sample_weight=mask)
    np.testing.assert_array_equal(warm.W_rec_, W_rec)
    assert not np.array_equal(warm.W_out_, W_out)


# --------------------------------------------------------- spectral radius
@pytest.mark.parametrize("dtype,tol", [("float64", 1e-10), ("float32", 1e-5)])
def test_spectral_radius(dtype, tol):
    X, y, mask = _data()
    est = _est(spectral_radius=1.3, fixed_params=("W_rec",), dtype=dtype, max_iter=1).fit(X, y, sample_weight=mask)
    assert np.max(np.abs(np.linalg.eigvals(est.W_rec_))) == pytest.approx(1.3, abs=tol)
    plain = _est(fixed_params=("W_rec",), dtype=dtype, max_iter=1).fit(X, y, sample_weight=mask)
    rho = np.max(np.abs(np.linalg.eigvals(plain.W_rec_)))
    assert abs(rho - 1.3) > 0.05
    # a positive rescaling of the raw weights: same pattern, same signs, W ∝ initial W
    np.testing.assert_allclose(est.W_rec_, plain.W_rec_ * (1.3 / rho), rtol=10 * tol, atol=10 * tol)


def test_spectral_radius_without_recurrence():
    X, y, _ = _data()
    cfg = {
        "regions": [{"name": "a", "n_units": 3}, {"name": "b", "n_units": 2}],
        "inputs": [{"name": "u", "n_units": 2}],
        "connections": [{"source": "u", "target": "a"}],
    }
    _raises("spectral_radius", _est(config=cfg, spectral_radius=1.0).fit, X, y)
    _est(config=cfg, max_iter=1).fit(X, y)  # fine without spectral_radius


# ------------------------------------------------------------ model equations
MRNN = {
    "recurrent_regions": [
        {"name": "ctx", "num_units": 5, "sign": "pos", "base_firing": 0.1, "init": 0.3},
        {"name": "str", "num_units": 3, "sign": "neg", "base_firing": -0.2, "parent_region": "bg"},
        {"name": "thal", "num_units": 2, "sign": "pos", "parent_region": "bg", "init": -0.4},
    ],
    "input_regions": [{"name": "cue", "num_units": 2, "sign": "pos"}],
    "recurrent_connections": [
        {"src_region": "ctx", "dst_region": "ctx", "sparsity": 0.4},
        {"src_region": "ctx", "dst_region": "str"},
        {"src_region": "str", "dst_region": "thal", "sparsity": None},
        {"src_region": "thal", "dst_region": "ctx", "sparsity": 0.5},
    ],
    "input_connections": [{"src_region": "cue", "dst_region": "ctx"}],
}


def _numpy_run(est, X, f):
    a = est.dt / est.tau
    x = np.broadcast_to(est.init_state_, (X.shape[0], est.W_rec_.shape[0]))
    states, outputs = [], []
    for t in range(X.shape[1]):
        x = (1 - a) * x + a * (f(x) @ est.W_rec_.T + X[:, t] @ est.W_in_.T + est.b_rec_)
        states.append(x)
        outputs.append(f(x) @ est.W_out_.T + est.b_out_)
    return np.stack(states, 1), np.stack(outputs, 1)


@pytest.mark.parametrize(
    "activation,f",
    [("tanh", np.tanh), ("relu", lambda x: np.maximum(x, 0)), ("softplus", lambda x: np.logaddexp(0, x))],
)
def test_states_equal_numpy_restatement(activation, f):
    X, y, mask = _data(n_trials=8)
    cfg = config_from_mrnntorch(MRNN)
    est = _est(config=cfg, activation=activation, dtype="float64", tau=50.0, rec_noise=0.3, max_iter=2)
    est.fit(X, y, sample_weight=mask[:, :, 0])
    np.testing.assert_array_equal(est.init_state_, np.r_[np.full(5, 0.3), np.zeros(3), np.full(2, -0.4)])
    np.testing.assert_array_equal(est.b_rec_, np.r_[np.full(5, 0.1), np.full(3, -0.2), np.zeros(2)])
    states, outputs = _numpy_run(est, X, f)
    sim = est.simulate(X, noise=False)
    np.testing.assert_allclose(sim.states, states, rtol=0, atol=1e-10)
    np.testing.assert_allclose(sim.outputs, outputs, rtol=0, atol=1e-10)
    np.testing.assert_allclose(sim.rates, f(states), rtol=0, atol=1e-10)
    np.testing.assert_array_equal(est.predict(X), sim.outputs)
    assert np.abs(states).max() > 0.1  # not a trivial run
    # float32 agrees to float32 precision
    est32 = _est(config=cfg, activation=activation, tau=50.0, max_iter=2).fit(X, y, sample_weight=mask[:, :, 0])
    states32, outputs32 = _numpy_run(est32, X, f)
    np.testing.assert_allclose(est32.simulate(X, noise=False).states, states32, rtol=0, atol=1e-5)
    np.testing.assert_allclose(est32.predict(X), outputs32, rtol=0, atol=1e-5)


def _one_step_noise(**kw):
    X, y, _ = _data(n_trials=8)
    est = _est(config=config_from_mrnntorch(MRNN), activation="linear", dtype="float64", max_iter=1, **kw)
    est.fit(X, y)
    U = np.random.default_rng(1).normal(size=(20_000, 1, N_IN))
    dx = est.simulate(U, random_state=0).states[:, 0] - est.simulate(U, noise=False).states[:, 0]
    return est, dx


def test_one_step_recurrent_noise_std():
    est, dx = _one_step_noise(rec_noise=0.2)
    alpha = est.dt / est.tau
    expected = np.sqrt(2 * alpha) * 0.2
    np.testing.assert_allclose(dx.std(axis=0), expected, rtol=0.03)
    assert np.abs(dx.mean(axis=0)).max() < 4 * expected / np.sqrt(len(dx))
    corr = np.corrcoef(dx.T)
    assert np.abs(corr - np.eye(10)).max() < 0.05  # independent across units


def test_one_step_input_noise_enters_through_w_in():
    est, dx = _one_step_noise(input_noise=0.3)
    alpha = est.dt / est.tau
    cov = 2 * alpha * 0.3**2 * est.W_in_ @ est.W_in_.T
    receives = np.r_[0:5]  # cue -> ctx only
    np.testing.assert_allclose(dx[:, receives].std(axis=0), np.sqrt(np.diag(cov)[receives]), rtol=0.03)
    np.testing.assert_array_equal(dx[:, 5:], 0.0)  # no input to str, thal: no input noise
    np.testing.assert_allclose(
        np.cov(dx[:, receives].T), cov[np.ix_(receives, receives)], rtol=0.1, atol=1e-3 * cov.max()
    )


def test_simulate_seeded_and_noise_free_equals_predict():
    X, y, mask = _data()
    est = _est(rec_noise=0.1, max_iter=1).fit(X, y, sample_weight=mask)
    a, b, c = (est.simulate(X, random_state=s) for s in (0, 0, 1))
    np.testing.assert_array_equal(a.states, b.states)
    assert not np.array_equal(a.states, c.states)
    quiet = est.simulate(X, noise=False)
    np.testing.assert_array_equal(quiet.outputs, est.predict(X))
    np.testing.assert_array_equal(quiet.rates, est.predict_states(X))
    assert not np.array_equal(a.outputs, quiet.outputs)


# ------------------------------------------------------------ model selection

"""MultiSubjectLatentRegressor: recovery, moments, batching, errors (spec §4, §5).

sklearn's own estimator checks feed 2-D arrays; a multi-subject estimator takes a list of
``SubjectData`` (one "sample" per subject), so the replacement check suite (clone, params,
pickling, idempotent fit, not-fitted errors, bad shapes, NaN, unchanged inputs, model
selection) runs in ``tests/test_common_nd.py``; this file keeps what is particular to it.
"""

import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.metrics import r2_score

from skneuro.bumps import SumOfBumpFcns
from skneuro.datasets import make_multi_subject_latent_regression
from skneuro.latent_regression import (
    LinearMapping,
    ModePredictorMLP,
    MultiSubjectLatentRegressor,
    SubjectData,
    SubjectModel,
)
from skneuro.utils._linalg import target_scales

FAST = {"n_bumps": 8, "max_iter": 20, "random_state": 0}
CUDA = torch.cuda.is_available()


def _small(n_samples=200, random_state=0, **kwargs):
    """Three small subjects (12-16 inputs, 10-14 outputs, q = 3, K = 2)."""
    kwargs = {"n_inputs": (12, 16), "n_outputs": (10, 14), **kwargs}
    return make_multi_subject_latent_regression(3, n_samples, random_state=random_state, **kwargs)


@pytest.fixture(scope="module")
def data():
    return _small()


@pytest.fixture(scope="module")
def fitted(data):
    """Fitted on subjects s0 and s1; s2 is never seen. Tests must not modify it."""
    X, y = data
    return MultiSubjectLatentRegressor(**FAST).fit(X[:2], y[:2])


def _state(est):
    return {k: v.detach().clone() for k, v in est.module_.state_dict().items()}


def _canonical_correlations(A, B):
    """Canonical correlations of the column spaces of two centred matrices (QR + SVD)."""
    qa, _ = np.linalg.qr(A - A.mean(axis=0))
    qb, _ = np.linalg.qr(B - B.mean(axis=0))
    return np.linalg.svd(qa.T @ qb, compute_uv=False)


def _empty_like(subject, subject_id="empty"):
    (R,), (Q,) = subject.property_groups()
    return SubjectData(subject_id, np.zeros((0, subject.n_inputs[0])), R, Q)


def _split_inputs(subject, cut=6):
    """The same subject with its inputs in two groups (columns :cut and cut:)."""
    (x,), ((R,), (Q,)) = subject.x_groups(), subject.property_groups()
    return SubjectData(subject.subject_id, (x[:, :cut], x[:, cut:]), (R[:cut], R[cut:]), Q)


# ================================================ family-specific contract
def test_clone_copies_a_mapping_module():
    mapping = LinearMapping(1, 1, 2, dtype=torch.float64)
    twin = clone(MultiSubjectLatentRegressor(mapping=mapping))
    assert isinstance(twin.mapping, LinearMapping) and twin.mapping is not mapping


@pytest.mark.skipif(not CUDA, reason="needs CUDA")
def test_fit_on_cuda_matches_cpu_and_unpickles_on_cpu(data, monkeypatch):
    import skneuro._engine.base as engine_base

    X, y = data
    kwargs = {**FAST, "dtype": "float64"}
    gpu = MultiSubjectLatentRegressor(**kwargs, device="cuda").fit(X[:2], y[:2])
    cpu = MultiSubjectLatentRegressor(**kwargs).fit(X[:2], y[:2])
    assert gpu.device_.type == "cuda" and all(p.device.type == "cuda" for p in gpu.module_.parameters())
    predictions = gpu.predict([*X, _empty_like(X[2])])
    assert all(p.dtype == np.float64 for p in predictions) and predictions[-1].shape == (0, X[2].n_outputs[0])
    for a, b in zip(predictions, cpu.predict(X)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    blob = pickle.dumps(gpu)
    for a, b in zip(pickle.loads(blob).predict(X), predictions):  # still on the GPU
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    real = engine_base.resolve_device

    def without_cuda(device):
        if "cuda" in str(device):
            raise ValueError("CUDA is not available")
        return real(device)

    monkeypatch.setattr(engine_base, "resolve_device", without_cuda)
    with pytest.warns(UserWarning, match="mapped to 'cpu'"):
        moved = pickle.loads(blob)
    assert moved.device_ == torch.device("cpu") and all(p.device.type == "cpu" for p in moved.module_.parameters())
    for a, b in zip(moved.predict(X), predictions):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_outputs_are_float64_lists_and_empty_subjects_work(data, dtype):
    X, y = data
    est = MultiSubjectLatentRegressor(**{**FAST, "max_iter": 3}, dtype=dtype).fit(X[:2], y[:2])
    empty = _empty_like(X[2])
    pred = est.predict([X[0], X[2], empty])
    assert isinstance(pred, list) and len(pred) == 3
    assert all(isinstance(p, np.ndarray) and p.dtype == np.float64 for p in pred)
    assert [p.shape for p in pred] == [y[0].shape, y[2].shape, (0, X[2].n_outputs[0])]
    latents = est.transform([X[0], empty])
    assert [z.shape for z in latents] == [(X[0].n_samples, 2), (0, 2)]
    assert all(z.dtype == np.float64 for z in latents)
    P, U = est.predict_modes(empty)
    assert P.shape == (X[2].n_inputs[0], 2) and U.shape == (X[2].n_outputs[0], 2)
    assert P.dtype == U.dtype == np.float64
    for d in (est.scales_, est.offsets_, est.noise_variance_):
        assert all(v.dtype == np.float64 for v in d.values())
    assert isinstance(est.score(X, y), float)


def test_a_mapping_module_given_as_parameter_is_not_trained_in_place(data):
    """Before the fix, fit trained the caller's mapping module itself (and cast it to float32)."""
    X, y = data
    mapping = LinearMapping(1, 1, 2, dtype=torch.float64)
    before = mapping.weight.detach().clone()
    est = MultiSubjectLatentRegressor(**{**FAST, "max_iter": 5}, mapping=mapping)
    first = est.fit(X[:2], y[:2]).predict(X)
    assert mapping.weight.dtype == torch.float64 and torch.equal(mapping.weight.detach(), before)
    assert est.module_.mapping is not mapping
    assert not np.array_equal(est.mapping_weight_, before.numpy())  # the copy was trained
    second = est.fit(X[:2], y[:2]).predict(X)  # and a refit starts from the same point
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_score_is_the_mean_of_pooled_r2(fitted, data):
    X, y = data
    expected = np.mean(
        [r2_score(t, p, multioutput="variance_weighted") for t, p in zip(y, fitted.predict(X))]
    )  # fmt: skip
    assert fitted.score(X, y) == pytest.approx(expected, rel=1e-12)


# ============================================================ spec §5: recovery
def test_recovery_leave_one_subject_out():
    """3 subjects, 60-80 neurons, 1,000 samples, K = 2, q = 3: each subject predicted unseen.

    Spec §5: R² >= 0.9, canonical correlations of U >= 0.95 (and of P, here). Measured with the
    default mode smoothing: R² 0.9924 / 0.9916 / 0.9821 (without: 0.9887 / 0.9879 / 0.9723),
    smallest canonical correlation of U 0.9994 / 0.9994 / 0.9997 (without: 0.9868 / 0.9910 /
    0.9783), of P 0.9975 / 0.9995 / 0.9991 (without: 0.9909 / 0.9899 / 0.9908).
    """
    X, y, params = make_multi_subject_latent_regression(3, 1000, random_state=0, return_params=True)
    assert all(60 <= s.n_inputs[0] <= 80 and 60 <= s.n_outputs[0] <= 80 for s in X)
    est = MultiSubjectLatentRegressor(n_bumps=20, max_iter=100, random_state=0)
    for test in range(3):
        train = [i for i in range(3) if i != test]
        est.fit([X[i] for i in train], [y[i] for i in train])
        assert est.score([X[test]], [y[test]]) >= 0.98
        P, U = est.predict_modes(X[test])
        assert _canonical_correlations(U, params["output_modes"][test]).min() >= 0.99
        assert _canonical_correlations(P, params["input_modes"][test]).min() >= 0.99


def test_canonical_correlations_helper():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(50, 2))
    np.testing.assert_allclose(_canonical_correlations(A, A @ rng.normal(size=(2, 2)) + 3.0), 1.0, atol=1e-12)
    assert _canonical_correlations(A, rng.normal(size=(50, 2))).max() < 0.5


# ================================================= spec §2/§5: moment objective
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"subject_params": ("scales", "offsets", "latent_affine")}, {"mapping": "linear"}],
    ids=["default", "latent_affine", "linear"],
)
def test_moment_objective_equals_the_per_sample_objective(monkeypatch, kwargs):
    X, y = _small(offset_range=(-1.0, 1.0), scale_range=(0.5, 2.0))
    calls = {"moments": 0, "samples": 0}
    moments, samples = SubjectModel.neg_log_likelihood_from_moments, SubjectModel.neg_log_likelihood

    def count(name, method):
        def wrapped(self, *args):
            calls[name] += 1
            return method(self, *args)

        return wrapped

    monkeypatch.setattr(SubjectModel, "neg_log_likelihood_from_moments", count("moments", moments))
    monkeypatch.setattr(SubjectModel, "neg_log_likelihood", count("samples", samples))
    # the training objectives are compared: no smoothing after training, whose hyperparameter
    # search (scipy's optimisers, tolerance ~1e-6) would blur the 1e-8 comparison
    base = {**FAST, "max_iter": 5, "dtype": "float64", "learning_rate": 0.01, "smooth_modes": False, **kwargs}
    full = MultiSubjectLatentRegressor(**base).fit(X, y)
    n_moment_calls = calls["moments"]
    assert n_moment_calls >= 5 * 3 and calls["samples"] == 0  # 5 epochs, 3 subjects, moments only
    per_sample = MultiSubjectLatentRegressor(**base, batch_size=200).fit(X, y)  # 200 = n: one batch
    assert calls["samples"] >= 5 * 3 and calls["moments"] == n_moment_calls
    np.testing.assert_allclose(full.loss_curve_, per_sample.loss_curve_, rtol=1e-8)
    assert full.n_updates_ == per_sample.n_updates_ == 5
    a, b = _state(full), _state(per_sample)
    for name in b:
        scale = max(float(b[name].abs().max()), 1.0)
        np.testing.assert_allclose(a[name].numpy(), b[name].numpy(), rtol=1e-8, atol=1e-8 * scale, err_msg=name)
    for p, q in zip(full.predict(X), per_sample.predict(X)):
        np.testing.assert_allclose(p, q, rtol=1e-8, atol=1e-8)


# ======================================================= spec §4/§5: minibatches
def test_minibatches_cover_every_sample(monkeypatch):
    X, y = make_multi_subject_latent_regression(2, (10, 25), n_inputs=6, n_outputs=(5, 7), random_state=0)
    seen = []
    original = SubjectModel.neg_log_likelihood

    def spy(self, ys, means):
        seen.append((self, ys[0].detach().numpy().copy()))
        return original(self, ys, means)

    monkeypatch.setattr(SubjectModel, "neg_log_likelihood", spy)
    est = MultiSubjectLatentRegressor(n_bumps=4, max_iter=1, batch_size=10, dtype="float64", random_state=0)
    est.fit(X, y)
    assert est.n_iter_ == 1 and est.n_updates_ == 3
    assert len(seen) == 6  # 3 updates, one batch of each subject per update
    models = [est.module_.subject(sid) for sid in ("s0", "s1")]
    by_subject = [[b for owner, b in seen if owner is model] for model in models]
    assert sorted(len(b) for b in by_subject[0]) == [3, 3, 4]
    assert sorted(len(b) for b in by_subject[1]) == [8, 8, 9]
    for batches, y_s in zip(by_subject, y):  # every sample exactly once
        rows = np.vstack(batches)
        np.testing.assert_array_equal(rows[np.lexsort(rows.T)], y_s[np.lexsort(y_s.T)])
    assert est.set_params(max_iter=2).fit(X, y).n_updates_ == 6


# ====================================================== spec §4: bump bounds
def test_bump_centres_and_widths_stay_within_their_bounds(data):
    X, y = data
    # a large learning rate pushes centres against the bounds: the clamp must hold them (minibatches:
    # full-batch Adam would go back to its best epoch, the start); the trained predictors, not smoothed
    est = MultiSubjectLatentRegressor(
        n_bumps=8, max_iter=10, learning_rate=0.5, batch_size=50, smooth_modes=False, random_state=0
    ).fit(X, y)
    on_bound = 0
    for kind, predictor in (("input", est.module_.input_predictors[0]), ("output", est.module_.output_predictors[0])):
        assert isinstance(predictor, SumOfBumpFcns)
        pooled = np.vstack([s.property_groups()[0 if kind == "input" else 1][0] for s in X])
        lo, hi = pooled.min(axis=0), pooled.max(axis=0)
        bounds = predictor.c_bounds.double().numpy()
        np.testing.assert_allclose(bounds, [lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo)], rtol=1e-6)
        c, w = predictor.c.detach(), predictor.w.detach()
        assert bool(((c >= predictor.c_bounds[0]) & (c <= predictor.c_bounds[1])).all()), kind
        assert bool(((w >= predictor.w_bounds[0]) & (w <= predictor.w_bounds[1])).all()), kind
        on_bound += int(((c == predictor.c_bounds[0]) | (c == predictor.c_bounds[1])).sum())
    assert on_bound > 0  # the bounds were reached, so the check above is not vacuous


# ================================================================ spec §5: errors
def _subject_with(subject, subject_id=None, **changes):
    (x,), ((R,), (Q,)) = subject.x_groups(), subject.property_groups()
    values = {"subject_id": subject.subject_id if subject_id is None else subject_id, "x": x}
    values.update(input_properties=R, output_properties=Q)
    values.update(changes)
    return SubjectData(**values)


def _bad_fit_data(case, X, y):
    X, y = list(X[:2]), list(y[:2])
    if case == "y_rows":
        y[1] = y[1][:-1]
    elif case == "y_columns":
        y[1] = y[1][:, :-1]
    elif case == "y_groups":
        y[1] = (y[1], y[1])
    elif case == "y_nan":
        y[1] = y[1].copy()
        y[1][3, 2] = np.nan
    elif case == "y_inf":
        y[1] = y[1].copy()
        y[1][0, 0] = np.inf
    elif case == "len":
        y = y[:1]
    elif case == "y_not_list":
        y = np.zeros(2)
    elif case == "duplicate":
        X[1] = _subject_with(X[1], subject_id="s0")
    elif case == "same_string":
        X = [_subject_with(X[0], subject_id=7), _subject_with(X[1], subject_id="7")]
    elif case == "q":
        X[1] = _subject_with(
            X[1], input_properties=X[1].input_properties[:, :2], output_properties=X[1].output_properties[:, :2]
        )
    elif case == "groups":
        X[1] = _split_inputs(X[1])
    elif case == "fixed_modes":
        X[1] = _subject_with(X[1], input_modes=[np.zeros((X[1].n_inputs[0], 3))])
    elif case == "identity":
        X = [_split_inputs(s) for s in X]
    elif case == "zero_samples":
        X[1], y[1] = _empty_like(X[1], "s1"), y[1][:0]
    return X, y


@pytest.mark.parametrize(
    "case, message",
    [
        ("len", "one entry per subject"),
        ("y_not_list", "one entry per subject"),
        ("y_rows", r"y\[0\] of subject 's1' must have shape \(n_samples=200"),
        ("y_columns", r"y\[0\] of subject 's1' must have shape .*n_outputs="),
        ("y_groups", r"y of subject 's1'"),
        ("y_nan", r"y\[0\] of subject 's1' contains NaN"),
        ("y_inf", r"y\[0\] of subject 's1' contains NaN or infinity"),
        ("duplicate", "unique"),
        ("same_string", "unique"),
        ("q", "subject 's1' has 2 properties per neuron; subject 's0' has 3"),
        ("groups", "subject 's1' has 2 input and 1 output group"),
        ("fixed_modes", r"input_modes\[0\] of subject 's1' has 3 columns; n_components=2"),
        ("identity", "mapping='identity'"),
        ("zero_samples", "subject 's1' has 0 samples"),
    ],
)
def test_bad_training_data_raise(data, case, message):
    X, y = _bad_fit_data(case, *data)
    est = MultiSubjectLatentRegressor(**FAST)
    with pytest.raises(ValueError, match=message):
        est.fit(X, y)
    assert not hasattr(est, "module_")


@pytest.mark.parametrize("bad", ["not a list", lambda X: X[0].x, lambda X: [X[0], X[1].x], lambda X: X[0]])
def test_x_that_is_not_a_list_of_subject_data_raises_type_error(data, fitted, bad):
    X, y = data
    bad_X = bad(X) if callable(bad) else bad
    with pytest.raises(TypeError, match="X must be a list of SubjectData"):
        MultiSubjectLatentRegressor(**FAST).fit(bad_X, y[:2])
    with pytest.raises(TypeError, match="X must be a list of SubjectData"):
        fitted.predict(bad_X)


def test_empty_subject_list_raises(data):
    with pytest.raises(ValueError, match="at least one subject"):
        MultiSubjectLatentRegressor(**FAST).fit([], [])


@pytest.mark.parametrize(
    "params, name",
    [
        ({"n_components": 0}, "n_components"),
        ({"n_components": -1}, "n_components"),
        ({"min_var": 0.0}, "min_var"),
        ({"min_var": -1e-3}, "min_var"),
        ({"mode_predictor": "gp"}, "mode_predictor"),
        ({"mapping": "affine"}, "mapping"),
        ({"n_bumps": 0}, "n_bumps"),
        ({"init": "pca"}, "init"),
    ],
)
def test_invalid_parameters_raise_naming_them(data, params, name):
    X, y = data
    with pytest.raises(ValueError, match=name):
        MultiSubjectLatentRegressor(**{**FAST, **params}).fit(X[:2], y[:2])


def test_unknown_subject_params_entry_raises(data):
    X, y = data
    with pytest.raises(ValueError, match=r"subject_params entries must be among .*\['bias'\]"):
        MultiSubjectLatentRegressor(**FAST, subject_params=("scales", "bias")).fit(X[:2], y[:2])


def test_prediction_data_must_match_the_fit(fitted, data):
    X, _ = data
    with pytest.raises(ValueError, match="subject 's2' has 2 input and 1 output group"):
        fitted.predict([_split_inputs(X[2])])
    wrong_q = _subject_with(
        X[2], input_properties=X[2].input_properties[:, :2], output_properties=X[2].output_properties[:, :2]
    )
    with pytest.raises(ValueError, match="2 properties per neuron; the model was fitted with 3"):
        fitted.predict([wrong_q])
    with pytest.raises(ValueError, match="does not match the shapes it had in training"):
        fitted.predict([_subject_with(X[2], subject_id="s0")])  # a training id with other neurons
    with pytest.raises(ValueError, match="one entry per subject"):
        fitted.score(X, [])


# =============================================== unseen subjects and options
def test_unseen_subject_uses_the_default_subject_parameters(fitted, data):
    X, y = data
    d = fitted.default_subject_params_
    pooled = np.concatenate([fitted.noise_variance_[sid] for sid in ("s0", "s1")])
    assert d["noise_variance"] == [pytest.approx(pooled.mean(), rel=1e-12)]
    # scale: the least-squares slope of all training neurons on their latent predictions z_j = t U_jᵀ
    # together (each neuron's scale weighted by var z_j); offset: the mean intercept at that scale
    c, o, z_mean, z_var = [], [], [], []
    for s, sid in zip(X[:2], ("s0", "s1")):
        P, U = fitted.predict_modes(s)
        z = (s.x_groups()[0].astype(np.float64) @ P) @ U.T
        c.append(fitted.scales_[sid]), o.append(fitted.offsets_[sid]), z_mean.append(z.mean(0)), z_var.append(z.var(0))
    c, o, z_mean, z_var = map(np.concatenate, (c, o, z_mean, z_var))
    scale = (z_var * c).sum() / z_var.sum()
    assert d["scales"] == [pytest.approx(scale, rel=1e-4)]
    assert d["offsets"] == [pytest.approx(np.mean(o + (c - scale) * z_mean), rel=1e-4, abs=1e-6)]
    assert d["offsets"][0] != 0.0 and d["scales"][0] != 1.0  # learned per subject, so they are informative
    x = X[2].x_groups()[0]
    P, U = fitted.predict_modes(X[2])
    expected = (x @ P) @ U.T * d["scales"][0] + d["offsets"][0]
    np.testing.assert_allclose(fitted.predict([X[2]])[0], expected, rtol=1e-5, atol=1e-5)
    # a training subject uses its own parameters
    x0 = X[0].x_groups()[0]
    P0, U0 = fitted.predict_modes(X[0])
    expected0 = (x0 @ P0) @ U0.T * fitted.scales_["s0"] + fitted.offsets_["s0"]
    np.testing.assert_allclose(fitted.predict([X[0]])[0], expected0, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fitted.transform([X[2]])[0], x @ P, rtol=1e-5, atol=1e-5)


def test_transferred_prediction_beats_the_mean(fitted, data):
    X, y = data
    assert fitted.score([X[0]], [y[0]]) > 0.5  # a training subject
    assert np.isfinite(fitted.score([X[2]], [y[2]]))


def test_mlp_mode_predictor(data):
    X, y = data
    est = MultiSubjectLatentRegressor(
        **{**FAST, "max_iter": 10}, mode_predictor="mlp", hidden_layer_sizes=(8, 8), batch_size=100
    ).fit(X[:2], y[:2])
    assert isinstance(est.module_.input_predictors[0], ModePredictorMLP)
    assert isinstance(est.module_.output_predictors[0], ModePredictorMLP)
    assert all(np.isfinite(p).all() for p in est.predict(X))
    assert np.isfinite(est.loss_curve_).all() and est.loss_curve_[-1] < est.loss_curve_[0]


def test_callable_mode_predictor_is_called_once_per_group(data):
    X, y = data
    calls = []

    def predictor(n_properties, n_components, generator):
        calls.append((n_properties, n_components, type(generator)))
        net = torch.nn.Sequential(torch.nn.Linear(n_properties, 4), torch.nn.Tanh(), torch.nn.Linear(4, n_components))
        with torch.no_grad():
            for p in net.parameters():
                p.normal_(0.0, 0.5, generator=generator)
        return net

    est = MultiSubjectLatentRegressor(**{**FAST, "max_iter": 5}, n_components=3, mode_predictor=predictor)
    est.fit(X[:2], y[:2])
    assert calls == [(3, 3, torch.Generator)] * 2
    assert all(np.isfinite(p).all() for p in est.predict(X))
    P, U = est.predict_modes(X[2])
    assert P.shape == (X[2].n_inputs[0], 3) and U.shape == (X[2].n_outputs[0], 3)


def test_linear_mapping_exposes_its_weight(data):
    X, y = data
    grouped = [_split_inputs(s) for s in X]  # G = 2 input groups, H = 1 output group
    est = MultiSubjectLatentRegressor(**{**FAST, "max_iter": 5}, mapping="linear").fit(grouped[:2], y[:2])
    assert isinstance(est.mapping_weight_, np.ndarray) and est.mapping_weight_.dtype == np.float64
    assert est.mapping_weight_.shape == (4, 2)
    np.testing.assert_array_equal(est.mapping_weight_, est.module_.mapping.weight.detach().double().numpy())
    assert not np.array_equal(est.mapping_weight_, np.vstack([np.eye(2), np.eye(2)]))  # trained
    assert est.n_input_groups_ == 2 and est.n_output_groups_ == 1
    P, U = est.predict_modes(grouped[2])
    assert isinstance(P, tuple) and [p.shape for p in P] == [(6, 2), (X[2].n_inputs[0] - 6, 2)]
    assert est.transform(grouped[2:])[0].shape == (X[2].n_samples, 4)
    assert all(np.isfinite(p).all() for p in est.predict(grouped))
    identity = MultiSubjectLatentRegressor(**{**FAST, "max_iter": 2}).fit(X[:2], y[:2])
    assert not hasattr(identity, "mapping_weight_")


def test_latent_affine_and_direct_pairs_run_on_the_per_sample_path():
    X, y = make_multi_subject_latent_regression(3, 200, n_inputs=12, n_outputs=12, random_state=0)
    est = MultiSubjectLatentRegressor(
        **{**FAST, "max_iter": 10},
        subject_params=("scales", "offsets", "latent_affine"),
        direct_pairs=((0, 0),),
        batch_size=100,
        dtype="float64",
    ).fit(X[:2], y[:2])
    assert est.n_updates_ == 20
    assert all(np.isfinite(p).all() for p in est.predict(X))
    model = est.module_.subject("s0")
    assert not torch.equal(model.direct[0].detach(), torch.zeros(12, dtype=torch.float64))
    a, b = est.latent_scales_["s0"][0], est.latent_offsets_["s0"][0]
    assert a.shape == b.shape == (2,) and not np.array_equal(a, np.ones(2))
    assert len(est.default_subject_params_["direct"]) == 1
    np.testing.assert_allclose(est.default_subject_params_["latent_scales"][0], (a + est.latent_scales_["s1"][0]) / 2)
    # latents and means as the model states them
    x = X[0].x_groups()[0]
    P, U = est.predict_modes(X[0])
    latents = (x @ P) * np.abs(a) + b
    np.testing.assert_allclose(est.transform([X[0]])[0], latents, rtol=1e-10, atol=1e-10)
    delta = model.direct[0].detach().numpy()
    expected = latents @ U.T * est.scales_["s0"] + est.offsets_["s0"] + x * delta
    np.testing.assert_allclose(est.predict([X[0]])[0], expected, rtol=1e-10, atol=1e-10)


def test_latent_affine_on_the_moment_path(data):
    X, y = data
    est = MultiSubjectLatentRegressor(**{**FAST, "max_iter": 5}, subject_params=("latent_affine",)).fit(X[:2], y[:2])
    assert all(np.isfinite(p).all() for p in est.predict(X))
    np.testing.assert_array_equal(est.scales_["s0"], 1.0)  # not learned: fixed at c = 1, o = 0
    np.testing.assert_array_equal(est.offsets_["s0"], 0.0)


def test_a_constant_output_neuron_gives_finite_loss_and_psi_at_least_its_floor(data):
    """ψ_j = min_var·Var(y_j) + softplus(ρ_j), data-driven start; a constant neuron must not break it."""
    X, y = data
    y = [a.copy() for a in y[:2]]
    y[0][:, 0] = 5.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=Warning, message="Stopped at max_iter")
        est = MultiSubjectLatentRegressor(**FAST, min_var=1e-3).fit(X[:2], y)
    assert np.isfinite(est.loss_curve_).all()
    floor = 1e-3 * target_scales(y[0])  # the constant neuron gets the mean variance of the others
    assert floor[0] == pytest.approx(1e-3 * y[0][:, 1:].var(axis=0).mean(), rel=1e-12)
    assert np.all(est.noise_variance_["s0"] >= floor * (1 - 1e-6)) and np.isfinite(est.noise_variance_["s0"]).all()


def test_min_var_is_relative_so_rescaled_targets_give_rescaled_noise_variances(data):
    """The floor scales with each neuron's variance, as in reduced rank (an absolute floor would not)."""
    X, y = data
    kwargs = {**FAST, "dtype": "float64", "min_var": 0.5}  # a floor that binds
    est = MultiSubjectLatentRegressor(**kwargs).fit(X[:2], y[:2])
    big = MultiSubjectLatentRegressor(**kwargs).fit(X[:2], [1e3 * a for a in y[:2]])
    for sid, y_s in zip(("s0", "s1"), y[:2]):
        floor = est.module_.subject(sid).var_floor(0).numpy()
        np.testing.assert_allclose(floor, 0.5 * y_s.var(axis=0), rtol=1e-12)
        np.testing.assert_allclose(big.module_.subject(sid).var_floor(0).numpy(), 1e6 * floor, rtol=1e-12)
        assert np.all(est.noise_variance_[sid] >= floor * (1 - 1e-9))
        assert np.all(big.noise_variance_[sid] >= 1e6 * floor * (1 - 1e-9))
        # where the floor binds, the scaled fit sits on the scaled floor
        binds = est.noise_variance_[sid] < 1.01 * floor
        assert binds.any()


# ================================== spec §2/§5: standard form, fit_subject, checkpoints
def test_standard_form_whitens_latents_and_leaves_predictions_unchanged(data, monkeypatch):
    X, y = data
    kwargs = {**FAST, "dtype": "float64"}
    est = MultiSubjectLatentRegressor(**kwargs).fit(X[:2], y[:2])
    latents = np.vstack([z - z.mean(axis=0) for z in est.transform(X[:2])])
    np.testing.assert_allclose(latents.T @ latents / len(latents), np.eye(2), atol=1e-5)
    scales = np.concatenate([est.scales_[sid] for sid in ("s0", "s1")])
    U = [est.predict_modes(s)[1] for s in X[:2]]
    # rms of the scales, each neuron weighted by the variance of its latent prediction t U_jᵀ
    signal = np.concatenate([((u @ np.cov(t, rowvar=False)) * u).sum(1) for u, t in zip(U, est.transform(X[:2]))])
    assert np.sqrt((signal * scales**2).sum() / signal.sum()) == pytest.approx(1.0, rel=1e-8)
    loadings = np.vstack([u * est.scales_[sid][:, None] for u, sid in zip(U, ("s0", "s1"))])
    gram = loadings.T @ loadings
    assert abs(gram[0, 1]) <= 1e-8 * gram[0, 0] and gram[0, 0] >= gram[1, 1]
    pooled_u = np.vstack(U)
    assert (pooled_u[np.argmax(np.abs(pooled_u), axis=0), [0, 1]] > 0).all()
    monkeypatch.setattr(MultiSubjectLatentRegressor, "_standardise", lambda self, module, subjects: None)
    raw = MultiSubjectLatentRegressor(**kwargs).fit(X[:2], y[:2])
    for a, b, y_s in zip(est.predict(X), raw.predict(X), y):  # seen and unseen subjects
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * np.abs(y_s).max())


def test_fit_subject_closed_form_is_per_neuron_least_squares(data):
    from sklearn.linear_model import LinearRegression

    X, y = data
    est = MultiSubjectLatentRegressor(**FAST, dtype="float64").fit(X[:2], y[:2])
    shared = {k: v.clone() for k, v in est.module_.state_dict().items() if not k.startswith("subjects.")}
    before = est.score([X[2]], [y[2]])  # with the default subject parameters
    est.fit_subject(X[2], y[2])
    assert est.subject_ids_ == ["s0", "s1", "s2"]
    for k, v in est.module_.state_dict().items():
        if not k.startswith("subjects."):
            assert torch.equal(v, shared[k]), k  # shared parts bitwise unchanged
    x = X[2].x_groups()[0]
    P, U = est.predict_modes(X[2])
    z = (x @ P) @ U.T
    for j in range(y[2].shape[1]):
        line = LinearRegression().fit(z[:, [j]], y[2][:, j])
        assert est.scales_["s2"][j] == pytest.approx(line.coef_[0], rel=1e-8, abs=1e-10)
        assert est.offsets_["s2"][j] == pytest.approx(line.intercept_, rel=1e-8, abs=1e-10)
        resid = y[2][:, j] - line.predict(z[:, [j]])
        floor = est.min_var * y[2][:, j].var()
        assert est.noise_variance_["s2"][j] == pytest.approx(max(np.mean(resid**2), floor), rel=1e-6)
    assert est.score([X[2]], [y[2]]) >= before  # per-neuron least squares can only fit better in sample


def test_fit_subject_with_the_engine_freezes_shared_parameters(data):
    X, y = data
    est = MultiSubjectLatentRegressor(**FAST, subject_params=("scales", "offsets", "latent_affine")).fit(X[:2], y[:2])
    shared = {k: v.clone() for k, v in est.module_.state_dict().items() if not k.startswith("subjects.")}
    before = est.score([X[2]], [y[2]])
    est.fit_subject(X[2], y[2])
    for k, v in est.module_.state_dict().items():
        if not k.startswith("subjects."):
            assert torch.equal(v, shared[k]), k
    assert est.score([X[2]], [y[2]]) > before  # its own parameters were fitted
    assert all(p.requires_grad for p in est.module_.input_predictors.parameters())  # released again


def test_checkpoint_resume_equals_an_uninterrupted_fit(data, tmp_path):
    X, y = data
    path = tmp_path / "run.pt"
    kwargs = {**FAST, "dtype": "float64", "batch_size": 64, "checkpoint_path": str(path), "checkpoint_every": 3}
    full = MultiSubjectLatentRegressor(**{**kwargs, "max_iter": 6, "checkpoint_path": str(tmp_path / "o.pt")})
    full.fit(X[:2], y[:2])
    MultiSubjectLatentRegressor(**{**kwargs, "max_iter": 3}).fit(X[:2], y[:2])  # "interrupted" after 3 epochs
    assert path.exists()
    resumed = MultiSubjectLatentRegressor(**{**kwargs, "max_iter": 6, "warm_start": True}).fit(X[:2], y[:2])
    np.testing.assert_allclose(resumed.loss_curve_, full.loss_curve_, rtol=1e-12)
    assert resumed.n_iter_ == full.n_iter_ == 6
    a, b = _state(resumed), _state(full)
    for name in b:
        np.testing.assert_allclose(a[name].numpy(), b[name].numpy(), rtol=1e-12, atol=1e-14, err_msg=name)


def test_checkpoint_every_needs_a_path(data):
    X, y = data
    with pytest.raises(ValueError, match="checkpoint_path"):
        MultiSubjectLatentRegressor(**FAST, checkpoint_every=2).fit(X[:2], y[:2])


def test_moment_objective_is_exact_in_float32_training():
    # the moments are kept in float64: the start objective equals the per-sample one closely
    X, y = make_multi_subject_latent_regression(2, 400, random_state=3)
    kw = dict(n_bumps=8, max_iter=1, random_state=0, dtype="float32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        moments = MultiSubjectLatentRegressor(**kw).fit(X, y)
        per_sample = MultiSubjectLatentRegressor(batch_size=400, **kw).fit(X, y)
    assert abs(moments.loss_curve_[0] - per_sample.loss_curve_[0]) < 1e-4 * abs(per_sample.loss_curve_[0])


def test_a_too_large_learning_rate_does_not_end_below_the_start():
    X, y = make_multi_subject_latent_regression(3, 400, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = MultiSubjectLatentRegressor(n_bumps=8, max_iter=1, random_state=0).fit(X[:2], y[:2])
        big = MultiSubjectLatentRegressor(n_bumps=8, max_iter=20, learning_rate=0.05, random_state=0).fit(X[:2], y[:2])
    assert big.score(X[2:], y[2:]) >= start.score(X[2:], y[2:]) - 1e-3


# ================================================================ several devices
@pytest.mark.parametrize(
    "extra", [{}, {"batch_size": 100}, {"mapping": "linear", "subject_params": ("latent_affine",)}]
)
def test_a_list_of_devices_gives_the_single_device_fit(extra):
    X, y = make_multi_subject_latent_regression(4, 300, random_state=0)
    kw = dict(n_bumps=8, max_iter=15, random_state=0, dtype="float64", **extra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        single = MultiSubjectLatentRegressor(device="cpu", **kw).fit(X[:3], y[:3])
        spread = MultiSubjectLatentRegressor(device=["cpu", "cpu"], **kw).fit(X[:3], y[:3])
    assert spread.device_placement_ == {0: 0, 1: 1, 2: 0}  # i % n, not the original's (i + 1) % n
    assert spread.device_ == [torch.device("cpu")] * 2 and single.device_ == torch.device("cpu")
    assert spread.loss_curve_ == single.loss_curve_
    for a, b in zip(single.predict(X), spread.predict(X)):
        np.testing.assert_array_equal(a, b)


def test_an_empty_device_list_is_rejected():
    X, y = make_multi_subject_latent_regression(2, 50, random_state=0)
    with pytest.raises(ValueError, match="device"):
        MultiSubjectLatentRegressor(device=[]).fit(X, y)


def test_a_device_list_from_a_gpu_machine_unpickles_on_cpu():
    X, y = make_multi_subject_latent_regression(2, 100, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = MultiSubjectLatentRegressor(n_bumps=6, max_iter=5, device=["cpu", "cpu"], random_state=0).fit(X, y)
    state = est.__getstate__()
    state["device_"] = ["cuda:0", "cuda:1"]
    clone = MultiSubjectLatentRegressor.__new__(MultiSubjectLatentRegressor)
    if torch.cuda.device_count() >= 2:
        pytest.skip("two GPUs present: nothing to map")
    with pytest.warns(UserWarning, match="mapped to 'cpu'"):
        clone.__setstate__(state)
    assert clone.device_ == [torch.device("cpu")] * 2
    for a, b in zip(est.predict(X), clone.predict(X)):
        np.testing.assert_array_equal(a, b)


def test_the_start_has_unit_scales_and_data_driven_offsets_and_variances():
    # the original drew scales from N(0, 0.01²) and psi from U(0.1, 0.2) whatever the data
    X, y = make_multi_subject_latent_regression(2, 200, random_state=0)
    est = MultiSubjectLatentRegressor(n_bumps=6, init="random", random_state=0)
    torch_gen, numpy_gen = torch.Generator().manual_seed(0), np.random.default_rng(0)
    module = est._build(X, [(v,) for v in y], torch_gen, numpy_gen)
    for s, v in zip(X, y):
        model = module.subject(s.subject_id)
        np.testing.assert_array_equal(model.scales[0].detach().numpy(), 1.0)
        np.testing.assert_allclose(model.offsets[0].detach().numpy(), v.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(model.psi(0).detach().numpy(), v.var(axis=0), rtol=1e-6)


def _latent_predictions(est, s):
    """z = t Uᵀ of a subject (unit scales, zero offsets, no direct maps), float64."""
    P, U = est.predict_modes(s)
    return (s.x_groups()[0].astype(np.float64) @ P) @ U.T


def test_default_scale_is_the_pooled_least_squares_slope(data):
    """After closed-form per-neuron fits (fit_subject), the new-subject scale and offset are exactly the
    common slope and mean intercept of all training neurons regressed together on their latent predictions;
    a subject whose parameters were refitted replaces its own weights (not appended)."""
    X, y = data
    est = MultiSubjectLatentRegressor(**FAST).fit(X[:2], y[:2])
    for s, y_s in zip(X[:2], y[:2]):
        est.fit_subject(s, y_s)
    assert len(est._signal) == 2
    z = [_latent_predictions(est, s) for s in X[:2]]
    zc = np.concatenate([zi - zi.mean(0) for zi in z], axis=1)
    yc = np.concatenate([yi - yi.mean(0) for yi in y[:2]], axis=1)
    slope = (zc * yc).sum() / (zc**2).sum()
    intercept = np.mean(np.concatenate([yi.mean(0) - slope * zi.mean(0) for yi, zi in zip(y[:2], z)]))
    assert est.default_subject_params_["scales"][0] == pytest.approx(slope, rel=1e-4)
    assert est.default_subject_params_["offsets"][0] == pytest.approx(intercept, rel=1e-4, abs=1e-5)


def test_a_neuron_with_an_arbitrary_scale_does_not_move_the_default_scale(data):
    """A training neuron whose latent prediction hardly varies (its variance set to 1e-9 of the mean,
    as for a predicted loading near 0) is given the scale -1000: the plain mean of the scales moves by
    ~1000/n_neurons, the pooled scale by at most 1e-9 · 1001 / n_neurons of it."""
    X, y = data
    est = MultiSubjectLatentRegressor(**FAST).fit(X[:2], y[:2])
    signal = est._signal[0][0]
    signal[1, 0] = 1e-9 * np.mean(np.concatenate([m[0][1] for m in est._signal]))
    est._store_attributes()
    before = est.default_subject_params_["scales"][0]
    n_neurons = sum(m[0].shape[1] for m in est._signal)
    with torch.no_grad():
        est.module_.subject(est.subject_ids_[0]).scales[0][0] = -1000.0
    est._store_attributes()
    plain = np.mean(np.concatenate([est.scales_[s] for s in est.subject_ids_]))
    assert plain < before - 500.0 / n_neurons  # what the plain mean would do
    assert abs(est.default_subject_params_["scales"][0] - before) < 1e-9 * 1001.0 * 2


def test_scales_without_offsets_pool_through_the_origin(data):
    """subject_params=("scales",): slopes through the origin (weights Σ z²), and the offsets stay 0."""
    X, y = data
    est = MultiSubjectLatentRegressor(**FAST, subject_params=("scales",)).fit(X[:2], y[:2])
    for s, y_s in zip(X[:2], y[:2]):
        est.fit_subject(s, y_s)
    z = np.concatenate([_latent_predictions(est, s) for s in X[:2]], axis=1)
    yy = np.concatenate(y[:2], axis=1)
    assert est.default_subject_params_["scales"][0] == pytest.approx((z * yy).sum() / (z**2).sum(), rel=1e-4)
    assert est.default_subject_params_["offsets"] == [0.0]


def test_fit_subject_after_a_warm_refit_without_that_subject(data):
    """fit_subject(s2), a warm refit on s0 and s1 (which lists only them), then fit_subject(s2)
    again: s2 is listed again, and the defaults pool all three, as after the first fit_subject."""
    X, y = data
    est = MultiSubjectLatentRegressor(**FAST).fit(X[:2], y[:2])
    est.fit_subject(X[2], y[2])
    est.set_params(warm_start=True).fit(X[:2], y[:2])
    assert [str(i) for i in est.subject_ids_] == [str(s.subject_id) for s in X[:2]]
    two = est.default_subject_params_["scales"][0]
    est.fit_subject(X[2], y[2])
    assert [str(i) for i in est.subject_ids_] == [str(s.subject_id) for s in X[:3]]
    assert len(est._signal) == len(est.subject_ids_) == len(est._grouped_y) == 3
    # the listed subjects' pooled slope: recomputed from the stored moments of all three
    scales = [est.module_.subject(s.subject_id).scales[0].detach().cpu().numpy() for s in X[:3]]
    n_var = [n * v for _, v, n in (sig[0] for sig in est._signal)]
    expected = sum((w * c).sum() for w, c in zip(n_var, scales)) / sum(w.sum() for w in n_var)
    assert est.default_subject_params_["scales"][0] == pytest.approx(expected, rel=1e-6)
    assert est.default_subject_params_["scales"][0] != pytest.approx(two, rel=1e-9)

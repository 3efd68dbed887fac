"""TrialScaler and TrialTransformer: the 2-D scikit-learn result on rows, masks, bad input, pipelines."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn import config_context
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, KFold, ParameterGrid, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, StandardScaler

import skneuro
from skneuro.preprocessing import TrialScaler, TrialTransformer
from skneuro.rnn import RateRNNRegressor

N_TRIALS, N_STEPS, N_IN, N_OUT = 18, 10, 3, 2


def _trials(seed=0):
    """Inputs far from standard, targets that depend on them, and a mask with padded trials."""
    rng = np.random.default_rng(seed)
    X = rng.normal(loc=[2.0, -1.0, 5.0], scale=[3.0, 0.5, 1.0], size=(N_TRIALS, N_STEPS, N_IN))
    y = np.tanh(np.cumsum(X[..., :N_OUT] - X[..., :N_OUT].mean(), axis=1) * 0.05)
    mask = np.ones((N_TRIALS, N_STEPS, N_OUT))
    mask[:, :2] = 0.0  # no answer asked at the start
    for trial, length in enumerate(rng.integers(6, N_STEPS + 1, size=N_TRIALS)):
        mask[trial, length:] = 0.0  # padding of shorter trials
        X[trial, length:] = 100.0  # whatever sits in the padding must not matter
    return X, y, mask


def _rows(A):
    return A.reshape(-1, A.shape[-1])


# ------------------------------------------------------------------ TrialScaler
@pytest.mark.parametrize("with_mean", [True, False])
@pytest.mark.parametrize("with_std", [True, False])
def test_trial_scaler_is_standard_scaler_on_rows(with_mean, with_std):
    X, _, _ = _trials()
    scaler = TrialScaler(with_mean=with_mean, with_std=with_std).fit(X)
    ref = StandardScaler(with_mean=with_mean, with_std=with_std).fit(_rows(X))
    Xt = scaler.transform(X)
    assert Xt.shape == X.shape and Xt.dtype == np.float64
    np.testing.assert_allclose(_rows(Xt), ref.transform(_rows(X)))
    np.testing.assert_allclose(scaler.inverse_transform(Xt), X)
    for name in ("mean_", "var_", "scale_"):
        expected = getattr(ref, name)
        assert (getattr(scaler, name) is None) == (expected is None)
        if expected is not None:
            np.testing.assert_allclose(getattr(scaler, name), expected)
    assert scaler.n_features_in_ == N_IN
    assert scaler.get_feature_names_out().tolist() == ["x0", "x1", "x2"]
    assert Xt is not X and scaler.fit_transform(X) is not X


def test_trial_scaler_with_a_mask_uses_the_weighted_time_points_only():
    X, _, mask = _trials()
    scaler = TrialScaler().fit(X, sample_weight=mask)
    step = mask.max(axis=2).reshape(-1) > 0
    np.testing.assert_allclose(scaler.mean_, _rows(X)[step].mean(axis=0))
    np.testing.assert_allclose(scaler.scale_, _rows(X)[step].std(axis=0))
    # the padding (X = 100 there) does not move the statistics; a 2-D mask is the same
    np.testing.assert_allclose(TrialScaler().fit(X, sample_weight=mask[..., 0]).mean_, scaler.mean_)
    # graded weights are StandardScaler's weights
    w = np.random.default_rng(1).uniform(0.1, 2.0, size=(N_TRIALS, N_STEPS))
    ref = StandardScaler().fit(_rows(X), sample_weight=w.reshape(-1))
    np.testing.assert_allclose(TrialScaler().fit(X, sample_weight=w).scale_, ref.scale_)


def test_trial_scaler_constant_feature_is_left_unscaled():
    X = np.random.default_rng(0).normal(size=(4, 5, 2))
    X[..., 1] = 3.0
    Xt = TrialScaler().fit_transform(X)
    np.testing.assert_allclose(Xt[..., 1], 0.0)
    assert np.isfinite(Xt).all()


# ------------------------------------------------------------- TrialTransformer
def test_trial_transformer_is_the_transformer_on_rows():
    X, _, _ = _trials()
    pca = PCA(n_components=2)
    wrapped = TrialTransformer(pca).fit(X)
    ref = PCA(n_components=2).fit(_rows(X))
    Xt = wrapped.transform(X)
    assert Xt.shape == (N_TRIALS, N_STEPS, 2)
    np.testing.assert_allclose(_rows(Xt), ref.transform(_rows(X)))
    np.testing.assert_allclose(_rows(wrapped.inverse_transform(Xt)), ref.inverse_transform(ref.transform(_rows(X))))
    np.testing.assert_allclose(wrapped.fit_transform(X), Xt)
    assert wrapped.get_feature_names_out().tolist() == ["pca0", "pca1"]
    assert not hasattr(pca, "components_")  # cloned, never fitted itself
    assert wrapped.transformer_ is not pca and wrapped.transformer_.n_components_ == 2
    assert wrapped.n_features_in_ == N_IN


def test_trial_transformer_mask_is_passed_on_or_selects_time_points():
    X, _, mask = _trials()
    step = mask.max(axis=2).reshape(-1) > 0
    # a transformer that takes sample_weight gets it: StandardScaler inside equals TrialScaler
    inner = TrialTransformer(StandardScaler()).fit(X, sample_weight=mask)
    np.testing.assert_allclose(inner.transform(X), TrialScaler().fit(X, sample_weight=mask).transform(X))
    # one that does not is fitted on the time points of the (0/1) mask
    pca = TrialTransformer(PCA(n_components=2)).fit(X, sample_weight=2.0 * mask)
    ref = PCA(n_components=2).fit(_rows(X)[step])
    np.testing.assert_allclose(_rows(pca.transform(X)), ref.transform(_rows(X)))
    graded = mask * np.random.default_rng(0).uniform(0.5, 1.0, size=mask.shape)
    with pytest.raises(ValueError, match="sample_weight: PCA.fit takes no sample_weight"):
        TrialTransformer(PCA()).fit(X, sample_weight=graded)


def test_trial_transformer_turns_sparse_and_dataframe_outputs_into_trials():
    X, _, _ = _trials()
    from scipy import sparse

    to_sparse = FunctionTransformer(sparse.csr_matrix, inverse_func=lambda A: A.toarray())
    out = TrialTransformer(to_sparse).fit(X).transform(X)
    assert isinstance(out, np.ndarray) and out.shape == X.shape
    np.testing.assert_allclose(out, X)
    pytest.importorskip("pandas")
    pandas_inner = TrialTransformer(StandardScaler().set_output(transform="pandas")).fit(X)
    out = pandas_inner.transform(X)
    assert isinstance(out, np.ndarray) and out.shape == X.shape
    np.testing.assert_allclose(out, TrialScaler().fit_transform(X))


class _Square(TransformerMixin, BaseEstimator):
    """A stateless transformer with neither inverse_transform nor get_feature_names_out."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.asarray(X) ** 2


def test_trial_transformer_without_inverse_or_names_has_neither():
    X, _, _ = _trials()
    assert hasattr(TrialTransformer(PCA()), "inverse_transform")
    wrapped = TrialTransformer(_Square())
    assert not hasattr(wrapped, "inverse_transform") and not hasattr(wrapped, "get_feature_names_out")
    np.testing.assert_allclose(wrapped.fit_transform(X), X**2)
    assert not hasattr(wrapped, "inverse_transform") and not hasattr(wrapped, "get_feature_names_out")


# --------------------------------------------------------------------- bad input
TRANSFORMERS = [TrialScaler(), TrialTransformer(PCA(n_components=2))]
IDS = ["TrialScaler", "TrialTransformer"]


@pytest.mark.parametrize("est", TRANSFORMERS, ids=IDS)
def test_two_d_input_names_x_and_the_expected_shape(est):
    X, _, _ = _trials()
    expected = r"X must be a 3-D array of trials \(n_trials, n_steps, n_features\); got shape \(10, 3\)"
    with pytest.raises(ValueError, match=expected):
        clone(est).fit(X[0])
    with pytest.raises(ValueError, match=expected):
        clone(est).fit_transform(X[0])
    fitted = clone(est).fit(X)
    with pytest.raises(ValueError, match=expected):
        fitted.transform(X[0])
    with pytest.raises(ValueError, match=r"X must be a 3-D array of trials .* \(18, 10, 3, 1\)"):
        fitted.transform(X[..., None])
    with pytest.raises(ValueError, match="X has 2 features in its last axis, but .* fitted with 3"):
        fitted.transform(X[..., :2])
    with pytest.raises(ValueError, match="X must have at least one trial"):
        clone(est).fit(X[:0])
    with pytest.raises(ValueError, match="X contains NaN"):
        clone(est).fit(np.where(X > 4, np.nan, X))
    with pytest.raises(TypeError, match="X must be a numeric array"):
        clone(est).fit(X.astype(str))


@pytest.mark.parametrize("est", TRANSFORMERS, ids=IDS)
def test_mask_that_disagrees_with_x_names_sample_weight(est):
    X, _, mask = _trials()
    for bad in (mask[:-1], mask[:, :-1], mask[..., 0].reshape(-1), mask[..., None], mask[..., :0]):
        with pytest.raises(ValueError, match=r"sample_weight must have shape \(n_trials, n_steps\) = \(18, 10\)"):
            clone(est).fit(X, sample_weight=bad)
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        clone(est).fit(X, sample_weight=-mask)
    with pytest.raises(ValueError, match="sample_weight is zero everywhere"):
        clone(est).fit(X, sample_weight=0 * mask)
    with pytest.raises(ValueError, match="sample_weight contains NaN"):
        clone(est).fit(X, sample_weight=np.where(mask > 0, np.nan, 0))
    with pytest.raises(TypeError, match="sample_weight must be a numeric array"):
        clone(est).fit(X, sample_weight=mask.astype(str))


@pytest.mark.parametrize("est", TRANSFORMERS, ids=IDS)
def test_unfitted_and_invalid_parameters(est):
    X, _, _ = _trials()
    with pytest.raises(NotFittedError):
        clone(est).transform(X)
    with pytest.raises(NotFittedError):
        clone(est).inverse_transform(X)
    bad = {"TrialScaler": {"with_mean": "yes"}, "TrialTransformer": {"transformer": "PCA"}}[type(est).__name__]
    with pytest.raises(ValueError, match=f"The '{next(iter(bad))}' parameter"):
        clone(est).set_params(**bad).fit(X)


# -------------------------------------------------------------------- set_output
@pytest.mark.parametrize("est", TRANSFORMERS, ids=IDS)
def test_set_output_accepts_default_only_and_ignores_the_global_setting(est):
    X, _, _ = _trials()
    ref = clone(est).fit_transform(X)
    for value in (None, "default"):
        assert isinstance(clone(est).set_output(transform=value).fit_transform(X), np.ndarray)
    for value in ("pandas", "polars"):
        with pytest.raises(ValueError, match=r"3-D trials .* set_output accepts transform='default' or None only"):
            clone(est).set_output(transform=value)
    pipe = make_pipeline(clone(est), RateRNNRegressor())
    pipe.set_output(transform="default")
    with pytest.raises(ValueError, match="DataFrame cannot hold"):
        pipe.set_output(transform="pandas")
    pytest.importorskip("pandas")  # scikit-learn refuses the global setting without it
    with config_context(transform_output="pandas"):
        np.testing.assert_array_equal(clone(est).fit_transform(X), ref)
        np.testing.assert_array_equal(clone(est).fit(X).transform(X), ref)


# ------------------------------------------------------------- sklearn plumbing
@pytest.mark.parametrize("est", TRANSFORMERS, ids=IDS)
def test_clone_pickle_and_params(est):
    X, _, mask = _trials()
    fitted = clone(est).fit(X, sample_weight=mask)
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.transform(X), fitted.transform(X))
    assert clone(fitted).get_params().keys() == est.get_params().keys()
    assert not hasattr(clone(fitted), "n_features_in_")
    assert type(est).__name__ in repr(est)


def test_trial_scaler_saves_without_pickle(tmp_path):
    X, _, _ = _trials()
    scaler = TrialScaler(with_mean=False).fit(X)
    skneuro.save(scaler, tmp_path / "scaler.skneuro")
    loaded = skneuro.load(tmp_path / "scaler.skneuro")
    np.testing.assert_array_equal(loaded.transform(X), scaler.transform(X))


def test_pipeline_of_trial_transformers():
    X, _, _ = _trials()
    pipe = make_pipeline(TrialScaler(), TrialTransformer(PCA(n_components=2)), TrialTransformer(MinMaxScaler()))
    out = pipe.fit_transform(X)
    assert out.shape == (N_TRIALS, N_STEPS, 2) and out.min() == pytest.approx(0) and out.max() == pytest.approx(1)
    scaler = TrialScaler().fit(X)
    pca = TrialTransformer(PCA(n_components=2)).fit(scaler.transform(X))
    projected = scaler.inverse_transform(pca.inverse_transform(pca.transform(scaler.transform(X))))
    np.testing.assert_allclose(pipe.inverse_transform(out), projected)
    assert pipe.get_feature_names_out().tolist() == ["pca0", "pca1"]  # names pass through the pipeline


# ----------------------------------------------------- pipelines in front of RNNs
def _rnn(**kw):
    params = {"n_rec": 4, "max_iter": 3, "batch_size": 6, "learning_rate": 1e-2, "dtype": "float64", "random_state": 0}
    params.update(kw)
    return RateRNNRegressor(**params)


def _scale_by_hand(X_train, w_train, with_std):
    """Weighted mean and standard deviation over the time points of the training trials."""
    rows, w = _rows(X_train), w_train.max(axis=2).reshape(-1)
    mean = np.average(rows, axis=0, weights=w)
    std = np.sqrt(np.average((rows - mean) ** 2, axis=0, weights=w)) if with_std else np.ones(rows.shape[1])
    return lambda A: (A - mean) / std


def test_pipeline_fits_predicts_and_scores_with_a_mask():
    X, y, mask = _trials()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = make_pipeline(TrialScaler(), _rnn()).fit(X, y, raternnregressor__sample_weight=mask)
        scale = _scale_by_hand(X, np.ones_like(mask), True)
        by_hand = _rnn().fit(scale(X), y, sample_weight=mask)
    np.testing.assert_allclose(pipe.predict(X), by_hand.predict(scale(X)))
    assert pipe.score(X, y, sample_weight=mask) == pytest.approx(by_hand.score(scale(X), y, sample_weight=mask))
    assert pipe.score(X, y, sample_weight=mask) != pytest.approx(pipe.score(X, y))


def test_grid_search_pipeline_matches_scaling_by_hand():
    """Routed masks: the scaler's statistics, the fit and the test scores all use them per fold."""
    X, y, mask = _trials()
    grid = {"raternnregressor__n_rec": [3, 6], "trialscaler__with_std": [True, False]}
    cv = KFold(3)
    with config_context(enable_metadata_routing=True), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = make_pipeline(
            TrialScaler().set_fit_request(sample_weight=True),
            _rnn().set_fit_request(sample_weight=True).set_score_request(sample_weight=True),
        )
        search = GridSearchCV(pipe, grid, cv=cv).fit(X, y, sample_weight=mask)
        cv_scores = cross_val_score(pipe, X, y, params={"sample_weight": mask}, cv=cv)

    by_hand = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for params in ParameterGrid(grid):
            fold_scores = []
            for train, test in cv.split(X):
                scale = _scale_by_hand(X[train], mask[train], params["trialscaler__with_std"])
                rnn = _rnn(n_rec=params["raternnregressor__n_rec"])
                rnn.fit(scale(X[train]), y[train], sample_weight=mask[train])
                fold_scores.append(rnn.score(scale(X[test]), y[test], sample_weight=mask[test]))
            by_hand.append((params, fold_scores))
    for i, (params, fold_scores) in enumerate(by_hand):
        assert search.cv_results_["params"][i] == params
        for k, score in enumerate(fold_scores):
            assert search.cv_results_[f"split{k}_test_score"][i] == pytest.approx(score, rel=1e-9, abs=1e-12)
    best = max(by_hand, key=lambda item: np.mean(item[1]))
    assert search.best_params_ == best[0]
    assert search.best_score_ == pytest.approx(np.mean(best[1]), rel=1e-9)
    # cross_val_score of the default pipeline (n_rec=4, with_std=True) is the same by hand
    for (train, test), score in zip(cv.split(X), cv_scores):
        scale = _scale_by_hand(X[train], mask[train], True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rnn = _rnn().fit(scale(X[train]), y[train], sample_weight=mask[train])
        assert score == pytest.approx(rnn.score(scale(X[test]), y[test], sample_weight=mask[test]), rel=1e-9)


def test_routing_the_mask_away_from_the_scaler_scales_over_all_time_points():
    X, y, mask = _trials()
    with config_context(enable_metadata_routing=True), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scaler = TrialScaler().set_fit_request(sample_weight=False)
        pipe = make_pipeline(scaler, _rnn().set_fit_request(sample_weight=True))
        pipe.fit(X, y, sample_weight=mask)
        np.testing.assert_allclose(pipe[0].mean_, _rows(X).mean(axis=0))
        # a scaler that leaves the request unset makes routing refuse the mask, as scikit-learn does
        unset = make_pipeline(TrialScaler(), _rnn().set_fit_request(sample_weight=True))
        with pytest.raises(ValueError, match="sample_weight"):
            unset.fit(X, y, sample_weight=mask)


def test_grid_search_reaches_the_wrapped_transformer_parameters():
    X, y, mask = _trials()
    pipe = make_pipeline(TrialTransformer(PCA()), _rnn(max_iter=1))
    assert "trialtransformer__transformer__n_components" in pipe.get_params()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search = GridSearchCV(pipe, {"trialtransformer__transformer__n_components": [1, 2]}, cv=2)
        search.fit(X, y, raternnregressor__sample_weight=mask)
    assert (
        search.best_estimator_[0].transformer_.n_components_
        == search.best_params_["trialtransformer__transformer__n_components"]
    )
    assert search.predict(X).shape == y.shape

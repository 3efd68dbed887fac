"""Reduced rank at whole-brain scale (issue #13): moments, the closed form linear in the
targets, the subsample start, out-of-core inputs and their bad input.

The large-data path (start values on a row subsample polished on all rows, the engine
reading row chunks) normally starts beyond 2**23 (sample, target) pairs; the tests lower
that threshold to exercise it on small data.
"""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest

from skneuro.reduced_rank import RRLinearRegressor, RRSigmoidRegressor
from skneuro.reduced_rank import _estimators as est_module
from skneuro.reduced_rank._closed_form import closed_form_moments
from skneuro.reduced_rank._moments import data_moments
from skneuro.utils._chunks import RowReader, is_array_source


def _sigmoid_data(n, d, p, k, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    w0 = rng.normal(scale=1 / np.sqrt(d), size=(d, k))
    w1 = rng.normal(size=(p, k))
    g, o1, o2 = rng.uniform(2, 4, p), rng.uniform(-1, 1, p), rng.uniform(5, 10, p)
    v = rng.uniform(0.2, 0.5, p)
    X = rng.normal(size=(n, d))
    Y = g / (1 + np.exp(-(X @ w0 @ w1.T + o1))) + o2 + rng.normal(size=(n, p)) * np.sqrt(v)
    return X.astype(dtype), Y.astype(dtype)


class CountingArray:
    """A file-backed-like array: shape, dtype, row slicing; records the most rows read at once."""

    def __init__(self, data):
        self._data = data
        self.shape, self.dtype, self.ndim = data.shape, data.dtype, data.ndim
        self.most_rows = 0

    def __getitem__(self, index):
        out = self._data[index]
        self.most_rows = max(self.most_rows, out.shape[0] if out.ndim else 1)
        return out


@pytest.fixture
def small_threshold(monkeypatch):
    """The large-data path from 2,000 (sample, target) pairs, with a 60-row subsample."""
    monkeypatch.setattr(est_module, "IN_ONE_PIECE", 2000)
    monkeypatch.setattr(est_module, "SUBSAMPLE_ROWS", 60)


# ------------------------------------------------------------------ moments and closed form
def test_moments_equal_numpy_despite_large_offsets():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 3)) + 1e6
    Y = X[:, :2] @ np.array([[1.0, 2.0, 0.5], [0.0, 1.0, -1.0]]) + rng.normal(size=(500, 3)) + 1e7
    mom = data_moments(RowReader(X, "X"), RowReader(Y, "y"), subsample=np.array([3, 77, 499]), budget=60)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    np.testing.assert_allclose(mom.sxx, Xc.T @ Xc, rtol=1e-7)
    np.testing.assert_allclose(mom.sxy, Xc.T @ Yc, rtol=1e-7)
    np.testing.assert_allclose(mom.syy, (Yc**2).sum(0), rtol=1e-7)
    np.testing.assert_allclose(mom.y_mean, Y.mean(0), rtol=1e-14)
    np.testing.assert_array_equal(mom.x_sub, X[[3, 77, 499]])
    np.testing.assert_array_equal(mom.y_min, Y.min(0))


def _closed_form_by_hand(X, Y, k, rounds=30):
    """The p × p form of the weighted rank-k fit: W = B Γ V_k V_kᵀ Γ⁻¹, v = RSS / n."""
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    A = Xc.T @ Xc
    B = np.linalg.solve(A, Xc.T @ Yc)
    v = ((Yc - Xc @ B) ** 2).mean(0)
    for _ in range(rounds):
        gamma = 1 / np.sqrt(v)
        _, vecs = np.linalg.eigh(gamma[:, None] * (B.T @ A @ B) * gamma[None, :])
        Vk = vecs[:, ::-1][:, :k]
        W = (B * gamma) @ Vk @ (Vk.T / gamma)
        v = ((Yc - Xc @ W) ** 2).mean(0)
    return W, v


@pytest.mark.parametrize("d, p", [(6, 40), (40, 6)])
def test_closed_form_from_moments_equals_the_p_by_p_form(d, p):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, d))
    Y = X @ rng.normal(size=(d, p)) * 0.3 + rng.normal(size=(300, p)) * rng.uniform(0.5, 2, p)
    w0, w1, _, v, _ = closed_form_moments(data_moments(RowReader(X, "X"), RowReader(Y, "y")), 2, tol=1e-12)
    W, v_ref = _closed_form_by_hand(X, Y, 2, rounds=200)
    np.testing.assert_allclose(w0 @ w1.T, W, atol=1e-8)
    np.testing.assert_allclose(v, v_ref, rtol=1e-8)


def test_closed_form_cost_is_linear_in_the_targets():
    """20,000 targets: a p × p eigenproblem would need 3.2 GB; the d × d route needs none."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 5))
    Y = X @ rng.normal(size=(5, 20000)) + rng.normal(size=(200, 20000))
    tracemalloc.start()
    est = RRLinearRegressor(n_components=2).fit(X, Y)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 * Y.nbytes  # moments, chunks and factors only
    assert est.w0_.shape == (5, 2) and est.w1_.shape == (20000, 2)


# ------------------------------------------------------------------ the large-data path
def test_subsample_start_reaches_the_all_rows_likelihood(small_threshold):
    X, Y = _sigmoid_data(1500, 8, 12, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chunked = RRSigmoidRegressor(n_components=2, random_state=0).fit(X, Y)
    est_module.IN_ONE_PIECE = 2**40  # everything at once, as for small data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole = RRSigmoidRegressor(n_components=2, random_state=0).fit(X, Y)
    n, p = Y.shape
    per_target = (chunked.log_likelihood(X, Y) - whole.log_likelihood(X, Y)) / p
    assert abs(per_target) < 1e-3  # nats per sample and target


def test_float32_data_are_not_copied_to_float64(small_threshold, monkeypatch):
    # chunks of 2**16 elements: what is left of numpy's peak is what does not scale with them
    monkeypatch.setattr(est_module, "_chunk_budget", lambda n, width, out_of_core: 2**16)
    X, Y = _sigmoid_data(20000, 10, 50, 2)
    tracemalloc.start()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        RRSigmoidRegressor(n_components=2, random_state=0, max_iter=3).fit(X, Y)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 0.5 * Y.nbytes  # numpy's share: chunks; a float64 copy of Y alone would be 2 * Y.nbytes


@pytest.mark.parametrize("threshold", [2**23, 0], ids=["read-whole", "chunked"])
def test_memmap_fit_is_as_good_as_the_in_memory_fit(tmp_path, monkeypatch, threshold):
    X, Y = _sigmoid_data(4000, 6, 8, 2)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "Y.npy", Y)
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
    Ym = np.load(tmp_path / "Y.npy", mmap_mode="r")
    assert is_array_source(Xm) and not is_array_source(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        in_memory = RRSigmoidRegressor(n_components=2, random_state=0).fit(X, Y)
        monkeypatch.setattr(est_module, "IN_ONE_PIECE", threshold)
        from_files = RRSigmoidRegressor(n_components=2, random_state=0).fit(Xm, Ym)
    per_target = (in_memory.log_likelihood(X, Y) - from_files.log_likelihood(X, Y)) / Y.shape[1]
    assert abs(per_target) < 1e-3  # nats per sample and target
    np.testing.assert_array_equal(np.load(tmp_path / "Y.npy"), Y)  # never written


def test_array_like_sources_are_read_in_row_chunks(monkeypatch):
    monkeypatch.setattr(est_module, "IN_ONE_PIECE", 0)
    monkeypatch.setattr(est_module, "SUBSAMPLE_ROWS", 100)
    monkeypatch.setattr(est_module, "_chunk_budget", lambda n, width, out_of_core: 40 * width)
    X, Y = _sigmoid_data(4000, 6, 8, 2)
    Xs, Ys = CountingArray(X), CountingArray(Y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = RRSigmoidRegressor(n_components=2, random_state=0).fit(Xs, Ys)
    # chunks are 40 rows; from files the subsample holds at most a quarter of the rows
    assert max(Xs.most_rows, Ys.most_rows) <= 1000  # 4,000 rows, at most a quarter at once
    assert est.n_features_in_ == 6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = RRSigmoidRegressor(n_components=2, random_state=0).fit(X, Y)
    gap = (ref.log_likelihood(X, Y) - est.log_likelihood(X, Y)) / 8
    assert abs(gap) < 1e-3


def test_read_only_inputs_are_never_written(small_threshold):
    X, Y = _sigmoid_data(300, 6, 10, 2, dtype=np.float64)
    X.flags.writeable = False
    Y.flags.writeable = False
    before = Y.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # e.g. torch's "non-writable array" warning
        warnings.filterwarnings("ignore", category=Warning, message=".*max_iter.*")
        RRSigmoidRegressor(n_components=2, random_state=0, max_iter=5).fit(X, Y)
    np.testing.assert_array_equal(Y, before)


def test_early_stopping_on_an_out_of_core_source(tmp_path):
    X, Y = _sigmoid_data(400, 5, 6, 2)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "Y.npy", Y)
    est = RRSigmoidRegressor(n_components=2, early_stopping=True, random_state=0).fit(
        np.load(tmp_path / "X.npy", mmap_mode="r"), np.load(tmp_path / "Y.npy", mmap_mode="r")
    )
    assert est.best_validation_score_ == max(est.validation_scores_)


# ------------------------------------------------------------------ bad input
def test_nan_in_a_memmap_names_the_argument_and_the_row(tmp_path):
    X, Y = _sigmoid_data(40000, 3, 2, 1)
    Y[31337, 1] = np.nan
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "Y.npy", Y)
    Xm, Ym = np.load(tmp_path / "X.npy", mmap_mode="r"), np.load(tmp_path / "Y.npy", mmap_mode="r")
    with pytest.raises(ValueError, match=r"^y contains NaN or infinity in row 31337"):
        RRSigmoidRegressor(n_components=1).fit(Xm, Ym)
    X[5, 0] = np.inf
    np.save(tmp_path / "X.npy", X)
    with pytest.raises(ValueError, match=r"^X contains NaN or infinity in row 5"):
        RRSigmoidRegressor(n_components=1).fit(np.load(tmp_path / "X.npy", mmap_mode="r"), Ym)


def test_file_backed_shapes_that_disagree_name_both(tmp_path):
    X, Y = _sigmoid_data(50, 3, 2, 1)
    np.save(tmp_path / "X.npy", X)
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
    with pytest.raises(ValueError, match=r"X and y have different numbers of rows: X has shape \(50, 3\), y has shape"):
        RRSigmoidRegressor().fit(Xm, Y[:40])
    with pytest.raises(TypeError, match="^y must be a real numeric array"):
        RRSigmoidRegressor().fit(Xm, np.array(["a"] * 50))
    with pytest.raises(ValueError, match="^X must be 2-D"):
        RRSigmoidRegressor().fit(CountingArray(np.zeros(50)), Y)
    est = RRSigmoidRegressor(n_components=1, max_iter=2).fit(Xm, Y)
    with pytest.raises(ValueError, match="X has 2 features, but RRSigmoidRegressor is expecting 3"):
        est.set_params(warm_start=True).fit(CountingArray(X[:, :2]), Y)


def test_data_frame_X_with_a_memmap_y_keeps_feature_names(tmp_path):
    pd = pytest.importorskip("pandas")
    X, Y = _sigmoid_data(200, 3, 4, 1)
    np.save(tmp_path / "Y.npy", Y)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    est = RRLinearRegressor(n_components=1).fit(frame, np.load(tmp_path / "Y.npy", mmap_mode="r"))
    assert list(est.feature_names_in_) == ["a", "b", "c"]
    with pytest.raises(ValueError, match=r"^y(:| has) .*0 (columns|feature)"):
        RRLinearRegressor(n_components=1).fit(frame, np.load(tmp_path / "Y.npy", mmap_mode="r")[:, :0])
    np.save(tmp_path / "X0.npy", np.zeros((200, 0), dtype=np.float32))
    with pytest.raises(ValueError, match="^X has 0 columns"):
        RRLinearRegressor(n_components=1).fit(np.load(tmp_path / "X0.npy", mmap_mode="r"), Y)

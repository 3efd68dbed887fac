"""Data statistics of the latent model (issue #13): chunked moments, passes over the data, memory."""

import tracemalloc
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone

import skneuro.latent_regression._statistics as statistics
from skneuro.datasets import make_multi_subject_latent_regression
from skneuro.latent_regression import MultiSubjectLatentRegressor, SubjectData
from skneuro.latent_regression._modules import (
    IdentityMapping,
    SubjectModel,
    _softplus_inverse,
    held_out_neg_log_likelihood,
)
from skneuro.latent_regression._statistics import (
    DataProjections,
    basis_statistics,
    column_moments,
    data_moments,
    passes_over_data,
    project_rows,
    projections,
    subject_statistics,
)


def _data(n=57, d=11, e=7, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(n, d)) + rng.uniform(-3, 3, size=d)).astype(dtype)
    y = (rng.normal(size=(n, e)) + rng.uniform(-3, 3, size=e)).astype(dtype)
    return x, y


def _over_data(x, y, dtype, wide=torch.float64):
    """The data-pass statistics whatever the sizes (the rule is tested on its own)."""
    x_mean, (y_mean, syy, _) = statistics.column_means(x), column_moments(y)
    count = torch.tensor([x.shape[0]], dtype=wide)
    n, x_mean, y_mean, syy = count, *(torch.tensor(a, dtype=wide) for a in (x_mean, y_mean, syy))
    return (n, x_mean, y_mean, statistics.pass_tensor(x, dtype), statistics.pass_tensor(y, dtype), syy)


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of a few rows, so every sum runs over several chunks."""
    monkeypatch.setattr(statistics, "PASS_CHUNK_BYTES", 5 * 8 * 11)
    monkeypatch.setattr(statistics, "MOMENT_CHUNK_BYTES", 3 * 8 * 18)


def test_chunked_moments_equal_the_direct_ones(small_chunks):
    x, y = _data(dtype=np.float32)
    n, x_mean, y_mean, sxx, sxy, syy = data_moments(x, y)
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    xc, yc = x64 - x64.mean(axis=0), y64 - y64.mean(axis=0)
    assert n.tolist() == [57.0] and sxx.dtype == sxy.dtype == np.float64
    np.testing.assert_allclose(x_mean, x64.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(y_mean, y64.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(sxx, xc.T @ xc, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(sxy, xc.T @ yc, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(syy, (yc**2).sum(axis=0), rtol=1e-12)
    mean, sum_sq, abs_max = column_moments(y)
    np.testing.assert_allclose(sum_sq / len(y), y64.var(axis=0), rtol=1e-12)
    np.testing.assert_array_equal(abs_max, np.abs(y64).max(axis=0))
    phi = np.random.default_rng(1).uniform(size=(11, 4))
    st = basis_statistics(x, y, phi)
    z = xc @ phi
    np.testing.assert_allclose(st["ztz"], z.T @ z, rtol=1e-10)
    np.testing.assert_allclose(st["zty"], z.T @ yc, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(project_rows(x, phi), x64 @ phi, rtol=1e-12)


def test_data_passes_equal_the_moments_and_their_gradient(small_chunks):
    x, y = _data()
    rng = np.random.default_rng(2)
    P = torch.tensor(rng.normal(size=(11, 2)), requires_grad=True)
    V = torch.tensor(rng.normal(size=(7, 2)), requires_grad=True)
    moments = tuple(torch.tensor(a) for a in data_moments(x, y))
    data = _over_data(x, y, torch.float64)
    for expected, got in zip(projections(moments, P, weights=V), projections(data, P, True, weights=V)):
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-10)
    assert projections(data, P, True)[2] is None
    n, x_mean, y_mean, xt, yt, _ = data

    def apply(p, v):
        return DataProjections.apply(p, v, xt, yt, x_mean, y_mean)

    # G and Z: the gradient from the one pass; C as well: the two extra passes
    assert torch.autograd.gradcheck(lambda p, v: apply(p, v)[::2], (P, V))
    assert torch.autograd.gradcheck(apply, (P, V))


@pytest.mark.parametrize("subject_params", [("scales", "offsets"), ("scales", "offsets", "latent_affine")])
def test_objective_over_data_equals_the_moment_objective(small_chunks, subject_params):
    x, y = _data()
    rng = np.random.default_rng(3)
    model = SubjectModel([11], [7], 2, subject_params, var_floor=1e-3, dtype=torch.float64)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.tensor(rng.normal(scale=0.3, size=tuple(p.shape))))
    P = [torch.tensor(rng.normal(size=(11, 2)), requires_grad=True)]
    U = [torch.tensor(rng.normal(size=(7, 2)), requires_grad=True)]
    moments = tuple(torch.tensor(a) for a in data_moments(x, y))
    direct = model.neg_log_likelihood([torch.tensor(y)], model([torch.tensor(x)], P, U, IdentityMapping())).sum()
    for stats, over_data in ((moments, False), (_over_data(x, y, torch.float64), True)):
        value = model.neg_log_likelihood_from_moments(stats, P, U, IdentityMapping(), over_data)
        np.testing.assert_allclose(value.item(), direct.item(), rtol=1e-10)
        grads = torch.autograd.grad(value, [P[0], U[0]])
        expected = torch.autograd.grad(direct, [P[0], U[0]], retain_graph=True)
        for g, e in zip(grads, expected):
            torch.testing.assert_close(g, e, rtol=1e-8, atol=1e-8)
    floor = torch.full((7,), 1e-3, dtype=torch.float64)
    held = [
        held_out_neg_log_likelihood(s, P[0], U[0], IdentityMapping(), floor, over_data=o)
        for s, o in ((moments, False), (_over_data(x, y, torch.float64), True))
    ]
    np.testing.assert_allclose(held[1].item(), held[0].item(), rtol=1e-10)


def test_float32_data_passes_match_float64():
    """Float32 passes (products per chunk in float32, sums in float64) against float64 moments.

    At the true parameters of data with R² ≈ 0.99 and ψ = the noise variance: the residual
    sums are ~1 % of the sums of squares they are computed from, the hard case.
    """
    rng = np.random.default_rng(4)
    n, d, e = 3000, 300, 200
    P, U = rng.normal(size=(d, 2)) / np.sqrt(d), rng.normal(size=(e, 2))
    x = (rng.normal(size=(n, d)) + 1.0).astype(np.float32)
    y = (x @ P @ U.T + 0.1 * rng.normal(size=(n, e)) + 2.0).astype(np.float32)
    model = SubjectModel([d], [e], 2, var_floor=1e-4, dtype=torch.float64)
    with torch.no_grad():
        model.rho[0].fill_(_softplus_inverse(0.01 - 1e-4))
        model.offsets[0].copy_(torch.tensor(y.mean(axis=0) - x.mean(axis=0) @ P @ U.T))
    moments = tuple(torch.tensor(a) for a in data_moments(x.astype(np.float64), y.astype(np.float64)))
    P64, U64 = [torch.tensor(P)], [torch.tensor(U)]
    exact = model.neg_log_likelihood_from_moments(moments, P64, U64, IdentityMapping()).item()
    passes = model.neg_log_likelihood_from_moments(
        _over_data(x, y, torch.float32), [P64[0].float()], U64, IdentityMapping(), True
    ).item()
    rss_part = n * e / 2  # Σ rss/(2ψ) at ψ = noise variance, what remains of terms ~100× larger
    # float32 products of data with non-zero means: ~1e-6 of it (float64 sums alone would not get there)
    assert abs(passes - exact) < 3e-6 * rss_part, (passes, exact)


def test_the_cheaper_statistics_are_chosen():
    assert passes_over_data(5000, 400, 4) is False  # spec §6 sizes: moments (d×d, d×e) are small
    assert passes_over_data(4000, 6000, 4) is True  # issue #13: moments would be 3× the data
    x32 = np.zeros((20, 30), dtype=np.float32)
    over_data, stats = subject_statistics(x32, x32[:, :5], torch.float32, torch.float64)
    assert over_data and stats[3].data_ptr() == x32.ctypes.data  # float32 data used in place
    over_data, stats = subject_statistics(x32.astype(np.float64), x32[:, :5], torch.float32, torch.float64)
    assert over_data and stats[3].dtype == torch.float32  # float64 data: one float32 copy, half the size
    over_data, stats = subject_statistics(x32[:, :5], x32, torch.float32, torch.float64)
    assert not over_data and stats[3].shape == (5, 5)


def test_fit_over_data_equals_fit_on_moments(monkeypatch):
    X, y = make_multi_subject_latent_regression(3, 60, n_inputs=(12, 16), n_outputs=(10, 14), random_state=0)
    # (the GP smoothing after training chooses its hyperparameters with a numerical
    # optimiser, which turns 1e-12 differences into 1e-8: off here, this is about training)
    params = {"n_bumps": 8, "max_iter": 10, "random_state": 0, "dtype": "float64", "learning_rate": 0.01}
    params["smooth_modes"] = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        monkeypatch.setattr(statistics, "passes_over_data", lambda *args: False)
        on_moments = MultiSubjectLatentRegressor(**params).fit(X, y)
        monkeypatch.setattr(statistics, "passes_over_data", lambda *args: True)
        over_data = MultiSubjectLatentRegressor(**params).fit(X, y)
        early = MultiSubjectLatentRegressor(**params, early_stopping=True, validation_fraction=0.2).fit(X, y)
        monkeypatch.setattr(statistics, "passes_over_data", lambda *args: False)
        early_moments = MultiSubjectLatentRegressor(**params, early_stopping=True, validation_fraction=0.2).fit(X, y)
    np.testing.assert_allclose(over_data.loss_curve_, on_moments.loss_curve_, rtol=1e-10)
    for a, b in zip(over_data.predict(X), on_moments.predict(X)):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(early.validation_scores_, early_moments.validation_scores_, rtol=1e-8)


def test_float32_data_are_not_copied_to_float64(monkeypatch):
    """The fit's numpy allocations stay far below one float64 copy of one subject's inputs.

    Sums run over float64 chunks of ``MOMENT_CHUNK_BYTES`` (1 MiB here); torch's float32
    passes use the arrays in place (checked in ``test_the_cheaper_statistics_are_chosen``).
    """
    monkeypatch.setattr(statistics, "MOMENT_CHUNK_BYTES", 1 << 20)
    rng = np.random.default_rng(0)
    n, d, e = 1500, 1000, 900
    X, y = [], []
    for i in range(2):
        props_in, props_out = rng.uniform(size=(d, 3)), rng.uniform(size=(e, 3))
        x = rng.standard_normal((n, d), dtype=np.float32)
        latent = x @ np.sin(3 * props_in[:, :2]).astype(np.float32) / np.sqrt(d)
        y.append(
            (latent @ np.cos(2 * props_out[:, :2]).T.astype(np.float32))
            + 0.1 * rng.standard_normal((n, e), dtype=np.float32)
        )
        X.append(SubjectData(f"s{i}", x, props_in, props_out))
    # training only: the closed-form refit after the GP smoothing holds one (n, e) float64
    # array per subject at a time (its memory is checked in test_lr_smoothing.py)
    est = MultiSubjectLatentRegressor(n_bumps=8, max_iter=3, random_state=0, smooth_modes=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        small = [SubjectData("s", X[0].x[:50, :20], X[0].input_properties[:20], X[0].output_properties[:10])]
        clone(est).fit(small, [y[0][:50, :10]])  # lazy imports of the first fit are not the fit's memory
        tracemalloc.start()
        try:
            est.fit(X, y)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    one_copy = n * d * 8
    assert peak < 0.5 * one_copy, f"fit allocated {peak / 2**20:.1f} MiB; one float64 copy is {one_copy / 2**20:.1f}"
    assert est.score(X, y) > 0.5


def test_chunk_products_in_torch_equal_numpy(small_chunks):
    """The torch loop (used off the CPU, e.g. CUDA) gives what the CPU's numpy loop gives."""
    x, y = _data(dtype=np.float32)
    rng = np.random.default_rng(5)
    P_t, V_t = rng.normal(size=(2, 11)).astype(np.float32), rng.normal(size=(2, 7)).astype(np.float32)
    with_numpy = statistics._chunk_products(x, y, P_t, V_t, torch.float32, torch.float64)
    with_torch = statistics._chunk_products(
        *(torch.from_numpy(a) for a in (x, y, P_t, V_t)), torch.float32, torch.float64
    )
    for a, b in zip(with_numpy, with_torch):
        np.testing.assert_allclose(b.numpy(), a, rtol=1e-5, atol=1e-4)

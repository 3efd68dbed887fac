"""The same checks on ``device="cuda"``: run where a GPU is present, skipped elsewhere.

float32 on the GPU is compared with float64 on the CPU after the same short fit from the
same seed; the tolerances below are what single precision over a few epochs allows.
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import torch

import skneuro
from skneuro.bumps import SumOfBumpsRegressor
from skneuro.datasets import make_multi_subject_latent_regression, make_reduced_rank_regression
from skneuro.datasets.tasks import PerceptualDiscrimination
from skneuro.latent_regression import MultiSubjectLatentRegressor
from skneuro.reduced_rank import RRLinearRegressor, RRSigmoidRegressor
from skneuro.rnn import MultiRegionRNNRegressor, RateRNNRegressor

pytestmark = pytest.mark.cuda

CONFIG = {
    "regions": [{"name": "a", "n_units": 12, "sign": "excitatory"}, {"name": "b", "n_units": 6}],
    "inputs": [{"name": "u", "n_units": 2}],
    "connections": [{"source": "u", "target": "a"}, {"source": "a", "target": "b"}, {"source": "b", "target": "a"}],
}

# (estimator, data, fit kwargs, rtol, atol) — float32 GPU vs float64 CPU
X2, Y2 = make_reduced_rank_regression(300, 6, 5, 2, random_state=0)[:2]
XS, YS = make_multi_subject_latent_regression(2, n_samples=100, n_inputs=(8, 9), n_outputs=(6, 7), random_state=0)
XT, YT, MT, _ = PerceptualDiscrimination(T=200).generate(32, random_state=0)
CASES = {
    "rr_linear": (RRLinearRegressor(n_components=2), (X2, Y2), {}, 1e-4, 1e-4),
    "rr_sigmoid": (RRSigmoidRegressor(n_components=2, max_iter=5, random_state=0), (X2, Y2), {}, 1e-2, 1e-2),
    "bumps": (SumOfBumpsRegressor(n_bumps=4, max_iter=5, random_state=0), (X2[:, :2], Y2[:, 0]), {}, 1e-3, 1e-3),
    "latent": (MultiSubjectLatentRegressor(n_bumps=4, max_iter=5, random_state=0), (XS, YS), {}, 1e-3, 1e-3),
    "rate_rnn": (RateRNNRegressor(n_rec=16, max_iter=2, random_state=0), (XT, YT), {"sample_weight": MT}, 1e-3, 1e-4),
    "multi_region": (
        MultiRegionRNNRegressor(CONFIG, max_iter=2, random_state=0),
        (XT, YT),
        {"sample_weight": MT},
        1e-3,
        1e-4,
    ),
}


def _close(a, b, rtol, atol):
    if isinstance(a, list):
        for x, y in zip(a, b):
            np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)
    else:
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


@pytest.mark.parametrize("case", sorted(CASES))
def test_float32_on_gpu_agrees_with_float64_on_cpu(case):
    est, (X, y), kw, rtol, atol = CASES[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gpu = type(est)(**{**est.get_params(), "device": "cuda", "dtype": "float32"}).fit(X, y, **kw)
        cpu = type(est)(**{**est.get_params(), "device": "cpu", "dtype": "float64"}).fit(X, y, **kw)
    assert gpu.device_.type == "cuda"
    assert all(p.device.type == "cuda" for p in gpu.module_.parameters())
    predictions = gpu.predict(X)
    first = predictions[0] if isinstance(predictions, list) else predictions
    assert first.dtype == np.float64
    _close(predictions, cpu.predict(X), rtol, atol)


@pytest.mark.parametrize("case", sorted(CASES))
def test_auto_device_picks_the_gpu(case):
    est, (X, y), kw, _, _ = CASES[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = type(est)(**{**est.get_params(), "device": "auto"}).fit(X, y, **kw)
    assert fitted.device_.type == "cuda"


@pytest.mark.parametrize("case", sorted(CASES))
def test_gpu_model_pickles_and_saves(case, tmp_path, monkeypatch):
    est, (X, y), kw, _, _ = CASES[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gpu = type(est)(**{**est.get_params(), "device": "cuda"}).fit(X, y, **kw)
    expected = gpu.predict(X)
    _close(pickle.loads(pickle.dumps(gpu)).predict(X), expected, 0, 0)
    gpu.save(tmp_path / "m")
    _close(skneuro.load(tmp_path / "m").predict(X), expected, 0, 0)
    # on a machine without a GPU the same bytes load onto the CPU, with a warning
    blob = pickle.dumps(gpu)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(UserWarning, match="mapped to 'cpu'"):
        restored = pickle.loads(blob)
    assert restored.device_ == torch.device("cpu")
    _close(restored.predict(X), expected, 1e-6, 1e-6)


def test_out_of_core_fit_keeps_the_data_on_the_cpu(tmp_path, monkeypatch):
    """Issue #13: rows stay in the memmap; chunks move to the GPU as used (the originals' send_size)."""
    from skneuro.reduced_rank import _estimators as rr_estimators

    X, Y = make_reduced_rank_regression(40000, 20, 500, 2, link="sigmoid", random_state=0)[:2]
    np.save(tmp_path / "X.npy", X.astype(np.float32))
    np.save(tmp_path / "Y.npy", Y.astype(np.float32))
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
    Ym = np.load(tmp_path / "Y.npy", mmap_mode="r")
    monkeypatch.setattr(rr_estimators, "IN_ONE_PIECE", 0)  # the chunked path, whatever the size
    torch.cuda.reset_peak_memory_stats()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gpu = RRSigmoidRegressor(n_components=2, device="cuda", random_state=0).fit(Xm, Ym)
    assert gpu.module_.w0.device.type == "cuda"
    assert torch.cuda.max_memory_allocated() < 0.25 * Ym.nbytes  # never the whole of y on the GPU
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cpu = RRSigmoidRegressor(n_components=2, random_state=0).fit(Xm, Ym)
    per_target = (cpu.log_likelihood(X[:2000], Y[:2000]) - gpu.log_likelihood(X[:2000], Y[:2000])) / 500
    assert abs(per_target) < 1e-3

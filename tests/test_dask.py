"""Hyperparameter sweeps on a real Dask cluster equal the single-process sweeps.

A ``LocalCluster`` of two worker processes (one thread each) on loopback runs
``GridSearchCV(n_jobs=-1)`` under joblib's Dask backend for one estimator of every kind
(2-D, multi-subject, 3-D trials, multi-region); ``best_params_`` and every cross-validated
score must equal those of the same search run in this process.
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, KFold, LeaveOneOut

from skneuro.bumps import SumOfBumpsRegressor
from skneuro.datasets import make_multi_subject_latent_regression, make_reduced_rank_regression
from skneuro.datasets.tasks import PerceptualDiscrimination
from skneuro.latent_regression import MultiSubjectLatentRegressor
from skneuro.reduced_rank import RRLinearRegressor, RRSigmoidRegressor
from skneuro.rnn import MultiRegionRNNRegressor, RateRNNRegressor

distributed = pytest.importorskip("distributed")
joblib = pytest.importorskip("joblib")

REGIONS = {
    "regions": [
        {"name": "a", "n_units": 6, "sign": "excitatory"},
        {"name": "b", "n_units": 4, "sign": "mixed"},
    ],
    "inputs": [{"name": "in", "n_units": 2}],
    "connections": [
        {"source": "in", "target": "a"},
        {"source": "a", "target": "b", "density": 0.5},
        {"source": "b", "target": "a"},
        {"source": "b", "target": "b"},
    ],
    "readout": ["b"],
}


def _set_one_thread():
    import torch

    torch.set_num_threads(1)
    return torch.get_num_threads()


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
    )
    with distributed.Client(cluster) as c:
        assert set(c.run(_set_one_thread).values()) == {1}
        yield c
    cluster.close()


def _rr():
    X, y = make_reduced_rank_regression(n_samples=120, n_features=6, n_targets=5, n_components=2, random_state=0)[:2]
    return X, y


def _bump_data():
    X = np.random.default_rng(0).uniform(-1, 1, size=(80, 2))
    return X, np.sin(3 * X[:, 0]) + X[:, 1] ** 2


def _trials():
    X, y, mask, _ = PerceptualDiscrimination(T=200).generate(24, random_state=0)
    return X, y, mask


CASES = {
    "rr_linear": lambda: (
        GridSearchCV(RRLinearRegressor(), {"n_components": [1, 2, 3]}, cv=KFold(3), n_jobs=-1),
        _rr(),
        {},
    ),
    "rr_sigmoid": lambda: (
        GridSearchCV(RRSigmoidRegressor(max_iter=5, random_state=0), {"n_components": [1, 2]}, cv=KFold(2), n_jobs=-1),
        _rr(),
        {},
    ),
    "bumps": lambda: (
        GridSearchCV(SumOfBumpsRegressor(max_iter=5, random_state=0), {"n_bumps": [2, 4]}, cv=KFold(2), n_jobs=-1),
        _bump_data(),
        {},
    ),
    "latent": lambda: (
        GridSearchCV(
            MultiSubjectLatentRegressor(n_bumps=4, max_iter=5, random_state=0),
            {"n_components": [1, 2]},
            cv=LeaveOneOut(),
            n_jobs=-1,
        ),
        make_multi_subject_latent_regression(n_samples=60, n_inputs=(8, 10), n_outputs=(6, 8), random_state=0),
        {},
    ),
    "rate_rnn": lambda: (
        GridSearchCV(
            RateRNNRegressor(n_rec=8, max_iter=2, batch_size=8, random_state=0),
            {"spectral_radius": [0.8, 1.2]},
            cv=KFold(2),
            n_jobs=-1,
        ),
        _trials(),
        {},
    ),
    "multi_region": lambda: (
        GridSearchCV(
            MultiRegionRNNRegressor(REGIONS, max_iter=2, batch_size=8, random_state=0),
            {"tau": [50.0, 100.0]},
            cv=KFold(2),
            n_jobs=-1,
        ),
        _trials(),
        {},
    ),
}


def _fit(search, data):
    if len(data) == 3:  # trials with their mask
        X, y, mask = data
        return search.fit(X, y, sample_weight=mask)
    X, y = data
    return search.fit(X, y)


@pytest.mark.slow  # starts a local cluster (~15 s), then fits
@pytest.mark.parametrize("case", sorted(CASES))
def test_grid_search_on_dask_equals_single_process(client, case):
    search_local, data, _ = CASES[case]()
    search_dask = CASES[case]()[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at tiny max_iter
        with joblib.parallel_backend("sequential"):
            _fit(search_local, data)
        with distributed.get_task_stream(client) as stream, joblib.parallel_backend("dask"):
            _fit(search_dask, data)
    workers = {task["worker"] for task in stream.data}
    assert len(stream.data) > 0 and workers, "the dask search ran no task on the cluster"
    assert search_dask.best_params_ == search_local.best_params_
    for key in search_local.cv_results_:
        if key.startswith(("split", "mean_test", "std_test", "rank_test")):
            np.testing.assert_allclose(search_dask.cv_results_[key], search_local.cv_results_[key], rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "est",
    [
        RRSigmoidRegressor(),
        SumOfBumpsRegressor(),
        MultiSubjectLatentRegressor(),
        RateRNNRegressor(),
        MultiRegionRNNRegressor(REGIONS),
    ],
    ids=lambda e: type(e).__name__,
)
def test_unfitted_estimators_pickle_small(est):
    assert len(pickle.dumps(est)) < 4_000


def test_fitted_estimator_keeps_no_training_data():
    """The pickled size of a fitted estimator does not grow with the data it was fitted on."""
    sizes = []
    for n_trials in (16, 160):
        X, y, mask, _ = PerceptualDiscrimination(T=200).generate(n_trials, random_state=0)
        est = RateRNNRegressor(n_rec=8, max_iter=1, batch_size=8, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y, sample_weight=mask)
        sizes.append(len(pickle.dumps(est)))
    assert abs(sizes[1] - sizes[0]) < 200, sizes


@pytest.mark.slow  # ~14 s
def test_documented_sweep_script_runs_on_a_local_cluster():
    """doc/scripts/dask_sweep.py, shown on the "Running sweeps on a cluster" page, runs as documented."""
    import runpy
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "doc" / "scripts" / "dask_sweep.py"
    namespace = runpy.run_path(str(script))
    search = namespace["main"](n_trials=48)
    assert set(search.best_params_) == {"spectral_radius", "tau"}
    assert len(search.cv_results_["mean_test_score"]) == 6

"""Grid search of a rate RNN on a Dask cluster.

Run on this machine (a LocalCluster of worker processes is started and stopped):

    python dask_sweep.py

Run on an existing cluster, e.g. one started with ``dask scheduler`` and ``dask worker``:

    python dask_sweep.py tcp://10.0.0.5:8786
"""

import sys
import warnings

import joblib
from distributed import Client, LocalCluster
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, KFold

from skneuro.datasets.tasks import PerceptualDiscrimination
from skneuro.rnn import RateRNNRegressor


def one_torch_thread():
    """Each worker runs one fit at a time per thread: keep torch from oversubscribing."""
    import torch

    torch.set_num_threads(1)


def main(address=None, n_trials=256):
    if address is None:
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    else:
        cluster, client = None, Client(address)
    try:
        client.run(one_torch_thread)
        X, y, mask, _ = PerceptualDiscrimination(T=500).generate(n_trials, random_state=0)
        search = GridSearchCV(
            # device="auto" picks each worker's GPU where it has one
            RateRNNRegressor(n_rec=20, max_iter=10, learning_rate=0.01, device="auto", random_state=0),
            {"spectral_radius": [0.8, 1.1, 1.4], "tau": [50.0, 100.0]},
            cv=KFold(3),
            n_jobs=-1,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            with joblib.parallel_backend("dask"):
                search.fit(X, y, sample_weight=mask)
        print("best parameters:", search.best_params_)
        print("best cross-validated R²:", round(search.best_score_, 3))
        return search
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)

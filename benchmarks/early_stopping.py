"""Early stopping on over-parameterised fits: held-out scores without and with it (issue #14).

Target: with ``early_stopping=True`` an over-parameterised fit predicts held-out data at
least as well as without. Three workloads, seeds 0, 1, 2 (the data's seed; defaults
otherwise, ``validation_fraction=0.1``):

1. ``bumps``: ``SumOfBumpsRegressor(n_bumps=40, random_state=0)`` on 200 points of
   ``sin(3 x0) cos(2 x1)`` on [-1, 1]² with noise SD 0.3; R² against the noise-free field
   on 1,000 fresh points (the gallery example ``plot_early_stopping``).
2. ``rr``: ``RRSigmoidRegressor(n_components=8, random_state=0)`` on 300 samples of
   rank-2 sigmoid data (``make_reduced_rank_regression``, 20 inputs, 30 outputs); R² on
   2,000 fresh noisy samples.
3. ``rnn``: ``RateRNNRegressor(n_rec=80, rec_noise=0.1, learning_rate=1e-2,
   max_iter=300, random_state=seed)`` on 40 ``PerceptualDiscrimination(T=1000)`` trials
   (one full-batch update per epoch); accuracy and masked R² of the noise-free
   ``predict`` on 500 fresh trials.

A row's verdict is "ok" when the held-out R² with early stopping is at least the R²
without, to 1e-4 (the standard error of an R² on 2,000 test samples is ~1e-2; the
difference is printed when it is not exactly zero). The RNN's accuracy, a thresholded
readout at its ceiling, is shown beside it.
"epochs" are ``n_iter_``; with early stopping the epochs scored on validation data
follow in brackets (the reduced-rank estimators then train again on all samples for at
most the best-validation number of iterations). One thread for torch and BLAS (set
before numpy loads).

Run: ``python benchmarks/early_stopping.py [--workloads bumps rr rnn] [--seeds 0 1 2]``
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import print_table  # noqa: E402

from skneuro.bumps import SumOfBumpsRegressor  # noqa: E402
from skneuro.datasets import make_reduced_rank_regression  # noqa: E402
from skneuro.datasets.tasks import PerceptualDiscrimination, accuracy  # noqa: E402
from skneuro.reduced_rank import RRSigmoidRegressor  # noqa: E402
from skneuro.rnn import RateRNNRegressor  # noqa: E402


def _epochs(est):
    if est.validation_scores_ is None:
        return f"{est.n_iter_}"
    return f"{est.n_iter_} ({len(est.validation_scores_)})"


def bumps(seed, early_stopping):
    """40 bumps on 200 noisy points: ``({"R2": ...}, epochs)``."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(1200, 2))
    field = np.sin(3 * X[:, 0]) * np.cos(2 * X[:, 1])
    y = field + 0.3 * rng.normal(size=len(X))
    est = SumOfBumpsRegressor(n_bumps=40, early_stopping=early_stopping, random_state=0).fit(X[:200], y[:200])
    return {"R2": est.score(X[200:], field[200:])}, _epochs(est)


def reduced_rank(seed, early_stopping):
    """Rank 8 on rank-2 sigmoid data, 300 samples: ``({"R2": ...}, epochs)``."""
    X, y = make_reduced_rank_regression(2300, 20, 30, 2, link="sigmoid", random_state=seed)
    est = RRSigmoidRegressor(n_components=8, early_stopping=early_stopping, random_state=0).fit(X[:300], y[:300])
    return {"R2": est.score(X[300:], y[300:])}, _epochs(est)


def rnn(seed, early_stopping):
    """80 units on 40 noisy trials: ``({"accuracy": ..., "R2": ...}, epochs)``."""
    task = PerceptualDiscrimination(T=1000)
    X_test, y_test, mask_test, _ = task.generate(500, random_state=99)
    X, y, mask, _ = task.generate(40, random_state=seed)
    est = RateRNNRegressor(
        n_rec=80, rec_noise=0.1, max_iter=300, learning_rate=1e-2, early_stopping=early_stopping, random_state=seed
    ).fit(X, y, sample_weight=mask)
    pred = est.predict(X_test)
    scores = {"accuracy": accuracy(y_test, pred, mask_test), "R2": est.score(X_test, y_test, sample_weight=mask_test)}
    return scores, _epochs(est)


WORKLOADS = {
    "bumps": ("40 bumps, 200 points", bumps),
    "rr": ("RR sigmoid rank 8, rank-2 data, 300 samples", reduced_rank),
    "rnn": ("RNN 80 units, 40 PD trials", rnn),
}


def measure(run, seed):
    """``(scores, epochs, seconds)`` without and with early stopping."""
    out = []
    for early_stopping in (False, True):
        start = time.perf_counter()
        scores, n_iter = run(seed, early_stopping)
        out.append((scores, n_iter, time.perf_counter() - start))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS), default=list(WORKLOADS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message="Stopped at max_iter")
    print(
        f"torch threads {torch.get_num_threads()}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, "
        f"torch {torch.__version__}"
    )
    rows, verdicts = [], {}
    for key in args.workloads:
        name, run = WORKLOADS[key]
        for seed in args.seeds:
            (plain, plain_iter, plain_s), (stopped, stopped_iter, stopped_s) = measure(run, seed)
            ok = stopped["R2"] >= plain["R2"] - 1e-4
            verdicts.setdefault(key, []).append(ok)
            rows.append(
                (
                    name,
                    seed,
                    " / ".join(f"{k} {v:.3f}" for k, v in plain.items()),
                    " / ".join(f"{k} {v:.3f}" for k, v in stopped.items()),
                    f"{plain_iter} -> {stopped_iter}",
                    f"{plain_s:.2f} -> {stopped_s:.2f}",
                    ("ok" if ok else "MISSED")
                    + (f" (ΔR² {stopped['R2'] - plain['R2']:+.1e})" if stopped["R2"] != plain["R2"] else ""),
                )
            )
            print(f"{key} seed {seed} done", flush=True)
    print()
    print_table(("workload", "seed", "without", "with early stopping", "epochs", "time (s)", "verdict"), rows)
    print()
    for key, oks in verdicts.items():
        print(f"{WORKLOADS[key][0]}: {'ok' if all(oks) else 'MISSED'} ({sum(oks)} of {len(oks)} seeds)")


if __name__ == "__main__":
    main()

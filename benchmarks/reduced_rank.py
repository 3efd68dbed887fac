"""Reduced-rank regression: fit time and held-out NLL gap to the true model.

Default settings, d_in=100, d_out=200, rank 3, 10,000 training and 5,000 test samples
from ``make_reduced_rank_regression``, one thread for torch and BLAS (set before numpy
loads). Beside skneuro: sklearn's Ridge and PLSRegression (rank 3) measured in the same
run, with per-target Gaussian noise variances from their training residuals, and the
original system's figures from the spec (janelia_core, same machine class).

Run: ``python benchmarks/reduced_rank.py [--device cpu] [--links sigmoid exp]``
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
from sklearn.cross_decomposition import PLSRegression  # noqa: E402
from sklearn.linear_model import Ridge  # noqa: E402

from skneuro.datasets import make_reduced_rank_regression  # noqa: E402
from skneuro.reduced_rank import (  # noqa: E402
    RRExpRegressor,
    RRLinearRegressor,
    RRReluRegressor,
    RRSigmoidRegressor,
)

ESTIMATORS = {
    "linear": RRLinearRegressor,
    "sigmoid": RRSigmoidRegressor,
    "relu": RRReluRegressor,
    "exp": RRExpRegressor,
}
# (seconds, gap) of the original system and skneuro's targets (issue 3, spec §6).
ORIGINAL = {"sigmoid": (78.7, 0.14), "linear": (64.8, 0.10), "relu": (69.9, 1.96), "exp": (76.9, 4.0)}
TARGET = {"sigmoid": (7.9, 0.15), "linear": (0.65, 0.10), "relu": (7.0, 0.30), "exp": (7.7, 0.5)}


def gaussian_nll(y, mean, v):
    """Mean per-sample negative log-likelihood with the 2π term (nats/sample)."""
    resid = y - mean
    return float(np.mean(np.sum(0.5 * np.log(2 * np.pi * v) + resid**2 / (2 * v), axis=1)))


def true_mean(X, params, link):
    pre = X @ params["w0"] @ params["w1"].T + params.get("o1", 0.0)
    if link == "sigmoid":
        f = 1 / (1 + np.exp(-pre))
    elif link == "exp":
        f = np.where(pre <= 20, np.exp(np.minimum(pre, 20)), np.exp(20) * (1 + pre - 20))
    elif link == "relu":
        f = np.maximum(pre, 0)
    else:
        f = pre
    return params.get("g", 1.0) * f + params["o2"]


def reference_gap(model, X_train, y_train, X_test, y_test, true_nll):
    t0 = time.perf_counter()
    model.fit(X_train, y_train)
    seconds = time.perf_counter() - t0
    v = np.var(y_train - model.predict(X_train), axis=0)
    return seconds, gaussian_nll(y_test, model.predict(X_test), v) - true_nll


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--links", nargs="*", default=list(ESTIMATORS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        f"device={args.device}, torch threads={torch.get_num_threads()}, OMP_NUM_THREADS="
        f"{os.environ['OMP_NUM_THREADS']}, torch {torch.__version__}"
    )
    header = f"{'link':8s} {'method':22s} {'time (s)':>9s} {'NLL gap':>9s}   {'target':>16s}  {'original':>14s}"
    print(header)
    print("-" * len(header))
    for link in args.links:
        X, y, params = make_reduced_rank_regression(
            15000, 100, 200, 3, link=link, random_state=args.seed, return_params=True
        )
        X_train, X_test, y_train, y_test = X[:10000], X[10000:], y[:10000], y[10000:]
        true_nll = gaussian_nll(y_test, true_mean(X_test, params, link), params["noise_variance"])
        est = ESTIMATORS[link](n_components=3, device=args.device, random_state=args.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            est.fit(X_train, y_train)
            seconds = time.perf_counter() - t0
        gap = -est.log_likelihood(X_test, y_test) - true_nll
        t_s, g_s = TARGET[link]
        t_o, g_o = ORIGINAL[link]
        ok = "ok" if (seconds <= t_s and gap <= g_s) else "MISSED"
        print(
            f"{link:8s} {'skneuro ' + est.solver_:22s} {seconds:9.2f} {gap:9.3f}   "
            f"<= {g_s:.2f} in {t_s:4.2f}s {ok:6s} {t_o:5.1f}s / {g_o:.2f}"
        )
        for name, ref in (("sklearn Ridge", Ridge(alpha=1.0)), ("sklearn PLSRegression(3)", PLSRegression(3))):
            t_r, g_r = reference_gap(ref, X_train, y_train, X_test, y_test, true_nll)
            print(f"{'':8s} {name:22s} {t_r:9.2f} {g_r:9.3f}")


if __name__ == "__main__":
    main()

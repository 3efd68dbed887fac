"""Cost at whole-brain sizes (issue #13): time and peak memory against the data size.

Every row runs in a fresh process with a time budget and an address-space limit, so a
row that would take hours or exhaust the machine prints "> budget" / "out of memory"
instead of stopping the table. Memory is the fit's own: the peak resident memory during
``fit`` minus the resident memory just before it (data already held), from Linux's VmHWM,
reset through ``/proc/self/clear_refs``; for rows read from memmaps, whose file pages count
in VmHWM, the fit's anonymous memory (heap and tensors: the peak of RssAnon, sampled every
20 ms, minus its value before the fit). Imports, torch's optimiser machinery included
(``torch._dynamo`` loads on the first optimiser of a process), happen before the clock.
Rows:

- reduced rank (``RRSigmoidRegressor``, rank 3): n 10,000, d_in 100, d_out 200 … 20,000,
  and d_out 1,000 with n 2,500 … 40,000; scikit-learn's Ridge and PLSRegression(3) at the
  same sizes (what a user can run today); held-out NLL gap per target to the true model;
  fitted exponents of time in d_out and in n;
- from memmaps: n 40,000, d_out 2,000, rank 3 (target <= 60 s, anonymous memory <= 0.25 x Y,
  gap <= 0.001);
- the whole-brain row: n 50,000, d_out 20,000, rank 10, X and y as float32 memmaps;
- the latent model at 3 × 6,000 and 5 × 10,000 neurons.

Targets (issue #13, one thread): sigmoid n 10,000, d_out 5,000 ≤ 30 s, memory ≤ 2× Y,
gap ≤ 0.001 nats per target; latent 3 × 6,000, T 4,000 ≤ 60 s, memory ≤ 2× data.

Run: ``python benchmarks/scale.py [--budget S] [--quick] [--skip-latent | --latent-only]``
(``--quick``: only the rows up to d_out 1,000 and n 10,000, for a smoke test).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import print_table  # noqa: E402

D_IN = 100
TARGET_GAP = 0.001


# ----------------------------------------------------------------- measurement helpers
def _status_mb(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(field)


def _reset_peak():
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    return _status_mb("VmRSS")


class _AnonPeak:
    """Peak RssAnon (MB) above its starting value, sampled by a thread while active."""

    def __enter__(self):
        import threading

        self.base = self.peak = _status_mb("RssAnon")
        self._stop = threading.Event()

        def watch():
            while not self._stop.is_set():
                self.peak = max(self.peak, _status_mb("RssAnon"))
                self._stop.wait(0.02)

        self._thread = threading.Thread(target=watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _status_mb("RssAnon"))

    @property
    def mb(self):
        return self.peak - self.base


def _simulate(n, d_out, rank, seed, path=None):
    """Sigmoid reduced-rank data in float32 (rows generated in blocks; memmaps when ``path``)."""
    rng = np.random.default_rng(seed)
    w0 = rng.normal(scale=1.0 / np.sqrt(D_IN), size=(D_IN, rank))
    w1 = rng.normal(size=(d_out, rank))
    o1 = rng.uniform(-1, 1, size=d_out)
    g = rng.uniform(5, 10, size=d_out)
    o2 = rng.uniform(5, 10, size=d_out)
    v = rng.uniform(0.5, 1.0, size=d_out)
    params = {"w0": w0, "w1": w1, "o1": o1, "g": g, "o2": o2, "v": v}
    if path is None:
        X = np.empty((n, D_IN), dtype=np.float32)
        Y = np.empty((n, d_out), dtype=np.float32)
    else:
        X = np.lib.format.open_memmap(path + "_X.npy", mode="w+", dtype=np.float32, shape=(n, D_IN))
        Y = np.lib.format.open_memmap(path + "_Y.npy", mode="w+", dtype=np.float32, shape=(n, d_out))
    for start in range(0, n, 2000):
        stop = min(start + 2000, n)
        x = rng.normal(size=(stop - start, D_IN))
        X[start:stop] = x
        Y[start:stop] = _mean(x, params) + rng.normal(size=(stop - start, d_out)) * np.sqrt(v)
    return X, Y, params


def _mean(x, p):
    return p["g"] / (1 + np.exp(-(x @ p["w0"] @ p["w1"].T + p["o1"]))) + p["o2"]


def _gap(est_mean, x, y, p):
    """Held-out NLL of the fit minus the true model's, per target (nats)."""
    true = np.mean(0.5 * np.log(2 * np.pi * p["v"]) + (y - _mean(x, p)) ** 2 / (2 * p["v"]), axis=0)
    return float(np.mean(est_mean(x, y) - true))


def _worker(spec):
    """One row, in this fresh process: returns a dict of figures."""
    warnings.simplefilter("ignore")
    kind = spec["kind"]
    if kind == "latent":
        return _latent_worker(spec)
    # imports first: the memory they take is not the fit's
    import torch._dynamo  # noqa: F401  (loaded by torch's first optimiser)
    from sklearn.cross_decomposition import PLSRegression
    from sklearn.linear_model import Ridge

    from skneuro.reduced_rank import RRSigmoidRegressor

    n, d_out, rank = spec["n"], spec["d_out"], spec["rank"]
    path = os.path.join(spec["tmp"], "wb") if spec.get("memmap") else None
    X, Y, params = _simulate(n, d_out, rank, seed=0, path=path)
    if path is not None:
        del X, Y
        X = np.load(path + "_X.npy", mmap_mode="r")
        Y = np.load(path + "_Y.npy", mmap_mode="r")
    rng = np.random.default_rng(1)  # fresh rows of the same model
    x_test = rng.normal(size=(2000, D_IN)).astype(np.float32)
    y_test = (_mean(x_test, params) + rng.normal(size=(2000, d_out)) * np.sqrt(params["v"])).astype(np.float32)
    data_mb = (X.nbytes + Y.nbytes) / 2**20
    y_mb = Y.nbytes / 2**20
    before = _reset_peak()
    with _AnonPeak() as anon:
        t0 = time.perf_counter()
        if kind == "skneuro":
            est = RRSigmoidRegressor(n_components=rank, random_state=0).fit(X, Y)
        elif kind == "ridge":
            est = Ridge(alpha=1.0).fit(X, Y)
        else:
            est = PLSRegression(n_components=rank, scale=False).fit(X, Y)
        seconds = time.perf_counter() - t0
    # from memmaps the file's pages are resident too: count the anonymous memory only
    fit_mb = anon.mb if path is not None else max(_status_mb("VmHWM") - before, 0.0)
    if kind == "skneuro":

        def nll(x, y):
            return _nll(est, x, y)

    else:
        resid_var = np.var(np.asarray(Y[:5000]) - est.predict(np.asarray(X[:5000])), axis=0)

        def nll(x, y):
            return np.mean(0.5 * np.log(2 * np.pi * resid_var) + (y - est.predict(x)) ** 2 / (2 * resid_var), axis=0)

    return {
        "seconds": seconds,
        "fit_mb": fit_mb,
        "y_mb": y_mb,
        "data_mb": data_mb,
        "gap": _gap(nll, x_test, y_test, params),
    }


def _nll(est, x, y):
    v = est.noise_variance_
    return np.mean(0.5 * np.log(2 * np.pi * v) + (y - est.predict(x)) ** 2 / (2 * v), axis=0)


def _latent_worker(spec):
    import torch._dynamo  # noqa: F401  (loaded by torch's first optimiser)
    from sklearn.metrics import r2_score

    from skneuro.datasets import make_multi_subject_latent_regression
    from skneuro.latent_regression import MultiSubjectLatentRegressor

    n_sub, neurons, T = spec["subjects"], spec["neurons"], spec["T"]
    X, y, params = make_multi_subject_latent_regression(
        n_subjects=n_sub + 1,
        n_samples=T,
        n_inputs=(neurons, neurons),
        n_outputs=(neurons, neurons),
        random_state=0,
        return_params=True,
    )
    data_mb = sum(s.x.nbytes + y_s.nbytes for s, y_s in zip(X, y)) / 2**20
    before = _reset_peak()
    t0 = time.perf_counter()
    est = MultiSubjectLatentRegressor(random_state=0).fit(X[:n_sub], y[:n_sub])
    seconds = time.perf_counter() - t0
    fit_mb = max(_status_mb("VmHWM") - before, 0.0)
    unseen = r2_score(y[n_sub], est.predict([X[n_sub]])[0])
    s = X[n_sub]
    true = (s.x @ params["input_modes"][n_sub]) @ params["output_modes"][n_sub].T * params["scales"][n_sub]
    ceiling = r2_score(y[n_sub], true + params["offsets"][n_sub])
    return {"seconds": seconds, "fit_mb": fit_mb, "data_mb": data_mb, "unseen": unseen, "ceiling": ceiling}


def _run(spec, budget, memory_gb):
    """Run one row in a fresh process under a time budget and an address-space limit."""

    def limit():
        cap = int(memory_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    try:
        out = subprocess.run(
            [sys.executable, __file__, "--worker", json.dumps(spec)],
            capture_output=True,
            text=True,
            timeout=budget,
            preexec_fn=limit,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"> budget ({budget:.0f} s)"}
    if out.returncode != 0:
        tail = out.stderr.strip().splitlines()[-1:] or ["?"]
        return {"error": "out of memory" if "MemoryError" in out.stderr or "alloc" in tail[0] else tail[0][:60]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _exponent(sizes, seconds):
    ok = [(s, t) for s, t in zip(sizes, seconds) if t is not None and t > 0]
    if len(ok) < 2:
        return None
    logs = np.log(np.array(ok, dtype=float))
    return float(np.polyfit(logs[:, 0], logs[:, 1], 1)[0])


def _fmt(r, key, fmt):
    return "-" if "error" in r or r.get(key) is None else format(r[key], fmt)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=600.0, help="seconds per row")
    parser.add_argument("--memory-gb", type=float, default=20.0, help="address-space limit per row")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--skip-latent", action="store_true", help="only the reduced-rank rows")
    parser.add_argument("--latent-only", action="store_true", help="only the latent-model rows")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(json.loads(args.worker))))
        return
    import torch

    print(
        f"torch threads={torch.get_num_threads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
        f"budget {args.budget:.0f} s/row, address space <= {args.memory_gb:.0f} GB/row"
    )
    tmp = tempfile.mkdtemp(prefix="skneuro_scale_")
    d_outs = [200, 1000] if args.quick else [200, 1000, 5000, 20000]
    ns = [2500, 10000] if args.quick else [2500, 10000, 40000]
    if args.latent_only:
        d_outs, ns = [], []
    rows, sk_times = [], {}
    for label, sizes, make in (
        ("d_out", d_outs, lambda v: {"n": 10000, "d_out": v}),
        ("n", ns, lambda v: {"n": v, "d_out": 1000}),
    ):
        for value in sizes:
            for kind in ("skneuro", "ridge", "pls"):
                spec = {"kind": kind, "rank": 3, "tmp": tmp, **make(value)}
                r = _run(spec, args.budget, args.memory_gb)
                if kind == "skneuro":
                    sk_times.setdefault(label, []).append((value, r.get("seconds")))
                verdict = ""
                if kind == "skneuro" and spec["n"] == 10000 and spec["d_out"] == 5000:
                    ok = (
                        "error" not in r
                        and r["seconds"] <= 30
                        and r["fit_mb"] <= 2 * r["y_mb"]
                        and r["gap"] <= TARGET_GAP
                    )
                    verdict = "ok" if ok else "MISSED"
                rows.append(
                    [
                        f"n {spec['n']:,} d_out {spec['d_out']:,}",
                        {"skneuro": "RRSigmoid(3)", "ridge": "sklearn Ridge", "pls": "sklearn PLS(3)"}[kind],
                        r.get("error") or _fmt(r, "seconds", ".2f"),
                        _fmt(r, "fit_mb", ".0f"),
                        _fmt(r, "y_mb", ".0f"),
                        "-" if "error" in r else f"{r['fit_mb'] / r['y_mb']:.1f}",
                        _fmt(r, "gap", ".4f"),
                        verdict,
                    ]
                )
                print("  done:", " | ".join(rows[-1][:4]), flush=True)
    file_rows = (
        []
        if args.latent_only
        else [({"n": 40000, "d_out": 2000, "rank": 3}, "memmap: n 40,000 d_out 2,000", "RRSigmoid(3)")]
    )
    if not (args.quick or args.latent_only):
        file_rows.append(
            ({"n": 50000, "d_out": 20000, "rank": 10}, "whole brain: n 50,000 d_out 20,000 (memmap)", "RRSigmoid(10)")
        )
    for size, label, method in file_rows:
        r = _run({"kind": "skneuro", "memmap": True, "tmp": tmp, **size}, args.budget, args.memory_gb)
        verdict = "report"
        if size["d_out"] == 2000:
            ok = "error" not in r and r["seconds"] <= 60 and r["fit_mb"] <= 0.25 * r["y_mb"] and r["gap"] <= TARGET_GAP
            verdict = "ok" if ok else "MISSED (target <= 60 s, anonymous <= 0.25x Y, gap <= 0.001)"
        rows.append(
            [
                label,
                method,
                r.get("error") or _fmt(r, "seconds", ".1f"),
                _fmt(r, "fit_mb", ".0f") + " anon",
                _fmt(r, "y_mb", ".0f"),
                "-" if "error" in r else f"{r['fit_mb'] / r['y_mb']:.2f}",
                _fmt(r, "gap", ".4f"),
                verdict,
            ]
        )
        print("  done:", " | ".join(rows[-1][:4]), flush=True)
    print()
    print_table(["size", "method", "time (s)", "fit MB", "Y MB", "fit/Y", "NLL gap", "verdict"], rows)
    for label, pairs in sk_times.items():
        slope = _exponent([p for p, _ in pairs], [t for _, t in pairs])
        print(
            f"RRSigmoid time ~ {label}^{slope:.2f}" if slope is not None else f"RRSigmoid time vs {label}: too few rows"
        )
    print()
    if args.skip_latent:
        return
    latent_rows = []
    for subjects, neurons, T in ((3, 6000, 4000), (5, 10000, 4000)) if not args.quick else ((3, 1000, 2000),):
        r = _run({"kind": "latent", "subjects": subjects, "neurons": neurons, "T": T}, args.budget, args.memory_gb)
        ok = (
            "error" not in r
            and r["seconds"] <= 60
            and r["fit_mb"] <= 2 * r["data_mb"]
            and r["unseen"] >= r["ceiling"] - 0.02
        )
        latent_rows.append(
            [
                f"{subjects} x {neurons:,} neurons, T {T:,}",
                r.get("error") or _fmt(r, "seconds", ".1f"),
                _fmt(r, "fit_mb", ".0f"),
                _fmt(r, "data_mb", ".0f"),
                _fmt(r, "unseen", ".4f"),
                _fmt(r, "ceiling", ".4f"),
                ("ok" if ok else "MISSED") if (subjects, neurons) == (3, 6000) else "report",
            ]
        )
    print_table(["latent model", "time (s)", "fit MB", "data MB", "unseen R²", "true model", "verdict"], latent_rows)
    print(
        "(issue #13 targets: sigmoid n 10,000 d_out 5,000 <= 30 s, fit memory <= 2x Y, gap <= 0.001; "
        "latent 3 x 6,000 <= 60 s, memory <= 2x data, unseen R² within 0.02 of the true model)"
    )


if __name__ == "__main__":
    main()

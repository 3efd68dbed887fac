"""Multi-region network analysis against mRNNTorch's figures (spec multi_region.md §6).

Network: a fitted ``MultiRegionRNNRegressor`` with 200 units in three regions (excitatory,
inhibitory, mixed; sparse projections; relu), trained briefly on random-walk trials.

1. Jacobian of the full network at one state: ``Linearization.jacobian``, beside
   ``torch.func.jacrev`` of the same float64 step measured in this run and mRNNTorch's 49 ms
   (autograd of the whole network, whatever the subset).
2. Jacobian of a 100-unit subset (two regions, out of network order).
3. ``find_fixed_points`` from 32 states drawn from trajectories (tol 1e-12, Levenberg–Marquardt):
   wall time, how many reached the tolerance and how many stopped at slow points (local minima
   of q above it), beside mRNNTorch's 3.78 s for 3,000 Adam iterations (none converged) and the
   same Adam search (``method="adam"``, 3,000 iterations) run here: per state, our q must be no
   larger than Adam's.
4. No-grad forward, 200 units × 100 steps × 32 trials (relu, mRNNTorch's default): ``LeakyRNN``
   beside a plain torch loop of the same update measured in this run and mRNNTorch's 10.9 ms.

Medians of repeated calls; one thread for torch and BLAS (set before numpy loads).

Run: ``python benchmarks/analysis.py``
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import print_verdicts  # noqa: E402

from skneuro.analysis import Linearization, find_fixed_points  # noqa: E402
from skneuro.rnn import MultiRegionRNNRegressor  # noqa: E402

MRNNTORCH_JACOBIAN_MS = 49.0
MRNNTORCH_FIXED_POINTS_S = 3.78
MRNNTORCH_FORWARD_MS = 10.9

CONFIG = {
    "regions": [
        {"name": "ctx", "n_units": 100, "sign": "excitatory"},
        {"name": "str", "n_units": 60, "sign": "inhibitory"},
        {"name": "thal", "n_units": 40, "sign": "mixed", "learnable_bias": True},
    ],
    "inputs": [{"name": "cue", "n_units": 2}],
    "connections": [
        {"source": "cue", "target": "ctx"},
        {"source": "ctx", "target": "ctx", "density": 0.2},
        {"source": "ctx", "target": "str", "density": 0.5},
        {"source": "str", "target": "thal"},
        {"source": "thal", "target": "ctx", "density": 0.5},
        {"source": "thal", "target": "thal"},
    ],
    "readout": ["ctx"],
}


def median_ms(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def fitted_network(device="cpu"):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 100, 2))
    y = np.cumsum(X, axis=1)[..., :1] / 10
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MultiRegionRNNRegressor(CONFIG, activation="tanh", max_iter=5, spectral_radius=1.5, random_state=0).fit(
            X, y
        ), X


def _residual(est, fp):
    """F(x) − x at each point."""
    a = est.module_.alpha
    x = fp.states
    return a * (np.tanh(x) @ est.W_rec_.T + fp.inputs @ est.W_in_.T + est.b_rec_ - x)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="where the network trains and runs its forward pass")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        f"torch threads {torch.get_num_threads()}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, "
        f"torch {torch.__version__}, numpy {np.__version__}"
    )
    print(f"device {args.device} (training, forward); the analysis itself runs in numpy float64 on the CPU")
    est, X = fitted_network(args.device)
    sim = est.simulate(X[:32], random_state=1)
    x, u = sim.states[0, -1], X[0, -1]
    rows = []  # (measure, skneuro, reference, target, ok)

    full = Linearization(est)
    t_full = median_ms(lambda: full.jacobian(u, x), 200)
    module = MultiRegionRNNRegressor(CONFIG, activation="tanh", max_iter=1).fit(X[:2], X[:2, :, :1]).module_
    module.load_state_dict(est.module_.state_dict())
    module = module.double()
    x_t, u_t = torch.tensor(x), torch.tensor(u)

    def step(state):
        return module.step(state[None], u_t[None])[0]

    jac = torch.func.jacrev(step)
    t_jacrev = median_ms(lambda: jac(x_t), 50)
    err = np.abs(jac(x_t).detach().numpy() - full.jacobian(u, x)[0]).max()
    print(f"max |analytic - jacrev| = {err:.2e}")
    rows.append(
        (
            "Jacobian, 200 units, full (ms)",
            f"{t_full:.3f}",
            f"mRNNTorch {MRNNTORCH_JACOBIAN_MS:g}; jacrev {t_jacrev:.2f} here",
            "<= 1",
            t_full <= 1,
        )
    )
    subset = Linearization(est, ["thal", "str"])
    t_sub = median_ms(lambda: subset.jacobian(u, x), 200)
    rows.append(
        (
            "Jacobian, 100-unit subset (ms)",
            f"{t_sub:.3f}",
            f"mRNNTorch {MRNNTORCH_JACOBIAN_MS:g} (same as full)",
            f"< full ({t_full:.3f})",
            t_sub < t_full,
        )
    )
    points = sim.states.reshape(-1, 200)[::10][:1000]
    t_batch = median_ms(lambda: full.jacobian(u, points), 10)
    print(f"batched: {len(points)} full Jacobians in {t_batch:.1f} ms")

    start = time.perf_counter()
    fp = find_fixed_points(est, np.zeros(2), sim.states, n_init=32, random_state=0)
    t_fp = time.perf_counter() - start
    start = time.perf_counter()
    ref = find_fixed_points(est, np.zeros(2), sim.states, n_init=32, random_state=0, method="adam", max_iter=3000)
    t_ref = time.perf_counter() - start
    slow = ~fp.converged
    grad = np.linalg.norm(np.einsum("nij,ni->nj", fp.jacobians - np.eye(200), _residual(est, fp)), axis=1)
    print(
        f"fixed points (LM): {fp.converged.sum()}/32 below tol 1e-12 in <= {fp.n_iter[~slow].max()} iterations; "
        f"{slow.sum()} stopped at slow points (q {fp.speeds[slow].min():.1e}..{fp.speeds[slow].max():.1e}, "
        f"|grad q| <= {grad[slow].max():.1e}); {len(fp.unique)} unique, stable {fp.is_stable[fp.unique].tolist()}"
    )
    print(
        f"fixed points (Adam, the original's search, 3000 iterations): {ref.converged.sum()}/32 below tol, "
        f"median q {np.median(ref.speeds):.1e}, {t_ref:.2f} s"
    )
    no_worse = fp.speeds <= ref.speeds * (1 + 1e-6)
    print(f"per state, LM's q <= Adam's at {no_worse.sum()}/32 states", end="")
    for i in np.flatnonzero(~no_worse):
        print(
            f"; state {i}: LM q {fp.speeds[i]:.1e} (|grad q| {grad[i]:.1e}), Adam q {ref.speeds[i]:.1e} "
            f"{np.linalg.norm(fp.states[i] - ref.states[i]):.1f} away",
            end="",
        )
    print()
    stationary = fp.converged | (grad <= 1e-6)
    rows.append(
        (
            "fixed points, 32 starts (s)",
            f"{t_fp:.3f} ({fp.converged.sum()} fixed + {slow.sum()} slow)",
            f"mRNNTorch {MRNNTORCH_FIXED_POINTS_S} (0/32 conv.); Adam {t_ref:.2f} here ({ref.converged.sum()}/32)",
            "each q < tol or |grad q| <= 1e-6, <= 0.75",
            bool(stationary.all()) and t_fp <= 0.75,
        )
    )

    net = (  # relu, mRNNTorch's default
        MultiRegionRNNRegressor(CONFIG, max_iter=1, device=args.device, random_state=0).fit(X[:2], X[:2, :, :1]).module_
    )
    gen = torch.Generator().manual_seed(0)
    u_f = torch.randn(32, 100, 2, generator=gen).to(args.device)

    def plain_loop():
        W_in, W_rec, W_out = net.effective_weights()
        a = net.alpha
        h = net.init_state.expand(32, 200)
        outs = []
        for t in range(100):
            h = (1 - a) * h + a * (torch.relu(h) @ W_rec.T + u_f[:, t] @ W_in.T + net.b_rec)
            outs.append(h)
        states = torch.stack(outs, 1)
        return torch.relu(states) @ W_out.T + net.b_out

    def synced(fn):
        def run():
            out = fn()
            if torch.device(args.device).type == "cuda":
                torch.cuda.synchronize()
            return out

        return run

    with torch.no_grad():
        t_fwd = median_ms(synced(lambda: net(u_f)), 50)
        t_loop = median_ms(synced(plain_loop), 50)
    rows.append(
        (
            "forward 200 units x 100 steps x 32 trials (ms)",
            f"{t_fwd:.2f}",
            f"mRNNTorch {MRNNTORCH_FORWARD_MS}; torch loop {t_loop:.2f} here",
            f"<= {MRNNTORCH_FORWARD_MS}",
            t_fwd <= MRNNTORCH_FORWARD_MS,
        )
    )

    print_verdicts(rows, reference="reference")


if __name__ == "__main__":
    main()

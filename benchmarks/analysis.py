"""Multi-region network analysis against mRNNTorch's figures (spec multi_region.md §6).

Network: a fitted ``MultiRegionRNNRegressor`` with 200 units in three regions (excitatory,
inhibitory, mixed; sparse projections; relu), trained briefly on random-walk trials.

1. Jacobian of the full network at one state: ``Linearization.jacobian``, beside
   ``torch.func.jacrev`` of the same float64 step measured in this run and mRNNTorch's 49 ms
   (autograd of the whole network, whatever the subset).
2. Jacobian of a 100-unit subset (two regions, out of network order).
3. ``find_fixed_points`` from 32 states drawn from trajectories (tol 1e-12, Levenberg–Marquardt):
   wall time (median of 3), how many reached the tolerance and how many stopped at slow points (local minima
   of q above it), beside mRNNTorch's 3.78 s for 3,000 Adam iterations (none converged) and the
   same Adam search (``method="adam"``, 3,000 iterations) run here: per state, our q must be no
   larger than Adam's.
4. No-grad forward, 200 units × 100 steps × 32 trials (relu, mRNNTorch's default): ``LeakyRNN``
   beside a plain torch loop of the same update measured in this run and mRNNTorch's 10.9 ms.
5. Parity with ``scipy.optimize.least_squares(method="lm")`` (MINPACK, analytic Jacobian,
   default tolerances), run from the same starts one by one: how many starts reach
   q < 1e-12, on networks of 50-500 units (tanh, relu, softplus; with slow points, without,
   and a relu network with no fixed point at all, where per-state q is compared).
6. The 3-bit flip-flop (Sussillo and Barak 2013): a 64-unit tanh ``RateRNNRegressor``
   (learning rate 3e-3, 200 epochs of 2,048 trials of 100 steps), its sign accuracy on fresh
   trials, and ``find_fixed_points`` from 256 visited states: unique stable fixed points and
   the sign patterns of their readouts, unstable ones, slow points, search time; beside the
   same search with FixedPointFinder's defaults (Adam, tol_q 1e-12, max_iters 5,000).

Medians of repeated calls; one thread for torch and BLAS (set before numpy loads).

Run: ``python benchmarks/analysis.py`` (``--skip-flip-flop`` leaves out its two-minute training,
``--skip-scipy`` the scipy runs, which take a few minutes).
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
from skneuro.datasets.tasks import FlipFlop  # noqa: E402
from skneuro.rnn import LeakyRNN, MultiRegionRNNRegressor, RateRNNRegressor  # noqa: E402

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


def random_network(activation, n, gain, bias, seed=0):
    """Float64 LeakyRNN, 2 inputs: Gaussian W_rec of spectral radius about gain, or for gain < 0
    positive weights of Perron root about −gain (with relu and a positive bias: no fixed point)."""
    rng = np.random.default_rng(seed)
    if gain > 0:
        W = gain * rng.normal(size=(n, n)) / np.sqrt(n)
    else:
        W = -gain * np.abs(rng.normal(size=(n, n))) / (0.8 * n)
    net = LeakyRNN(2, n, 0, activation=activation, dtype=torch.float64)
    with torch.no_grad():
        net.W_rec.copy_(torch.tensor(W))
        net.W_in.copy_(torch.tensor(rng.normal(size=(n, 2))))
        net.b_rec.copy_(torch.tensor(bias + 0.1 * rng.normal(size=n)))
    return net


def visited_states(net, n_starts, seed=1):
    """End states of 60-step runs on random input, jittered (N(0, 0.1²))."""
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        _, x, _ = net(torch.tensor(0.5 * rng.normal(size=(n_starts, 60, 2))), noise=False)
    return x[:, -1].numpy() + 0.1 * rng.normal(size=(n_starts, net.n_rec))


def scipy_speeds(net, u, starts):
    """Final q of scipy's MINPACK Levenberg–Marquardt with the analytic Jacobian, per start."""
    from scipy.optimize import least_squares

    with torch.no_grad():
        W_in, W, _ = (t.detach().double().cpu().numpy() for t in net.effective_weights())
        b = net.b_rec.detach().double().cpu().numpy()
    f, slope = {
        "tanh": (np.tanh, lambda x: 1 - np.tanh(x) ** 2),
        "relu": (lambda x: np.maximum(x, 0), lambda x: (x > 0) * 1.0),
        "softplus": (lambda x: np.logaddexp(0, x), lambda x: 0.5 * (1 + np.tanh(0.5 * x))),
    }[net.activation]
    a, drive = net.alpha, W_in @ u + b
    speeds = []
    for x0 in starts:
        fit = least_squares(
            lambda x: a * (W @ f(x) + drive - x),
            x0,
            jac=lambda x: a * (W * slope(x)) - a * np.eye(x.size),
            method="lm",
        )
        speeds.append(0.5 * (fit.fun**2).sum())
    return np.array(speeds)


def scipy_parity(rows, est, trajectories):
    """Converged starts, ours and scipy's LM, from the same starts on the test networks."""
    two_region = est.module_
    rng = np.random.default_rng(0)
    pool = trajectories.reshape(-1, 200)
    networks = [
        ("tanh 50, slow points", random_network("tanh", 50, 1.5, 0.0), 32),
        ("tanh 200, gain 2", random_network("tanh", 200, 2.0, 0.0), 32),
        ("tanh 200, two regions (1.)", two_region, 32),
        ("relu 100", random_network("relu", 100, 0.9, 0.5), 32),
        ("relu 200, no fixed point", random_network("relu", 200, -1.5, 0.5), 32),
        ("softplus 100", random_network("softplus", 100, 1.2, -0.5), 32),
        ("tanh 500, gain 1.5", random_network("tanh", 500, 1.5, 0.0), 8),
    ]
    print("\nconverged starts (q < 1e-12) from the same starts: find_fixed_points vs scipy least_squares lm")
    for name, net, n_starts in networks:
        if net is two_region:
            starts = pool[rng.choice(pool.shape[0], n_starts, replace=False)]
        else:
            starts = visited_states(net, n_starts)
        u = np.zeros(2)
        start = time.perf_counter()
        fp = find_fixed_points(net, u, starts)
        t_ours = time.perf_counter() - start
        start = time.perf_counter()
        reference = scipy_speeds(net, u, starts)
        t_scipy = time.perf_counter() - start
        ours, theirs = int(fp.converged.sum()), int((reference < 1e-12).sum())
        slow = ~fp.converged
        detail = (
            f"; {slow.sum()} slow (q {fp.speeds[slow].min():.1e}..{fp.speeds[slow].max():.1e}, "
            f"|grad q| <= {fp.gradient_norms[slow].max():.1e})"
            if slow.any()
            else ""
        )
        print(f"  {name}: ours {ours}/{n_starts} in {t_ours:.2f} s{detail}; scipy {theirs} in {t_scipy:.2f} s")
        verdict = ours >= theirs
        mine = f"{ours}/{n_starts} ({t_ours:.2f} s)"
        if theirs == 0 and ours == 0:
            ratio = fp.speeds / reference
            print(f"    no fixed point: per-state q ours/scipy median {np.median(ratio):.2f}, max {ratio.max():.2f}")
            mine += f"; q/scipy's median {np.median(ratio):.2f}"
            verdict = verdict and np.median(ratio) <= 1
        rows.append(
            (f"converged starts, {name}", mine, f"scipy lm {theirs}/{n_starts} ({t_scipy:.1f} s)", ">= scipy", verdict)
        )


def trained_flip_flop():
    """The 3-bit flip-flop as the issue trained it: 64 tanh units, lr 3e-3, 200 epochs."""
    task = FlipFlop()
    X, y, mask, _ = task.generate(2048, random_state=0)
    est = RateRNNRegressor(64, activation="tanh", learning_rate=3e-3, max_iter=200, random_state=0)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y, sample_weight=mask)
    return task, est, time.perf_counter() - start


def memories(est, fp):
    """(stable fixed points, their distinct readout sign patterns, unstable fixed points, slow points)."""
    points = fp[fp.unique]
    fixed = points.converged
    readout = np.tanh(points.states) @ est.W_out_.T + est.b_out_
    stable = fixed & points.is_stable
    patterns = {tuple(np.sign(r).astype(int)) for r in readout[stable]}
    return int(stable.sum()), len(patterns), int((fixed & ~points.is_stable).sum()), int((~fixed).sum())


def flip_flop(rows):
    task, est, t_fit = trained_flip_flop()
    X, y, mask, _ = task.generate(256, random_state=1)
    sim = est.simulate(X, noise=False)
    acc = task.accuracy(y, sim.outputs, mask)
    print(f"\nflip-flop: fit {t_fit:.0f} s ({est.n_iter_} epochs), sign accuracy {acc:.4f} on 256 fresh trials")
    times = []
    for _ in range(3):
        start = time.perf_counter()
        fp = find_fixed_points(est, np.zeros(3), sim.states, n_init=256, random_state=0)
        times.append(time.perf_counter() - start)
    t_fp = statistics.median(times)
    stable, patterns, unstable, slow = memories(est, fp)
    start = time.perf_counter()
    fpf = find_fixed_points(est, np.zeros(3), sim.states, n_init=256, random_state=0, method="adam", max_iter=5000)
    t_fpf = time.perf_counter() - start
    fpf_stable, fpf_patterns, fpf_unstable, fpf_slow = memories(est, fpf)
    print(
        f"  LM: {fp.converged.sum()}/256 converged, {len(fp.unique)} unique: {stable} stable ({patterns} sign "
        f"patterns), {unstable} unstable, {slow} slow; {t_fp:.2f} s (median of 3)"
    )
    print(
        f"  Adam with FixedPointFinder's defaults (tol_q 1e-12, max_iters 5000): {fpf.converged.sum()}/256 "
        f"converged, {len(fpf.unique)} unique: {fpf_stable} stable ({fpf_patterns} patterns), {fpf_unstable} "
        f"unstable, {fpf_slow} slow; {t_fpf:.2f} s"
    )
    reference = "FixedPointFinder defaults (Adam)"
    rows += [
        ("flip-flop sign accuracy", f"{acc:.4f}", "issue's run 0.993", ">= 0.98", acc >= 0.98),
        (
            "flip-flop stable fixed points (patterns)",
            f"{stable} ({patterns})",
            f"{reference}: {fpf_stable} ({fpf_patterns})",
            "8 (8)",
            stable == 8 and patterns == 8,
        ),
        ("flip-flop unstable fixed points", str(unstable), f"{reference}: {fpf_unstable}", ">= 1", unstable >= 1),
        (
            "flip-flop search, 256 starts (s)",
            f"{t_fp:.2f} ({fp.converged.sum()}/256 conv.)",
            f"{reference}: {t_fpf:.1f} ({fpf.converged.sum()}/256)",
            "<= 2",
            t_fp <= 2,
        ),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="where the network trains and runs its forward pass")
    parser.add_argument("--skip-flip-flop", action="store_true", help="leave out the flip-flop training")
    parser.add_argument("--skip-scipy", action="store_true", help="leave out the scipy comparison")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        f"torch threads {torch.get_num_threads()}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, "
        f"torch {torch.__version__}, numpy {np.__version__}"
    )
    print(
        f"device {args.device} (training, forward); Linearization in numpy float64 on the CPU, "
        "find_fixed_points in torch float64 where the model lives"
    )
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

    times = []
    for _ in range(3):
        start = time.perf_counter()
        fp = find_fixed_points(est, np.zeros(2), sim.states, n_init=32, random_state=0)
        times.append(time.perf_counter() - start)
    t_fp = statistics.median(times)
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

    if not args.skip_scipy:
        scipy_parity(rows, est, sim.states)
    if not args.skip_flip_flop:
        flip_flop(rows)
    print_verdicts(rows, reference="reference")


if __name__ == "__main__":
    main()

"""Rate RNN on PerceptualDiscrimination against PsychRNN's figures (spec rnn.md §6).

1. ``RateRNNRegressor`` (n_rec 50, batch 64, 19,200 generated trials, max_iter 1 = 300 Adam
   updates, lr 1e-3, clip 1, train_init_state=True): wall time including trial generation,
   and accuracy on 1,000 fresh trials (noise-free ``predict``).
2. The same with ``dale_ratio=0.8, rec_noise=0.1`` for random_state 0, 1, 2; accuracy with the
   noise on (``simulate``, as PsychRNN's ``test``).
3. ``PerceptualDiscrimination.generate(64)``: median of many calls.
4. No-grad ``LeakyRNN`` forward, H 200, T 100, B 32: median, beside mRNNTorch's 10.9 ms.

PsychRNN's figures (TF 2.21, one thread) are quoted from the spec. One thread for torch and BLAS
(set before numpy loads).

Run: ``python benchmarks/rnn.py [--device cpu]``
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

import torch  # noqa: E402
from _common import print_verdicts  # noqa: E402

from skneuro.datasets.tasks import PerceptualDiscrimination, accuracy  # noqa: E402
from skneuro.rnn import LeakyRNN, RateRNNRegressor  # noqa: E402

PSYCHRNN_TIME_S = 39.5
PSYCHRNN_ACC = 1.000
PSYCHRNN_DALE_NOISE = "0.791 / 0.914"
MRNNTORCH_FORWARD_MS = 10.9


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def train_and_test(device, random_state, **extra):
    task = PerceptualDiscrimination()
    start = time.perf_counter()
    X, y, mask, _ = task.generate(19_200, random_state=random_state)
    est = RateRNNRegressor(
        n_rec=50,
        batch_size=64,
        max_iter=1,
        learning_rate=1e-3,
        clip_grad_norm=1.0,
        train_init_state=True,
        device=device,
        random_state=random_state,
        **extra,
    ).fit(X, y, sample_weight=mask)
    _sync(device)
    elapsed = time.perf_counter() - start
    Xt, yt, mt, _ = task.generate(1_000, random_state=1_000 + random_state)
    if extra.get("rec_noise", 0) > 0:
        pred = est.simulate(Xt, random_state=2_000 + random_state).outputs
    else:
        pred = est.predict(Xt)
    return elapsed, accuracy(yt, pred, mt), est.n_updates_


def generate_time_ms(repeats=200):
    task = PerceptualDiscrimination()
    task.generate(64, random_state=0)
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        task.generate(64, random_state=i)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def forward_time_ms(device, repeats=50):
    gen = torch.Generator().manual_seed(0)
    net = LeakyRNN(200, 200, 0, dtype=torch.float32, device=device)
    u = torch.randn(32, 100, 200, generator=gen).to(device)
    times = []
    with torch.no_grad():
        for _ in range(5):
            net(u)
        _sync(device)
        for _ in range(repeats):
            start = time.perf_counter()
            net(u)
            _sync(device)
            times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message="Stopped at max_iter")  # max_iter=1 is the protocol
    print(
        f"device {args.device}, torch threads {torch.get_num_threads()}, "
        f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, torch {torch.__version__}"
    )

    rows = []  # (what, ours, psychrnn/reference, target, ok)
    t, acc, n_updates = train_and_test(args.device, 0)
    print(f"plain: {n_updates} updates, {t:.2f} s, accuracy {acc:.3f}")
    rows.append(("PD train time (s, incl. generation)", f"{t:.2f}", f"{PSYCHRNN_TIME_S}", "<= 13", t <= 13))
    rows.append(("PD accuracy (noise-free)", f"{acc:.3f}", f"{PSYCHRNN_ACC:.3f}", ">= 0.98", acc >= 0.98))
    for seed in (0, 1, 2):
        t, acc, n_updates = train_and_test(args.device, seed, dale_ratio=0.8, rec_noise=0.1)
        print(f"Dale 0.8 + noise 0.1, seed {seed}: {n_updates} updates, {t:.2f} s, accuracy {acc:.3f}")
        rows.append(
            (f"Dale+noise accuracy, seed {seed} ({t:.1f} s)", f"{acc:.3f}", PSYCHRNN_DALE_NOISE, ">= 0.90", acc >= 0.90)
        )
    gen_ms = generate_time_ms()
    rows.append(("generate(64) (ms, median)", f"{gen_ms:.2f}", "85", "<= 4", gen_ms <= 4))
    fwd_ms = forward_time_ms(args.device)
    rows.append(
        (
            "LeakyRNN no-grad forward H200 T100 B32 (ms)",
            f"{fwd_ms:.2f}",
            f"mRNNTorch {MRNNTORCH_FORWARD_MS}",
            f"<= {MRNNTORCH_FORWARD_MS}",
            fwd_ms <= MRNNTORCH_FORWARD_MS,
        )
    )

    print_verdicts(rows, reference="PsychRNN/ref")


if __name__ == "__main__":
    main()

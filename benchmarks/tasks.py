"""NeuroGym tasks and multi-task training (issue 16), beside a torch GRU trained NeuroGym's way.

1. Five NeuroGym tasks at dt 20 (PerceptualDecisionMaking, ContextDecisionMaking,
   DelayComparison, DelayMatchSample, GoNogo). Ours: ``RateRNNRegressor(n_rec=64, dt=20,
   tau=100, max_iter=30)`` on 2,000 ``NeuroGymTask`` trials, mask on the decision period.
   Reference: a 64-unit ``torch.nn.GRU`` + linear readout trained as in NeuroGym's tutorial:
   ``neurogym.Dataset`` batches (time-major, trials back to back, batch 64, seq_len 100),
   cross-entropy on every step, Adam (lr 1e-2), as many updates as ours. Also the same GRU,
   loss and optimiser on ours' 2,000 ``NeuroGymTask`` trials (each from step 0, padding left
   out of the loss), to tell the data pipeline from the model. All are scored on the same
   500 fresh trials: the choice at each trial's last step (NeuroGym's tutorial rule). Fit
   times include trial generation; one run each. The reference column is the tutorial GRU,
   except in the "GRU on NeuroGymTask trials" rows. Training trials and the estimator are
   seeded 0, the 500 test trials 10,000 (a seed no training run uses).
   The issue's target: PerceptualDecisionMaking with ``NeuroGymTask``'s defaults (mask 1 on
   every step of the trial, 0 on the padding; one-hot targets), seeds 0 to 5, each >= 0.85 in
   <= 30 s; beside it, the same fits with ``class_weight="balanced"`` (every action the same
   share).
2. ``MultiTask`` of ``PerceptualDiscrimination(T=1000)`` and ``DelayedDiscrimination(T=1000)``:
   ``RateRNNRegressor(n_rec=100, max_iter=40, learning_rate=3e-3)`` on 3,000 trials, accuracy
   of each task on 1,000 fresh trials.
3. 64 PerceptualDecisionMaking trials: ``NeuroGymTask.generate(64)`` (mean of repeated calls,
   a fresh seeded environment copy each) beside ``neurogym.Dataset`` (batch 64, seq_len 110 =
   one trial per row per batch): its construction with the first batch, and its steady-state
   cost per batch (mean over many batches, cache refills included).

One thread for torch and BLAS (set before numpy loads).

Run: ``python benchmarks/tasks.py [--only-generation]``
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
from _common import print_verdicts  # noqa: E402

from skneuro.datasets.tasks import (  # noqa: E402
    DelayedDiscrimination,
    MultiTask,
    NeuroGymTask,
    PerceptualDiscrimination,
)
from skneuro.rnn import RateRNNRegressor  # noqa: E402

NEUROGYM_TASKS = (
    "PerceptualDecisionMaking-v0",
    "ContextDecisionMaking-v0",
    "DelayComparison-v0",
    "DelayMatchSample-v0",
    "GoNogo-v0",
)
DT = 20
TEST_SEED = 10_000
TARGET_SEEDS = (0, 1, 2, 3, 4, 5)


def fit_ours(task, n_trials=2_000, random_state=0):
    start = time.perf_counter()
    X, y, mask, _ = task.generate(n_trials, random_state=random_state)
    est = RateRNNRegressor(n_rec=64, dt=DT, tau=100, max_iter=30, random_state=random_state)
    est.fit(X, y, sample_weight=mask)
    return est, time.perf_counter() - start


class _GRUNet(torch.nn.Module):
    def __init__(self, n_in, n_hidden, n_out):
        super().__init__()
        self.gru = torch.nn.GRU(n_in, n_hidden)
        self.readout = torch.nn.Linear(n_hidden, n_out)

    def forward(self, x):  # x: (time, batch, n_in)
        return self.readout(self.gru(x)[0])


def fit_gru_neurogym_way(env_id, n_updates, random_state=0):
    """NeuroGym's tutorial recipe: Dataset batches, cross-entropy on every step, Adam."""
    import neurogym

    torch.manual_seed(random_state)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*render_modes")
        dataset = neurogym.Dataset(env_id, env_kwargs={"dt": DT}, batch_size=64, seq_len=100)
    # Dataset draws its first cache unseeded in its constructor (NeuroGym issue #282): seed the
    # environments, then redraw the cache (private, but the only way to a reproducible reference)
    dataset.seed(random_state)
    dataset._cache()
    env = dataset.env
    net = _GRUNet(env.observation_space.shape[0], 64, env.action_space.n)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    criterion = torch.nn.CrossEntropyLoss()
    for _ in range(n_updates):
        inputs, labels = dataset()
        inputs = torch.from_numpy(inputs).float()
        labels = torch.from_numpy(labels.flatten()).long()
        optimizer.zero_grad()
        loss = criterion(net(inputs).reshape(-1, env.action_space.n), labels)
        loss.backward()
        optimizer.step()
    return net, time.perf_counter() - start


def fit_gru_on_trials(env_id, n_updates, n_trials=2_000, random_state=0):
    """The same GRU, loss and optimiser on ours' trials: each from step 0, padding left out."""
    torch.manual_seed(random_state)
    start = time.perf_counter()
    task = NeuroGymTask(env_id, dt=DT)  # the mask covers each trial's own steps
    X, y, mask, _ = task.generate(n_trials, random_state=random_state)
    inputs = torch.from_numpy(X).float().transpose(0, 1)  # time-major
    labels = torch.from_numpy(y.argmax(axis=2)).transpose(0, 1)
    own = torch.from_numpy(mask[:, :, 0] > 0).transpose(0, 1)
    net = _GRUNet(task.n_inputs, 64, task.n_outputs)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    criterion = torch.nn.CrossEntropyLoss()
    rng = np.random.default_rng(random_state)
    batches = []
    for _ in range(n_updates):
        if not batches:
            batches = list(np.array_split(rng.permutation(n_trials), int(np.ceil(n_trials / 64))))
        rows = torch.from_numpy(batches.pop())
        optimizer.zero_grad()
        logits = net(inputs[:, rows])
        keep = own[:, rows]
        loss = criterion(logits[keep], labels[:, rows][keep])
        loss.backward()
        optimizer.step()
    return net, time.perf_counter() - start


def gru_outputs(net, X):
    with torch.no_grad():
        return net(torch.from_numpy(X).float().transpose(0, 1)).transpose(0, 1).double().numpy()


def neurogym_rows():
    rows = []
    for env_id in NEUROGYM_TASKS:
        task = NeuroGymTask(env_id, dt=DT, mask_periods=("decision",))
        Xt, yt, mt, _ = task.generate(500, random_state=TEST_SEED)
        est, ours_s = fit_ours(task)
        ours = task.accuracy(yt, est.predict(Xt), mt)
        net, gru_s = fit_gru_neurogym_way(env_id, est.n_updates_)
        gru = task.accuracy(yt, gru_outputs(net, Xt), mt)
        net, trials_s = fit_gru_on_trials(env_id, est.n_updates_)
        gru_trials = task.accuracy(yt, gru_outputs(net, Xt), mt)
        print(
            f"{env_id}: {est.n_updates_} updates; ours {ours:.3f} in {ours_s:.1f} s, GRU (neurogym.Dataset) "
            f"{gru:.3f} in {gru_s:.1f} s, GRU (NeuroGymTask trials) {gru_trials:.3f} in {trials_s:.1f} s"
        )
        what = f"{env_id}, decision mask, acc (ours {ours_s:.1f} s, GRU {gru_s:.1f} s)"
        rows.append((what, f"{ours:.3f}", f"{gru:.3f}", "-", True))
        rows.append((f"  GRU on NeuroGymTask trials ({trials_s:.1f} s)", "", f"{gru_trials:.3f}", "-", True))
        if env_id == "PerceptualDecisionMaking-v0":
            rows += perceptual_decision_target_rows(Xt, yt, mt)
    return rows


def perceptual_decision_target_rows(Xt, yt, mt):
    """The issue's target: NeuroGymTask's defaults (every step), seeds 0-5; beside them balanced weights."""
    env_id, rows = "PerceptualDecisionMaking-v0", []
    for class_weight in (None, "balanced"):
        task = NeuroGymTask(env_id, dt=DT, class_weight=class_weight)
        for seed in TARGET_SEEDS:
            est, fit_s = fit_ours(task, random_state=seed)
            acc = task.accuracy(yt, est.predict(Xt), mt)
            print(f"{env_id}, every step, class_weight={class_weight!r}, seed {seed}: {acc:.3f} in {fit_s:.1f} s")
            if class_weight is None:
                what = f"  PD defaults (every step, mask 1), seed {seed} ({fit_s:.1f} s)"
                rows.append((what, f"{acc:.3f}", "", ">= 0.85, <= 30 s", acc >= 0.85 and fit_s <= 30))
            else:
                what = f"  PD every step, class_weight='balanced', seed {seed} ({fit_s:.1f} s)"
                rows.append((what, f"{acc:.3f}", "", "-", True))
    return rows


def multitask_rows():
    task = MultiTask([PerceptualDiscrimination(T=1000), DelayedDiscrimination(T=1000)])
    start = time.perf_counter()
    X, y, mask, _ = task.generate(3_000, random_state=0)
    est = RateRNNRegressor(n_rec=100, max_iter=40, learning_rate=3e-3, random_state=0)
    est.fit(X, y, sample_weight=mask)
    elapsed = time.perf_counter() - start
    Xt, yt, mt, params = task.generate(1_000, random_state=1)
    scores = task.accuracy(yt, est.predict(Xt), mt, params["task"])
    print(f"MultiTask PD + DD: {est.n_updates_} updates in {elapsed:.1f} s, accuracy {scores.round(3).tolist()}")
    return [
        (f"MultiTask: {name} acc (fit {elapsed:.1f} s)", f"{score:.3f}", "", ">= 0.9", score >= 0.9)
        for name, score in zip(("PD", "DD"), scores)
    ]


def generation_rows(repeats=50):
    import neurogym

    env_id = "PerceptualDecisionMaking-v0"
    task = NeuroGymTask(env_id, dt=DT)
    task.generate(64, random_state=0)
    start = time.perf_counter()
    for i in range(repeats):
        task.generate(64, random_state=i)
    ours_ms = 1e3 * (time.perf_counter() - start) / repeats

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*render_modes")
        start = time.perf_counter()
        dataset = neurogym.Dataset(env_id, env_kwargs={"dt": DT}, batch_size=64, seq_len=110)
        dataset()
        first_ms = 1e3 * (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(repeats * 4):
        dataset()
    steady_ms = 1e3 * (time.perf_counter() - start) / (repeats * 4)
    print(
        f"64 trials: NeuroGymTask.generate {ours_ms:.2f} ms; neurogym.Dataset first batch {first_ms:.2f} ms, "
        f"steady state {steady_ms:.2f} ms per batch"
    )
    return [
        (
            "generate(64) vs Dataset first batch (ms)",
            f"{ours_ms:.2f}",
            f"{first_ms:.2f}",
            "<= reference",
            ours_ms <= first_ms,
        ),
        (
            "generate(64) vs Dataset steady state (ms)",
            f"{ours_ms:.2f}",
            f"{steady_ms:.2f}",
            "<= reference",
            ours_ms <= steady_ms,
        ),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only-generation", action="store_true", help="run part 3 only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message="Stopped at max_iter")  # max_iter is the protocol
    # neurogym.Dataset reads env.ob/env.gt through gymnasium's wrapper, which warns at every trial
    warnings.filterwarnings("ignore", message=".*to get variables from other wrappers is deprecated")
    import neurogym

    print(
        f"torch threads {torch.get_num_threads()}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, "
        f"torch {torch.__version__}, numpy {np.__version__}, neurogym {neurogym.__version__}"
    )
    rows = generation_rows()
    if not args.only_generation:
        rows = neurogym_rows() + multitask_rows() + rows
    print_verdicts(rows, reference="GRU/neurogym")


if __name__ == "__main__":
    main()

"""
The 3-bit flip-flop: eight memories as eight attractors
=======================================================

The test every fixed-point tool is held to (Sussillo and Barak 2013; FixedPointFinder,
Golub and Sussillo 2018). Three input channels deliver ±1 pulses; each output must hold
the sign of its channel's last pulse. A network that has learnt the task has to store the
2³ = 8 bit patterns, and it does so with 8 stable fixed points, with saddles between them
whose unstable directions lead from one memory to its neighbours.

We train a 64-unit tanh :class:`~skneuro.rnn.RateRNNRegressor` with the estimator's
defaults, a learning rate and enough epochs, find its fixed points with
:func:`~skneuro.analysis.find_fixed_points` from states the network visits, and draw them
in the space of the states' first three principal components, with a few trajectories:
the classic figure.
"""

# %%
# The task and the training
# -------------------------
# 100 steps of 10 ms per trial (τ = 100 ms); a pulse on each channel with probability
# 0.05 per step. The mask leaves out each channel's steps before its first pulse, and
# the task's ``accuracy`` is the fraction of the remaining (held) bits whose output has
# the right sign.

import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from skneuro.analysis import find_fixed_points
from skneuro.datasets.tasks import FlipFlop
from skneuro.rnn import RateRNNRegressor

torch.set_num_threads(1)
task = FlipFlop(n_bits=3, pulse_probability=0.05, T=1000)
X, y, mask, _ = task.generate(1024, random_state=0)
rnn = RateRNNRegressor(64, activation="tanh", learning_rate=1e-2, max_iter=80, random_state=0)
with warnings.catch_warnings():  # a fixed budget of epochs: the loss is still falling at the end
    warnings.simplefilter("ignore", ConvergenceWarning)
    rnn.fit(X, y, sample_weight=mask)

X_test, y_test, mask_test, _ = task.generate(256, random_state=1)
sim = rnn.simulate(X_test, noise=False)
print(f"sign accuracy on 256 fresh trials: {task.accuracy(y_test, sim.outputs, mask_test):.3f}")

# %%
# One trial: the pulses, the bits to hold (dashed) and the network's outputs.

fig, axes = plt.subplots(3, 1, figsize=(7, 4.5), sharex=True)
t = task.times
for bit, ax in enumerate(axes):
    ax.bar(t, X_test[0, :, bit], width=task.dt, color="0.7", label="pulses")
    ax.plot(t, y_test[0, :, bit], "k--", lw=1, label="target")
    ax.plot(t, sim.outputs[0, :, bit], color=f"C{bit}", label="output")
    ax.set_ylim(-1.4, 1.4)
    ax.set_ylabel(f"bit {bit + 1}")
axes[0].legend(loc="upper left", ncol=3, fontsize=8)
axes[-1].set_xlabel("time (ms)")
fig.tight_layout()

# %%
# Fixed points
# ------------
# Start the search from 256 states drawn from the test trajectories, with the input off.
# A point counts as a fixed point only when its speed q = ½‖F(x) − x‖² is below ``tol``
# (1e-12); a search that stops above it is a slow point, reported with q and ‖∇q‖. The
# readout at each point tells which memory it stores.

fp = find_fixed_points(rnn, np.zeros(3), sim.states, n_init=256, random_state=0)
points = fp[fp.unique]
readout = np.tanh(points.states) @ rnn.W_out_.T + rnn.b_out_
fixed, stable = points.converged, points.converged & points.is_stable
n_unstable_dirs = (np.abs(points.eigenvalues) > 1).sum(1)
print(f"{fp.converged.sum()}/256 searches converged; {len(points)} unique points:")
print(f"{stable.sum()} stable fixed points, {(fixed & ~stable).sum()} unstable, {(~fixed).sum()} slow points")
print("kind       q        |grad q|  max|λ|  unstable dirs  readout")
for i in np.lexsort((n_unstable_dirs, ~fixed)):
    kind = "slow" if not fixed[i] else ("stable" if stable[i] else "saddle")
    print(
        f"{kind:8s} {points.speeds[i]:8.1e} {points.gradient_norms[i]:8.1e} "
        f"{np.abs(points.eigenvalues[i, 0]):7.4f} {n_unstable_dirs[i]:8d}       {np.round(readout[i], 2)}"
    )
patterns = {tuple(np.sign(r).astype(int)) for r in readout[stable]}
print(f"distinct sign patterns held by the stable fixed points: {len(patterns)}")

# %%
# The classic figure
# ------------------
# Fixed points and eight trials in the space of the first three principal components of
# the states the network visits while it holds its bits (steps at least 5 steps after any
# pulse; the pulses themselves kick the state far away for a few steps). Stable fixed
# points are filled and coloured by the pattern they hold; saddles are open circles, with a
# segment along their most unstable direction, which points to the two memories the saddle
# separates. Right: the eigenvalues of the Jacobian at a stable point and at a saddle (the
# discrete map is stable inside the unit circle; the saddle has one eigenvalue outside).

recent_pulse = np.zeros(X_test.shape[:2], dtype=bool)
for lag in range(5):
    recent_pulse[:, lag:] |= (X_test[:, : X_test.shape[1] - lag] != 0).any(-1)
held_states = sim.states[~recent_pulse]
mean = held_states.mean(0)
components = np.linalg.svd(held_states - mean, full_matrices=False)[2][:3]


def project(x):
    return (x - mean) @ components.T


fig = plt.figure(figsize=(10, 4.8))
ax = fig.add_subplot(1, 2, 1, projection="3d")
for trial in range(8):
    segments = np.split(np.arange(task.n_steps), np.flatnonzero(np.diff(recent_pulse[trial].astype(int))) + 1)
    for steps in segments:
        if not recent_pulse[trial, steps[0]]:
            ax.plot(*project(sim.states[trial, steps]).T, color="0.35", lw=0.9, alpha=0.7)
bits = (np.sign(readout) > 0).astype(int) @ np.array([4, 2, 1])
for i in np.flatnonzero(stable):
    ax.scatter(*project(points.states[i]), color=plt.cm.tab10(bits[i]), s=70, edgecolor="k", depthshade=False)
saddles = np.flatnonzero(fixed & ~stable)
scale = np.linalg.norm(project(points.states[stable]) - project(points.states[stable]).mean(0), axis=1).mean()
for i in saddles:
    ax.scatter(*project(points.states[i]), facecolor="none", edgecolor="k", s=35, depthshade=False)
    vals, vecs = np.linalg.eig(points.jacobians[i])
    v = np.real(vecs[:, np.argmax(np.abs(vals))]) @ components.T
    ends = project(points.states[i]) + np.outer([-1.0, 1.0], v / np.linalg.norm(v) * 0.3 * scale)
    ax.plot(*ends.T, color="crimson", lw=1.2)
if (~fixed).any():
    ax.scatter(*project(points.states[~fixed]).T, marker="x", color="orange", s=40, label="slow points")
    ax.legend(loc="upper left", fontsize=8)
ax.set_xlabel("PC 1")
ax.set_ylabel("PC 2")
ax.set_zlabel("PC 3")
ax.set_title("fixed points (filled: stable, open: saddles)")

ax2 = fig.add_subplot(1, 2, 2)
circle = np.exp(1j * np.linspace(0, 2 * np.pi, 200))
ax2.plot(circle.real, circle.imag, color="0.5", lw=0.8)
one_saddle = saddles[np.argmin(n_unstable_dirs[saddles])]
for i, label, marker in ((np.flatnonzero(stable)[0], "a stable point", "o"), (one_saddle, "a saddle", "x")):
    lam = points.eigenvalues[i]
    ax2.scatter(lam.real, lam.imag, marker=marker, s=18, label=label)
ax2.set_aspect("equal")
ax2.set_xlim(0.6, 1.2)
ax2.set_ylim(-0.3, 0.3)
ax2.set_xlabel("Re λ")
ax2.set_ylabel("Im λ")
ax2.set_title("Jacobian eigenvalues")
ax2.legend(fontsize=8)
fig.tight_layout()

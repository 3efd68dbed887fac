"""
One network, three tasks: multi-task training with rule inputs
===============================================================

Yang et al. (2019) trained one recurrent network on many cognitive tasks, telling the
network which task a trial belongs to with a one-hot "rule" input. Here one
:class:`~skneuro.rnn.RateRNNRegressor` learns three tasks at once:

* PsychRNN's perceptual discrimination (which of two noisy channels is stronger),
* PsychRNN's delayed discrimination (is the first of two frequencies the higher one),
* NeuroGym's ``GoNogo-v0`` (respond to the go stimulus, withhold the response to the
  no-go stimulus), through :class:`~skneuro.datasets.tasks.NeuroGymTask`.

:class:`~skneuro.datasets.tasks.MultiTask` mixes their trials in equal shares, lays the
tasks' inputs on shared channels, appends one rule channel per task and records each trial's
task in ``trial_params["task"]``; its ``accuracy`` scores every task by its own rule.

The NeuroGym task needs the optional extra (``pip install "skneuro[neurogym]"``). The
script runs in well under a minute on one CPU thread.
"""

# %%
# Three tasks on one time grid
# ----------------------------
# The tasks must share the time step and the trial length: 20 ms steps, 1.5 s trials
# (GoNogo's fixed trial length at its default timing).

import matplotlib.pyplot as plt
import numpy as np
import torch

from skneuro.datasets.tasks import DelayedDiscrimination, MultiTask, NeuroGymTask, PerceptualDiscrimination
from skneuro.rnn import RateRNNRegressor

torch.set_num_threads(1)
names = ["perceptual\ndiscrimination", "delayed\ndiscrimination", "NeuroGym\nGoNogo-v0"]
task = MultiTask(
    [
        PerceptualDiscrimination(dt=20, T=1500),
        DelayedDiscrimination(dt=20, T=1500),
        NeuroGymTask("GoNogo-v0", dt=20, T=1500),
    ]
)
X, y, mask, params = task.generate(3000, random_state=0)
print(f"X {X.shape} (2 shared inputs + GoNogo's third + 3 rule channels), y {y.shape}")

# %%
# Training and per-task accuracy
# ------------------------------
# One network of 64 units; the output mask of each task is the ``sample_weight``.

rnn = RateRNNRegressor(n_rec=64, dt=20, tau=100, max_iter=20, learning_rate=3e-3, random_state=0)
rnn.fit(X, y, sample_weight=mask)

X_test, y_test, mask_test, params_test = task.generate(600, random_state=1)
outputs = rnn.predict(X_test)
scores = task.accuracy(y_test, outputs, mask_test, params_test["task"])
for name, score in zip(names, scores):
    print(f"{name.replace(chr(10), ' '):28s} accuracy {score:.3f}")

# %%
# The figure
# ----------
# Left: accuracy of each task on fresh trials. Right: the two outputs of the network
# (solid) and their targets (dotted) in one test trial of each task; the shading marks the
# steps the mask scores.

fig, axes = plt.subplots(1, 4, figsize=(14, 3.4), gridspec_kw={"width_ratios": [1.1, 1, 1, 1]})
bars = axes[0].bar(range(3), scores, color=["C0", "C1", "C2"])
axes[0].bar_label(bars, fmt="%.2f", fontsize="small")
axes[0].axhline(0.5, color="0.3", lw=0.8, ls="--")
axes[0].text(2.45, 0.52, "chance", ha="right", va="bottom", fontsize="small")
axes[0].set_xticks(range(3), names, fontsize="small")
axes[0].set_ylim(0, 1.1)
axes[0].set_ylabel("accuracy on fresh trials")
time = np.arange(X_test.shape[1]) * task.dt
for k, ax in enumerate(axes[1:]):
    trial = np.flatnonzero(params_test["task"] == k)[0]
    scored = mask_test[trial, :, 0] > 0
    ax.fill_between(time, 0, 1, where=scored, color="0.92", step="mid", transform=ax.get_xaxis_transform())
    for out in range(2):
        ax.plot(time, outputs[trial, :, out], color=f"C{out + 3}", label=f"output {out}")
        ax.plot(time, y_test[trial, :, out], color=f"C{out + 3}", ls=":")
    ax.set_title(names[k].replace("\n", " "), fontsize="medium")
    ax.set_xlabel("time (ms)")
axes[1].set_ylabel("output")
axes[1].legend(fontsize="small", loc="upper left")
fig.tight_layout()
plt.show()

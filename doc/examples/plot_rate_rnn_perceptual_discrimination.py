"""
Training a rate RNN on perceptual discrimination
================================================

A leaky rate network of 30 units learns PsychRNN's perceptual-discrimination task: two
noisy input channels, one of which carries a slightly higher mean ("coherence"); after
the stimulus ends, the network must raise the output matching the stronger channel.

Here we

1. generate trials and train a :class:`~skneuro.rnn.RateRNNRegressor` with the output
   mask as ``sample_weight`` (only the response period counts),
2. measure accuracy on fresh trials and a psychometric curve (the probability of
   choosing output 0 against signed coherence),
3. plot the rates of a few units in one trial.

The script runs in a few seconds on one CPU thread.
"""

# %%
# Training
# --------
# Trials of 1 s at dt = 10 ms (100 steps). The mask is 1 from the end of the stimulus on,
# so the loss only asks for the decision.

import matplotlib.pyplot as plt
import numpy as np
import torch

from skneuro.datasets.tasks import PerceptualDiscrimination, accuracy
from skneuro.plotting import plot_psychometric
from skneuro.rnn import RateRNNRegressor

torch.set_num_threads(1)
task = PerceptualDiscrimination(T=1000)
X, y, mask, _ = task.generate(4000, random_state=0)
rnn = RateRNNRegressor(n_rec=30, batch_size=64, max_iter=3, train_init_state=True, random_state=0)
rnn.fit(X, y, sample_weight=mask)

X_test, y_test, mask_test, params = task.generate(500, random_state=1)
print(f"accuracy on fresh trials: {accuracy(y_test, rnn.predict(X_test), mask_test):.3f}")

# %%
# Psychometric curve
# ------------------
# For each coherence and direction, 200 fresh trials with the stimulus fixed; signed
# coherence is positive when channel 0 is the stronger one.

signed, chose_zero = [], []
for direction in (0, 1):
    for coherence in (0.1, 0.3, 0.5, 0.7):
        fixed = PerceptualDiscrimination(T=1000, coherence=coherence, direction=direction)
        Xc, yc, mc, _ = fixed.generate(200, random_state=2)
        outputs = rnn.predict(Xc)
        choice = np.argmax((outputs * mc).mean(axis=1), axis=1)
        signed.append(np.full(len(choice), coherence if direction == 0 else -coherence))
        chose_zero.append(choice == 0)

fig, ax = plt.subplots(figsize=(5.5, 4))
plot_psychometric(np.concatenate(signed), np.concatenate(chose_zero), ax=ax)
ax.set_ylabel("P(choose output 0)")
ax.set_title("psychometric curve")
fig.tight_layout()
plt.show()

# %%
# Rates of a few units
# --------------------
# The rates of the first five units in one test trial, with the stimulus period shaded.

rates = rnn.predict_states(X_test[:1])[0]
time = np.arange(rates.shape[0]) * task.dt
onset, duration = params["onset_time"][0], params["stim_duration"][0]
fig, ax = plt.subplots(figsize=(6.5, 4))
for unit in range(5):
    ax.plot(time, rates[:, unit], label=f"unit {unit}")
ax.axvspan(onset, onset + duration, color="0.9", label="stimulus")
ax.set_xlabel("time (ms)")
ax.set_ylabel("rate")
ax.set_title("rates of five units in one test trial")
ax.legend(fontsize="small")
fig.tight_layout()
plt.show()

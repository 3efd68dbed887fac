"""
A pipeline over trials: scaling and grid search for a rate RNN
==============================================================

scikit-learn's :class:`~sklearn.preprocessing.StandardScaler` refuses the 3-D trials
``(n_trials, n_steps, n_features)`` that a :class:`~skneuro.rnn.RateRNNRegressor` trains
on; :class:`~skneuro.preprocessing.TrialScaler` standardises each input channel over all
trials and time steps instead, so the scaler and the network form one
:class:`~sklearn.pipeline.Pipeline`. Cross-validation then refits the scaler on each
training fold, and a grid search can tune the network and the scaler together.

Here we

1. build ``make_pipeline(TrialScaler(), RateRNNRegressor())`` for perceptual
   discrimination, with the output mask routed to the network's ``fit`` and ``score``
   through scikit-learn's metadata routing,
2. search over the number of units ``n_rec`` and the scaler's ``with_mean`` and
   ``with_std`` with :class:`~sklearn.model_selection.GridSearchCV`,
3. look at the cross-validated scores and at the chosen pipeline on fresh trials.

The script runs in about 20 seconds on one CPU thread.
"""

# %%
# Trials and the pipeline
# -----------------------
# Trials of 500 ms at dt = 10 ms (50 steps), two input channels and two outputs. The mask
# is 1 from the end of the stimulus on: the network is only asked for its decision.
#
# The mask is about the *outputs*, and in this task it covers only the time after the
# stimulus, when the inputs are noise. Standardising the inputs with statistics of those
# time points alone would blow the stimulus up about twenty-fold, so the scaler asks not
# to receive the mask (``set_fit_request(sample_weight=False)``) and uses every time
# point; it would ask for it (``True``) where the mask marks the padding of trials of
# unequal length. The network asks for the mask in ``fit`` and ``score``, so each test
# fold is scored by the masked R².

import warnings

import matplotlib.pyplot as plt
import numpy as np
import sklearn
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from skneuro.datasets.tasks import PerceptualDiscrimination, accuracy
from skneuro.preprocessing import TrialScaler
from skneuro.rnn import RateRNNRegressor

torch.set_num_threads(1)
task = PerceptualDiscrimination(T=500)
X, y, mask, _ = task.generate(600, random_state=0)
print(f"X {X.shape}, y {y.shape}, mask {mask.shape}")
print("input mean and std per channel:", X.reshape(-1, 2).mean(axis=0).round(2), X.reshape(-1, 2).std(axis=0).round(2))

grid = {
    "raternnregressor__n_rec": [4, 8, 16],
    "trialscaler__with_mean": [True, False],
    "trialscaler__with_std": [True, False],
}
with sklearn.config_context(enable_metadata_routing=True), warnings.catch_warnings():
    # eight epochs per fit keep the example short; each fit would warn that it stopped there
    warnings.simplefilter("ignore", ConvergenceWarning)
    pipe = make_pipeline(
        TrialScaler().set_fit_request(sample_weight=False),
        RateRNNRegressor(batch_size=16, max_iter=8, learning_rate=0.01, random_state=0)
        .set_fit_request(sample_weight=True)
        .set_score_request(sample_weight=True),
    )
    search = GridSearchCV(pipe, grid, cv=2).fit(X, y, sample_weight=mask)
print("best parameters:", search.best_params_)
print(f"best cross-validated masked R²: {search.best_score_:.3f}")

# %%
# Cross-validated scores
# ----------------------
# The mean masked R² over the two folds for each setting of the scaler, against the
# number of units (the bars span the two folds). Larger networks learn more of the task
# within the few epochs given here. The inputs are already of order one, so no setting of
# the scaler is best everywhere: the differences between settings are of the size of
# the differences between folds and between initialisations, and the search simply
# keeps the setting that scored best.

results = search.cv_results_
n_recs = grid["raternnregressor__n_rec"]
fig, ax = plt.subplots(figsize=(6, 4))
for k, (with_mean, with_std) in enumerate([(True, True), (False, True), (True, False), (False, False)]):
    rows = [
        i
        for i, p in enumerate(results["params"])
        if p["trialscaler__with_mean"] == with_mean and p["trialscaler__with_std"] == with_std
    ]
    rows.sort(key=lambda i: results["params"][i]["raternnregressor__n_rec"])
    folds = np.array([[results[f"split{s}_test_score"][i] for s in range(2)] for i in rows])
    x = np.arange(len(n_recs)) + (k - 1.5) * 0.08
    ax.errorbar(
        x,
        folds.mean(axis=1),
        yerr=np.abs(folds - folds.mean(axis=1, keepdims=True)).max(axis=1),
        marker="o",
        capsize=3,
        label=f"with_mean={with_mean}, with_std={with_std}",
    )
ax.set_xticks(np.arange(len(n_recs)), [str(n) for n in n_recs])
ax.set_xlabel("n_rec")
ax.set_ylabel("cross-validated masked R²")
ax.set_title("grid search over the network and the scaler")
ax.legend(fontsize="small")
fig.tight_layout()
plt.show()

# %%
# The chosen pipeline on fresh trials
# -----------------------------------
# ``search`` was refitted on all 600 trials with the best parameters; ``predict`` and
# ``score`` scale fresh trials with the statistics of the training trials. Below, the two
# outputs of the pipeline for one fresh trial of each direction, with the targets dashed
# and the masked (scored) period shaded.

X_test, y_test, mask_test, params = task.generate(300, random_state=1)
with sklearn.config_context(enable_metadata_routing=True):
    test_score = search.score(X_test, y_test, sample_weight=mask_test)
outputs = search.predict(X_test)
print(f"masked R² on fresh trials: {test_score:.3f}")
print(f"accuracy on fresh trials: {accuracy(y_test, outputs, mask_test):.3f}")

time = np.arange(X_test.shape[1]) * task.dt
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
for ax, direction in zip(axes, (0, 1)):
    trial = int(np.flatnonzero(params["direction"] == direction)[0])
    on = time[mask_test[trial, :, 0] > 0]
    ax.axvspan(on[0], on[-1], color="0.92", label="scored (mask = 1)")
    for out, color in zip(range(2), ("C0", "C1")):
        ax.plot(time, outputs[trial, :, out], color=color, label=f"output {out}")
        ax.plot(time, y_test[trial, :, out], color=color, linestyle="--", label=f"target {out}")
    ax.set_title(f"fresh trial, channel {direction} stronger")
    ax.set_xlabel("time (ms)")
axes[0].set_ylabel("output")
axes[0].legend(fontsize="small", loc="upper left")
fig.tight_layout()
plt.show()

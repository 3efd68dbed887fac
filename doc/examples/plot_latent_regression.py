"""
Predicting a subject never seen in training
===========================================

Two animals never share neurons: each recording has its own cells, at its own
positions. :class:`~skneuro.latent_regression.MultiSubjectLatentRegressor` still pools
them. It assumes that every subject's outputs are driven by its inputs through the same
few latent dimensions, and that how strongly a neuron takes part in each dimension (its
*mode*) is a smooth function of where the neuron sits. The functions from position to
mode are learned once, from all training subjects together, so a new subject can be
predicted from its inputs and the positions of its neurons, with no data of its own.

Here we

1. simulate three subjects whose modes are smooth functions of a 3-D position,
2. fit the model on two of them,
3. predict the third, and compare its predicted modes with the true ones.

The script runs in a few seconds on one CPU thread.
"""

# %%
# Three simulated subjects
# ------------------------
# :func:`~skneuro.datasets.make_multi_subject_latent_regression` draws, for each subject,
# its own neurons (100-150 inputs, 200-300 outputs) at uniform positions in the unit cube,
# computes their modes from two shared smooth functions of position, and simulates 2,000
# samples of ``y = (x P) Uᵀ + noise``. Each subject is a
# :class:`~skneuro.latent_regression.SubjectData`: inputs plus the positions of the
# input and output neurons. With ``return_params=True`` we also get the true modes.

import numpy as np
import torch
from sklearn.metrics import r2_score

from skneuro.datasets import make_multi_subject_latent_regression
from skneuro.latent_regression import MultiSubjectLatentRegressor

# One thread: the timings stay comparable from machine to machine.
torch.set_num_threads(1)

X, y, truth = make_multi_subject_latent_regression(
    3, 2000, n_inputs=(100, 150), n_outputs=(200, 300), random_state=0, return_params=True
)
for subject in X:
    print(subject)

# %%
# Fitting on two subjects
# -----------------------
# The estimator takes a list of subjects and a list of their outputs. The mode
# predictors are sums of Gaussian bumps over the neurons' positions; they start from an
# alternating least-squares solution and are then refined by Adam together with each
# subject's own scales, offsets and noise variances. With the defaults the refinement
# runs its full budget of 500 epochs, still improving a little at the end, and says so
# with a ``ConvergenceWarning``, which we silence here.

import warnings

from sklearn.exceptions import ConvergenceWarning

warnings.filterwarnings("ignore", category=ConvergenceWarning)

train, unseen = X[:2], X[2]
model = MultiSubjectLatentRegressor(n_components=2, random_state=0)
model.fit(train, y[:2])
print(f"trained on {model.subject_ids_}, {model.n_iter_} epochs")
print(f"R² on the training subjects (in sample): {model.score(train, y[:2]):.4f}")

# %%
# Predicting the unseen subject
# -----------------------------
# Subject ``s2`` was never part of the fit. Its prediction uses only its inputs and the
# positions of its neurons; its scale and offset are those that best fit all training
# neurons together (``default_subject_params_``). The true model's R² on the same data is the
# ceiling set by the noise.

(y_pred,) = model.predict([unseen])
true_mean = (unseen.x @ truth["input_modes"][2]) @ truth["output_modes"][2].T
ceiling = r2_score(y[2], true_mean, multioutput="variance_weighted")
print(f"unseen subject s2: R² {model.score([unseen], [y[2]]):.4f} (ceiling {ceiling:.4f})")

# %%
# Predicted and true modes
# ------------------------
# The modes are determined only up to an invertible K×K mixing: replacing P by PA and U
# by UA⁻ᵀ leaves every prediction unchanged. Before comparing with the truth we therefore
# map the predicted output modes onto the true ones by the least-squares mixing that
# fits the *training* subjects best, and apply that same mixing to the unseen subject.

P_train, U_train = zip(*(model.predict_modes(s) for s in train))
mixing, *_ = np.linalg.lstsq(np.vstack(U_train), np.vstack(truth["output_modes"][:2]), rcond=None)
_, U_unseen = model.predict_modes(unseen)
U_aligned = U_unseen @ mixing
U_true = truth["output_modes"][2]
for k in range(2):
    r = np.corrcoef(U_aligned[:, k], U_true[:, k])[0, 1]
    print(f"mode {k + 1}: correlation of predicted and true loadings over s2's neurons {r:.3f}")

# %%
# Each dot is one output neuron of the unseen subject, placed at the first two of its
# three position coordinates and coloured by its loading on a mode: the true loading in
# the top row, the one predicted from position alone in the bottom row. (The third
# coordinate is not shown, so neighbouring dots can differ.)

import matplotlib.pyplot as plt

positions = unseen.output_properties
fig, axes = plt.subplots(2, 2, figsize=(8, 7.2), sharex=True, sharey=True, layout="constrained")
for k in range(2):
    limit = np.abs(U_true[:, k]).max()
    for row, (values, name) in enumerate(((U_true[:, k], "true"), (U_aligned[:, k], "predicted"))):
        ax = axes[row, k]
        dots = ax.scatter(*positions[:, :2].T, c=values, cmap="RdBu_r", vmin=-limit, vmax=limit, s=18)
        ax.set(title=f"mode {k + 1}, {name}", aspect="equal")
    fig.colorbar(dots, ax=axes[:, k], shrink=0.6, label="loading")
for ax in axes[1]:
    ax.set_xlabel("position 1")
for ax in axes[:, 0]:
    ax.set_ylabel("position 2")

# %%
# The predicted maps reproduce the true ones neuron by neuron, although the model never
# saw a single sample of this subject: the two training subjects, with different neurons
# at different places, were enough to learn how the loadings vary across the tissue.

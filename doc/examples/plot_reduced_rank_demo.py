"""
Choosing the rank of a sigmoid reduced-rank regression
======================================================

Thirty simulated "neurons" are driven by twenty inputs, but only through three
shared input projections, each neuron saturating through its own sigmoid. We

1. simulate such data with a known rank of 3,
2. let cross-validation choose ``n_components`` for
   :class:`~skneuro.reduced_rank.RRSigmoidRegressor` inside a scikit-learn
   :class:`~sklearn.pipeline.Pipeline`,
3. score the chosen model on held-out data, against the true model, and
4. check that the fitted parameters are reproducible by fitting the true-rank model
   on two disjoint halves of the training data and comparing them with
   :func:`skneuro.plotting.compare_reduced_rank`.

The whole script runs in about ten seconds on one CPU thread.
"""

# %%
# Simulated data
# --------------
# :func:`~skneuro.datasets.make_reduced_rank_regression` draws inputs
# ``X ~ N(0, I)`` and targets ``y = g ⊙ σ(X w0 w1ᵀ + o1) + o2 + noise`` with a random
# rank-3 weight matrix ``w0 w1ᵀ`` and per-target noise variances ``v``.
# ``return_params=True`` also returns the true parameters, so that we can score the
# ground truth itself.

import numpy as np
import torch
from scipy.linalg import subspace_angles
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skneuro.datasets import make_reduced_rank_regression
from skneuro.reduced_rank import RRSigmoidRegressor

# One thread: the timings stay comparable from machine to machine.
torch.set_num_threads(1)

TRUE_RANK = 3
X, y, truth = make_reduced_rank_regression(
    n_samples=3000,
    n_features=20,
    n_targets=30,
    n_components=TRUE_RANK,
    link="sigmoid",
    random_state=0,
    return_params=True,
)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=1 / 3, random_state=0)
print(f"train: X {X_train.shape}, y {y_train.shape}; test: X {X_test.shape}, y {y_test.shape}")

# %%
# Choosing the rank by cross-validation
# -------------------------------------
# The estimators follow the scikit-learn API, so they fit in a ``Pipeline`` and
# ``GridSearchCV`` tunes them like any other regressor. The default score is R²
# (uniformly averaged over targets).

search = GridSearchCV(
    Pipeline([("standardscaler", StandardScaler()), ("rrsigmoidregressor", RRSigmoidRegressor(random_state=0))]),
    {"rrsigmoidregressor__n_components": [1, 2, 3, 4, 5]},
    cv=3,
)
search.fit(X_train, y_train)
ranks = [params["rrsigmoidregressor__n_components"] for params in search.cv_results_["params"]]
r2_cv = search.cv_results_["mean_test_score"]
for rank, score in zip(ranks, r2_cv, strict=True):
    print(f"rank {rank}: mean cross-validated R² = {score:.4f}")
best = search.best_estimator_
chosen = search.best_params_["rrsigmoidregressor__n_components"]
print(f"chosen rank (R²): {chosen}")

# %%
# The same search, scored by log-likelihood
# -----------------------------------------
# R² only looks at the mean prediction and weighs every target by its variance. The
# model also estimates each target's noise variance ``noise_variance_``, and its fit maximises the
# Gaussian likelihood, so the held-out log-likelihood is the criterion that matches
# the fit. It is also in the same units (nats per sample) for every link and rank.
#
# ``GridSearchCV`` calls a scorer with the whole pipeline, and a ``Pipeline`` only
# exposes the standard methods (``predict``, ``score``, ...), not
# ``log_likelihood``. The scorer therefore sends ``X`` through every step but the last
# and asks the final estimator.


def log_likelihood_scorer(pipeline, X, y):
    """Mean held-out log-likelihood per sample of a fitted pipeline's last step."""
    return pipeline[-1].log_likelihood(pipeline[:-1].transform(X), y)


search_ll = GridSearchCV(search.estimator, search.param_grid, cv=3, scoring=log_likelihood_scorer)
search_ll.fit(X_train, y_train)
for rank, score in zip(ranks, search_ll.cv_results_["mean_test_score"], strict=True):
    print(f"rank {rank}: mean cross-validated log-likelihood = {score:.3f} nats/sample")
print(f"chosen rank (log-likelihood): {search_ll.best_params_['rrsigmoidregressor__n_components']}")

# %%
# Both criteria rise steeply up to the true rank and then fall slightly: extra
# components can only fit noise in the training folds. On this data the two agree on
# rank 3. They can disagree when targets have very different noise levels, since R²
# weighs targets by their total variance and the likelihood by their noise variance;
# the log-likelihood is then the criterion of the model being fitted.

import matplotlib.pyplot as plt

fig, (ax_r2, ax_ll) = plt.subplots(1, 2, figsize=(9, 3.5))
ax_r2.plot(ranks, r2_cv, "o-")
ax_r2.set(xlabel="n_components", ylabel="mean CV R²", title="R²")
ax_ll.plot(ranks, search_ll.cv_results_["mean_test_score"], "o-")
ax_ll.set(xlabel="n_components", ylabel="mean CV log-likelihood (nats/sample)", title="log-likelihood")
for ax in (ax_r2, ax_ll):
    ax.axvline(TRUE_RANK, color="grey", linestyle=":", label="true rank")
    ax.legend()
fig.tight_layout()

# %%
# Held-out performance
# --------------------
# ``GridSearchCV`` refits the chosen pipeline on the whole training set. We score it
# on the test set and compare with the true model, whose log-likelihood is the best
# any fit can expect on average; the gap is the price of estimating the parameters
# from 2000 samples.


def true_log_likelihood(params, X, y):
    """Mean per-sample log-likelihood of ``y`` under the simulating model."""
    pre = X @ params["w0"] @ params["w1"].T + params["o1"]
    mean = params["g"] / (1.0 + np.exp(-pre)) + params["o2"]
    nll = 0.5 * np.log(2 * np.pi * params["noise_variance"]) + (y - mean) ** 2 / (2 * params["noise_variance"])
    return -nll.sum(axis=1).mean()


ll_test = best[-1].log_likelihood(best[:-1].transform(X_test), y_test)
ll_true = true_log_likelihood(truth, X_test, y_test)
print(f"held-out R²: {best.score(X_test, y_test):.4f}")
print(f"held-out log-likelihood: {ll_test:.3f} nats/sample (true model: {ll_true:.3f}, gap {ll_true - ll_test:.3f})")

# %%
# Are the parameters reproducible?
# --------------------------------
# Fit the true-rank model on each half of the training data. The inputs are already
# standard normal, so we fit the estimator directly on ``X`` and its weights are in
# the same units as the truth. The estimators store their parameters in a standard
# form (``w1_`` has orthonormal columns ordered by singular value, signs fixed), so
# two fits of the same model can be compared entry by entry. The subspace spanned by
# the input projections ``w0_`` is compared with the true one through principal
# angles (0 means identical).

half = len(X_train) // 2
model_a = RRSigmoidRegressor(n_components=TRUE_RANK, random_state=0).fit(X_train[:half], y_train[:half])
model_b = RRSigmoidRegressor(n_components=TRUE_RANK, random_state=0).fit(X_train[half:], y_train[half:])
for name, model in (("first half", model_a), ("second half", model_b)):
    angles = np.degrees(subspace_angles(model.w0_, truth["w0"]))
    print(
        f"{name}: solver {model.solver_}, {model.n_iter_} iterations, held-out R² {model.score(X_test, y_test):.4f}, "
        f"angles to the true w0 subspace (degrees) {np.round(angles, 2)}"
    )

# %%
# :func:`~skneuro.plotting.compare_reduced_rank` aligns the component signs of the
# second model to the first and shows both parameter sets with their difference,
# then the two models' predictions for the first two targets on the test set.

from skneuro.plotting import compare_reduced_rank

fig = compare_reduced_rank(model_a, model_b, X=X_test)
fig.savefig("reduced_rank_demo.png", dpi=80)
print("saved reduced_rank_demo.png")

# %%
# The projections ``w0_`` and loadings ``w1_`` agree closely. The per-target gains
# ``g_`` (and with them the offsets ``o2_``) can differ for a few targets: those
# whose pre-activations stay within the nearly linear middle of the sigmoid. There a
# larger gain with smaller weights into the target gives almost the same
# predictions, so the data pin down the product of the two rather than the gain
# itself. The predictions in the last row of the figure agree nonetheless.

gain_gap = np.abs(model_a.g_ - model_b.g_) / (0.5 * (model_a.g_ + model_b.g_))
spread = (X_test @ truth["w0"] @ truth["w1"].T).std(axis=0)
worst = np.argsort(gain_gap)[::-1][:3]
print(
    f"largest relative gain differences: targets {worst.tolist()}, {np.round(gain_gap[worst], 2).tolist()}; "
    f"std of their true pre-activations {np.round(spread[worst], 2).tolist()} (median over targets "
    f"{np.median(spread):.2f})"
)

# sphinx_gallery_thumbnail_number = 2

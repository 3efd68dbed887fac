"""
Early stopping on held-out data
===============================

A flexible model fitted to few noisy points keeps lowering its training objective long
after it stopped learning the function: it fits the noise. With ``early_stopping=True``
the estimator holds out ``validation_fraction`` of the samples (drawn from
``random_state``), scores them after every epoch, stops when that score has not improved
for ``n_iter_no_change`` epochs and keeps the parameters of the best epoch.

Here 40 Gaussian bumps (:class:`~skneuro.bumps.SumOfBumpsRegressor`) are fitted to 200
noisy points of a smooth field, with and without early stopping, and both are scored on
1,000 fresh points against the noise-free field. The script runs in a few seconds.
"""

# %%
# Data and the two fits
# ---------------------

import warnings

import matplotlib.pyplot as plt
import numpy as np

from skneuro.bumps import SumOfBumpsRegressor
from skneuro.plotting import plot_loss_curve

rng = np.random.default_rng(0)
X = rng.uniform(-1, 1, size=(1200, 2))
field = np.sin(3 * X[:, 0]) * np.cos(2 * X[:, 1])
y = field + 0.3 * rng.normal(size=len(X))
X_train, y_train, X_test, field_test = X[:200], y[:200], X[200:], field[200:]

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # the plain fit stops at max_iter
    plain = SumOfBumpsRegressor(n_bumps=40, random_state=0).fit(X_train, y_train)
    stopped = SumOfBumpsRegressor(n_bumps=40, early_stopping=True, random_state=0).fit(X_train, y_train)

for name, est in (("trained to the end", plain), ("early stopping", stopped)):
    print(f"{name:>20}: {est.n_iter_:3d} epochs, R² on fresh points {est.score(X_test, field_test):.3f}")

# %%
# Training and validation objectives
# ----------------------------------
# The dashed line is the validation objective (the mean squared error of the held-out
# points, in the estimator's standardised units); the dotted line marks the epoch whose
# parameters were kept. The plain fit's training objective keeps falling.

fig, axes = plt.subplots(1, 2, figsize=(11, 4))
plot_loss_curve(plain, stopped, labels=["trained to the end", "early stopping"], ax=axes[0])
axes[0].set_title("objective per epoch")
grid = np.linspace(-1, 1, 60)
gx, gy = np.meshgrid(grid, grid)
points = np.column_stack([gx.ravel(), gy.ravel()])
error_plain = np.abs(plain.predict(points) - np.sin(3 * points[:, 0]) * np.cos(2 * points[:, 1]))
error_stopped = np.abs(stopped.predict(points) - np.sin(3 * points[:, 0]) * np.cos(2 * points[:, 1]))
image = axes[1].imshow(
    (error_plain - error_stopped).reshape(gx.shape),
    extent=(-1, 1, -1, 1),
    origin="lower",
    cmap="RdBu_r",
    vmin=-1,
    vmax=1,
)
fig.colorbar(image, ax=axes[1], label="|error| trained to the end − |error| early stopping")
axes[1].set_title("where early stopping is closer to the field (red)")
fig.tight_layout()
plt.show()

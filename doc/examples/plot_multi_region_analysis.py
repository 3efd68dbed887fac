"""
A two-region network: local dynamics, fixed points and a flow field
===================================================================

A "sensory" region (excitatory and inhibitory populations, grouped under one parent name)
receives the two stimulus channels of the perceptual-discrimination task and projects
sparsely to a "pfc" region with unconstrained signs, which alone drives the outputs.
After training we ask region questions:

1. how each region's local linear dynamics look (eigenvalues of its Jacobian, holding the
   other region fixed),
2. where the network's fixed points are once the stimulus is off, and whether they are
   stable,
3. how the pfc state flows on the plane of its two main axes, with trials of both
   choices drawn on top.

The script runs in a few seconds on one CPU thread.
"""

# %%
# The network and its training
# ----------------------------
# Regions own consecutive units in config order; ``density`` is the fraction of each
# source unit's possible targets that it reaches.

import matplotlib.pyplot as plt
import numpy as np
import torch

from skneuro.analysis import Linearization, find_fixed_points, flow_field
from skneuro.datasets.tasks import PerceptualDiscrimination, accuracy
from skneuro.plotting import plot_eigenvalues, plot_flow_field
from skneuro.rnn import MultiRegionRNNRegressor

torch.set_num_threads(1)
config = {
    "regions": [
        {"name": "sens_e", "n_units": 24, "sign": "excitatory", "parent": "sensory"},
        {"name": "sens_i", "n_units": 6, "sign": "inhibitory", "parent": "sensory"},
        {"name": "pfc", "n_units": 30, "sign": "mixed", "learnable_bias": True},
    ],
    "inputs": [{"name": "stimulus", "n_units": 2, "sign": "excitatory"}],
    "connections": [
        {"source": "stimulus", "target": "sens_e"},
        {"source": "sensory", "target": "sensory"},
        {"source": "sens_e", "target": "pfc", "density": 0.5},
        {"source": "pfc", "target": "pfc"},
        {"source": "pfc", "target": "sens_i", "density": 0.5},
    ],
    "readout": ["pfc"],
}
task = PerceptualDiscrimination(T=1000)
X, y, mask, _ = task.generate(4000, random_state=0)
net = MultiRegionRNNRegressor(config, max_iter=4, learning_rate=3e-3, train_init_state=True, random_state=0).fit(
    X, y, sample_weight=mask
)
X_test, y_test, mask_test, params = task.generate(400, random_state=1)
print(f"accuracy on fresh trials: {accuracy(y_test, net.predict(X_test), mask_test):.3f}")
print({name: (s.start, s.stop) for name, s in net.region_slices_.items()})

# %%
# Local dynamics of each region
# -----------------------------
# At the state reached at the end of a test trial, the Jacobian of one region's update
# with respect to its own states (the other region held) has eigenvalues
# ``λ = 1 − α + α μ``: inside the unit circle the region alone would relax back.

states = net.simulate(X_test, noise=False).states
end_state, end_input = states[0, -1], X_test[0, -1]
fig, ax = plt.subplots(figsize=(5.5, 4.5))
for name, marker in (("sensory", "o"), ("pfc", "x")):
    eigenvalues, _ = Linearization(net, [name]).eigendecomposition(end_input, end_state)
    plot_eigenvalues(eigenvalues, ax=ax, label=name, marker=marker)
    print(f"{name}: largest |λ| = {np.abs(eigenvalues[0]):.3f}")
ax.set_xlim(0.7, 1.1)
ax.set_ylim(-0.2, 0.2)
ax.set_title("Jacobian eigenvalues per region")
fig.tight_layout()
plt.show()

# %%
# Fixed points with the stimulus off
# ----------------------------------
# Levenberg–Marquardt from 32 states drawn from the test trajectories, each stopping on
# its own: at a fixed point (speed q below ``tol``) or at a slow point, a local minimum of
# q above it. A network that makes a two-way decision holds it in two stable fixed points,
# one per choice, with a saddle between them (or, when the decision is still being
# accumulated, along a line of slow points: an approximate line attractor); ``unique``
# merges duplicates.

fixed = find_fixed_points(net, np.zeros(2), states, n_init=32, random_state=0)
slow = ~fixed.converged
slow_range = f" (q from {fixed.speeds[slow].min():.1e} to {fixed.speeds[slow].max():.1e})" if slow.any() else ""
print(
    f"{fixed.converged.sum()} fixed points and {slow.sum()} slow points{slow_range}; "
    f"{len(fixed.unique)} distinct, {fixed.is_stable[fixed.unique].sum()} of them stable"
)

# %%
# Flow of the pfc region
# ----------------------
# The plane is spanned by the two leading principal axes of the pfc states; the sensory
# units are held at a late-trial state. Trials where the network chose output 0 and
# output 1 are drawn in black.

choice = np.argmax((net.predict(X_test) * mask_test).mean(axis=1), axis=1)
trials = np.concatenate([states[choice == 0][:3], states[choice == 1][:3]])
field = flow_field(net, np.zeros(2), states, regions=["pfc"], centers=end_state, extent=2.5, n_points=30)
fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
plot_flow_field(field, ax=axes[0], fixed_points=fixed, trajectory=trials)
axes[0].set_title("pfc flow, stimulus off")
speed_cut = field.speed.mean(axis=0)
axes[1].plot(field.grid[0, :, 0], speed_cut)
axes[1].set_xlabel("component 1")
axes[1].set_ylabel("mean speed over component 2")
axes[1].set_title("where the pfc state moves slowly")
fig.tight_layout()
plt.show()

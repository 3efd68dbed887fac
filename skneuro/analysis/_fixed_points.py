r"""Fixed (and slow) points of a leaky rate network, found per state and in a batch.

A fixed point of the noise-free update ``F`` with constant input u solves ``F(x, u) = x``;
the search minimises the speed ``q(x) = ½‖F(x, u) − x‖²`` from many initial states at once,
each state stopping on its own when ``q < tol``. The default Levenberg–Marquardt search
uses the analytic Jacobian ``J − I``; ``method="adam"`` is the gradient search of the
original toolkits. Both run batched in torch float64 on the device the model lives on
(:mod:`._fixed_point_search`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

import numpy as np
import torch

from .._engine.base import make_generators
from ..rnn._modules import _activate
from ._fixed_point_search import Subsystem, search_adam, search_lm, slope
from ._model import as_array, network_view

__all__ = ["FixedPoints", "find_fixed_points"]


@dataclass
class FixedPoints:
    """Result of :func:`find_fixed_points`; one entry per initial state.

    Attributes
    ----------
    states : ndarray of shape (n, n_rec)
    speeds : ndarray of shape (n,)
        ``q = ½‖F(x) − x‖²`` over the searched units.
    gradient_norms : ndarray of shape (n,)
        ``‖∇q‖`` over the searched units: near 0 at a fixed point and at a slow point.
    converged : ndarray of bool, shape (n,)
        ``q < tol``: a fixed point. The others are slow points (a local minimum of q above
        ``tol`` when their gradient norm is small) or searches that ran out of iterations;
        they are never fixed points.
    n_iter : ndarray of int, shape (n,)
    inputs : ndarray of shape (n, n_in)
    jacobians : ndarray of shape (n, n_rec, n_rec)
        State Jacobian of the full network at each point.
    eigenvalues : ndarray of complex, shape (n, n_rec)
        Of the Jacobian, by descending modulus; computed once per unique point and shared
        by the points merged into it (within ``unique_tol``).
    is_stable : ndarray of bool, shape (n,)
        All eigenvalues inside the unit circle (the update is a discrete map).
    unique : ndarray of int
        Indices of the distinct, non-outlying points (lowest speed kept among neighbours).

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.analysis import FixedPoints
    >>> fp = FixedPoints(states=np.zeros((2, 1)), speeds=np.zeros(2), gradient_norms=np.zeros(2),
    ...                  converged=np.ones(2, bool),
    ...                  n_iter=np.ones(2, int), inputs=np.zeros((2, 0)), jacobians=np.zeros((2, 1, 1)),
    ...                  eigenvalues=np.zeros((2, 1), complex), is_stable=np.ones(2, bool),
    ...                  unique=np.array([0]))
    >>> len(fp), len(fp[fp.unique])
    (2, 1)
    """

    states: np.ndarray
    speeds: np.ndarray
    gradient_norms: np.ndarray
    converged: np.ndarray
    n_iter: np.ndarray
    inputs: np.ndarray
    jacobians: np.ndarray
    eigenvalues: np.ndarray
    is_stable: np.ndarray
    unique: np.ndarray

    def __len__(self):
        return int(self.states.shape[0])

    def __getitem__(self, index):
        """The points at ``index`` (int, slice, index array or boolean mask) as a new collection."""
        picked = np.arange(len(self))[index]
        picked = np.atleast_1d(picked)
        keep = np.flatnonzero(np.isin(picked, self.unique))
        values = {f.name: getattr(self, f.name)[picked] for f in fields(self) if f.name != "unique"}
        return FixedPoints(**values, unique=keep)

    def save(self, path):
        """Write every array to an ``.npz`` file (no pickle).

        Parameters
        ----------
        path : str or path-like
        """
        np.savez(os.fspath(path), **{f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def load(cls, path):
        """Read a collection written by :meth:`save` (``allow_pickle=False``).

        Parameters
        ----------
        path : str or path-like

        Returns
        -------
        FixedPoints
        """
        with np.load(os.fspath(path), allow_pickle=False) as data:
            values = {f.name: data[f.name] for f in fields(cls) if f.name in data.files}
        # files written before gradient norms were recorded
        values.setdefault("gradient_norms", np.full(values["speeds"].shape, np.nan))
        return cls(**values)


def _starting_states(initial_states, n_rec, n_init, noise_scale, rng):
    states = as_array(initial_states, "initial_states")
    if states.shape[-1:] != (n_rec,) or states.ndim < 1:
        raise ValueError(f"initial_states must have n_rec={n_rec} entries in the last axis; got {states.shape}.")
    if states.ndim == 1:
        states = states[None]
    elif states.ndim > 2:
        pool = states.reshape(-1, n_rec)
        if isinstance(n_init, bool) or not isinstance(n_init, (int, np.integer)) or n_init < 1:
            raise ValueError(f"n_init must be a positive int; got {n_init!r}.")
        if n_init > pool.shape[0]:
            raise ValueError(
                f"n_init={n_init} is larger than the {pool.shape[0]} states initial_states holds; "
                "lower n_init or pass more states."
            )
        states = pool[rng.choice(pool.shape[0], size=n_init, replace=False)]
    if states.shape[0] == 0:
        raise ValueError("initial_states holds no state.")
    states = states.copy()
    if noise_scale < 0:
        raise ValueError(f"noise_scale must be non-negative; got {noise_scale!r}.")
    if noise_scale > 0:
        states += noise_scale * rng.standard_normal(states.shape)
    return states


def _unique(states, speeds, inputs, initial, unique_tol, outlier_distance):
    """Greedy merge by ascending speed: (indices kept, representative of every point).

    A point merged into a kept one (same input, within ``unique_tol``) is represented by
    it; an outlying or non-finite point represents itself but is not kept.
    """
    order = np.argsort(speeds, kind="stable")
    keep = []
    represented_by = np.arange(len(states))
    centroid = initial.mean(0)
    scale = np.linalg.norm(initial - centroid, axis=1).mean()
    if outlier_distance is not None and scale > 0:
        far = np.linalg.norm(states - centroid, axis=1) > outlier_distance * scale
    else:  # no filter asked, or one initial state (no spread to measure distances by)
        far = np.zeros(len(states), dtype=bool)
    for i in order:
        if far[i] or not np.isfinite(speeds[i]):
            continue
        if keep:
            kept = np.asarray(keep)
            near = (np.linalg.norm(states[kept] - states[i], axis=1) <= unique_tol) & (inputs[kept] == inputs[i]).all(1)
            if near.any():
                represented_by[i] = kept[np.argmax(near)]
                continue
        keep.append(i)
    return np.sort(np.asarray(keep, dtype=np.int64)), represented_by


def find_fixed_points(
    model,
    u,
    initial_states,
    tol=1e-12,
    max_iter=200,
    random_state=None,
    regions=None,
    n_init=32,
    noise_scale=0.0,
    unique_tol=1e-3,
    outlier_distance=10.0,
    method="lm",
    *,
    region_slices=None,
):
    """Search fixed (and slow) points of a leaky rate network from many initial states.

    Parameters
    ----------
    model : fitted MultiRegionRNNRegressor or RateRNNRegressor, or LeakyRNN
        Read once as float64 copies: its parameters and ``requires_grad`` flags stay as
        they were.
    u : array-like of shape (n_in,) or (n, n_in)
        Constant input (one per initial state, or shared).
    initial_states : array-like of shape (n, n_rec), or (..., n_rec) with 3 or more axes
        Initial states; trajectories (3+ axes, e.g. ``(n_trials, n_steps, n_rec)``) are
        pooled and ``n_init`` states are drawn from them.
    tol : float, default=1e-12
        A state stops when its speed ``q = ½‖F(x) − x‖²`` falls below ``tol``.
    max_iter : int, default=200
        Iterations per state at most, in each pass of the search ("lm" makes up to three:
        see ``method``).
    random_state : int, Generator, RandomState or None
        Draws from trajectories and the jitter.
    regions : sequence of str, array of int or None
        Only these units move and enter q; the others keep their initial values.
    n_init : int, default=32
        States drawn (without replacement) from trajectories; more than they hold is a
        ValueError. Not used with an ``(n, n_rec)`` array: all its states are searched.
    noise_scale : float, default=0.0
        Standard deviation of Gaussian jitter added to the initial states.
    unique_tol : float, default=1e-3
        Points with the same input closer than this (2-norm) are one point in ``unique``.
    outlier_distance : float or None, default=10.0
        Points farther from the initial centroid than this multiple of the initial states'
        mean distance to it are left out of ``unique``; None keeps all.
    method : {"lm", "adam"}, default="lm"
        Levenberg–Marquardt with the analytic Jacobian (fast, finds slow points too; the
        states a first pass leaves above ``tol`` are searched again from their initial
        values with a more cautious damping, keeping the lower speed, and those still
        above ``tol`` are polished by damped Newton steps on q, to the slow point's
        minimum), or the original Adam search with a plateau schedule. Both run batched in torch float64 on the
        device of the model's parameters.
    region_slices : dict of str to slice, optional
        Names of unit slices for a model without them.

    Returns
    -------
    FixedPoints

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skneuro.rnn import LeakyRNN
    >>> from skneuro.analysis import find_fixed_points
    >>> net = LeakyRNN(0, 1, 0, activation="tanh")
    >>> _ = net.W_rec.data.fill_(2.0)
    >>> fp = find_fixed_points(net, np.zeros(0), np.array([[-3.0], [0.1], [3.0]]))
    >>> (np.round(fp.states[fp.unique, 0], 6) + 0.0).tolist(), fp.is_stable[fp.unique].tolist()
    ([-1.915008, 0.0, 1.915008], [True, False, True])
    """
    if method not in ("lm", "adam"):
        raise ValueError(f"method must be 'lm' or 'adam'; got {method!r}.")
    if not (tol > 0):
        raise ValueError(f"tol must be positive; got {tol!r}.")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 0:
        raise ValueError(f"max_iter must be a non-negative int; got {max_iter!r}.")
    net = network_view(model, region_slices)
    S = net.indices(regions)
    _, rng = make_generators(random_state)
    start = _starting_states(initial_states, net.n_rec, n_init, noise_scale, rng)
    n = start.shape[0]
    u = as_array(u, "u")
    if u.ndim == 1:
        u = np.broadcast_to(u, (n, u.shape[0]))
    if u.shape != (n, net.n_in):
        raise ValueError(f"u must have shape ({net.n_in},) or ({n}, {net.n_in}); got {u.shape}.")
    u = np.ascontiguousarray(u)
    device = _device_of(model)
    states, speeds, grad_norms, n_iter, jac = _search(net, start, u, S, tol, max_iter, method, device)
    unique, represented_by = _unique(states, speeds, u, start, unique_tol, outlier_distance)
    eig = _eigenvalues(jac, represented_by)
    return FixedPoints(
        states=states,
        speeds=speeds,
        gradient_norms=grad_norms,
        converged=speeds < tol,
        n_iter=n_iter,
        inputs=u.copy(),
        jacobians=jac.cpu().numpy(),
        eigenvalues=eig,
        is_stable=np.abs(eig).max(-1, initial=0.0) < 1.0,
        unique=unique,
    )


def _device_of(model):
    """The device of the model's parameters (the search runs there)."""
    module = model if isinstance(model, torch.nn.Module) else model.module_
    param = next(module.parameters(), None)
    return torch.device("cpu") if param is None else param.device


def _search(net, start, u, S, tol, max_iter, method, device):
    """Run the search on ``device`` in float64: states, speeds, gradient norms, n_iter (numpy), Jacobians."""
    opts = {"dtype": torch.float64, "device": device}
    W = torch.as_tensor(net.W_rec, **opts)
    x_all = torch.tensor(start, **opts)  # a copy: start stays the initial states
    S_t = torch.as_tensor(S, device=device)
    held = torch.ones(net.n_rec, dtype=torch.bool, device=device)
    held[S_t] = False
    # units outside S keep their initial values: their pull on S is a constant drive
    drive = torch.tensor(u, **opts) @ torch.as_tensor(net.W_in, **opts).T + torch.as_tensor(net.b_rec, **opts)
    drive = drive + _activate(net.activation, x_all[:, held]) @ W[:, held].T
    sub = Subsystem(W[S_t][:, S_t].contiguous(), drive[:, S_t].contiguous(), net.alpha, net.activation)
    search = search_lm if method == "lm" else search_adam
    x_S, speeds, n_iter = search(sub, x_all[:, S_t].clone(), tol, max_iter)
    x_all[:, S_t] = x_S
    grad = net.alpha**2 * sub.gradient(x_S, sub.residual(x_S))
    jac = net.alpha * W[None] * slope(net.activation, x_all)[:, None, :]
    jac.diagonal(dim1=-2, dim2=-1).add_(1 - net.alpha)
    return (
        x_all.cpu().numpy(),
        speeds.cpu().numpy(),
        torch.linalg.vector_norm(grad, dim=-1).cpu().numpy(),
        n_iter.cpu().numpy(),
        jac,
    )


def _eigenvalues(jac, represented_by):
    """Eigenvalues by descending modulus, computed once per representative point."""
    n, n_rec = jac.shape[:2]
    if n_rec == 0:
        return np.zeros((n, 0), dtype=np.complex128)
    reps, where = np.unique(represented_by, return_inverse=True)
    eig = torch.linalg.eigvals(jac[torch.as_tensor(reps, device=jac.device)])
    eig = torch.take_along_dim(eig, torch.argsort(-eig.abs(), dim=-1, stable=True), dim=-1)
    return eig.cpu().numpy().astype(np.complex128)[where]

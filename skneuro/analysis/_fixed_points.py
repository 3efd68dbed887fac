r"""Fixed (and slow) points of a leaky rate network, found per state and in a batch.

A fixed point of the noise-free update ``F`` with constant input u solves ``F(x, u) = x``;
the search minimises the speed ``q(x) = ½‖F(x, u) − x‖²`` from many initial states at once,
each state stopping on its own when ``q < tol``. The default Levenberg–Marquardt search
uses the analytic Jacobian ``J − I``; ``method="adam"`` is the gradient search of the
original toolkits.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

import numpy as np

from .._engine.base import make_generators
from ._model import as_array, network_view, slope

__all__ = ["FixedPoints", "find_fixed_points"]

_FTOL = 1e-6  # relative decrease of q below which a slow point is reached
_XTOL = 1e-10  # relative step below which a slow point is reached


@dataclass
class FixedPoints:
    """Result of :func:`find_fixed_points`; one entry per initial state.

    Attributes
    ----------
    states : ndarray of shape (n, n_rec)
    speeds : ndarray of shape (n,)
        ``q = ½‖F(x) − x‖²`` over the searched units.
    converged : ndarray of bool, shape (n,)
        ``q < tol``.
    n_iter : ndarray of int, shape (n,)
    inputs : ndarray of shape (n, n_in)
    jacobians : ndarray of shape (n, n_rec, n_rec)
        State Jacobian of the full network at each point.
    eigenvalues : ndarray of complex, shape (n, n_rec)
        By descending modulus.
    is_stable : ndarray of bool, shape (n,)
        All eigenvalues inside the unit circle (the update is a discrete map).
    unique : ndarray of int
        Indices of the distinct, non-outlying points (lowest speed kept among neighbours).

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.analysis import FixedPoints
    >>> fp = FixedPoints(states=np.zeros((2, 1)), speeds=np.zeros(2), converged=np.ones(2, bool),
    ...                  n_iter=np.ones(2, int), inputs=np.zeros((2, 0)), jacobians=np.zeros((2, 1, 1)),
    ...                  eigenvalues=np.zeros((2, 1), complex), is_stable=np.ones(2, bool),
    ...                  unique=np.array([0]))
    >>> len(fp), len(fp[fp.unique])
    (2, 1)
    """

    states: np.ndarray
    speeds: np.ndarray
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
            return cls(**{f.name: data[f.name] for f in fields(cls)})


def _starting_states(initial_states, n_rec, n_init, noise_scale, rng):
    states = as_array(initial_states, "initial_states")
    if states.shape[-1:] != (n_rec,) or states.ndim < 1:
        raise ValueError(f"initial_states must have n_rec={n_rec} entries in the last axis; got {states.shape}.")
    if states.ndim == 1:
        states = states[None]
    elif states.ndim > 2:
        pool = states.reshape(-1, n_rec)
        if n_init < 1:
            raise ValueError(f"n_init must be a positive int; got {n_init!r}.")
        states = pool[rng.choice(pool.shape[0], size=n_init, replace=n_init > pool.shape[0])]
    states = states.copy()
    if noise_scale < 0:
        raise ValueError(f"noise_scale must be non-negative; got {noise_scale!r}.")
    if noise_scale > 0:
        states += noise_scale * rng.standard_normal(states.shape)
    return states


def _residual(net, x, u, S):
    return (net.step(x, u) - x)[:, S]


def _lm(net, x, u, S, tol, max_iter):
    """Batched Levenberg–Marquardt on G(x_S) = F_S(x) − x_S, each state on its own."""
    n, k = x.shape[0], S.size
    a = net.alpha
    W_SS = net.W_rec[np.ix_(S, S)]
    eye = np.eye(k)
    G = _residual(net, x, u, S)
    q = 0.5 * (G**2).sum(-1)
    lam = np.full(n, 1e-3)
    n_iter = np.zeros(n, dtype=np.int64)
    flat = np.zeros(n, dtype=np.int64)
    active = q >= tol
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        xs, Gs = x[idx], G[idx]
        d = slope(net.activation, xs[:, S])
        JG = a * W_SS * d[:, None, :] - a * eye  # ∂G/∂x_S = (1-α)I + α W D − I
        JtJ = np.swapaxes(JG, 1, 2) @ JG
        g = (np.swapaxes(JG, 1, 2) @ Gs[..., None])[..., 0]
        diag = np.einsum("nii->ni", JtJ)
        A = JtJ + lam[idx, None, None] * (eye * (diag[:, None, :] + 1e-12))
        step = -np.linalg.solve(A, g[..., None])[..., 0]
        trial = xs.copy()
        trial[:, S] += step
        G_trial = _residual(net, trial, u[idx], S)
        q_trial = 0.5 * (G_trial**2).sum(-1)
        better = np.isfinite(q_trial) & (q_trial < q[idx])
        acc = idx[better]
        # a slow point (a local minimum of q above tol): accepted steps no longer reduce q
        # by a relative ftol, or no longer move the state by a relative xtol, 5 times running
        small = (
            better
            & (lam[idx] <= 1.0)
            & (
                (q[idx] - q_trial <= _FTOL * q[idx])
                | (np.linalg.norm(step, axis=-1) <= _XTOL * (np.linalg.norm(xs[:, S], axis=-1) + _XTOL))
            )
        )
        x[acc], G[acc], q[acc] = trial[better], G_trial[better], q_trial[better]
        lam[acc] = np.maximum(lam[acc] / 3.0, 1e-12)
        rej = idx[~better]
        lam[rej] = np.minimum(lam[rej] * 4.0, 1e12)
        n_iter[idx] += 1
        active[rej[lam[rej] >= 1e12]] = False
        flat[idx] = np.where(small, flat[idx] + 1, np.where(better, 0, flat[idx]))
        active[idx[flat[idx] >= 5]] = False
        active &= q >= tol
    return x, q, n_iter


def _adam(net, x, u, S, tol, max_iter, learning_rate=1e-2, patience=50, factor=0.5):
    """The original toolkits' search: Adam on q with a plateau schedule, here per state.

    Vectorised over states with the analytic gradient ``∇q = J_Gᵀ G``; each state has its
    own moments, step count and learning rate (halved after ``patience`` iterations without
    a relative improvement of 1e-4), and stops moving once its q is below ``tol``.
    """
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    a = net.alpha
    W_SS = net.W_rec[np.ix_(S, S)]
    n = x.shape[0]
    m, v = np.zeros((n, S.size)), np.zeros((n, S.size))
    lr = np.full(n, float(learning_rate))
    best, stall = np.full(n, np.inf), np.zeros(n, dtype=np.int64)
    n_iter = np.zeros(n, dtype=np.int64)
    G = _residual(net, x, u, S)
    q = 0.5 * (G**2).sum(-1)
    active = q >= tol
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        d = slope(net.activation, x[np.ix_(idx, S)])
        Gs = G[idx]
        grad = a * d * (Gs @ W_SS) - a * Gs  # J_Gᵀ G with J_G = α W_SS D − α I
        n_iter[idx] += 1
        t = n_iter[idx][:, None]
        m[idx] = beta1 * m[idx] + (1 - beta1) * grad
        v[idx] = beta2 * v[idx] + (1 - beta2) * grad**2
        step = lr[idx, None] * (m[idx] / (1 - beta1**t)) / (np.sqrt(v[idx] / (1 - beta2**t)) + eps)
        x[np.ix_(idx, S)] -= step
        G[idx] = _residual(net, x[idx], u[idx], S)
        q[idx] = 0.5 * (G[idx] ** 2).sum(-1)
        improved = q[idx] < best[idx] * (1 - 1e-4)
        best[idx] = np.where(improved, q[idx], best[idx])
        stall[idx] = np.where(improved, 0, stall[idx] + 1)
        cut = idx[stall[idx] >= patience]
        lr[cut] *= factor
        stall[cut] = 0
        active &= q >= tol
    return x, q, n_iter


def _unique(states, speeds, inputs, initial, unique_tol, outlier_distance):
    order = np.argsort(speeds, kind="stable")
    keep = []
    centroid = initial.mean(0)
    scale = np.linalg.norm(initial - centroid, axis=1).mean()
    if outlier_distance is not None and scale > 0:
        far = np.linalg.norm(states - centroid, axis=1) > outlier_distance * scale
    else:  # no filter asked, or one initial state (no spread to measure distances by)
        far = np.zeros(len(states), dtype=bool)
    for i in order:
        if far[i] or not np.isfinite(speeds[i]):
            continue
        if any(
            np.linalg.norm(states[i] - states[j]) <= unique_tol and np.array_equal(inputs[i], inputs[j]) for j in keep
        ):
            continue
        keep.append(i)
    return np.sort(np.asarray(keep, dtype=np.int64))


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
        Iterations per state at most.
    random_state : int, Generator, RandomState or None
        Draws from trajectories and the jitter.
    regions : sequence of str, array of int or None
        Only these units move and enter q; the others keep their initial values.
    n_init : int, default=32
        States drawn from trajectories.
    noise_scale : float, default=0.0
        Standard deviation of Gaussian jitter added to the initial states.
    unique_tol : float, default=1e-3
        Points with the same input closer than this (2-norm) are one point in ``unique``.
    outlier_distance : float or None, default=10.0
        Points farther from the initial centroid than this multiple of the initial states'
        mean distance to it are left out of ``unique``; None keeps all.
    method : {"lm", "adam"}, default="lm"
        Levenberg–Marquardt with the analytic Jacobian (fast, finds slow points too), or
        the original Adam search with a plateau schedule.
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
    search = _lm if method == "lm" else _adam
    states, speeds, n_iter = search(net, start.copy(), u, S, tol, max_iter)
    d = slope(net.activation, states)
    a = net.alpha
    jac = a * net.W_rec[None] * d[:, None, :]
    jac[:, np.arange(net.n_rec), np.arange(net.n_rec)] += 1 - a
    eig = np.linalg.eigvals(jac) if net.n_rec else np.zeros((n, 0))
    eig = np.take_along_axis(eig, np.argsort(-np.abs(eig), axis=-1, kind="stable"), axis=-1).astype(np.complex128)
    return FixedPoints(
        states=states,
        speeds=speeds,
        converged=speeds < tol,
        n_iter=n_iter,
        inputs=u.copy(),
        jacobians=jac,
        eigenvalues=eig,
        is_stable=np.abs(eig).max(-1, initial=0.0) < 1.0,
        unique=_unique(states, speeds, u, start, unique_tol, outlier_distance),
    )

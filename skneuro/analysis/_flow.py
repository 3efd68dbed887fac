"""Flow fields of a region subset on a 2-D plane of its state space."""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real

import numpy as np

from ._model import as_array, network_view, slope

__all__ = ["FlowField", "flow_field"]


@dataclass
class FlowField:
    """Velocities of the noise-free update on a grid of a 2-D plane.

    Attributes
    ----------
    grid : ndarray of shape ([k,] n_points, n_points, 2)
        Plane coordinates of each grid point (``grid[..., i, j, :] = (x_j, y_i)``, as
        :func:`numpy.meshgrid` lays them out); k centres when several were given.
    velocity : ndarray of the shape of ``grid``
        ``components · (F(x) − x)`` at each grid state x.
    speed : ndarray of shape ([k,] n_points, n_points)
        Norm of ``velocity`` (raw, not normalized).
    mean : ndarray of shape (n_S,)
        The plane's origin in the subset's coordinates.
    components : ndarray of shape (2, n_S)
        Orthonormal axes of the plane.
    indices : ndarray of int
        The units of the subset S, in the order of ``mean``'s entries.

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.analysis import FlowField
    >>> field = FlowField(np.zeros((3, 3, 2)), np.ones((3, 3, 2)), np.full((3, 3), 2**0.5),
    ...                   np.zeros(2), np.eye(2), np.arange(2))
    >>> field.project(np.array([[1.0, 2.0]])).tolist()
    [[1.0, 2.0]]
    """

    grid: np.ndarray
    velocity: np.ndarray
    speed: np.ndarray
    mean: np.ndarray
    components: np.ndarray
    indices: np.ndarray

    def __getitem__(self, k):
        """The field of centre ``k`` (only when several centres were given)."""
        if self.grid.ndim != 4:
            raise IndexError("this flow field has one centre; there is nothing to index.")
        return FlowField(self.grid[k], self.velocity[k], self.speed[k], self.mean, self.components, self.indices)

    def project(self, states):
        """Plane coordinates ``(states[..., S] − mean) · componentsᵀ`` of full network states.

        Parameters
        ----------
        states : array-like of shape (..., n_rec)

        Returns
        -------
        ndarray of shape (..., 2)
        """
        states = as_array(states, "states")
        return (states[..., self.indices] - self.mean) @ self.components.T


def _plane(plane, S, n_rec):
    if isinstance(plane, tuple) and len(plane) == 2:
        mean, components = as_array(plane[0], "plane mean"), as_array(plane[1], "plane components")
        if mean.shape != (S.size,) or components.shape != (2, S.size):
            raise ValueError(
                f"plane as (mean, components) needs shapes ({S.size},) and (2, {S.size}); "
                f"got {mean.shape} and {components.shape}."
            )
        return mean, components
    states = as_array(plane, "plane")
    if states.shape[-1:] != (n_rec,):
        raise ValueError(f"plane states must have n_rec={n_rec} entries in their last axis; got shape {states.shape}.")
    if states.ndim < 2:
        raise ValueError("plane must be states (..., n_rec) with several points, or a (mean, components) pair.")
    pool = states.reshape(-1, states.shape[-1])[:, S]
    if pool.shape[0] < 2 or S.size < 2:
        raise ValueError("plane needs at least two states and a subset of at least two units to span a plane.")
    mean = pool.mean(0)
    _, _, vt = np.linalg.svd(pool - mean, full_matrices=False)
    return mean, vt[:2]


def flow_field(
    model,
    u,
    plane,
    *,
    regions=None,
    n_points=50,
    extent=1.0,
    centers=None,
    follow=False,
    linear=False,
    excluded="hold",
    region_slices=None,
):
    """Velocity of a region subset's dynamics on a 2-D plane of its states.

    Grid states take their subset columns from ``mean + c · components`` and their other
    columns from a centre state (``excluded="hold"``) or zero (``"zero"``); the velocity is
    the step ``F(x, u) − x`` projected on the plane.

    Parameters
    ----------
    model : fitted MultiRegionRNNRegressor or RateRNNRegressor, or LeakyRNN
    u : array-like of shape (n_in,)
        Constant input.
    plane : array-like of shape (..., n_rec), or (mean, components)
        States whose subset columns are fit by the two leading principal axes (centred
        SVD), or the plane itself: mean (n_S,), orthonormal components (2, n_S).
    regions : sequence of str, array of int, or None
        The subset S (names in the order wanted, unit indices, or all units).
    n_points : int, default=50
        Grid points per axis.
    extent : float or (float, float), default=1.0
        Half-width of the grid along each axis.
    centers : array-like of shape (n_rec,) or (k, n_rec), optional
        States that give the excluded units their values (None: one centre, all zero).
    follow : bool, default=False
        Centre each grid on its centre state's projection instead of the plane's origin.
    linear : bool, default=False
        Use the first-order Taylor model about each grid's middle instead of F.
    excluded : {"hold", "zero"}, default="hold"
        Excluded units at the centre's values, or cancelled.
    region_slices : dict of str to slice, optional

    Returns
    -------
    FlowField
        With a leading centre axis only when several centres are given.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skneuro.rnn import LeakyRNN
    >>> from skneuro.analysis import flow_field
    >>> net = LeakyRNN(0, 2, 0, activation="linear")
    >>> _ = net.W_rec.data.copy_(torch.tensor([[0.0, 1.0], [-1.0, 0.0]]))
    >>> field = flow_field(net, np.zeros(0), (np.zeros(2), np.eye(2)), n_points=3)
    >>> np.round(field.velocity[0, 2], 12).tolist()  # at (1, -1): 0.1 * (W - I) @ (1, -1)
    [-0.2, 0.0]
    """
    net = network_view(model, region_slices)
    S = net.indices(regions)
    E = np.setdiff1d(np.arange(net.n_rec), S)
    if excluded not in ("hold", "zero"):
        raise ValueError(f"excluded must be 'hold' or 'zero'; got {excluded!r}.")
    if isinstance(n_points, bool) or not isinstance(n_points, (int, np.integer)) or n_points < 2:
        raise ValueError(f"n_points must be an int >= 2; got {n_points!r}.")
    ext = np.broadcast_to(as_array(extent, "extent"), (2,)) if not isinstance(extent, Real) else np.full(2, extent)
    if not (ext > 0).all():
        raise ValueError(f"extent must be positive; got {extent!r}.")
    u = as_array(u, "u")
    if u.shape != (net.n_in,):
        raise ValueError(f"u must have shape ({net.n_in},); got {u.shape}.")
    mean, components = _plane(plane, S, net.n_rec)
    single = centers is None or np.ndim(centers) == 1
    centres = np.zeros((1, net.n_rec)) if centers is None else np.atleast_2d(as_array(centers, "centers"))
    if centres.ndim != 2 or centres.shape[1] != net.n_rec:
        raise ValueError(f"centers must have shape (n_rec,) or (k, n_rec) with n_rec={net.n_rec}.")
    axes = [np.linspace(-e, e, n_points) for e in ext]
    gx, gy = np.meshgrid(*axes)
    base = np.stack([gx, gy], axis=-1)  # (n, n, 2)
    offsets = (centres[:, S] - mean) @ components.T if follow else np.zeros((centres.shape[0], 2))
    grid = base[None] + offsets[:, None, None, :]  # (k, n, n, 2)
    x = np.zeros(grid.shape[:3] + (net.n_rec,))
    x[..., S] = mean + grid @ components
    if excluded == "hold":
        x[..., E] = centres[:, None, None, E]
    if linear:
        x0 = np.zeros((centres.shape[0], net.n_rec))
        x0[:, S] = mean + offsets @ components
        if excluded == "hold":
            x0[:, E] = centres[:, E]
        a = net.alpha
        d = slope(net.activation, x0[:, S])
        J = a * net.W_rec[np.ix_(S, S)][None] * d[:, None, :] + (1 - a) * np.eye(S.size)
        F0 = net.step(x0, u)[:, S]
        next_S = F0[:, None, None, :] + ((x[..., S] - x0[:, None, None, S]) @ np.swapaxes(J, 1, 2)[:, None])
    else:
        next_S = net.step(x, u)[..., S]
    velocity = (next_S - x[..., S]) @ components.T
    speed = np.linalg.norm(velocity, axis=-1)
    if single:
        grid, velocity, speed = grid[0], velocity[0], speed[0]
    return FlowField(grid, velocity, speed, mean, components, S)

r"""Analytic Jacobians of a leaky rate network restricted to a subset of its units.

For the noise-free update ``F(x, u) = (1-α) x + α (W f(x) + W_in u + b)``, a subset S of
units (in the order given) and the excluded units E (network order), with
``D(z) = diag f'(z)`` and ``x̃ = F(x, u)``:

- ``wrt="state"``: ``J = (1-α) I + α W[S,S] D(x_S)``, ``J_E = α W[S,E] D(x_E)``,
  ``J_u = α W_in[S,:]``;
- ``wrt="rate"`` (how ``f(x̃_S)`` moves with the rates r, x held): ``J = α D(x̃_S) W[S,S]``,
  ``J_E = α D(x̃_S) W[S,E]``, ``J_u = α D(x̃_S) W_in[S,:]``.

Each costs O(n_S²) per point (plus O(n_S·n_rec) for x̃ in the rate coordinates).
"""

from __future__ import annotations

import numpy as np

from ._model import activate, as_array, network_view, slope

__all__ = ["Linearization"]

_WRT = ("state", "rate")


class Linearization:
    r"""Local linear dynamics of a region subset of a leaky rate network.

    Parameters
    ----------
    model : fitted MultiRegionRNNRegressor or RateRNNRegressor, or LeakyRNN
        Its effective weights are read once, as float64 copies; the model is not touched.
    regions : sequence of str, array of int, or None, default=None
        The subset S: region (or parent) names in the order wanted, unit indices, or None
        for the whole network.
    region_slices : dict of str to slice, optional
        Names of unit slices, for a model that has none (a ``LeakyRNN``).

    Attributes
    ----------
    indices_ : ndarray of int
        Units of S in the order used by every output (``n_S`` of them).
    excluded_indices_ : ndarray of int
        The other units E, in network order (``n_E`` of them).
    alpha_ : float
    activation_ : str

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skneuro.rnn import LeakyRNN
    >>> from skneuro.analysis import Linearization
    >>> net = LeakyRNN(1, 2, 0, activation="linear")
    >>> _ = net.W_rec.data.copy_(torch.tensor([[0.0, 1.0], [-1.0, 0.0]]))
    >>> lin = Linearization(net)
    >>> J, J_u = lin.jacobian(np.zeros(1), np.zeros(2))
    >>> J
    array([[ 0.9,  0.1],
           [-0.1,  0.9]])
    >>> np.round(lin.eigendecomposition(np.zeros(1), np.zeros(2))[0], 6)
    array([0.9+0.1j, 0.9-0.1j])
    """

    def __init__(self, model, regions=None, *, region_slices=None):
        self._net = net = network_view(model, region_slices)
        S = net.indices(regions)
        E = np.setdiff1d(np.arange(net.n_rec), S)
        self.indices_, self.excluded_indices_ = S, E
        self.alpha_, self.activation_ = net.alpha, net.activation
        W = net.W_rec
        self._W_S = W[S]  # rows of S, all columns (for x̃)
        self._W_SS = self._W_S[:, S]
        self._W_SE = self._W_S[:, E]
        self._W_in_S = net.W_in[S]
        self._b_S = net.b_rec[S]

    # --------------------------------------------------------------- inputs
    def _inputs(self, u, x, rates=None):
        net = self._net
        x = as_array(x, "x")
        if x.shape[-1:] != (net.n_rec,):
            raise ValueError(f"x must have shape (n_rec,) or (n_points, n_rec) with n_rec={net.n_rec}; got {x.shape}.")
        u = as_array(u, "u")
        if u.shape[-1:] != (net.n_in,) and not (net.n_in == 0 and u.size == 0):
            raise ValueError(f"u must have shape (n_in,) or (n_points, n_in) with n_in={net.n_in}; got {u.shape}.")
        if rates is not None:
            rates = as_array(rates, "rates")
            if rates.shape != x.shape:
                raise ValueError(f"rates must have the shape of x {x.shape}; got {rates.shape}.")
        return u, x, rates

    def _check_wrt(self, wrt):
        if wrt not in _WRT:
            raise ValueError(f"wrt must be one of {_WRT}; got {wrt!r}.")

    def _next_S(self, u, x, rates):
        """x̃_S = F_S(x, u): O(n_S·n_rec)."""
        r = activate(self.activation_, x) if rates is None else rates
        a = self.alpha_
        return (1 - a) * x[..., self.indices_] + a * (r @ self._W_S.T + u @ self._W_in_S.T + self._b_S)

    def _linearize(self, u, x, wrt, rates, *, excluded=False, base=False):
        """``(J, J_u, J_E or None, x̃_S or None)`` in one pass (x̃_S computed at most once)."""
        self._check_wrt(wrt)
        u, x, rates = self._inputs(u, x, rates)
        a = self.alpha_
        next_S = self._next_S(u, x, rates) if (base or wrt == "rate") else None
        if wrt == "state":
            d = slope(self.activation_, x[..., self.indices_])
            J = a * self._W_SS * d[..., None, :]
            J[..., np.arange(J.shape[-1]), np.arange(J.shape[-1])] += 1 - a
            J_u = np.broadcast_to(a * self._W_in_S, x.shape[:-1] + self._W_in_S.shape).copy()
            J_E = None
            if excluded:
                J_E = a * self._W_SE * slope(self.activation_, x[..., self.excluded_indices_])[..., None, :]
            return J, J_u, J_E, next_S
        d = slope(self.activation_, next_S)[..., :, None]
        return a * d * self._W_SS, a * d * self._W_in_S, (a * d * self._W_SE if excluded else None), next_S

    # ------------------------------------------------------------ jacobians
    def jacobian(self, u, x, wrt="state", rates=None):
        """Jacobians of the subset's next value with respect to its own units and the inputs.

        Parameters
        ----------
        u : array-like or tensor of shape (n_in,) or (n_points, n_in)
        x : array-like or tensor of shape (n_rec,) or (n_points, n_rec)
            Full network states.
        wrt : {"state", "rate"}, default="state"
        rates : array-like of the shape of x, optional
            Rates to use in place of f(x) when forming x̃ (only matters for ``wrt="rate"``).

        Returns
        -------
        J : ndarray of shape (..., n_S, n_S)
        J_u : ndarray of shape (..., n_S, n_in)
        """
        return self._linearize(u, x, wrt, rates)[:2]

    def jacobian_excluded(self, u, x, wrt="state", rates=None):
        """How the subset's next value moves with the excluded units' states (or rates).

        Parameters
        ----------
        u, x, wrt, rates
            As in :meth:`jacobian`.

        Returns
        -------
        ndarray of shape (..., n_S, n_E)
        """
        return self._linearize(u, x, wrt, rates, excluded=True)[2]

    def eigendecomposition(self, u, x, wrt="state", rates=None):
        """Eigenvalues and eigenvectors of :meth:`jacobian`'s ``J``, by descending modulus.

        Parameters
        ----------
        u, x, wrt, rates
            As in :meth:`jacobian`.

        Returns
        -------
        eigenvalues : ndarray of complex, shape (..., n_S)
        eigenvectors : ndarray of complex, shape (..., n_S, n_S)
            Column k belongs to eigenvalue k.
        """
        J, _ = self.jacobian(u, x, wrt=wrt, rates=rates)
        values, vectors = np.linalg.eig(J)
        order = np.argsort(-np.abs(values), axis=-1, kind="stable")
        values = np.take_along_axis(values, order, axis=-1).astype(np.complex128)
        vectors = np.take_along_axis(vectors, order[..., None, :], axis=-1).astype(np.complex128)
        return values, vectors

    def taylor(self, u, x, du, dx, dx_excluded=None, wrt="state", rates=None):
        """First-order prediction of the subset's next value after perturbations.

        ``F_S(x, u) + J δx_S + J_E δx_E + J_u δu`` (``wrt="state"``), or
        ``f(x̃_S) + J δr_S + J_E δr_E + J_u δu`` (``wrt="rate"``).

        Parameters
        ----------
        u, x, wrt, rates
            The expansion point, as in :meth:`jacobian`.
        du : array-like of shape (..., n_in)
        dx : array-like of shape (..., n_S)
            Perturbation of the subset (states or rates, per ``wrt``).
        dx_excluded : array-like of shape (..., n_E), optional
            Perturbation of the excluded units; None: none.

        Returns
        -------
        ndarray of shape (..., n_S)
        """
        du, dx = as_array(du, "du"), as_array(dx, "dx")
        J, J_u, J_E, next_S = self._linearize(u, x, wrt, rates, excluded=dx_excluded is not None, base=True)
        base = next_S if wrt == "state" else activate(self.activation_, next_S)
        out = base + (J @ dx[..., None])[..., 0] + (J_u @ du[..., None])[..., 0]
        if J_E is not None:
            out = out + (J_E @ as_array(dx_excluded, "dx_excluded")[..., None])[..., 0]
        return out

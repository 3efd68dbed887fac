"""A read-only float64 view of a leaky rate network: effective weights, α, activation, regions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.exceptions import NotFittedError

from ..rnn._regions import region_indices

__all__ = ["NetworkView", "as_array", "network_view"]


def as_array(value, name, dtype=np.float64):
    """A numpy copy of a numpy array or torch tensor (any device)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a numeric array or tensor.") from exc
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinity.")
    return arr


def activate(name, x):
    """f(x) in numpy."""
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "tanh":
        return np.tanh(x)
    if name == "sigmoid":
        return 0.5 * (1.0 + np.tanh(0.5 * x))
    if name == "softplus":
        return np.logaddexp(0.0, x)
    return x


def slope(name, x):
    """f'(x) in numpy (relu: 1 where x > 0)."""
    if name == "relu":
        return (x > 0).astype(np.float64)
    if name == "tanh":
        return 1.0 - np.tanh(x) ** 2
    if name == "sigmoid":
        s = 0.5 * (1.0 + np.tanh(0.5 * x))
        return s * (1.0 - s)
    if name == "softplus":
        return 0.5 * (1.0 + np.tanh(0.5 * x))
    return np.ones_like(x)


@dataclass(frozen=True)
class NetworkView:
    """Detached float64 copies of what the analysis needs from a network."""

    W_in: np.ndarray
    W_rec: np.ndarray
    b_rec: np.ndarray
    alpha: float
    activation: str
    region_slices: dict | None
    parents: dict

    @property
    def n_rec(self):
        return self.W_rec.shape[0]

    @property
    def n_in(self):
        return self.W_in.shape[1]

    def step(self, x, u, rates=None):
        """Noise-free update F(x, u) for x (..., n_rec), u (..., n_in)."""
        r = activate(self.activation, x) if rates is None else rates
        a = self.alpha
        return (1 - a) * x + a * (r @ self.W_rec.T + u @ self.W_in.T + self.b_rec)

    def indices(self, regions, what="regions"):
        """Unit indices for ``regions``: None (all), names (in the order given) or an index array."""
        n = self.n_rec
        if regions is None:
            return np.arange(n)
        if isinstance(regions, str):
            regions = [regions]
        items = list(regions) if not isinstance(regions, (np.ndarray, torch.Tensor)) else None
        if items is not None and items and all(isinstance(r, str) for r in items):
            if self.region_slices is None:
                raise ValueError(
                    f"{what} given by name need region slices: pass a fitted MultiRegionRNNRegressor "
                    "or region_slices=; or give unit indices."
                )
            return region_indices(items, self.region_slices, self.parents, n, what=f"{what}: region")
        if np.asarray(regions).dtype == bool:
            raise ValueError(f"{what} must be region names or unit indices, not booleans.")
        idx = as_array(regions, what, dtype=np.float64)
        if idx.ndim != 1 or idx.size == 0 or not np.all(idx == np.round(idx)):
            raise ValueError(f"{what} must be region names or a non-empty 1-D array of unit indices.")
        idx = idx.astype(np.int64)
        if idx.min() < 0 or idx.max() >= n:
            raise ValueError(f"{what} indices must lie in [0, {n}); got {idx.min()}..{idx.max()}.")
        if np.unique(idx).size != idx.size:
            raise ValueError(f"{what} contains repeated unit indices.")
        return idx


def network_view(model, region_slices=None) -> NetworkView:
    """Read a fitted rate RNN estimator or a :class:`~skneuro.rnn.LeakyRNN` once, as float64 copies.

    Parameters and their ``requires_grad`` flags are left exactly as they were.
    """
    from ..rnn import LeakyRNN

    parents = {}
    if isinstance(model, LeakyRNN):
        module = model
    else:
        module = getattr(model, "module_", None)
        if module is None and hasattr(model, "fit") and hasattr(model, "get_params"):
            raise NotFittedError(f"model: this {type(model).__name__} is not fitted yet; call fit before analysing it.")
        if not isinstance(module, LeakyRNN):
            raise TypeError(
                "model must be a fitted RateRNNRegressor or MultiRegionRNNRegressor, or a LeakyRNN; "
                f"got {type(model).__name__}."
            )
        if region_slices is None:
            region_slices = getattr(model, "region_slices_", None)
            parents = dict(getattr(model, "_parents", {}))
    with torch.no_grad():
        W_in, W_rec, _ = module.effective_weights()
        b_rec = module.b_rec
        arrays = [t.detach().cpu().double().numpy().copy() for t in (W_in, W_rec, b_rec)]
    return NetworkView(
        arrays[0],
        arrays[1],
        arrays[2],
        module.alpha,
        module.activation,
        None if region_slices is None else dict(region_slices),
        parents,
    )

"""Numpy linear algebra shared by model code and simulators (no torch)."""

from __future__ import annotations

import numpy as np

__all__ = ["link_numpy", "scales_from_variances", "standard_form", "target_scales"]


def standard_form(w0, w1, o1=None, o2=None, g=None):
    """Canonical parameters with the same predictions (numpy float64, copies).

    1. Sigmoid only (``g`` and ``o1`` given): targets with ``g_j < 0`` are flipped.
    2. ``W = w0 w1ᵀ = U S Vᵀ``: ``w0 = U S``, ``w1 = V`` (orthonormal columns); columns
       beyond the numerical rank of W are zero.
    3. Each column is signed so that the largest-magnitude entry of ``w1[:, c]`` is positive.

    Returns
    -------
    w0, w1, o1, o2, g : ndarray or None

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.utils._linalg import standard_form
    >>> w0, w1, *_ = standard_form(np.array([[0.0, 1], [2, 0]]), np.array([[1.0, 0], [0, -1]]))
    >>> (w0 + 0.0).tolist(), (w1 + 0.0).tolist()  # + 0.0 turns LAPACK's -0.0 into 0.0
    ([[0.0, -1.0], [2.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]])
    """
    w0 = np.array(w0, dtype=np.float64)
    w1 = np.array(w1, dtype=np.float64)
    o1 = None if o1 is None else np.array(o1, dtype=np.float64)
    o2 = None if o2 is None else np.array(o2, dtype=np.float64)
    g = None if g is None else np.array(g, dtype=np.float64)
    if g is not None and o1 is not None:
        neg = g < 0
        w1[neg] *= -1.0
        o1[neg] *= -1.0
        o2[neg] += g[neg]
        g[neg] *= -1.0
    d, k = w0.shape
    p = w1.shape[0]
    U, S, Vt = np.linalg.svd(w0 @ w1.T, full_matrices=False)
    rank = int(np.sum(S > max(d, p) * np.finfo(np.float64).eps * S[0])) if S.size and S[0] > 0 else 0
    m = min(k, rank)
    new_w0 = np.zeros((d, k))
    new_w1 = np.zeros((p, k))
    new_w0[:, :m] = U[:, :m] * S[:m]
    new_w1[:, :m] = Vt[:m].T
    for c in range(m):
        sign = np.sign(new_w1[np.argmax(np.abs(new_w1[:, c])), c])
        new_w0[:, c] *= sign
        new_w1[:, c] *= sign
    return new_w0, new_w1, o1, o2, g


def link_numpy(link: str, a: np.ndarray) -> np.ndarray:
    """The reduced-rank link ``f`` in numpy float64: identity, sigmoid, guarded exp or relu.

    The guarded exponential continues linearly above 20 (``e^20 (1 + a - 20)``).

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.utils._linalg import link_numpy
    >>> link_numpy("sigmoid", np.array([0.0])).tolist(), link_numpy("relu", np.array([-1.0, 2.0])).tolist()
    ([0.5], [0.0, 2.0])
    """
    if link == "sigmoid":
        return 0.5 * (1.0 + np.tanh(0.5 * a))
    if link == "exp":
        e = np.exp(np.minimum(a, 20.0))
        return np.where(a <= 20.0, e, e * (1.0 + a - 20.0))
    if link == "relu":
        return np.maximum(a, 0.0)
    return a


def target_scales(Y: np.ndarray) -> np.ndarray:
    """Per-target training variance; constant targets get the mean positive variance (or 1)."""
    return scales_from_variances(np.var(Y, axis=0), np.abs(Y).max(axis=0))


def scales_from_variances(variances: np.ndarray, abs_max: np.ndarray) -> np.ndarray:
    """:func:`target_scales` from per-target variances and largest magnitudes (e.g. summed in chunks).

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.utils._linalg import scales_from_variances
    >>> scales_from_variances(np.array([2.0, 0.0, 4.0]), np.array([3.0, 1.0, 5.0])).tolist()
    [2.0, 3.0, 4.0]
    """
    s = np.asarray(variances, dtype=np.float64)
    # a constant target's variance can come out as a rounding residue (~(eps·|mean|)²): zero
    s = np.where(s <= (64 * np.finfo(np.float64).eps * np.asarray(abs_max)) ** 2, 0.0, s)
    positive = s[s > 0]
    fill = positive.mean() if positive.size else 1.0
    return np.where(s > 0, s, fill)

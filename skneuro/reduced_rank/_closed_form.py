r"""Closed-form reduced-rank regression and the standard form (numpy, float64).

For fixed noise variances ``v`` the rank-k minimiser of
:math:`\|(Y - XW)\Gamma\|^2 + \alpha \|W\Gamma\|^2`, :math:`\Gamma = \operatorname{diag}(v)^{-1/2}`,
is :math:`W = B\Gamma V_k V_k^\top \Gamma^{-1}` with :math:`B = (X_c^\top X_c + \alpha I)^{+} X_c^\top Y_c`
and :math:`V_k` the top-k eigenvectors of :math:`\Gamma B^\top (X_c^\top X_c + \alpha I) B \Gamma`.
Alternating this W-step with ``v_j = max(RSS_j / n, floor_j)`` never increases the
negative log-likelihood when ``alpha = 0``.
"""

from __future__ import annotations

import numpy as np

from ..utils._chunks import RowReader
from ..utils._linalg import scales_from_moments, standard_form
from ._moments import data_moments

__all__ = ["closed_form_fit", "closed_form_moments", "standard_form"]


def _gaussian_nll(rss, v, n):
    return float(np.sum(0.5 * np.log(v) + rss / (2.0 * n * v)))


def closed_form_fit(X, Y, n_components, *, alpha=0.0, var_floor=None, max_rounds=100, tol=1e-6):
    """Alternating closed-form fit of the linear reduced-rank model.

    Parameters
    ----------
    X : ndarray (n, d)
    Y : ndarray (n, p)
    n_components : int
    alpha : float
        Ridge penalty, as in :class:`sklearn.linear_model.Ridge`.
    var_floor : ndarray (p,) or None
        Lower bound of each noise variance (default: a tiny multiple of the target scale).
    max_rounds : int
        Most W-step / v-step rounds.
    tol : float
        Stop when ``max_j |Δ log v_j| < tol``.

    Returns
    -------
    W : ndarray (d, p)
    o2 : ndarray (p,)
    v : ndarray (p,)
    nll_history : list of float
        Mean per-sample negative log-likelihood (without 2π) after each round.

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.reduced_rank._closed_form import closed_form_fit
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3))
    >>> Y = X @ np.array([[1.0, 2.0], [0.0, 0.0], [0.0, 0.0]]) + 5
    >>> W, o2, v, _ = closed_form_fit(X, Y, 1)
    >>> np.round(W[0], 6).tolist(), np.round(o2, 6).tolist()
    ([1.0, 2.0], [5.0, 5.0])
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    mom = data_moments(RowReader(X, "X"), RowReader(Y, "y"))
    w0, w1, o2, v, history = closed_form_moments(
        mom, n_components, alpha=alpha, var_floor=var_floor, max_rounds=max_rounds, tol=tol
    )
    return w0 @ w1.T, o2, v, history


def closed_form_moments(mom, n_components, *, alpha=0.0, var_floor=None, max_rounds=100, tol=1e-6):
    r"""The alternating closed-form fit from the data's moments, as factors ``W = w0 w1ᵀ``.

    With :math:`A = X_c^\top X_c + \alpha I = Q \Lambda Q^\top` and
    :math:`G = \Lambda^{+1/2} Q^\top X_c^\top Y_c` (d, p), the matrix whose top
    eigenvectors the rank-k step needs, :math:`\Gamma B^\top A B \Gamma = (G\Gamma)^\top
    G\Gamma`, is p × p, but its nonzero spectrum is that of the d × d matrix
    :math:`N = G \Gamma^2 G^\top = U \Sigma^2 U^\top`, and
    :math:`w_0 = Q \Lambda^{+1/2} U_k \Sigma_k`, :math:`w_1 = G^\top U_k \Sigma_k^{-1}`. When
    d ≥ p the p × p problem is solved directly. Either way a round costs
    O(min(d, p)² max(d, p)): linear in the number of targets.

    Parameters
    ----------
    mom : Moments
        From :func:`~skneuro.reduced_rank._moments.data_moments`.
    n_components, alpha, var_floor, max_rounds, tol
        As in :func:`closed_form_fit`.

    Returns
    -------
    w0 : ndarray (d, r)
    w1 : ndarray (p, r)
        ``r`` ≤ ``n_components`` (``min(d, p)`` when that is smaller).
    o2, v : ndarray (p,)
    nll_history : list of float

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.utils._chunks import RowReader
    >>> from skneuro.reduced_rank._moments import data_moments
    >>> from skneuro.reduced_rank._closed_form import closed_form_moments
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 2)); Y = X[:, :1] * [[1.0, 2.0, 3.0]]
    >>> w0, w1, *_ = closed_form_moments(data_moments(RowReader(X, "X"), RowReader(Y, "y")), 1)
    >>> np.round(w0 @ w1.T, 6).tolist()
    [[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]
    """
    n = mom.n
    C, xtx, yty = mom.sxy, mom.sxx, mom.syy
    d, p = C.shape
    abs_max = np.maximum(np.abs(mom.y_min), np.abs(mom.y_max))
    tiny = 1e-12 * scales_from_moments(mom.y_var, abs_max)
    floor = tiny if var_floor is None else np.maximum(np.asarray(var_floor, dtype=np.float64), tiny)
    A = xtx + alpha * np.eye(d)
    lam, Q = np.linalg.eigh(A)
    support = lam > 1e-15 * max(float(np.abs(lam).max(initial=0.0)), np.finfo(np.float64).tiny)
    inv_sqrt = np.zeros(d)
    inv_sqrt[support] = 1.0 / np.sqrt(lam[support])
    G = inv_sqrt[:, None] * (Q.T @ C)  # (d, p), in Q's basis
    B = Q @ (inv_sqrt[:, None] * G)  # A⁺ Xcᵀ Yc

    def rss(w0, w1):
        cross = np.einsum("jc,cj->j", w1, w0.T @ C)
        quad = np.einsum("jc,ce,je->j", w1, w0.T @ xtx @ w0, w1)
        return np.maximum(yty - 2.0 * cross + quad, 0.0)

    if n_components >= min(d, p):
        w0, w1 = (np.eye(d), B.T.copy()) if d <= p else (B, np.eye(p))
        r = rss(w0, w1)
        v = np.maximum(r / n, floor)
        history = [_gaussian_nll(r, v, n)]
    else:
        k = n_components
        v = np.maximum(rss(*((np.eye(d), B.T) if d <= p else (B, np.eye(p)))) / n, floor)
        history = []
        core = B.T @ A @ B if p <= d else None
        for _ in range(max_rounds):
            gamma = 1.0 / np.sqrt(v)
            if core is not None:
                _, vecs = np.linalg.eigh(gamma[:, None] * core * gamma[None, :])
                Vk = vecs[:, ::-1][:, :k]
                w0, w1 = (B * gamma[None, :]) @ Vk, Vk / gamma[:, None]
            else:
                vals, U = np.linalg.eigh((G * (gamma**2)[None, :]) @ G.T)
                vals, U = vals[::-1][:k], U[:, ::-1][:, :k]
                sigma = np.sqrt(np.maximum(vals, 0.0))
                keep = sigma > 1e-12 * max(float(sigma.max(initial=0.0)), np.finfo(np.float64).tiny)
                scale = np.where(keep, sigma, 1.0)
                w0 = (Q @ (inv_sqrt[:, None] * U)) * np.where(keep, sigma, 0.0)
                w1 = (G.T @ U) / scale * keep
            r = rss(w0, w1)
            v_new = np.maximum(r / n, floor)
            change = np.max(np.abs(np.log(v_new) - np.log(v)))
            v = v_new
            history.append(_gaussian_nll(r, v, n))
            if change < tol:
                break
    o2 = mom.y_mean - (mom.x_mean @ w0) @ w1.T
    return w0, w1, o2, v, history

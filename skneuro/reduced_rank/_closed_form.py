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

from ..utils._linalg import standard_form, target_scales

__all__ = ["closed_form_fit", "standard_form"]


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
    n, d = X.shape
    p = Y.shape[1]
    x_mean, y_mean = X.mean(axis=0), Y.mean(axis=0)
    Xc, Yc = X - x_mean, Y - y_mean
    xtx = Xc.T @ Xc
    xty = Xc.T @ Yc
    yty = np.einsum("ij,ij->j", Yc, Yc)
    tiny = 1e-12 * target_scales(Y)
    floor = tiny if var_floor is None else np.maximum(np.asarray(var_floor, dtype=np.float64), tiny)
    A = xtx + alpha * np.eye(d)
    B = np.linalg.pinv(A, hermitian=True) @ xty

    def rss(W):
        return np.maximum(yty - 2.0 * np.einsum("ij,ij->j", W, xty) + np.einsum("ij,ij->j", W, xtx @ W), 0.0)

    v = np.maximum(rss(B) / n, floor)
    W = B
    history = []
    if n_components >= min(d, p):
        history.append(_gaussian_nll(rss(W), v, n))
    else:
        core = B.T @ A @ B
        for _ in range(max_rounds):
            gamma = 1.0 / np.sqrt(v)
            M = gamma[:, None] * core * gamma[None, :]
            _, vecs = np.linalg.eigh(M)
            Vk = vecs[:, ::-1][:, :n_components]
            W = (B * gamma[None, :]) @ Vk @ (Vk.T / gamma[None, :])
            r = rss(W)
            v_new = np.maximum(r / n, floor)
            change = np.max(np.abs(np.log(v_new) - np.log(v)))
            v = v_new
            history.append(_gaussian_nll(r, v, n))
            if change < tol:
                break
    o2 = y_mean - x_mean @ W
    return W, o2, v, history

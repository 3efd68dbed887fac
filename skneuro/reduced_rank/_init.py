r"""Initialisation of the nonlinear links from the closed-form linear fit.

1. :func:`match_linear_fit` matches each target's link to the linear fit in value and
   slope at the mean input (Stein's lemma: for Gaussian inputs the linear fit finds the
   subspace of any link).
2. :func:`refine_targets` then fits, for the fixed projection ``w0``, every target's own
   parameters ``(w1_j, o1_j, g_j, o2_j)`` by Levenberg–Marquardt. Given ``w0`` the
   targets are independent small least-squares problems (k + 3 unknowns each), solved
   together, vectorised over targets. This second-order start is what lets the joint
   L-BFGS finish quickly on the expansive exp link, where first-order methods stall.
"""

from __future__ import annotations

import numpy as np
import torch

from ..utils._linalg import standard_form

__all__ = ["constant_targets_flat", "factor", "match_linear_fit", "refine_targets"]


def match_linear_fit(link, X, Y, w0, w1, o2):
    """Link parameters matching the linear fit ``X w0 w1ᵀ + o2`` at the mean input.

    Returns a dict with keys ``w0 w1 o2`` and ``o1``/``g`` as the link has them
    (numpy float64).
    """
    w0 = np.array(w0, dtype=np.float64)
    w1 = np.array(w1, dtype=np.float64)
    o2 = np.array(o2, dtype=np.float64)
    x_mean = X.mean(axis=0)
    y_mean = Y.mean(axis=0)
    latent = X @ w0
    lin = latent @ w1.T
    s = lin.std(axis=0)
    y_std = Y.std(axis=0)
    s = np.maximum(s, np.where(y_std > 0, 1e-3 * y_std, 1.0))
    center = x_mean @ w0 @ w1.T
    params = {"w0": w0}
    if link == "linear":
        params.update(w1=w1, o2=o2)
    elif link == "sigmoid":
        params.update(w1=w1 / s[:, None], o1=-center / s, g=4.0 * s, o2=y_mean - 2.0 * s)
    elif link == "exp":
        c = np.clip(center / (2.0 * s), -30.0, 30.0)
        params.update(w1=w1 / (2.0 * s[:, None]), g=2.0 * s * np.exp(-c), o2=y_mean - 2.0 * s)
    elif link == "relu":
        params.update(w1=w1, o1=2.0 * s - center, o2=y_mean - 2.0 * s)
    else:  # pragma: no cover - validated by the estimator
        raise ValueError(f"unknown link {link!r}")
    return params


def _link_and_slope(link, a):
    if link == "sigmoid":
        f = torch.sigmoid(a)
        return f, f * (1.0 - f)
    if link == "exp":
        e = torch.exp(torch.clamp(a, max=20.0))
        return torch.where(a <= 20.0, e, e * (1.0 + a - 20.0)), e
    if link == "relu":
        return torch.relu(a), (a > 0).to(a.dtype)
    return a, torch.ones_like(a)


def _unpack(link, theta, k):
    w1 = theta[:, :k]
    col = k
    o1 = g = None
    if link in ("sigmoid", "relu"):
        o1 = theta[:, col]
        col += 1
    if link in ("sigmoid", "exp"):
        g = theta[:, col]
        col += 1
    return w1, o1, g, theta[:, col]


def _forward(link, theta, latent, Yt, k):
    """Residuals, link values and slopes ``g f'(a)`` for a block of targets, each (q, n)."""
    w1, o1, g, o2 = _unpack(link, theta, k)
    a = w1 @ latent.T
    if o1 is not None:
        a = a + o1[:, None]
    f, df = _link_and_slope(link, a)
    gain = 1.0 if g is None else g[:, None]
    return Yt - (gain * f + o2[:, None]), f, gain * df


def _normal_equations(link, latent, outer, resid, f, slope):
    """``JᵀJ`` (q, m, m) and ``Jᵀr`` (q, m) without forming the (q, n, m) Jacobian.

    Every Jacobian column is a per-target weight (``slope``, ``f`` or 1) times a shared
    basis column (a latent or 1), so each block of ``JᵀJ`` is one (q, n) @ (n, ·) product.
    """
    q, n = resid.shape
    k = latent.shape[1]
    # (weight, multiplies the latents?) per column group: w1 (k columns), o1, g, o2.
    cols = [(slope, True)]
    if link in ("sigmoid", "relu"):
        cols.append((slope, False))
    if link in ("sigmoid", "exp"):
        cols.append((f, False))
    cols.append((None, False))
    m = k + len(cols) - 1
    hess = resid.new_empty(q, m, m)
    grad = resid.new_empty(q, m)

    def span(index):
        return slice(0, k) if index == 0 else slice(k + index - 1, k + index)

    for a_idx, (wa, lat_a) in enumerate(cols):
        wr = resid if wa is None else wa * resid
        grad[:, span(a_idx)] = wr @ latent if lat_a else wr.sum(1, keepdim=True)
        for b_idx in range(a_idx, len(cols)):
            wb, lat_b = cols[b_idx]
            if wa is None and wb is None:
                w = None
            elif wa is None:
                w = wb
            elif wb is None:
                w = wa
            else:
                w = wa * wb
            if lat_a and lat_b:
                block = (w @ outer).reshape(q, k, k)
            elif lat_a or lat_b:
                block = (resid.new_full((q, n), 1.0) if w is None else w) @ latent
                block = block.unsqueeze(2) if lat_a else block.unsqueeze(1)
            else:
                total = float(n) if w is None else w.sum(1)
                block = (resid.new_full((q,), total) if w is None else total).reshape(q, 1, 1)
            hess[:, span(a_idx), span(b_idx)] = block
            if b_idx != a_idx:
                hess[:, span(b_idx), span(a_idx)] = block.transpose(1, 2)
    return hess, grad


def refine_targets(link, X, Y, params, *, n_steps=50, block_elements=2**23):
    """Levenberg–Marquardt fit of each target's parameters for the fixed ``w0``.

    Parameters
    ----------
    link : str
    X : ndarray (n, d)
    Y : ndarray (n, p)
    params : dict
        Output of :func:`match_linear_fit` (modified copies are returned).
    n_steps : int
        Levenberg–Marquardt iterations.
    block_elements : int
        Targets are processed in blocks of at most this many (target, sample) pairs.

    Returns
    -------
    params : dict
        Refined ``w1``, ``o1``, ``g``, ``o2`` (float64) and the residual variances ``rss_n``.
    """
    k = params["w0"].shape[1]
    latent = torch.from_numpy(X @ params["w0"])
    outer = (latent[:, :, None] * latent[:, None, :]).reshape(latent.shape[0], k * k)
    Yt_all = torch.tensor(Y.T)
    pieces = [params["w1"]]
    if "o1" in params:
        pieces.append(params["o1"][:, None])
    if "g" in params:
        pieces.append(params["g"][:, None])
    pieces.append(params["o2"][:, None])
    theta_all = torch.from_numpy(np.concatenate(pieces, axis=1))
    n = latent.shape[0]
    p = Yt_all.shape[0]
    block = max(1, int(block_elements // max(n, 1)))
    rss_out = torch.empty(p, dtype=torch.float64)
    for start in range(0, p, block):
        theta = theta_all[start : start + block].clone()
        Yt = Yt_all[start : start + block]
        damping = torch.full((theta.shape[0],), 1e-3, dtype=torch.float64)
        resid, f, slope = _forward(link, theta, latent, Yt, k)
        rss = (resid**2).sum(1)
        for _ in range(n_steps):
            hess, grad = _normal_equations(link, latent, outer, resid, f, slope)
            diag = torch.diagonal(hess, dim1=1, dim2=2)
            scale = diag + 1e-12 * diag.amax(dim=1, keepdim=True) + 1e-300
            system = hess + damping[:, None, None] * torch.diag_embed(scale)
            step = torch.linalg.solve(system, grad.unsqueeze(2)).squeeze(2)
            candidate = theta + step
            new_resid, new_f, new_slope = _forward(link, candidate, latent, Yt, k)
            new_rss = (new_resid**2).sum(1)
            accept = torch.isfinite(new_rss) & (new_rss < rss)
            improvement = torch.where(accept, (rss - new_rss) / rss.clamp_min(1e-300), torch.zeros_like(rss))
            theta = torch.where(accept[:, None], candidate, theta)
            rss = torch.where(accept, new_rss, rss)
            a2 = accept[:, None]
            resid = torch.where(a2, new_resid, resid)
            f = torch.where(a2, new_f, f)
            slope = torch.where(a2, new_slope, slope)
            damping = torch.where(accept, damping / 3.0, damping * 4.0).clamp(1e-9, 1e9)
            done = (accept & (improvement < 1e-10)) | (damping >= 1e8)
            if bool(done.all()):
                break
        theta_all[start : start + block] = theta
        rss_out[start : start + block] = rss
    w1, o1, g, o2 = _unpack(link, theta_all, k)
    out = dict(params)
    out["w1"] = w1.numpy().copy()
    out["o2"] = o2.numpy().copy()
    if o1 is not None:
        out["o1"] = o1.numpy().copy()
    if g is not None:
        out["g"] = g.numpy().copy()
    out["rss_n"] = rss_out.numpy() / n
    return out


def _projection_step(link, X, Y, params, v, damping):
    """One accepted Levenberg–Marquardt step on ``w0`` with the per-target parameters fixed.

    With ``s_ij = g_j f'(a_ij)`` the Gauss–Newton matrix of the weighted residuals is
    ``H[(a, c), (b, e)] = Σ_i x_ia x_ib M_i[c, e]``, ``M_i = Σ_j (s_ij² / v_j) w1_j w1_jᵀ``:
    k(k+1)/2 weighted Gram matrices of X. Returns the new parameters and damping.
    """
    w1 = torch.from_numpy(params["w1"])
    o1 = torch.from_numpy(params["o1"]) if "o1" in params else 0.0
    g = torch.from_numpy(params["g"]) if "g" in params else 1.0
    o2 = torch.from_numpy(params["o2"])
    inv_v = torch.from_numpy(1.0 / v)

    def evaluate(w0):
        f, df = _link_and_slope(link, X @ w0 @ w1.T + o1)
        resid = Y - (g * f + o2)
        return resid, g * df, float(((resid**2) * inv_v).sum())

    w0 = torch.from_numpy(params["w0"])
    d, k = w0.shape
    resid, slope, objective = evaluate(w0)
    grad = (X.T @ ((slope * resid * inv_v) @ w1)).reshape(-1)
    weights = ((slope**2) * inv_v) @ (w1[:, :, None] * w1[:, None, :]).reshape(-1, k * k)
    hess = X.new_empty(d, k, d, k)
    for c in range(k):
        for e in range(c, k):
            gram = (X * weights[:, c * k + e, None]).T @ X
            hess[:, c, :, e] = gram
            hess[:, e, :, c] = gram
    hess = hess.reshape(d * k, d * k)
    diag = torch.diag(torch.diagonal(hess)) + 1e-12 * torch.eye(d * k, dtype=hess.dtype)
    while damping < 1e8:
        step = torch.linalg.solve(hess + damping * diag, grad).reshape(d, k)
        if evaluate(w0 + step)[2] < objective:
            out = dict(params)
            out["w0"] = (w0 + step).numpy().copy()
            return out, damping / 3.0
        damping *= 4.0
    return params, damping


def alternate_fit(link, X, Y, params, *, var_floor, max_rounds=8, tol=1e-3, max_hessian_flops=2e10):
    """Block-coordinate Gauss–Newton: per-target parameters, then ``w0``, alternately.

    Each round takes one damped Gauss–Newton step on ``w0`` (skipped when its Gram
    matrices would cost more than ``max_hessian_flops``) and a few per-target
    Levenberg–Marquardt steps, then resets ``v`` to the residual variances. Rounds stop
    when the training negative log-likelihood improves by less than ``tol`` nats per
    sample.

    Returns
    -------
    params : dict
        Float64 ``w0 w1 o2`` (+ ``o1``, ``g``) and ``v``.
    """
    params = refine_targets(link, X, Y, params, n_steps=20)
    v = np.maximum(params.pop("rss_n"), var_floor)
    n, d = X.shape
    k = params["w0"].shape[1]
    if n * d * d * k * (k + 1) / 2 <= max_hessian_flops:
        Xt, Yt = torch.tensor(X), torch.tensor(Y)
        nll, damping = 0.5 * np.log(v).sum(), 1e-3
        for _ in range(max_rounds):
            params, damping = _projection_step(link, Xt, Yt, params, v, damping)
            params = refine_targets(link, X, Y, params, n_steps=5)
            v = np.maximum(params.pop("rss_n"), var_floor)
            new_nll = 0.5 * np.log(v).sum()
            if nll - new_nll < tol or damping >= 1e8:
                break
            nll = new_nll
    params["v"] = v
    return params


def constant_targets_flat(params, Y):
    """Constant targets start flat: no loading, no gain, the offset at their value.

    (Fitting a constant through a nonlinearity otherwise drives the gain to 0 and the loadings
    to infinity, both beyond float32.)
    """
    spread = Y.max(axis=0) - Y.min(axis=0)
    constant = spread <= 64 * np.finfo(np.float64).eps * np.abs(Y).max(axis=0)
    if not constant.any():
        return params
    params = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
    params["w1"][constant] = 0.0
    if "g" in params:
        params["g"][constant] = 0.0
    if "o1" in params:
        params["o1"][constant] = 0.0
    params["o2"][constant] = Y[0, constant]
    return params


def factor(W, k):
    """Standard-form factors ``(w0 (d, k), w1 (p, k))`` of a (d, p) matrix of rank ≤ k."""
    d, p = W.shape
    w0, w1, *_ = standard_form(W, np.eye(p))
    out0, out1 = np.zeros((d, k)), np.zeros((p, k))
    m = min(k, p)
    out0[:, :m], out1[:, :m] = w0[:, :m], w1[:, :m]
    return out0, out1

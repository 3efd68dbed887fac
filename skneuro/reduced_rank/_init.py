r"""Initialisation of the nonlinear links from the closed-form linear fit.

1. :func:`match_linear_fit` matches each target's link to the linear fit in value and
   slope at the mean input (Stein's lemma: for Gaussian inputs the linear fit finds the
   subspace of any link).
2. :func:`refine_targets` then fits, for the fixed projection ``w0``, every target's own
   parameters ``(w1_j, o1_j, g_j, o2_j)`` by Levenberg–Marquardt. Given ``w0`` the
   targets are independent small least-squares problems (k + 3 unknowns each), solved
   together, vectorised over targets. This second-order start is what lets the joint
   L-BFGS finish quickly on the expansive exp link, where first-order methods stall.
3. :func:`alternate_fit` alternates those per-target fits with Gauss–Newton steps on
   ``w0``. On large data it runs on a subsample of rows, and :func:`polish_targets` then
   takes a few Levenberg–Marquardt steps of every target on all rows, streamed in row
   chunks (one pass per step), so that every stage costs O(n p) time and chunk-sized
   memory.

Targets are processed in blocks of about ``2**16`` (target, sample) pairs, small enough
for the cache.
"""

from __future__ import annotations

import numpy as np
import torch

from ..utils._chunks import RowReader, chunk_rows
from ..utils._linalg import standard_form

__all__ = [
    "alternate_fit",
    "constant_targets_flat",
    "factor",
    "match_linear_fit",
    "polish_fit",
    "polish_targets",
    "refine_targets",
]

#: (target, sample) pairs per block of targets in the vectorised Levenberg–Marquardt steps
BLOCK_ELEMENTS = 2**16


def match_linear_fit(link, mom, w0, w1, o2):
    """Link parameters matching the linear fit ``X w0 w1ᵀ + o2`` at the mean input.

    ``mom``: the data's :class:`~skneuro.reduced_rank._moments.Moments` (the spread of the
    linear fit per target is ``sqrt(w1_j ᵀ w0ᵀ Cov(X) w0 w1_j)``). Returns a dict with keys
    ``w0 w1 o2`` and ``o1``/``g`` as the link has them (numpy float64).
    """
    w0 = np.array(w0, dtype=np.float64)
    w1 = np.array(w1, dtype=np.float64)
    o2 = np.array(o2, dtype=np.float64)
    y_mean = mom.y_mean
    latent_cov = w0.T @ (mom.sxx / mom.n) @ w0
    s = np.sqrt(np.maximum(np.einsum("jc,ce,je->j", w1, latent_cov, w1), 0.0))
    y_std = np.sqrt(mom.y_var)
    s = np.maximum(s, np.where(y_std > 0, 1e-3 * y_std, 1.0))
    center = mom.x_mean @ w0 @ w1.T
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
    a = w1 @ latent.T if o1 is None else torch.addmm(o1[:, None], w1, latent.T)
    f, df = _link_and_slope(link, a)
    gain = 1.0 if g is None else g[:, None]
    return Yt - (gain * f + o2[:, None]), f, gain * df


def _design(latent, link):
    """The shared basis of the pre-activation's parameters, ``[latent, 1]`` (or ``latent``), and its outer products."""
    if link in ("sigmoid", "relu"):
        latent = torch.cat([latent, latent.new_ones(latent.shape[0], 1)], dim=1)
    ka = latent.shape[1]
    return latent, (latent[:, :, None] * latent[:, None, :]).reshape(latent.shape[0], ka * ka)


def _system(link, theta, basis, outer, Yt, k):
    """``rss`` (q,), ``JᵀJ`` (q, m, m) and ``Jᵀr`` (q, m) of a block of targets at ``theta``.

    The Jacobian columns are ``slope × basis`` (``w1`` and ``o1``), ``f`` (``g``) and 1
    (``o2``): every block of ``JᵀJ`` is one (q, n) @ (n, ·) product, without forming the
    (q, n, m) Jacobian. The products run in the dtype of ``basis`` and ``Yt`` (float32 for
    float32 data); sums over samples are taken in float64 where they decide a step's
    acceptance (``rss``), and all three results are float64.
    """
    work = basis.dtype
    resid, f, slope = _forward(link, theta.to(work), basis[:, :k], Yt, k)
    q, n = resid.shape
    ka = basis.shape[1]
    has_g = link in ("sigmoid", "exp")
    m = ka + has_g + 1
    wide = torch.float64
    hess = torch.empty(q, m, m, dtype=wide)
    grad = torch.empty(q, m, dtype=wide)
    hess[:, :ka, :ka] = ((slope * slope) @ outer).reshape(q, ka, ka)
    cross = slope @ basis
    hess[:, :ka, -1] = cross
    hess[:, -1, :ka] = cross
    hess[:, -1, -1] = float(n)
    grad[:, :ka] = (slope * resid) @ basis
    grad[:, -1] = resid.sum(1, dtype=wide)
    if has_g:
        cross = (slope * f) @ basis
        hess[:, :ka, ka] = cross
        hess[:, ka, :ka] = cross
        hess[:, ka, ka] = (f * f).sum(1, dtype=wide)
        total = f.sum(1, dtype=wide)
        hess[:, ka, -1] = total
        hess[:, -1, ka] = total
        grad[:, ka] = (f * resid).sum(1, dtype=wide)
    return (resid * resid).sum(1, dtype=wide), hess, grad


def _work_dtype(*arrays):
    """float32 when the data are float32 (twice as fast, within the float32 model's precision), else float64."""
    return torch.float32 if all(np.asarray(a[:0]).dtype == np.float32 for a in arrays) else torch.float64


def _improvement_tol(work):
    """Relative decrease of ``rss`` below which a target has converged, for the working dtype."""
    return 1e-10 if work == torch.float64 else 1e-7


def _lm_step(theta, hess, grad, damping):
    diag = torch.diagonal(hess, dim1=1, dim2=2)
    scale = diag + 1e-12 * diag.amax(dim=1, keepdim=True) + 1e-300
    system = hess + damping[:, None, None] * torch.diag_embed(scale)
    return theta + torch.linalg.solve(system, grad.unsqueeze(2)).squeeze(2)


def _pack(params):
    pieces = [params["w1"]]
    if "o1" in params:
        pieces.append(params["o1"][:, None])
    if "g" in params:
        pieces.append(params["g"][:, None])
    pieces.append(params["o2"][:, None])
    return torch.from_numpy(np.concatenate(pieces, axis=1).astype(np.float64))


def _unpacked(link, params, theta, k, rss, n):
    w1, o1, g, o2 = _unpack(link, theta, k)
    out = dict(params)
    out["w1"] = w1.numpy().copy()
    out["o2"] = o2.numpy().copy()
    if o1 is not None:
        out["o1"] = o1.numpy().copy()
    if g is not None:
        out["g"] = g.numpy().copy()
    out["rss_n"] = rss.numpy() / n
    return out


def _block_targets(n_rows, block_elements=None):
    return max(1, int((BLOCK_ELEMENTS if block_elements is None else block_elements) // max(n_rows, 1)))


def _target_block(Y, start, stop, work=torch.float64):
    """Columns ``start:stop`` of Y (n, p) as a contiguous (q, n) tensor of dtype ``work`` (a copy)."""
    dtype = np.float32 if work == torch.float32 else np.float64
    return torch.from_numpy(np.array(Y[:, start:stop].T, dtype=dtype, order="C"))  # a copy: Y may be read-only


def refine_targets(link, X, Y, params, *, n_steps=50, block_elements=None):
    """Levenberg–Marquardt fit of each target's parameters for the fixed ``w0`` (in memory).

    Parameters
    ----------
    link : str
    X : ndarray (n, d)
    Y : ndarray (n, p)
        float32 or float64; blocks of targets are converted to float64 as used.
    params : dict
        Output of :func:`match_linear_fit` (modified copies are returned).
    n_steps : int
        Levenberg–Marquardt iterations.
    block_elements : int or None
        Targets are processed in blocks of at most this many (target, sample) pairs.

    Returns
    -------
    params : dict
        Refined ``w1``, ``o1``, ``g``, ``o2`` (float64) and the residual variances ``rss_n``.
    """
    k = params["w0"].shape[1]
    n, p = Y.shape
    work = _work_dtype(X, Y)
    latent = torch.from_numpy(np.asarray(X, dtype=np.float64) @ params["w0"]).to(work)
    basis, outer = _design(latent, link)
    converged = _improvement_tol(work)
    theta_all = _pack(params)
    block = _block_targets(n, block_elements)
    rss_out = torch.empty(p, dtype=torch.float64)
    for start in range(0, p, block):
        stop = min(start + block, p)
        theta = theta_all[start:stop].clone()
        Yt = _target_block(Y, start, stop, work)
        damping = torch.full((theta.shape[0],), 1e-3, dtype=torch.float64)
        rss, hess, grad = _system(link, theta, basis, outer, Yt, k)
        for _ in range(n_steps):
            candidate = _lm_step(theta, hess, grad, damping)
            new_rss, new_hess, new_grad = _system(link, candidate, basis, outer, Yt, k)
            accept = torch.isfinite(new_rss) & (new_rss < rss)
            improvement = torch.where(accept, (rss - new_rss) / rss.clamp_min(1e-300), torch.zeros_like(rss))
            theta = torch.where(accept[:, None], candidate, theta)
            rss = torch.where(accept, new_rss, rss)
            hess = torch.where(accept[:, None, None], new_hess, hess)
            grad = torch.where(accept[:, None], new_grad, grad)
            damping = torch.where(accept, damping / 3.0, damping * 4.0).clamp(1e-9, 1e9)
            done = (accept & (improvement < converged)) | (damping >= 1e8)
            if bool(done.all()):
                break
        theta_all[start:stop] = theta
        rss_out[start:stop] = rss
    return _unpacked(link, params, theta_all, k, rss_out, n)


def polish_targets(link, Xr, Yr, params, *, n_steps=2, budget=None):
    """Levenberg–Marquardt steps of every target's own parameters on all rows (``w0`` fixed).

    The normal equations of all targets are accumulated over row chunks read from the
    :class:`~skneuro.utils._chunks.RowReader` objects ``Xr`` and ``Yr``, so a step costs one
    pass over the data and memory of one chunk; the previous step's equations are kept, so
    a rejected step (per target) costs no extra pass.

    Returns
    -------
    params : dict
        As :func:`refine_targets`, ``rss_n`` over all rows.
    """
    w0 = params["w0"]
    k = w0.shape[1]
    n, p = Yr.shape
    rows = chunk_rows(Xr.shape[1] + p, budget)
    work = torch.float32 if (Xr.dtype, Yr.dtype) == (np.float32, np.float32) else torch.float64

    def system(theta):
        rss = torch.zeros(p, dtype=torch.float64)
        hess = grad = None
        for start in range(0, n, rows):
            stop = min(start + rows, n)
            xb, yb = Xr.read(start, stop), Yr.read(start, stop)
            basis, outer = _design(torch.from_numpy(xb.astype(np.float64) @ w0).to(work), link)
            block = _block_targets(stop - start)
            for j in range(0, p, block):
                r, h, g = _system(link, theta[j : j + block], basis, outer, _target_block(yb, j, j + block, work), k)
                if hess is None:
                    hess = h.new_zeros((p, *h.shape[1:]))
                    grad = g.new_zeros((p, g.shape[1]))
                rss[j : j + block] += r
                hess[j : j + block] += h
                grad[j : j + block] += g
        return rss, hess, grad

    theta = _pack(params)
    rss, hess, grad = system(theta)
    damping = torch.full((p,), 1e-3, dtype=torch.float64)
    for _ in range(n_steps):
        candidate = _lm_step(theta, hess, grad, damping)
        new_rss, new_hess, new_grad = system(candidate)
        accept = torch.isfinite(new_rss) & (new_rss < rss)
        theta = torch.where(accept[:, None], candidate, theta)
        rss = torch.where(accept, new_rss, rss)
        hess = torch.where(accept[:, None, None], new_hess, hess)
        grad = torch.where(accept[:, None], new_grad, grad)
        damping = torch.where(accept, damping / 3.0, damping * 4.0).clamp(1e-9, 1e9)
    return _unpacked(link, params, theta, k, rss, n)


def _projection_step(link, Xr, Yr, params, v, damping, budget=None):
    """One accepted Levenberg–Marquardt step on ``w0`` with the per-target parameters fixed.

    With ``s_ij = g_j f'(a_ij)`` the Gauss–Newton matrix of the weighted residuals is
    ``H[(a, c), (b, e)] = Σ_i x_ia x_ib M_i[c, e]``, ``M_i = Σ_j (s_ij² / v_j) w1_j w1_jᵀ``:
    k(k+1)/2 weighted Gram matrices of X, accumulated over row chunks of the
    :class:`~skneuro.utils._chunks.RowReader` objects ``Xr``, ``Yr`` (targets in blocks
    within a chunk), so memory stays at a chunk's. Returns the new parameters and damping.
    """
    n, p = Yr.shape
    w1_all = torch.from_numpy(params["w1"])
    o1_all = torch.from_numpy(params["o1"]) if "o1" in params else None
    g_all = torch.from_numpy(params["g"]) if "g" in params else None
    o2_all = torch.from_numpy(params["o2"])
    inv_v_all = torch.from_numpy(1.0 / v)
    k = w1_all.shape[1]
    outer_w1 = (w1_all[:, :, None] * w1_all[:, None, :]).reshape(p, k * k)
    rows = chunk_rows(Xr.shape[1] + p, budget)
    d = Xr.shape[1]
    pairs = [(c, e) for c in range(k) for e in range(c, k)]

    def evaluate(w0, derivatives):
        objective = 0.0
        grad = torch.zeros(d, k, dtype=torch.float64)
        grams = torch.zeros(len(pairs), d, d, dtype=torch.float64)
        for start in range(0, n, rows):
            stop = min(start + rows, n)
            xb = torch.from_numpy(Xr.read(start, stop).astype(np.float64))
            yb = Yr.read(start, stop)
            latent = xb @ w0
            lat_grad = latent.new_zeros(stop - start, k)
            weights = latent.new_zeros(stop - start, k * k)
            block = _block_targets(stop - start)
            for j in range(0, p, block):
                sl = slice(j, min(j + block, p))
                a = latent @ w1_all[sl].T
                if o1_all is not None:
                    a = a + o1_all[sl]
                f, df = _link_and_slope(link, a)
                gain = 1.0 if g_all is None else g_all[sl]
                resid = torch.from_numpy(np.array(yb[:, sl], dtype=np.float64)) - (gain * f + o2_all[sl])
                objective += float(((resid**2) * inv_v_all[sl]).sum())
                if derivatives:
                    slope = gain * df
                    lat_grad += (slope * resid * inv_v_all[sl]) @ w1_all[sl]
                    weights += ((slope**2) * inv_v_all[sl]) @ outer_w1[sl]
            if derivatives:
                grad += xb.T @ lat_grad
                for i, (c, e) in enumerate(pairs):
                    grams[i] += (xb * weights[:, c * k + e, None]).T @ xb
        return objective, grad.reshape(-1), grams

    w0 = torch.from_numpy(params["w0"])
    objective, grad, grams = evaluate(w0, True)
    hess = torch.empty(d, k, d, k, dtype=torch.float64)
    for i, (c, e) in enumerate(pairs):
        hess[:, c, :, e] = grams[i]
        hess[:, e, :, c] = grams[i]
    hess = hess.reshape(d * k, d * k)
    diag = torch.diagonal(hess).clone() + 1e-12
    while damping < 1e8:
        system = hess.clone()
        system.diagonal().add_(damping * diag)
        step = torch.linalg.solve(system, grad).reshape(d, k)
        if evaluate(w0 + step, False)[0] < objective:
            out = dict(params)
            out["w0"] = (w0 + step).numpy().copy()
            return out, damping / 3.0
        damping *= 4.0
    return params, damping


#: largest d·k whose Gauss–Newton system for ``w0`` is formed and solved (two 3000² float64
#: matrices: 144 MB; 2.7e10 flops per solve)
MAX_PROJECTION_SIZE = 3000


def _hessian_affordable(n, d, k, max_hessian_flops):
    """Whether a ``w0`` step is cheap enough: its Gram matrices' flops and its (dk)² system."""
    return n * d * d * k * (k + 1) / 2 <= max_hessian_flops and d * k <= MAX_PROJECTION_SIZE


def alternate_fit(link, X, Y, params, *, var_floor, max_rounds=8, tol=1e-3, max_hessian_flops=2e10):
    """Block-coordinate Gauss–Newton: per-target parameters, then ``w0``, alternately.

    Each round takes one damped Gauss–Newton step on ``w0`` (skipped when its Gram
    matrices would cost more than ``max_hessian_flops``) and a few per-target
    Levenberg–Marquardt steps, then resets ``v`` to the residual variances. Rounds stop
    when the training negative log-likelihood (summed over targets) improves by less
    than ``tol`` nats per sample. ``X`` (n, d) and ``Y`` (n, p) are in-memory arrays
    (float32 or float64; on large data, a subsample of rows).

    Returns
    -------
    params : dict
        Float64 ``w0 w1 o2`` (+ ``o1``, ``g``) and ``v``.
    """
    params = refine_targets(link, X, Y, params, n_steps=20)
    v = np.maximum(params.pop("rss_n"), var_floor)
    n, d = X.shape
    k = params["w0"].shape[1]
    if _hessian_affordable(n, d, k, max_hessian_flops):
        Xr, Yr = RowReader(X, "X"), RowReader(Y, "y")
        nll, damping = 0.5 * np.log(v).sum(), 1e-3
        for _ in range(max_rounds):
            params, damping = _projection_step(link, Xr, Yr, params, v, damping)
            params = refine_targets(link, X, Y, params, n_steps=5)
            v = np.maximum(params.pop("rss_n"), var_floor)
            new_nll = 0.5 * np.log(v).sum()
            if nll - new_nll < tol or damping >= 1e8:
                break
            nll = new_nll
    params["v"] = v
    return params


def polish_fit(link, Xr, Yr, params, *, var_floor, budget=None, max_rounds=4, tol=1e-5, max_hessian_flops=2e11):
    """:func:`alternate_fit`'s rounds on all rows, streamed in row chunks.

    After a start fitted on a row subsample: per-target Levenberg–Marquardt steps on all
    rows (:func:`polish_targets`), then rounds of a ``w0`` step and one more per-target
    step, until the negative log-likelihood improves by less than ``tol`` nats per
    sample and target. Every step is one or two passes over the data.

    Returns
    -------
    params : dict
        As :func:`alternate_fit`, ``v`` over all rows.
    """
    params = polish_targets(link, Xr, Yr, params, n_steps=1, budget=budget)
    v = np.maximum(params.pop("rss_n"), var_floor)
    n, d = Xr.shape
    p = Yr.shape[1]
    if _hessian_affordable(n, d, params["w0"].shape[1], max_hessian_flops):
        nll, damping = 0.5 * np.log(v).sum(), 1e-3
        for _ in range(max_rounds):
            params, damping = _projection_step(link, Xr, Yr, params, v, damping, budget)
            params = polish_targets(link, Xr, Yr, params, n_steps=1, budget=budget)
            v = np.maximum(params.pop("rss_n"), var_floor)
            new_nll = 0.5 * np.log(v).sum()
            if nll - new_nll < tol * p or damping >= 1e8:
                break
            nll = new_nll
    params["v"] = v
    return params


def constant_targets_flat(params, mom):
    """Constant targets start flat: no loading, no gain, the offset at their value.

    (Fitting a constant through a nonlinearity otherwise drives the gain to 0 and the loadings
    to infinity, both beyond float32.) ``mom``: the data's moments (per-target extremes).
    """
    spread = mom.y_max - mom.y_min
    top = np.maximum(np.abs(mom.y_min), np.abs(mom.y_max))
    constant = spread <= 64 * np.finfo(np.float64).eps * top
    if not constant.any():
        return params
    params = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
    params["w1"][constant] = 0.0
    if "g" in params:
        params["g"][constant] = 0.0
    if "o1" in params:
        params["o1"][constant] = 0.0
    params["o2"][constant] = mom.y_min[constant]
    return params


def factor(w0, w1, k):
    """Standard-form factors ``(w0 (d, k), w1 (p, k))`` of ``w0 w1ᵀ`` (rank ≤ k), zero-padded to k columns."""
    d, p = w0.shape[0], w1.shape[0]
    w0, w1, *_ = standard_form(w0, w1)
    out0, out1 = np.zeros((d, k)), np.zeros((p, k))
    m = min(k, w0.shape[1])
    out0[:, :m], out1[:, :m] = w0[:, :m], w1[:, :m]
    return out0, out1

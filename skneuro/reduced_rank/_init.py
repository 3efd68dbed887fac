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

__all__ = ["match_linear_fit", "refine_targets"]


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
        params["_exp_shift"] = c
    elif link == "relu":
        params.update(w1=w1, o1=2.0 * s - center, o2=y_mean - 2.0 * s)
    else:  # pragma: no cover - validated by the estimator
        raise ValueError(f"unknown link {link!r}")
    if link == "exp":
        # g e^{a} with a = x w0 w1ᵀ: the shift -c is folded into g above.
        params.pop("_exp_shift")
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


def _evaluate(link, theta, latent, Yt, k, with_jacobian):
    """Residuals (q, n) and, optionally, Jacobians (q, n, m) for a block of q targets."""
    w1, o1, g, o2 = _unpack(link, theta, k)
    a = w1 @ latent.T
    if o1 is not None:
        a = a + o1[:, None]
    f, df = _link_and_slope(link, a)
    gain = 1.0 if g is None else g[:, None]
    resid = Yt - (gain * f + o2[:, None])
    if not with_jacobian:
        return resid, None
    scaled = gain * df
    cols = [scaled[:, :, None] * latent[None, :, :]]
    if o1 is not None:
        cols.append(scaled[:, :, None])
    if g is not None:
        cols.append(f[:, :, None])
    cols.append(torch.ones_like(f)[:, :, None])
    return resid, torch.cat(cols, dim=2)


def refine_targets(link, X, Y, params, *, n_steps=40, block_elements=2**24):
    """Levenberg–Marquardt fit of each target's parameters for the fixed ``w0``.

    Parameters
    ----------
    link : str
    X : ndarray (n, d)
    Y : ndarray (n, p)
    params : dict
        Output of :func:`match_linear_fit` (modified copies are returned).
    n_steps : int
        Levenberg–Marquardt iterations per target.
    block_elements : int
        Targets are processed in blocks whose Jacobian has at most this many entries.

    Returns
    -------
    params : dict
        Refined ``w1``, ``o1``, ``g``, ``o2`` (float64) and the residual variances ``rss_n``.
    """
    k = params["w0"].shape[1]
    latent = torch.from_numpy(X @ params["w0"])
    Yt_all = torch.from_numpy(np.ascontiguousarray(Y.T))
    pieces = [params["w1"]]
    if "o1" in params:
        pieces.append(params["o1"][:, None])
    if "g" in params:
        pieces.append(params["g"][:, None])
    pieces.append(params["o2"][:, None])
    theta_all = torch.from_numpy(np.concatenate(pieces, axis=1))
    n, m = latent.shape[0], theta_all.shape[1]
    p = Yt_all.shape[0]
    block = max(1, int(block_elements // max(n * m, 1)))
    eye = torch.eye(m, dtype=torch.float64)
    rss_out = torch.empty(p, dtype=torch.float64)
    for start in range(0, p, block):
        theta = theta_all[start : start + block].clone()
        Yt = Yt_all[start : start + block]
        damping = torch.full((theta.shape[0],), 1e-3, dtype=torch.float64)
        resid, jac = _evaluate(link, theta, latent, Yt, k, True)
        rss = (resid**2).sum(1)
        for _ in range(n_steps):
            hess = jac.transpose(1, 2) @ jac
            grad = (jac.transpose(1, 2) @ resid.unsqueeze(2)).squeeze(2)
            diag = torch.diagonal(hess, dim1=1, dim2=2)
            scale = diag + 1e-12 * (diag.amax(dim=1, keepdim=True) + 1e-300)
            system = hess + damping[:, None, None] * torch.diag_embed(scale) + 1e-300 * eye
            step = torch.linalg.solve(system, grad.unsqueeze(2)).squeeze(2)
            candidate = theta + step
            new_resid, _ = _evaluate(link, candidate, latent, Yt, k, False)
            new_rss = (new_resid**2).sum(1)
            accept = torch.isfinite(new_rss) & (new_rss < rss)
            theta = torch.where(accept[:, None], candidate, theta)
            improvement = torch.where(accept, (rss - new_rss) / rss.clamp_min(1e-300), torch.zeros_like(rss))
            rss = torch.where(accept, new_rss, rss)
            damping = torch.where(accept, damping / 3.0, damping * 4.0).clamp(1e-9, 1e9)
            done = (accept & (improvement < 1e-10)) | (damping >= 1e8)
            if bool(done.all()):
                break
            resid, jac = _evaluate(link, theta, latent, Yt, k, True)
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

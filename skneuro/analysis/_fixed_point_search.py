r"""Batched searches for the minima of the speed q on the searched units, in torch.

With the searched units S and the others E held at their initial values, the residual of
a state is ``α·r(x_S)`` with ``r(x_S) = W_SS f(x_S) + c − x_S`` and the per-state constant
drive ``c = W_SE f(x_E) + W_in[S] u + b_S``; ``q = ½α²‖r‖²``. Its Jacobian is
``J = W_SS D − I`` with ``D = diag f'(x_S)``, so ``JᵀJ = D M D − D W_SSᵀ − W_SS D + I`` with
``M = W_SSᵀ W_SS`` computed once: an iteration costs one batched Cholesky factorisation,
not a matrix product, per state. Every tensor lives on the device the model lives on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..rnn._modules import _activate, _slope

__all__ = ["Subsystem", "search_adam", "search_lm", "slope"]

_FTOL = 1e-6  # relative decrease of q below which an accepted step counts as stalled
_FTOL_NEWTON = 1e-13  # the same for the Newton polish, which converges quadratically
_STALLS = 4  # stalled steps in a row that make a slow point
_MAX_DAMPING = 1e16  # damping past which no step can lower q: a slow point
_ACCEPT = 1e-4  # actual over predicted decrease of q an accepted step must reach


def curvature(name, x):
    """f''(x) in torch (0 for relu and linear)."""
    if name == "tanh":
        t = torch.tanh(x)
        return -2.0 * t * (1.0 - t * t)
    if name == "sigmoid":
        s = torch.sigmoid(x)
        return s * (1.0 - s) * (1.0 - 2.0 * s)
    if name == "softplus":
        s = torch.sigmoid(x)
        return s * (1.0 - s)
    return torch.zeros_like(x)


def slope(name, x):
    """f'(x) in torch (relu: 1 where x > 0)."""
    return _slope(name, x, _activate(name, x))


@dataclass
class Subsystem:
    """The searched units' equations: ``r(x_S) = W f(x_S) + drive − x_S`` per state."""

    W: torch.Tensor  # (k, k)
    drive: torch.Tensor  # (n, k)
    alpha: float
    activation: str

    def __post_init__(self):
        self.M = self.W.T @ self.W
        self.eye = torch.eye(self.W.shape[0], dtype=self.W.dtype, device=self.W.device)

    def residual(self, x, idx=None):
        drive = self.drive if idx is None else self.drive[idx]
        return _activate(self.activation, x) @ self.W.T + drive - x

    def speed(self, r):
        return 0.5 * self.alpha**2 * (r * r).sum(-1)

    def normal_matrix(self, d):
        """``JᵀJ = D M D − D Wᵀ − W D + I`` for ``J = W D − I`` at slopes d (m, k), in three passes."""
        A = torch.addcmul(-self.W.T, self.M, d[:, None, :])
        A.mul_(d[:, :, None])
        A.addcmul_(self.W, d[:, None, :], value=-1.0)
        A.diagonal(dim1=-2, dim2=-1).add_(1.0)
        return A

    def normal_diagonal(self, d):
        """The diagonal of ``JᵀJ``: squared column norms of J (positive; Marquardt's scaling)."""
        return d * d * self.M.diagonal() - 2.0 * d * self.W.diagonal() + 1.0

    def hessian(self, x, r):
        """``JᵀJ + diag(f''(x) ⊙ Wᵀr)``: the Hessian of ½‖r‖², exact."""
        A = self.normal_matrix(slope(self.activation, x))
        A.diagonal(dim1=-2, dim2=-1).add_(curvature(self.activation, x) * (r @ self.W))
        return A

    def gradient(self, x, r):
        """``Jᵀ r`` (∇q = α² Jᵀ r)."""
        return slope(self.activation, x) * (r @ self.W) - r


def search_lm(sub, x, tol, max_iter):
    """Levenberg–Marquardt from every state, again more cautiously where it failed, then polish.

    The first pass starts near Gauss–Newton (damping 1e-3); a state it leaves above ``tol``
    (at a slow point, or out of iterations) is searched again from its initial state with
    damping 1, which takes shorter first steps and often reaches another basin; each state
    keeps the lower of its two speeds. A state still above ``tol`` is then polished by
    damped Newton steps on q with its exact Hessian (Gauss–Newton converges only linearly
    to a minimum of q above 0, a slow point). ``n_iter`` counts the iterations of all passes.
    """
    x0 = x.clone()
    x, q, n_iter = _lm_pass(sub, x, tol, max_iter, 1e-3)
    retry = torch.nonzero(q >= tol).squeeze(1)
    if retry.numel():
        part = Subsystem(sub.W, sub.drive[retry], sub.alpha, sub.activation)
        x_again, q_again, n_again = _lm_pass(part, x0[retry], tol, max_iter, 1.0)
        lower = q_again < q[retry]
        x[retry[lower]], q[retry[lower]] = x_again[lower], q_again[lower]
        n_iter[retry] += n_again
        slow = retry[q[retry] >= tol]
        if slow.numel():
            part = Subsystem(sub.W, sub.drive[slow], sub.alpha, sub.activation)
            x[slow], q[slow], n_polish = _lm_pass(part, x[slow], tol, max_iter, 1e-3, newton=True)
            n_iter[slow] += n_polish
    return x, q, n_iter


def _lm_pass(sub, x, tol, max_iter, initial_damping, newton=False):
    """Batched Levenberg–Marquardt on r, each state with its own damping, stopping on its own.

    Marquardt's scaling by the running maximum of ``JᵀJ``'s diagonal (MINPACK's), damping
    updated from the ratio of actual to predicted decrease (Nielsen's rule). A state stops
    when ``q < tol``; at a slow point (a local minimum of q above tol) when accepted steps
    no longer lower q by a relative 1e-6 (1e-13 for Newton) four times running, or when no damping finds a
    lower q; or after ``max_iter`` iterations. ``newton=True`` adds the second-order term
    of q's Hessian (a damped Newton search on q; Cholesky fails where it is indefinite,
    and the damping rises until it is not).
    """
    n = x.shape[0]
    opts = {"dtype": x.dtype, "device": x.device}
    r = sub.residual(x)
    q = sub.speed(r)
    lam = torch.full((n,), float(initial_damping), **opts)
    nu = torch.full((n,), 2.0, **opts)
    scale = torch.zeros_like(x)
    n_iter = torch.zeros(n, dtype=torch.long, device=x.device)
    stall = torch.zeros(n, dtype=torch.long, device=x.device)
    active = q >= tol
    for _ in range(max_iter):
        idx = torch.nonzero(active).squeeze(1)
        if idx.numel() == 0:
            break
        rows = slice(None) if idx.numel() == n else idx  # all searching: no gathers
        # recomputing JᵀJ costs about what keeping it for rejected steps would (one pass)
        d = slope(sub.activation, x[rows])
        A = sub.hessian(x[rows], r[rows]) if newton else sub.normal_matrix(d)
        g = sub.gradient(x[rows], r[rows])
        scale[rows] = torch.maximum(scale[rows], sub.normal_diagonal(d))
        damp = lam[rows, None] * scale[rows] + 1e-300
        A.diagonal(dim1=-2, dim2=-1).add_(damp)
        L, info = torch.linalg.cholesky_ex(A)
        step = -torch.cholesky_solve(g[..., None], L)[..., 0]
        trial = x[rows] + step
        r_trial = sub.residual(trial, rows)
        q_trial = sub.speed(r_trial)
        predicted = 0.5 * sub.alpha**2 * (step * (damp * step - g)).sum(-1)
        ratio = (q[rows] - q_trial) / predicted
        better = (info == 0) & torch.isfinite(q_trial) & (q_trial < q[rows]) & (ratio > _ACCEPT)
        acc, rej = idx[better], idx[~better]
        stalled = better & (q[rows] - q_trial <= (_FTOL_NEWTON if newton else _FTOL) * q[rows])
        x[acc], r[acc], q[acc] = trial[better], r_trial[better], q_trial[better]
        lam[acc] *= torch.clamp(1 - (2 * ratio[better] - 1) ** 3, min=1 / 3)
        nu[acc] = 2.0
        lam[rej] *= nu[rej]
        nu[rej] *= 2.0
        n_iter[idx] += 1
        stall[idx] = torch.where(stalled, stall[idx] + 1, torch.where(better, 0, stall[idx]))
        done = (stall[idx] >= _STALLS) | (lam[idx] >= _MAX_DAMPING) | (q[idx] < tol)
        active[idx[done]] = False
    return x, q, n_iter


def search_adam(sub, x, tol, max_iter, learning_rate=1e-2, patience=50, factor=0.5):
    """The original toolkits' search: Adam on q with a plateau schedule, here per state.

    Vectorised over states with the analytic gradient ``∇q = α² Jᵀ r``; each state has its
    own moments, step count and learning rate (halved after ``patience`` iterations without
    a relative improvement of 1e-4), and stops moving once its q is below ``tol``.
    """
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    n = x.shape[0]
    m, v = torch.zeros_like(x), torch.zeros_like(x)
    lr = torch.full((n,), float(learning_rate), dtype=x.dtype, device=x.device)
    best = torch.full((n,), float("inf"), dtype=x.dtype, device=x.device)
    stall = torch.zeros(n, dtype=torch.long, device=x.device)
    n_iter = torch.zeros(n, dtype=torch.long, device=x.device)
    r = sub.residual(x)
    q = sub.speed(r)
    active = q >= tol
    for _ in range(max_iter):
        idx = torch.nonzero(active).squeeze(1)
        if idx.numel() == 0:
            break
        grad = sub.alpha**2 * sub.gradient(x[idx], r[idx])
        n_iter[idx] += 1
        t = n_iter[idx, None].to(x.dtype)
        m[idx] = beta1 * m[idx] + (1 - beta1) * grad
        v[idx] = beta2 * v[idx] + (1 - beta2) * grad**2
        x[idx] -= lr[idx, None] * (m[idx] / (1 - beta1**t)) / (torch.sqrt(v[idx] / (1 - beta2**t)) + eps)
        r[idx] = sub.residual(x[idx], idx)
        q[idx] = sub.speed(r[idx])
        improved = q[idx] < best[idx] * (1 - 1e-4)
        best[idx] = torch.where(improved, q[idx], best[idx])
        stall[idx] = torch.where(improved, 0, stall[idx] + 1)
        cut = idx[stall[idx] >= patience]
        lr[cut] *= factor
        stall[cut] = 0
        active &= q >= tol
    return x, q, n_iter

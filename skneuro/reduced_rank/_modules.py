r"""Torch module of (non)linear reduced-rank regression.

Shapes: ``X (n, d)``, ``w0 (d, k)``, ``w1 (p, k)``, vectors ``(p,)``.

.. math::

    M(X) = g \odot f(X w_0 w_1^\top + o_1) + o_2, \qquad
    y = M(X) + \varepsilon,\ \varepsilon \sim N(0, \operatorname{diag} v)

with ``f`` the identity (linear), the logistic sigmoid, the guarded exponential
:math:`\varphi(a) = e^a` for :math:`a \le 20`, :math:`e^{20}(1 + a - 20)` above, or
:math:`\max(a, 0)`; ``g = 1`` for linear and relu, ``o1 = 0`` for linear and exp.
The noise variance is :math:`v = f_{\text{floor}} + e^{\rho}`, computed as
:math:`\log v = \operatorname{logaddexp}(\log f_{\text{floor}}, \rho)`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["LINKS", "ReducedRankModule", "exp_link"]

# the fitted parameters of each link, in the standard form's order
LINK_PARAMS = {
    "linear": ("w0", "w1", "o2", "noise_variance"),
    "sigmoid": ("w0", "w1", "o1", "o2", "g", "noise_variance"),
    "exp": ("w0", "w1", "o2", "g", "noise_variance"),
    "relu": ("w0", "w1", "o1", "o2", "noise_variance"),
}

LINKS = ("linear", "sigmoid", "exp", "relu")
_EXP_CUT = 20.0


def exp_link(a: torch.Tensor) -> torch.Tensor:
    """Exponential that continues linearly above 20 (C1, never overflows).

    Examples
    --------
    >>> import torch
    >>> from skneuro.reduced_rank import exp_link
    >>> exp_link(torch.tensor([0.0, 21.0])).tolist() == [1.0, 2 * float(torch.tensor(20.0).exp())]
    True
    """
    clipped = torch.clamp(a, max=_EXP_CUT)
    e = torch.exp(clipped)
    return torch.where(a <= _EXP_CUT, e, e * (1.0 + a - _EXP_CUT))


class ReducedRankModule(nn.Module):
    """Reduced-rank regression with a pointwise link and diagonal Gaussian noise.

    Parameters
    ----------
    n_features, n_targets, n_components : int
        d, p and the rank k.
    link : {"linear", "sigmoid", "exp", "relu"}
        The nonlinearity f.
    dtype : torch.dtype, optional
    device : torch.device, optional
    generator : torch.Generator, optional
        CPU generator of the initial weights (default: torch's global generator).

    Attributes
    ----------
    w0 : Parameter (d, k)
    w1 : Parameter (p, k)
    o1 : Parameter (p,) or None
        Present for sigmoid and relu.
    o2 : Parameter (p,)
    g : Parameter (p,) or None
        Present for sigmoid and exp.
    rho : Parameter (p,)
        Log of the variance above the floor.
    var_floor : buffer (p,)

    Examples
    --------
    >>> import torch
    >>> from skneuro.reduced_rank import ReducedRankModule
    >>> m = ReducedRankModule(3, 4, 2, link="sigmoid")
    >>> m(torch.zeros(5, 3)).shape
    torch.Size([5, 4])
    """

    def __init__(self, n_features, n_targets, n_components, link="linear", *, dtype=None, device=None, generator=None):
        super().__init__()
        if link not in LINKS:
            raise ValueError(f"link must be one of {LINKS}; got {link!r}.")
        self.n_features, self.n_targets, self.n_components, self.link = (
            int(n_features),
            int(n_targets),
            int(n_components),
            link,
        )
        kw = {"dtype": dtype, "device": device}
        d, p, k = self.n_features, self.n_targets, self.n_components
        self.w0 = nn.Parameter(torch.empty(d, k, **kw))
        self.w1 = nn.Parameter(torch.empty(p, k, **kw))
        self.o1 = nn.Parameter(torch.empty(p, **kw)) if link in ("sigmoid", "relu") else None
        self.g = nn.Parameter(torch.empty(p, **kw)) if link in ("sigmoid", "exp") else None
        self.o2 = nn.Parameter(torch.empty(p, **kw))
        self.rho = nn.Parameter(torch.empty(p, **kw))
        self.register_buffer("var_floor", torch.zeros(p, **kw))
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Small random weights, zero offsets, unit gain and unit variance.

        The weights are drawn from ``generator`` (a CPU generator) when given, so that
        estimators can build modules without touching the global random state.
        """
        with torch.no_grad():
            for weight, fan_in in ((self.w0, self.n_features), (self.w1, self.n_components)):
                if generator is None:
                    nn.init.normal_(weight, std=1.0 / math.sqrt(max(fan_in, 1)))
                else:
                    draw = torch.randn(weight.shape, generator=generator, dtype=weight.dtype)
                    weight.copy_(draw / math.sqrt(max(fan_in, 1)))
            self.o2.zero_()
            self.rho.zero_()
            if self.o1 is not None:
                self.o1.zero_()
            if self.g is not None:
                self.g.fill_(1.0)

    @property
    def log_v(self) -> torch.Tensor:
        """Log noise variances, ``logaddexp(log var_floor, rho)`` (p,)."""
        return torch.logaddexp(torch.log(self.var_floor), self.rho)

    @property
    def v(self) -> torch.Tensor:
        """Noise variances (p,)."""
        return torch.exp(self.log_v)

    def latents(self, X: torch.Tensor) -> torch.Tensor:
        """Projections ``X w0`` (n, k)."""
        return X @ self.w0

    def pre_activation(self, X: torch.Tensor) -> torch.Tensor:
        """``X w0 w1ᵀ + o1`` (n, p)."""
        a = self.latents(X) @ self.w1.T
        return a if self.o1 is None else a + self.o1

    def activate(self, a: torch.Tensor) -> torch.Tensor:
        """``g ⊙ f(a)`` for pre-activations ``a``."""
        if self.link == "sigmoid":
            out = torch.sigmoid(a)
        elif self.link == "exp":
            out = exp_link(a)
        elif self.link == "relu":
            out = torch.relu(a)
        else:
            out = a
        return out if self.g is None else self.g * out

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Mean prediction ``g ⊙ f(X w0 w1ᵀ + o1) + o2`` (n, p)."""
        return self.activate(self.pre_activation(X)) + self.o2

    def neg_log_likelihood(self, mean: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        """Per-sample ``Σ_j ½ log v_j + (y_j − mean_j)² / (2 v_j)`` (n,), without the 2π term.

        Squares and sums are taken in float64 (MPS: float32): a float32 square overflows
        for residuals above ~1e19, which line searches of the exp link reach, and float32
        sums over many targets lose the small decreases L-BFGS needs near the optimum.
        """
        wide = torch.float32 if mean.device.type == "mps" else torch.float64
        log_v = self.log_v.to(wide)
        resid = (Y - mean).to(wide)
        return (0.5 * log_v + 0.5 * resid**2 * torch.exp(-log_v)).sum(dim=1)

    def penalty(self, l1_w0=0.0, l2_w0=0.0, l1_w1=0.0, l2_w1=0.0) -> torch.Tensor:
        """Elastic-net penalty on w0 and w1 (squared sums, not divided by n)."""
        total = self.w0.new_zeros(())
        if l2_w0:
            total = total + l2_w0 * (self.w0**2).sum()
        if l2_w1:
            total = total + l2_w1 * (self.w1**2).sum()
        if l1_w0:
            total = total + l1_w0 * self.w0.abs().sum()
        if l1_w1:
            total = total + l1_w1 * self.w1.abs().sum()
        return total

    def extra_repr(self) -> str:
        return (
            f"n_features={self.n_features}, n_targets={self.n_targets}, "
            f"n_components={self.n_components}, link={self.link!r}"
        )

r"""Sums of axis-aligned Gaussian bumps ("wandering" modules).

Shapes: inputs ``x (n, D)``; centers ``c`` and widths ``w`` ``(B, D)`` (one bump: ``(D,)``);
magnitudes ``m`` ``(B,)`` or ``(B, K)`` (one bump: ``()`` or ``(K,)``); bounds ``(2, D)``
with row 0 the lower and row 1 the upper bound, applied to every bump.

.. math::

    \phi_b(x) = \exp\Big(-\sum_d \big((x_d - c_{bd}) / w_{bd}\big)^2\Big), \qquad
    f_k(x) = \sum_b m_{bk}\, \phi_b(x).

With ``support_p = p`` each bump is cut to the box :math:`|x_d - c_{bd}| < \kappa |w_{bd}|`,
:math:`\kappa = \sqrt{-\ln p}`; outside it the exact bump is at most ``p``.

"Wandering" modules take gradient noise (:meth:`WanderingModule.pert_grads`): a bump whose
loss is flat random-walks until it finds data. The engine calls ``pert_grads`` after each
backward pass and ``bound`` after each optimizer step.
"""

from __future__ import annotations

import abc
import math

import torch
from torch import nn

__all__ = ["BumpFcn", "SlowSumOfBumpFcns", "SumOfBumpFcns", "WanderingModule"]


class WanderingModule(nn.Module, abc.ABC):
    """A module with parameter bounds and gradient perturbations.

    Subclasses implement :meth:`bound` (clamp parameters into their bounds, in place) and
    :meth:`pert_grads` (perturb gradients with noise drawn from a ``torch.Generator``).
    The fitting engine calls ``pert_grads(generator)`` once per update after the
    backward pass, and ``bound()`` once before training and after every optimizer step,
    on each wandering module that has no wandering ancestor.

    Examples
    --------
    >>> import torch
    >>> from skneuro.bumps import WanderingModule
    >>> class Clamped(WanderingModule):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.a = torch.nn.Parameter(torch.tensor([2.0]))
    ...     def bound(self):
    ...         with torch.no_grad():
    ...             self.a.clamp_(max=1.0)
    ...     def pert_grads(self, generator):
    ...         pass
    >>> m = Clamped(); m.bound(); m.a.item()
    1.0
    """

    @abc.abstractmethod
    def bound(self) -> None:
        """Clamp parameters into their bounds, in place and without gradient tracking."""

    @abc.abstractmethod
    def pert_grads(self, generator: torch.Generator) -> None:
        """Perturb parameter gradients with noise drawn from ``generator``."""


def _noise(shape, generator, like):
    """Standard normal noise drawn on the CPU in float64, then cast and moved to ``like``."""
    return torch.randn(shape, generator=generator, dtype=torch.float64).to(device=like.device, dtype=like.dtype)


def _add_to_grad(param, value):
    if param.grad is None:
        param.grad = torch.zeros_like(param)
    param.grad.add_(value)


def _as_tensor(name, value, dtype=None):
    if isinstance(value, torch.Tensor):
        tensor = value.detach().clone()
        if dtype is not None:
            tensor = tensor.to(dtype)
    else:
        tensor = torch.as_tensor(value, dtype=dtype if dtype is not None else torch.get_default_dtype()).clone()
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.get_default_dtype())
    if not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{name} must contain only finite values.")
    return tensor


def _check_bounds(name, bounds, n_dims, like, positive=False):
    if bounds is None:
        return None
    b = torch.as_tensor(bounds.detach().clone() if isinstance(bounds, torch.Tensor) else bounds, dtype=like.dtype).to(
        like.device
    )
    if b.ndim == 1 and b.shape[0] == 2 and n_dims == 1:
        b = b[:, None]
    if b.shape != (2, n_dims):
        raise ValueError(f"{name} must have shape (2, {n_dims}) (row 0 lower, row 1 upper); got {tuple(b.shape)}.")
    if bool(torch.isnan(b).any()):
        raise ValueError(f"{name} must not contain NaN.")
    if bool((b[0] > b[1]).any()):
        raise ValueError(f"{name}: lower bounds (row 0) must not exceed upper bounds (row 1).")
    if positive and bool((b[0] <= 0).any()):
        raise ValueError(f"{name}: lower width bounds must be positive.")
    return b


def _check_nonnegative(name, value):
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative finite number; got {value!r}.")
    return value


def _check_support_p(support_p):
    if support_p is None:
        return None
    value = float(support_p)
    if not 0.0 < value < 1.0:
        raise ValueError(f"support_p must be None or in the open interval (0, 1); got {support_p!r}.")
    return value


class _BumpBase(WanderingModule):
    """Storage, validation, bounds and perturbations shared by the three bump modules."""

    def _setup(self, c, w, m, c_bounds, w_bounds, c_grad_std, w_grad_std, m_grad_gain, support_p, single):
        c = _as_tensor("c", c)
        w = _as_tensor("w", w, dtype=c.dtype)
        m = _as_tensor("m", m, dtype=c.dtype)
        if single:
            if c.ndim != 1:
                raise ValueError(f"c must have shape (n_dims,); got {tuple(c.shape)}.")
            if w.shape != c.shape:
                raise ValueError(f"w must have the shape of c {tuple(c.shape)}; got {tuple(w.shape)}.")
            if m.ndim > 1:
                raise ValueError(f"m must be a scalar or have shape (n_outputs,); got {tuple(m.shape)}.")
            self._multi_output = m.ndim == 1
            m = m.reshape(-1)
        else:
            if c.ndim != 2:
                raise ValueError(f"c must have shape (n_bumps, n_dims); got {tuple(c.shape)}.")
            if w.shape != c.shape:
                raise ValueError(f"w must have the shape of c {tuple(c.shape)}; got {tuple(w.shape)}.")
            if m.ndim not in (1, 2) or m.shape[0] != c.shape[0]:
                raise ValueError(
                    f"m must have shape (n_bumps,) or (n_bumps, n_outputs) with n_bumps={c.shape[0]}; "
                    f"got {tuple(m.shape)}."
                )
            self._multi_output = m.ndim == 2
        if bool((w <= 0).any()):
            raise ValueError("w (widths) must be positive.")
        n_dims = c.shape[-1]
        self.register_buffer("c_bounds", _check_bounds("c_bounds", c_bounds, n_dims, c))
        self.register_buffer("w_bounds", _check_bounds("w_bounds", w_bounds, n_dims, c, positive=True))
        self.c_grad_std = _check_nonnegative("c_grad_std", c_grad_std)
        self.w_grad_std = _check_nonnegative("w_grad_std", w_grad_std)
        m_grad_gain = float(m_grad_gain)
        if not math.isfinite(m_grad_gain):
            raise ValueError(f"m_grad_gain must be finite; got {m_grad_gain!r}.")
        self.m_grad_gain = m_grad_gain
        self.support_p = _check_support_p(support_p)
        return c, w, m

    def _register(self, c, w, m):
        self.c = nn.Parameter(c)
        self.w = nn.Parameter(w)
        self.m = nn.Parameter(m)

    @property
    def kappa(self):
        """Half-width of the support box in units of |w|, ``sqrt(-ln support_p)`` (None: no cut)."""
        p = _check_support_p(self.support_p)
        return None if p is None else math.sqrt(-math.log(p))

    @property
    def n_dims(self) -> int:
        return int(self.c.shape[-1])

    @property
    def n_outputs(self) -> int:
        return int(self.m.shape[-1]) if self._multi_output else 1

    def _check_x(self, x):
        x = torch.as_tensor(x)
        if x.ndim == 1 and self.n_dims == 1:
            x = x[:, None]
        if x.ndim != 2 or x.shape[1] != self.n_dims:
            raise ValueError(f"x must have shape (n_samples, {self.n_dims}); got {tuple(x.shape)}.")
        return x.to(dtype=self.c.dtype, device=self.c.device)

    @property
    def perturbs_gradients(self) -> bool:
        """Whether :meth:`pert_grads` changes gradients (any non-zero std or gain)."""
        return self.c_grad_std > 0 or self.w_grad_std > 0 or self.m_grad_gain != 0

    def bound(self) -> None:
        with torch.no_grad():
            if self.c_bounds is not None:
                self.c.copy_(torch.clamp(self.c, self.c_bounds[0], self.c_bounds[1]))
            if self.w_bounds is not None:
                self.w.copy_(torch.clamp(self.w, self.w_bounds[0], self.w_bounds[1]))

    def _perturb(self, c_noise, w_noise):
        """Apply ``g_c += c_grad_std ε``, ``g_w += w_grad_std ε``, ``g_m -= m_grad_gain m``."""
        with torch.no_grad():
            if c_noise is not None:
                _add_to_grad(self.c, self.c_grad_std * c_noise)
            if w_noise is not None:
                _add_to_grad(self.w, self.w_grad_std * w_noise)
            if self.m_grad_gain != 0.0:
                _add_to_grad(self.m, -self.m_grad_gain * self.m.detach())

    def pert_grads(self, generator: torch.Generator) -> None:
        c_noise = _noise(self.c.shape, generator, self.c) if self.c_grad_std > 0 else None
        w_noise = _noise(self.w.shape, generator, self.w) if self.w_grad_std > 0 else None
        self._perturb(c_noise, w_noise)

    def extra_repr(self) -> str:
        return f"n_bumps={self.n_bumps}, n_dims={self.n_dims}, n_outputs={self.n_outputs}, support_p={self.support_p}"


class BumpFcn(_BumpBase):
    """One Gaussian bump ``m · exp(-Σ_d ((x_d - c_d) / w_d)²)``.

    Parameters
    ----------
    c, w : array-like of shape (n_dims,)
        Center and (positive) width.
    m : float or array-like of shape (n_outputs,)
        Magnitude; a scalar gives output ``(n,)``, a vector output ``(n, n_outputs)``.
    c_bounds, w_bounds : array-like of shape (2, n_dims) or None
        Row 0 lower, row 1 upper bounds enforced by :meth:`bound`.
    c_grad_std, w_grad_std : float, default=0.0
        Standard deviation of the gradient noise added by :meth:`pert_grads`.
    m_grad_gain : float, default=0.0
        ``pert_grads`` subtracts ``m_grad_gain * m`` from the magnitude gradient.
    support_p : float in (0, 1) or None, default=None
        Cut the bump to the box where it can exceed ``support_p``.

    Examples
    --------
    >>> import torch
    >>> from skneuro.bumps import BumpFcn
    >>> bump = BumpFcn(c=[0.0, 0.0], w=[1.0, 2.0], m=2.0)
    >>> round(bump(torch.tensor([[1.0, 2.0]])).item(), 7)
    0.2706706
    """

    def __init__(
        self, c, w, m, c_bounds=None, w_bounds=None, c_grad_std=0.0, w_grad_std=0.0, m_grad_gain=0.0, support_p=None
    ):
        super().__init__()
        self._register(
            *self._setup(c, w, m, c_bounds, w_bounds, c_grad_std, w_grad_std, m_grad_gain, support_p, single=True)
        )

    @property
    def n_bumps(self) -> int:
        return 1

    def _support_rows(self, x, sorted_first=None):
        """Indices of the rows inside the support box (None: no cut-off).

        ``sorted_first = (order, values)`` (``x[:, 0]`` sorted, with its argsort) lets the
        rows be found by binary search on the first coordinate, so temporaries scale with
        the rows in the bump's slab, not with n.
        """
        kappa = self.kappa
        if kappa is None:
            return None
        with torch.no_grad():
            half = kappa * self.w.abs()
            if sorted_first is None:
                candidates, xc = None, x
            else:
                order, values = sorted_first
                lo = torch.searchsorted(values, self.c[0] - half[0], right=True)
                hi = torch.searchsorted(values, self.c[0] + half[0], right=False)
                candidates = order[int(lo) : max(int(hi), int(lo))]
                xc = x[candidates]
            inside = ((xc - self.c).abs() < half).all(dim=1)
            rows = torch.nonzero(inside, as_tuple=False).reshape(-1)
            return rows if candidates is None else candidates[rows]

    def _values(self, x):
        # The fast module's autograd function with one bump: it saves φ and x only.
        phi = _SumOfBumpsFunction.apply(x, self.c[None], self.w[None], None)
        out = phi * self.m
        return out if self._multi_output else out[:, 0]

    def forward(self, x, small_output=False):
        """Evaluate the bump.

        Parameters
        ----------
        x : tensor of shape (n, n_dims)
        small_output : bool, default=False
            Return ``(idx, values)`` for the rows inside the support only.

        Returns
        -------
        tensor of shape (n,) or (n, n_outputs), or a tuple ``(idx, values)``
        """
        x = self._check_x(x)
        rows = self._support_rows(x)
        if small_output:
            if rows is None:
                rows = torch.arange(x.shape[0], device=x.device)
            return rows, self._values(x[rows])
        if rows is None:
            return self._values(x)
        shape = (x.shape[0], self.n_outputs) if self._multi_output else (x.shape[0],)
        out = x.new_zeros(shape)
        return out.index_put((rows,), self._values(x[rows]))


class _SumOfBumpsFunction(torch.autograd.Function):
    """Bump activations ``φ (n, B)`` that save φ, not the (n, B, D) differences.

    The backward pass recomputes the differences one dimension at a time, so memory stays
    proportional to n·B.
    """

    @staticmethod
    def forward(ctx, x, c, w, kappa):
        exponent = x.new_zeros(x.shape[0], c.shape[0])
        inside = None
        for d in range(c.shape[1]):
            diff = x[:, d : d + 1] - c[:, d]
            exponent += (diff / w[:, d]) ** 2
            if kappa is not None:
                ok = diff.abs() < kappa * w[:, d].abs()
                inside = ok if inside is None else inside & ok
        phi = torch.exp(-exponent)
        if inside is not None:
            phi = phi * inside
        ctx.save_for_backward(x, c, w, phi)
        return phi

    @staticmethod
    def backward(ctx, grad_phi):
        x, c, w, phi = ctx.saved_tensors
        weighted = grad_phi * phi
        grad_x = torch.empty_like(x) if ctx.needs_input_grad[0] else None
        grad_c = torch.empty_like(c)
        grad_w = torch.empty_like(w)
        for d in range(c.shape[1]):
            diff = x[:, d : d + 1] - c[:, d]
            w_d = w[:, d]
            term = weighted * diff  # (n, B)
            grad_c[:, d] = 2.0 * term.sum(0) / w_d**2
            grad_w[:, d] = 2.0 * (term * diff).sum(0) / w_d**3
            if grad_x is not None:
                grad_x[:, d] = -2.0 * (term / w_d**2).sum(1)
        return grad_x, grad_c, grad_w, None


class SumOfBumpFcns(_BumpBase):
    """Sum of ``n_bumps`` Gaussian bumps, vectorised over bumps.

    Parameters
    ----------
    c, w : array-like of shape (n_bumps, n_dims)
        Centers and (positive) widths.
    m : array-like of shape (n_bumps,) or (n_bumps, n_outputs)
        Magnitudes; output ``(n,)`` or ``(n, n_outputs)``.
    c_bounds, w_bounds, c_grad_std, w_grad_std, m_grad_gain, support_p
        As in :class:`BumpFcn`.

    Notes
    -----
    Differences ``x_d - c_bd`` are formed directly (never via ``x² - 2xc + c²``, which
    cancels in float32), and the backward pass recomputes them instead of saving an
    ``(n, B, D)`` tensor.

    Examples
    --------
    >>> import torch
    >>> from skneuro.bumps import SumOfBumpFcns
    >>> f = SumOfBumpFcns(c=[[0.0, 0.0], [1.0, 0.0]], w=[[1.0, 2.0], [1.0, 1.0]], m=[2.0, -1.0])
    >>> round(f(torch.tensor([[1.0, 2.0]])).item(), 6)
    0.252355
    """

    def __init__(
        self, c, w, m, c_bounds=None, w_bounds=None, c_grad_std=0.0, w_grad_std=0.0, m_grad_gain=0.0, support_p=None
    ):
        super().__init__()
        self._register(
            *self._setup(c, w, m, c_bounds, w_bounds, c_grad_std, w_grad_std, m_grad_gain, support_p, single=False)
        )

    @property
    def n_bumps(self) -> int:
        return int(self.c.shape[0])

    def bump_activations(self, x) -> torch.Tensor:
        """Activations ``φ_b(x)`` of every bump, without magnitudes, shape (n, n_bumps)."""
        x = self._check_x(x)
        return _SumOfBumpsFunction.apply(x, self.c, self.w, self.kappa)

    def forward(self, x) -> torch.Tensor:
        """Evaluate ``Σ_b m_b φ_b(x)``, shape (n,) or (n, n_outputs)."""
        return self.bump_activations(x) @ self.m

    def to_slow(self) -> SlowSumOfBumpFcns:
        """An equivalent :class:`SlowSumOfBumpFcns` (copied parameters and settings)."""
        return SlowSumOfBumpFcns(**_settings(self)).to(self.c.device)


class SlowSumOfBumpFcns(_BumpBase):
    """Memory-lean sum of bumps: a list of :class:`BumpFcn`, each evaluated on its support.

    Same arguments, function and gradients as :class:`SumOfBumpFcns` (to float
    tolerance); memory grows with the number of (row, bump) pairs inside the supports
    instead of n·B, paid for by a Python loop over bumps. Its :meth:`pert_grads` draws
    the same ``(n_bumps, n_dims)`` noise as the fast module and hands row b to bump b.

    Examples
    --------
    >>> import torch
    >>> from skneuro.bumps import SlowSumOfBumpFcns
    >>> f = SlowSumOfBumpFcns(c=[[0.0, 0.0], [1.0, 0.0]], w=[[1.0, 2.0], [1.0, 1.0]], m=[2.0, -1.0])
    >>> round(f(torch.tensor([[1.0, 2.0]])).item(), 6)
    0.252355
    """

    def __init__(
        self, c, w, m, c_bounds=None, w_bounds=None, c_grad_std=0.0, w_grad_std=0.0, m_grad_gain=0.0, support_p=None
    ):
        super().__init__()
        c, w, m = self._setup(c, w, m, c_bounds, w_bounds, c_grad_std, w_grad_std, m_grad_gain, support_p, single=False)
        self.bump_fcns = nn.ModuleList(
            BumpFcn(
                c[b],
                w[b],
                m[b],
                c_bounds=self.c_bounds,
                w_bounds=self.w_bounds,
                c_grad_std=self.c_grad_std,
                w_grad_std=self.w_grad_std,
                m_grad_gain=self.m_grad_gain,
                support_p=self.support_p,
            )
            for b in range(c.shape[0])
        )
        for bump in self.bump_fcns:
            bump._multi_output = self._multi_output

    @property
    def c(self):
        return torch.stack([b.c for b in self.bump_fcns])

    @property
    def w(self):
        return torch.stack([b.w for b in self.bump_fcns])

    @property
    def m(self):
        ms = torch.stack([b.m for b in self.bump_fcns])
        return ms if self._multi_output else ms[:, 0]

    @property
    def n_bumps(self) -> int:
        return len(self.bump_fcns)

    def _sync_settings(self):
        for bump in self.bump_fcns:
            bump.support_p = self.support_p
            bump.c_grad_std, bump.w_grad_std, bump.m_grad_gain = self.c_grad_std, self.w_grad_std, self.m_grad_gain

    def bound(self) -> None:
        for bump in self.bump_fcns:
            bump.c_bounds, bump.w_bounds = self.c_bounds, self.w_bounds
            bump.bound()

    def pert_grads(self, generator: torch.Generator) -> None:
        self._sync_settings()
        first = self.bump_fcns[0].c
        shape = (self.n_bumps, self.n_dims)
        c_noise = _noise(shape, generator, first) if self.c_grad_std > 0 else None
        w_noise = _noise(shape, generator, first) if self.w_grad_std > 0 else None
        for b, bump in enumerate(self.bump_fcns):
            bump._perturb(None if c_noise is None else c_noise[b], None if w_noise is None else w_noise[b])

    def bump_activations(self, x) -> torch.Tensor:
        """Activations ``φ_b(x)`` (n, n_bumps), computed bump by bump on each support."""
        x = self._check_x(x)
        self._sync_settings()
        columns = []
        for bump in self.bump_fcns:
            rows = bump._support_rows(x)
            xr = x if rows is None else x[rows]
            phi_rows = torch.exp(-(((xr - bump.c) / bump.w) ** 2).sum(dim=1))
            if rows is None:
                columns.append(phi_rows)
            else:
                columns.append(x.new_zeros(x.shape[0]).index_put((rows,), phi_rows))
        return torch.stack(columns, dim=1) if columns else x.new_zeros(x.shape[0], 0)

    def forward(self, x) -> torch.Tensor:
        """Evaluate ``Σ_b m_b φ_b(x)`` bump by bump, shape (n,) or (n, n_outputs)."""
        x = self._check_x(x)
        self._sync_settings()
        shape = (x.shape[0], self.n_outputs) if self._multi_output else (x.shape[0],)
        sorted_first = None
        if self.support_p is not None and x.shape[0] > 0:
            values, order = torch.sort(x[:, 0])
            sorted_first = (order, values)
        parts = []
        for bump in self.bump_fcns:
            rows = bump._support_rows(x, sorted_first)
            # An empty support still enters the graph, so the output always has a gradient.
            parts.append((rows, bump._values(x if rows is None else x[rows])))
        out = x.new_zeros(shape)
        for rows, values in parts:
            if rows is None:
                out = out + values
            else:
                out.index_add_(0, rows, values)
        return out

    def to_fast(self) -> SumOfBumpFcns:
        """An equivalent :class:`SumOfBumpFcns` (copied parameters and settings)."""
        return SumOfBumpFcns(**_settings(self)).to(self.bump_fcns[0].c.device)


def _settings(module):
    return {
        "c": module.c.detach().clone(),
        "w": module.w.detach().clone(),
        "m": module.m.detach().clone(),
        "c_bounds": module.c_bounds,
        "w_bounds": module.w_bounds,
        "c_grad_std": module.c_grad_std,
        "w_grad_std": module.w_grad_std,
        "m_grad_gain": module.m_grad_gain,
        "support_p": module.support_p,
    }


class BumpSumWithIntercept(nn.Module):
    """A bump module plus an intercept: ``β + Σ_b m_b φ_b(x)``.

    Parameters
    ----------
    bumps : SumOfBumpFcns or SlowSumOfBumpFcns
    intercept : array-like of shape (n_outputs,)
    fit_intercept : bool, default=True
        When False the intercept is a fixed buffer.

    Examples
    --------
    >>> import torch
    >>> from skneuro.bumps import SumOfBumpFcns
    >>> from skneuro.bumps._modules import BumpSumWithIntercept
    >>> f = BumpSumWithIntercept(SumOfBumpFcns([[0.0]], [[1.0]], [2.0]), [0.5])
    >>> f(torch.tensor([[0.0]])).item()
    2.5
    """

    def __init__(self, bumps, intercept, fit_intercept=True):
        super().__init__()
        self.bumps = bumps
        beta = torch.as_tensor(intercept, dtype=bumps.c.dtype, device=bumps.c.device).reshape(-1).clone()
        if fit_intercept:
            self.intercept = nn.Parameter(beta)
        else:
            self.register_buffer("intercept", beta)

    def forward(self, x):
        out = self.bumps(x)
        return out + (self.intercept if out.ndim == 2 else self.intercept[0])

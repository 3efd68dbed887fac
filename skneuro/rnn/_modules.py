r"""The leaky rate RNN shared by the single- and multi-region estimators.

Shapes: inputs ``u (B, T, n_in)``; states ``x (B, T, n_rec)``; outputs ``y (B, T, n_out)``.
With α = dt/τ and f the activation,

.. math::

    x_{t+1} = (1-α) x_t + α (W_{rec} f(x_t) + W_{in} u_t + b_{rec}) + \sqrt{2ασ_{rec}^2}\, ξ_t,
    \qquad y_t = W_{out} f(x_{t+1}) + b_{out},

from ``x_0 = init_state`` in every trial; step t returns the state *after* input t entered.
Effective weights apply connectivity masks and, where sign vectors are given, Dale's law:
``W = |V ⊙ M| diag(s)`` (a NaN sign leaves that source column unconstrained, ``V ⊙ M``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["ACTIVATIONS", "LeakyRNN"]

ACTIVATIONS = ("relu", "tanh", "sigmoid", "softplus", "linear")


def _activate(name, x):
    if name == "relu":
        return torch.relu(x)
    if name == "tanh":
        return torch.tanh(x)
    if name == "sigmoid":
        return torch.sigmoid(x)
    if name == "softplus":
        return nn.functional.softplus(x)
    return x


def _slope(name, x, fx):
    """f'(x), given x and f(x)."""
    if name == "relu":
        return (x > 0).to(x.dtype)
    if name == "tanh":
        return 1.0 - fx**2
    if name == "sigmoid":
        return fx * (1.0 - fx)
    if name == "softplus":
        return torch.sigmoid(x)
    return torch.ones_like(x)


class _LeakyRecurrence(torch.autograd.Function):
    """``x_{t+1} = (1-α) x_t + D_t + f(x_t) Aᵀ`` over all steps, with hand-written BPTT.

    ``D (B, T, n)`` holds everything that does not depend on the state (inputs, bias,
    noise) and ``A = α W_rec`` (already masked and signed). Returns the states
    ``x_1 … x_T`` (B, T, n). The backward pass runs the adjoint recursion once and forms
    the weight gradient with one matrix product over all steps.
    """

    @staticmethod
    def forward(ctx, D, x0, A, leak, activation):
        B, T, n = D.shape
        states = D.new_empty(B, T, n)
        x = x0.expand(B, n)
        At = A.T
        for t in range(T):
            x = torch.addmm(D[:, t] + leak * x, _activate(activation, x), At)
            states[:, t] = x
        ctx.save_for_backward(x0, A, states)
        ctx.leak, ctx.activation = leak, activation
        return states

    @staticmethod
    def backward(ctx, grad_states):
        x0, A, states = ctx.saved_tensors
        leak, activation = ctx.leak, ctx.activation
        B, T, n = states.shape
        x0b = x0.expand(B, n)
        prev = torch.cat([x0b[:, None], states[:, :-1]], dim=1)  # x_0 … x_{T-1}
        rates_prev = _activate(activation, prev)
        slopes_prev = _slope(activation, prev, rates_prev)
        grad_D = torch.empty_like(grad_states)
        g = grad_states[:, T - 1]
        for t in range(T - 1, -1, -1):
            grad_D[:, t] = g  # ∂x_{t+1}/∂D_t = I
            back = leak * g + (g @ A) * slopes_prev[:, t]  # ∂L/∂x_t through x_{t+1}
            g = back + grad_states[:, t - 1] if t > 0 else back
        grad_A = grad_D.reshape(B * T, n).T @ rates_prev.reshape(B * T, n)
        grad_x0 = g.sum(0) if x0.dim() == 1 else g
        return grad_D, grad_x0, grad_A, None, None


class LeakyRNN(nn.Module):
    """Continuous-time leaky rate network with masks, Dale's law and recurrent noise.

    Parameters
    ----------
    n_in, n_rec, n_out : int
        Inputs, recurrent units and outputs (``n_out`` may be 0).
    dt, tau : float, default=10.0, 100.0
        Time step and time constant; α = dt/τ must lie in (0, 1].
    activation : {"relu", "tanh", "sigmoid", "softplus", "linear"}, default="relu"
    rec_noise, input_noise : float, default=0.0
        Standard deviations σ_rec, σ_in of the noise (used when ``forward(noise=True)``).
    input_mask, rec_mask, output_mask : array-like or None
        Non-negative connectivity masks (n_rec, n_in), (n_rec, n_rec), (n_out, n_rec).
    input_signs, rec_signs, output_signs : array-like or None
        Signs per source unit (+1, -1, 0, or NaN for unconstrained); None: no sign constraint.
    train_init_state : bool, default=False
        Whether ``init_state`` is trained.
    weights : dict or None, default=None
        Starting values of the parameters by name (any of ``W_in``, ``W_rec``, ``W_out``,
        ``b_rec``, ``b_out``, ``init_state``, ``bias_trainable``), passed to
        :meth:`reset_parameters`.
    generator : torch.Generator or None, default=None
        Draws the default weights of :meth:`reset_parameters` (a local generator seeded 0
        when None: the global torch RNG is never used).

    Attributes
    ----------
    W_in, W_rec, W_out : Parameter
        Raw weights V (effective weights come from :meth:`effective_weights`).
    b_rec, b_out, init_state : Parameter
    bias_trainable : buffer (n_rec,)
        0/1 gate on the gradient of ``b_rec`` (multi-region networks fix some biases).

    Examples
    --------
    >>> import torch
    >>> from skneuro.rnn import LeakyRNN
    >>> weights = {"W_rec": [[0.0, 1.0], [1.0, 0.0]], "W_in": [[1.0], [0.0]], "W_out": [[1.0, -1.0]],
    ...            "b_rec": [0.0, 0.0], "b_out": [0.5], "init_state": [1.0, 2.0]}
    >>> net = LeakyRNN(1, 2, 1, dt=10, tau=100, weights=weights)
    >>> with torch.no_grad():
    ...     y, x, r = net(torch.ones(1, 1, 1))
    >>> [round(v, 6) for v in x[0, 0].tolist()], round(y.item(), 6)
    ([1.2, 1.9], -0.2)
    """

    def __init__(
        self,
        n_in,
        n_rec,
        n_out,
        *,
        dt=10.0,
        tau=100.0,
        activation="relu",
        rec_noise=0.0,
        input_noise=0.0,
        input_mask=None,
        rec_mask=None,
        output_mask=None,
        input_signs=None,
        rec_signs=None,
        output_signs=None,
        train_init_state=False,
        weights=None,
        generator=None,
        dtype=None,
        device=None,
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}; got {activation!r}.")
        if not (dt > 0 and tau > 0 and 0 < dt / tau <= 1):
            raise ValueError(f"dt/tau must lie in (0, 1] with dt, tau > 0; got dt={dt!r}, tau={tau!r}.")
        for name, value in (("rec_noise", rec_noise), ("input_noise", input_noise)):
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a non-negative number; got {value!r}.")
        kw = {"dtype": dtype, "device": device}
        self.n_in, self.n_rec, self.n_out = int(n_in), int(n_rec), int(n_out)
        self.dt, self.tau, self.activation = float(dt), float(tau), activation
        self.rec_noise, self.input_noise = float(rec_noise), float(input_noise)
        self.W_in = nn.Parameter(torch.empty(self.n_rec, self.n_in, **kw))
        self.W_rec = nn.Parameter(torch.empty(self.n_rec, self.n_rec, **kw))
        self.W_out = nn.Parameter(torch.empty(self.n_out, self.n_rec, **kw))
        self.b_rec = nn.Parameter(torch.empty(self.n_rec, **kw))
        self.b_out = nn.Parameter(torch.empty(self.n_out, **kw))
        self.init_state = nn.Parameter(torch.empty(self.n_rec, **kw), requires_grad=bool(train_init_state))
        shapes = {"input": (self.n_rec, self.n_in), "rec": (self.n_rec, self.n_rec), "output": (self.n_out, self.n_rec)}
        for kind, mask in (("input", input_mask), ("rec", rec_mask), ("output", output_mask)):
            self.register_buffer(f"{kind}_mask", self._mask(kind, mask, shapes[kind], kw))
        for kind, signs, size in (
            ("input", input_signs, self.n_in),
            ("rec", rec_signs, self.n_rec),
            ("output", output_signs, self.n_rec),
        ):
            self.register_buffer(f"{kind}_signs", self._signs(kind, signs, size, kw))
        self.register_buffer("bias_trainable", torch.ones(self.n_rec, **kw))
        self.reset_parameters(weights, generator)

    def reset_parameters(self, weights=None, generator=None) -> None:
        """Fill the parameters: from ``weights`` where given, else with the defaults.

        Defaults (as ``torch.nn.RNN``): weights uniform on ``±1/√fan_in`` (``fan_in`` =
        n_in for ``W_in``, n_rec for ``W_rec`` and ``W_out``), drawn from ``generator``
        (a local generator seeded 0 when None); biases, ``init_state`` zero and every
        ``bias_trainable`` gate 1. The estimators pass the arrays of their initializers
        (spectral-radius or alpha-identity draws, Dale's law) as ``weights``.

        Parameters
        ----------
        weights : dict of array-like or None
            Values by parameter (or ``bias_trainable``) name; each reshaped to the
            parameter's shape (so a column vector of length n fills a vector of length n).
        generator : torch.Generator or None

        Examples
        --------
        >>> import torch
        >>> from skneuro.rnn import LeakyRNN
        >>> net = LeakyRNN(1, 3, 1, weights={"b_out": [0.5]})
        >>> net.b_out.tolist(), bool((net.W_rec.abs() <= 3 ** -0.5).all())
        ([0.5], True)
        """
        weights = {} if weights is None else dict(weights)
        unknown = set(weights) - {"W_in", "W_rec", "W_out", "b_rec", "b_out", "init_state", "bias_trainable"}
        if unknown:
            raise ValueError(f"weights has unknown names {sorted(unknown)}.")
        generator = torch.Generator().manual_seed(0) if generator is None else generator
        fan_in = {"W_in": self.n_in, "W_rec": self.n_rec, "W_out": self.n_rec}
        with torch.no_grad():
            for name in ("W_in", "W_rec", "W_out", "b_rec", "b_out", "init_state", "bias_trainable"):
                tensor = getattr(self, name)
                if name in weights:
                    value = torch.as_tensor(weights[name], dtype=tensor.dtype)
                    if value.numel() != tensor.numel():
                        raise ValueError(
                            f"weights[{name!r}] must have {tuple(tensor.shape)} entries; got {tuple(value.shape)}."
                        )
                    tensor.copy_(value.reshape(tensor.shape))
                elif name in fan_in:
                    bound = 1.0 / math.sqrt(max(fan_in[name], 1))
                    draw = torch.rand(tensor.shape, generator=generator, dtype=torch.float64) * 2 - 1
                    tensor.copy_(draw * bound)
                else:
                    tensor.fill_(1.0 if name == "bias_trainable" else 0.0)

    @staticmethod
    def _mask(kind, mask, shape, kw):
        if mask is None:
            return torch.ones(shape, **kw)
        m = torch.as_tensor(mask, **kw).clone()
        if tuple(m.shape) != shape:
            raise ValueError(f"{kind}_mask must have shape {shape}; got {tuple(m.shape)}.")
        if not bool(torch.isfinite(m).all()) or bool((m < 0).any()):
            raise ValueError(f"{kind}_mask must be finite and non-negative.")
        return m

    @staticmethod
    def _signs(kind, signs, size, kw):
        if signs is None:
            return None
        s = torch.as_tensor(signs, **kw).clone().reshape(-1)
        if s.shape[0] != size:
            raise ValueError(f"{kind}_signs must have {size} entries; got {s.shape[0]}.")
        finite = s[~torch.isnan(s)]
        if bool((~torch.isin(finite, torch.tensor([-1.0, 0.0, 1.0], dtype=s.dtype, device=s.device))).any()):
            raise ValueError(f"{kind}_signs entries must be +1, -1, 0 or NaN.")
        return s

    @property
    def alpha(self) -> float:
        return self.dt / self.tau

    @staticmethod
    def _effective(V, M, signs):
        W = V * M
        if signs is None:
            return W
        constrained = ~torch.isnan(signs)
        return torch.where(constrained, W.abs() * torch.nan_to_num(signs), W)

    def gated_bias(self):
        """``b_rec`` with gradient only where ``bias_trainable`` is 1 (same values).

        ``g ⊙ b + (1 − g) ⊙ b.detach()``: part of the graph, so the gate survives pickling
        and copying (a tensor hook would not).
        """
        g = self.bias_trainable
        if bool((g == 1).all()):
            return self.b_rec
        return g * self.b_rec + (1 - g) * self.b_rec.detach()

    def effective_weights(self):
        """``(W_in, W_rec, W_out)`` after masks and signs."""
        return (
            self._effective(self.W_in, self.input_mask, self.input_signs),
            self._effective(self.W_rec, self.rec_mask, self.rec_signs),
            self._effective(self.W_out, self.output_mask, self.output_signs),
        )

    def step(self, x, u):
        """One noise-free update of states ``x (B, n_rec)`` with inputs ``u (B, n_in)``."""
        W_in, W_rec, _ = self.effective_weights()
        a = self.alpha
        return (1 - a) * x + a * (_activate(self.activation, x) @ W_rec.T + u @ W_in.T + self.gated_bias())

    def _noise(self, shape, generator, like):
        z = torch.randn(
            shape, generator=generator, dtype=torch.float32 if like.dtype == torch.float32 else torch.float64
        )
        return z.to(device=like.device, dtype=like.dtype)

    def forward(self, u, x0=None, *, noise=False, generator=None, rec_multiplier=None, stim=None):
        """Run the network.

        Parameters
        ----------
        u : tensor (B, T, n_in)
        x0 : tensor (n_rec,) or (B, n_rec), optional
            Initial state; default ``init_state``.
        noise : bool, default=False
            Add recurrent (and input) noise drawn from ``generator`` (a CPU generator).
        rec_multiplier : tensor (n_rec, n_rec) or (T, n_rec, n_rec), optional
            Entrywise factor on the effective W_rec (constant or per step).
        stim : tensor (B, T, n_rec), optional
            Added to the state update as ``α · stim_t``.

        Returns
        -------
        y : tensor (B, T, n_out)
        x : tensor (B, T, n_rec)
            States after each step, ``x_1 … x_T``.
        r : tensor (B, T, n_rec)
            Rates ``f(x_1) … f(x_T)``.
        """
        if u.dim() != 3 or u.shape[2] != self.n_in:
            raise ValueError(f"u must have shape (n_trials, n_steps, {self.n_in}); got {tuple(u.shape)}.")
        u = u.to(dtype=self.W_rec.dtype, device=self.W_rec.device)
        B, T, _ = u.shape
        a = self.alpha
        W_in, W_rec, W_out = self.effective_weights()
        D = a * (u @ W_in.T + self.gated_bias())
        if noise and self.input_noise > 0:
            D = D + ((math.sqrt(2 * a) * self.input_noise) * self._noise((B, T, self.n_in), generator, u)) @ W_in.T
        if noise and self.rec_noise > 0:
            D = D + (math.sqrt(2 * a) * self.rec_noise) * self._noise((B, T, self.n_rec), generator, u)
        if stim is not None:
            D = D + a * stim.to(D)
        x0 = self.init_state if x0 is None else x0.to(D)
        if rec_multiplier is not None and rec_multiplier.dim() == 3:
            states = self._loop(D, x0, W_rec, rec_multiplier.to(D))
        else:
            A = a * (W_rec if rec_multiplier is None else W_rec * rec_multiplier.to(W_rec))
            states = _LeakyRecurrence.apply(D, x0, A, 1.0 - a, self.activation)
        rates = _activate(self.activation, states)
        y = rates @ W_out.T + self.b_out
        return y, states, rates

    def _loop(self, D, x0, W_rec, multiplier):
        """Autograd loop for a per-step recurrent multiplier (T, n_rec, n_rec)."""
        a = self.alpha
        x = x0.expand(D.shape[0], self.n_rec)
        out = []
        for t in range(D.shape[1]):
            x = (1 - a) * x + D[:, t] + _activate(self.activation, x) @ (a * W_rec * multiplier[t]).T
            out.append(x)
        return torch.stack(out, dim=1)

    def extra_repr(self) -> str:
        return (
            f"n_in={self.n_in}, n_rec={self.n_rec}, n_out={self.n_out}, alpha={self.alpha:g}, "
            f"activation={self.activation!r}"
        )

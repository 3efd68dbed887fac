"""What the single- and multi-region rate RNN estimators share: trial checks, training, prediction.

A subclass builds its :class:`~skneuro.rnn.LeakyRNN` in ``_build_module``; everything else
(the masked loss, penalties, the engine call, prediction, scoring, fitted attributes) lives
here once.
"""

from __future__ import annotations

from numbers import Real
from typing import NamedTuple

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._engine import InitialObjectiveNotFinite, TorchEstimatorMixin, fit_module, make_generators
from .._engine.base import early_stopping_constraints, engine_parameter_constraints, to_numpy
from .._persist import SaveLoadMixin
from ..utils._validation import check_numeric, check_range
from ._modules import ACTIVATIONS

__all__ = ["Simulation"]

TRAINABLE = ("W_in", "W_rec", "W_out", "b_rec", "b_out")


class Simulation(NamedTuple):
    """Outputs ``(n_trials, n_steps, n_outputs)``, states and rates ``(n_trials, n_steps, n_rec)``.

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.rnn import Simulation
    >>> sim = Simulation(np.zeros((1, 3, 2)), np.zeros((1, 3, 4)), np.zeros((1, 3, 4)))
    >>> sim.outputs.shape, sim.rates.shape
    ((1, 3, 2), (1, 3, 4))
    """

    outputs: np.ndarray
    states: np.ndarray
    rates: np.ndarray


def check_trials(name, value, n_last=None, ndim=3, *, min_last=0):
    """``value`` as a finite float64 array of trials (n_trials, n_steps, ...)."""
    arr = check_numeric(name, value)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array (n_trials, n_steps, ...); got shape {arr.shape}.")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one trial and one step; got shape {arr.shape}.")
    if arr.shape[2] < min_last:
        raise ValueError(f"{name} must have at least {min_last} feature(s) in its last axis; got shape {arr.shape}.")
    if n_last is not None and arr.shape[2] != n_last:
        raise ValueError(f"{name} has {arr.shape[2]} features in its last axis; expected {n_last}.")
    return arr.astype(np.float64, copy=False)


def check_mask(sample_weight, y):
    """The output mask as an array shaped like ``y`` (None: ones)."""
    if sample_weight is None:
        return np.ones_like(y)
    try:
        raw = np.asarray(sample_weight)
        if np.iscomplexobj(raw):
            raise TypeError("complex values")
        mask = raw.astype(np.float64)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"sample_weight (the output mask) must be a real numeric array: {exc}") from exc
    if mask.shape == y.shape[:2]:
        mask = np.repeat(mask[:, :, None], y.shape[2], axis=2)
    if mask.shape != y.shape:
        raise ValueError(
            f"sample_weight (the output mask) must have shape {y.shape} or {y.shape[:2]}; "
            f"got {np.shape(sample_weight)}."
        )
    if not np.isfinite(mask).all() or (mask < 0).any():
        raise ValueError("sample_weight (the output mask) must be finite and non-negative.")
    if not mask.any():
        raise ValueError("sample_weight (the output mask) must not be all zero.")
    return mask


def initial_output_bias(module, y, mask):
    """Start value of ``b_out`` per output: the masked target mean, or the smallest kept target.

    The mean ``Σ m y / Σ m`` is the best constant output. A readout whose weights are all
    non-negative (Dale's law: only excitatory units feed the outputs) adds non-negative
    rates to ``b_out``, so the outputs start above it and can reach a target below it only
    as fast as the optimiser moves ``b_out`` (about one learning rate per update); there
    the smallest target on a kept step is the start from which every target is reachable.
    An output the mask leaves out starts at 0.
    """
    kept = mask > 0
    counts = kept.sum((0, 1))
    signs = module.output_signs
    if signs is not None and bool((signs >= 0).all()):
        values = np.where(kept, y, np.inf).min((0, 1))
    else:
        values = np.einsum("tso,tso->o", mask, y) / np.where(counts > 0, mask.sum((0, 1)), 1.0)
    return np.where(counts > 0, values, 0.0)


def rate_rnn_constraints():
    """Parameter constraints shared by the rate RNN estimators."""
    return {
        "dt": [Interval(Real, 0, None, closed="neither")],
        "tau": [Interval(Real, 0, None, closed="neither")],
        "rec_noise": [Interval(Real, 0, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "train_init_state": ["boolean"],
        "output_bias_init": [StrOptions({"targets", "zero"})],
        "fixed_params": [tuple, list],
        **{f"{k}_{w}": [Interval(Real, 0, None, closed="left")] for k in ("l1", "l2") for w in ("in", "rec", "out")},
        "l2_firing_rate": [Interval(Real, 0, None, closed="left")],
        "clip_grad_norm": [None, Interval(Real, 0, None, closed="neither")],
        "solver": [StrOptions({"adam", "lbfgs"})],
        **engine_parameter_constraints(),
        **early_stopping_constraints(),
    }


class RateRNNBase(TorchEstimatorMixin, SaveLoadMixin, RegressorMixin, BaseEstimator):
    """Training and prediction of a :class:`LeakyRNN` on trials; subclasses build the module."""

    def _build_module(self, n_in, n_out, numpy_gen, dtype, device):  # pragma: no cover - abstract
        """``(module, extra)``: a new :class:`LeakyRNN` and whatever ``_store_weights`` needs of its build."""
        raise NotImplementedError

    def _check_build_params(self):
        """Subclass hook: validate parameters that need more than their constraints."""

    def _given_output_bias(self):
        """Whether the initial ``b_out`` is the user's own (then ``output_bias_init`` leaves it)."""
        return False

    def _overflow_hint(self):
        """What to lower when the initial network overflows (names the parameters)."""
        return "lower spectral_radius or rescale X and y (or use dtype='float64')."

    # ----------------------------------------------------------------- fitting
    def _penalty(self, module):
        W = dict(zip(("in", "rec", "out"), module.effective_weights()))
        total = module.W_rec.new_zeros(())
        for kind, weights in W.items():
            l1, l2 = getattr(self, f"l1_{kind}"), getattr(self, f"l2_{kind}")
            if l1 and weights.numel():
                total = total + l1 * weights.abs().sum()
            if l2 and weights.numel():
                total = total + l2 * (weights**2).sum()
        return total

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Train on trials.

        Parameters
        ----------
        X : array-like of shape (n_trials, n_steps, n_inputs)
        y : array-like of shape (n_trials, n_steps, n_outputs)
        sample_weight : array-like of shape (n_trials, n_steps, n_outputs) or (n_trials, n_steps)
            The output mask: which time points (and outputs) count, and how much.

        Returns
        -------
        self : object
        """
        unknown = [name for name in self.fixed_params if name not in TRAINABLE]
        if unknown:
            raise ValueError(f"fixed_params entries must be among {TRAINABLE}; got {unknown}.")
        if not 0 < self.dt / self.tau <= 1:
            raise ValueError(f"dt/tau must lie in (0, 1]; got dt={self.dt}, tau={self.tau}.")
        self._check_build_params()
        warm = self.warm_start and hasattr(self, "module_")
        X = check_trials("X", X, self.n_features_in_ if warm else None)
        y = check_trials("y", y, min_last=1)
        check_range("X", X, self.dtype)
        check_range("y", y, self.dtype)
        if y.shape[:2] != X.shape[:2]:
            raise ValueError(f"X and y must have the same n_trials and n_steps; got {X.shape[:2]} and {y.shape[:2]}.")
        mask = check_mask(sample_weight, y)
        check_range("sample_weight", mask, self.dtype)
        device, dtype = self._resolve_device_dtype()
        train, held_out = self._validation_split(X.shape[0], "trials")
        validation = None
        if held_out is not None:
            validation = tuple(torch.tensor(a[held_out], dtype=dtype) for a in (X, y, mask))
            X, y, mask = X[train], y[train], mask[train]
        torch_gen, numpy_gen = make_generators(self.random_state)
        if warm:
            module, built = self.module_.to(device=device, dtype=dtype), None
        else:
            module, built = self._build_module(X.shape[2], y.shape[2], numpy_gen, dtype, device)
            if self.output_bias_init == "targets" and not self._given_output_bias():
                with torch.no_grad():
                    module.b_out.copy_(torch.as_tensor(initial_output_bias(module, y, mask)))
        trained = [p for name, p in module.named_parameters() if p.requires_grad and name not in self.fixed_params]
        n_steps, n_out, n_rec = X.shape[1], y.shape[2], module.n_rec
        noisy = module.rec_noise > 0 or module.input_noise > 0

        def loss(m, xb, yb, mb):
            out, _, rates = m(xb, noise=noisy, generator=torch_gen)
            total = (mb * (out - yb) ** 2).sum() / (n_steps * n_out)
            if self.l2_firing_rate:
                total = total + self.l2_firing_rate * (rates**2).sum() / (n_steps * n_rec)
            return total

        def validation_loss(m, xb, yb, mb):
            out, _, _ = m(xb, noise=False)  # the masked error of the noise-free network, no penalty
            return (mb * (out - yb) ** 2).sum() / (n_steps * n_out)

        data = tuple(torch.tensor(a, dtype=dtype) for a in (X, y, mask))
        try:
            result = fit_module(
                module,
                loss,
                data,
                penalty=self._penalty,
                params=trained,
                generator=torch_gen,
                clip_grad_norm=self.clip_grad_norm,
                validation_data=validation,
                validation_loss=validation_loss,
                **self._engine_options(),
            )
        except InitialObjectiveNotFinite as exc:
            raise InitialObjectiveNotFinite(
                f"{exc} The initial network's activity or loss overflows {self.dtype}: {self._overflow_hint()}"
            ) from exc
        self.module_, self.device_, self.n_features_in_ = module, device, X.shape[2]
        self.loss_curve_, self.n_iter_, self.n_updates_ = result.loss_curve, result.n_iter, result.n_updates
        self._store_validation(result)
        self._store_weights(built)
        return self

    def _store_weights(self, built=None):
        """Fitted attributes from ``module_``; ``built`` is what ``_build_module`` returned besides it."""
        m = self.module_
        self.W_in_, self.W_rec_, self.W_out_ = (to_numpy(w) for w in m.effective_weights())
        self.b_rec_, self.b_out_, self.init_state_ = to_numpy(m.b_rec), to_numpy(m.b_out), to_numpy(m.init_state)
        signs = np.ones(m.n_rec) if m.rec_signs is None else np.nan_to_num(to_numpy(m.rec_signs), nan=0.0)
        self.dale_signs_ = signs.astype(int)

    # -------------------------------------------------------------- prediction
    def _run(self, X, *, noise=False, generator=None, rec_multiplier=None):
        check_is_fitted(self)
        X = check_trials("X", X, self.n_features_in_)
        check_range("X", X, str(self.module_.W_rec.dtype).removeprefix("torch."))
        param = self.module_.W_rec
        u = torch.as_tensor(X, dtype=param.dtype, device=param.device)
        if rec_multiplier is not None:
            rec_multiplier = torch.as_tensor(
                np.asarray(rec_multiplier, dtype=np.float64), dtype=param.dtype, device=param.device
            )
        with torch.no_grad():
            y, x, r = self.module_(u, noise=noise, generator=generator, rec_multiplier=rec_multiplier)
        return tuple(t.cpu().double().numpy() for t in (y, x, r))

    def predict(self, X):
        """Noise-free outputs, shape (n_trials, n_steps, n_outputs), float64.

        Parameters
        ----------
        X : array-like of shape (n_trials, n_steps, n_inputs)

        Returns
        -------
        ndarray of shape (n_trials, n_steps, n_outputs)
        """
        return self._run(X)[0]

    def predict_states(self, X):
        """Noise-free rates ``f(x_1) … f(x_T)``, shape (n_trials, n_steps, n_rec), float64.

        Parameters
        ----------
        X : array-like of shape (n_trials, n_steps, n_inputs)

        Returns
        -------
        ndarray of shape (n_trials, n_steps, n_rec)
        """
        return self._run(X)[2]

    def simulate(self, X, *, noise=True, random_state=None, rec_multiplier=None):
        """Run the network with its noise on (as PsychRNN's ``test``).

        Parameters
        ----------
        X : array-like of shape (n_trials, n_steps, n_inputs)
        noise : bool, default=True
        random_state : int, RandomState, Generator or None
        rec_multiplier : array-like of shape (n_rec, n_rec) or (n_steps, n_rec, n_rec), optional
            Entrywise factor on the effective recurrent weights.

        Returns
        -------
        Simulation
        """
        generator, _ = make_generators(random_state)
        y, x, r = self._run(X, noise=noise, generator=generator, rec_multiplier=rec_multiplier)
        return Simulation(y, x, r)

    def score(self, X, y, sample_weight=None):
        """Masked R² per output, averaged over outputs.

        ``1 − Σ m (y − ŷ)² / Σ m (y − ȳ)²`` with ``ȳ = Σ m y / Σ m`` for each output.

        Parameters
        ----------
        X : array-like of shape (n_trials, n_steps, n_inputs)
        y : array-like of shape (n_trials, n_steps, n_outputs)
        sample_weight : array-like of shape (n_trials, n_steps[, n_outputs]), optional
            The output mask.

        Returns
        -------
        float
        """
        y = check_trials("y", y)
        pred = self.predict(X)
        if y.shape != pred.shape:
            raise ValueError(f"y must have shape {pred.shape}; got {y.shape}.")
        mask = check_mask(sample_weight, y)
        axes = (0, 1)
        mean = (mask * y).sum(axes) / mask.sum(axes)
        resid = (mask * (y - pred) ** 2).sum(axes)
        total = (mask * (y - mean) ** 2).sum(axes)
        return float(np.mean(1.0 - resid / np.where(total > 0, total, 1.0)))

    def get_weights(self):
        """Effective weights and biases with PsychRNN's keys (float64 arrays).

        Returns
        -------
        dict
            ``W_in``, ``W_rec``, ``W_out``, ``b_rec``, ``b_out``, ``init_state``.
        """
        check_is_fitted(self)
        return {
            "W_in": self.W_in_,
            "W_rec": self.W_rec_,
            "W_out": self.W_out_,
            "b_rec": self.b_rec_,
            "b_out": self.b_out_,
            "init_state": self.init_state_,
        }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.target_tags.multi_output = True
        return tags

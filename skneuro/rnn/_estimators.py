"""scikit-learn estimator of a constrained leaky rate RNN trained on trials (3-D arrays)."""

from __future__ import annotations

from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._engine import TorchEstimatorMixin, fit_module, make_generators
from .._engine.base import engine_parameter_constraints, to_numpy
from ..utils._docstrings import fill_doc
from ._initializers import AlphaIdentity, GaussianSpectralRadius, WeightInitializer
from ._modules import ACTIVATIONS, LeakyRNN

__all__ = ["RateRNNRegressor", "Simulation"]

_RANDOM_INITS = ("glorot_gauss", "glorot_unif", "const_gauss", "const_unif")
_TRAINABLE = ("W_in", "W_rec", "W_out", "b_rec", "b_out")


class Simulation(NamedTuple):
    """Outputs ``(n_trials, n_steps, n_outputs)``, states and rates ``(n_trials, n_steps, n_rec)``."""

    outputs: np.ndarray
    states: np.ndarray
    rates: np.ndarray


def _check_trials(name, value, n_last=None, ndim=3):
    try:
        arr = np.asarray(value)
    except Exception as exc:  # noqa: BLE001 - any conversion failure is bad input
        raise TypeError(f"{name} must be a numeric array.") from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be a numeric array; got dtype {arr.dtype}.")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real; got dtype {arr.dtype}.")
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array (n_trials, n_steps, ...); got shape {arr.shape}.")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one trial and one step; got shape {arr.shape}.")
    if n_last is not None and arr.shape[2] != n_last:
        raise ValueError(f"{name} has {arr.shape[2]} features in its last axis; expected {n_last}.")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinity.")
    return arr


def _check_mask(sample_weight, y):
    if sample_weight is None:
        return np.ones_like(y)
    mask = np.asarray(sample_weight, dtype=np.float64)
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


@fill_doc(max_iter=50, learning_rate=0.001, tol=1e-4, n_iter_no_change=10)
class RateRNNRegressor(TorchEstimatorMixin, RegressorMixin, BaseEstimator):
    r"""A leaky rate RNN trained on trials, with PsychRNN's biological constraints.

    .. math::

        x_{t+1} = (1-α) x_t + α (W_{rec} f(x_t) + W_{in} u_t + b_{rec}) + \sqrt{2ασ^2} ξ_t,
        \qquad \hat y_t = W_{out} f(x_{t+1}) + b_{out},

    with α = dt/τ, connectivity masks, optional no-autapse and Dale's-law constraints (E
    units first; only E units feed the outputs). Trained by the engine on the masked mean
    squared error (divided by all entries, as PsychRNN) plus optional penalties; the
    recurrent noise acts in training only.

    Parameters
    ----------
    n_rec : int, default=50
    dt, tau : float, default=10.0, 100.0
    rec_noise : float, default=0.0
        σ of the recurrent noise during training (and :meth:`simulate`).
    activation : {{"relu", "tanh", "sigmoid", "softplus", "linear"}}, default="relu"
    dale_ratio : float or None, default=None
        Fraction of excitatory units (0 < r <= 1); None: no Dale's law.
    autapses : bool, default=True
    input_connectivity, rec_connectivity, output_connectivity : array-like or None
        Non-negative masks (n_rec, n_in), (n_rec, n_rec), (n_out, n_rec).
    initializer : str or WeightInitializer, default="gaussian_spectral_radius"
        "gaussian_spectral_radius", "alpha_identity", a random scheme name (all matrices)
        or a :class:`WeightInitializer` whose arrays and constraints are used.
    spectral_radius : float, default=1.1
    radius_of : {{"effective", "raw"}}, default="effective"
    alpha_identity : float, default=1.0
    train_init_state : bool, default=False
    frozen : tuple of str, default=()
        Parameters among W_in, W_rec, W_out, b_rec, b_out that are not trained.
    l1_in, l1_rec, l1_out, l2_in, l2_rec, l2_out : float, default=0.0
        Penalties on the means of ``|W|`` and ``W²`` of the effective matrices.
    l2_firing_rate : float, default=0.0
        Penalty on the mean squared rate.
    clip_grad_norm : float or None, default=1.0
        Per-parameter gradient norm clip (PsychRNN's ``clip_by_norm``).
    solver : {{"adam", "lbfgs"}}, default="adam"
    {{engine_parameters}}

    Attributes
    ----------
    W_in_, W_rec_, W_out_ : ndarray
        Effective weights (float64).
    b_rec_, b_out_, init_state_ : ndarray
    dale_signs_ : ndarray of shape (n_rec,)
        +1 for excitatory units, -1 for inhibitory (all +1 without Dale's law).
    {{engine_attributes}}

    Examples
    --------
    >>> from skneuro.datasets.tasks import PerceptualDiscrimination
    >>> from skneuro.rnn import RateRNNRegressor
    >>> X, y, mask, _ = PerceptualDiscrimination(T=500).generate(64, random_state=0)
    >>> rnn = RateRNNRegressor(n_rec=20, max_iter=2, batch_size=32, random_state=0)
    >>> rnn.fit(X, y, sample_weight=mask).predict(X).shape
    (64, 50, 2)
    """

    _parameter_constraints: dict = {
        "n_rec": [Interval(Integral, 1, None, closed="left")],
        "dt": [Interval(Real, 0, None, closed="neither")],
        "tau": [Interval(Real, 0, None, closed="neither")],
        "rec_noise": [Interval(Real, 0, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "dale_ratio": [None, Interval(Real, 0, 1, closed="right")],
        "autapses": ["boolean"],
        "input_connectivity": [None, "array-like"],
        "rec_connectivity": [None, "array-like"],
        "output_connectivity": [None, "array-like"],
        "initializer": [StrOptions({"gaussian_spectral_radius", "alpha_identity", *_RANDOM_INITS}), WeightInitializer],
        "spectral_radius": [Interval(Real, 0, None, closed="neither")],
        "radius_of": [StrOptions({"effective", "raw"})],
        "alpha_identity": [Real],
        "train_init_state": ["boolean"],
        "frozen": [tuple, list],
        **{f"{k}_{w}": [Interval(Real, 0, None, closed="left")] for k in ("l1", "l2") for w in ("in", "rec", "out")},
        "l2_firing_rate": [Interval(Real, 0, None, closed="left")],
        "clip_grad_norm": [None, Interval(Real, 0, None, closed="neither")],
        "solver": [StrOptions({"adam", "lbfgs"})],
        **engine_parameter_constraints(),
    }

    def __init__(
        self,
        n_rec=50,
        *,
        dt=10.0,
        tau=100.0,
        rec_noise=0.0,
        activation="relu",
        dale_ratio=None,
        autapses=True,
        input_connectivity=None,
        rec_connectivity=None,
        output_connectivity=None,
        initializer="gaussian_spectral_radius",
        spectral_radius=1.1,
        radius_of="effective",
        alpha_identity=1.0,
        train_init_state=False,
        frozen=(),
        l1_in=0.0,
        l1_rec=0.0,
        l1_out=0.0,
        l2_in=0.0,
        l2_rec=0.0,
        l2_out=0.0,
        l2_firing_rate=0.0,
        clip_grad_norm=1.0,
        solver="adam",
        learning_rate=1e-3,
        batch_size=64,
        max_iter=50,
        chunk_size=None,
        tol=1e-4,
        n_iter_no_change=10,
        warm_start=False,
        device="cpu",
        dtype="float32",
        random_state=None,
        verbose=0,
    ):
        self.n_rec = n_rec
        self.dt = dt
        self.tau = tau
        self.rec_noise = rec_noise
        self.activation = activation
        self.dale_ratio = dale_ratio
        self.autapses = autapses
        self.input_connectivity = input_connectivity
        self.rec_connectivity = rec_connectivity
        self.output_connectivity = output_connectivity
        self.initializer = initializer
        self.spectral_radius = spectral_radius
        self.radius_of = radius_of
        self.alpha_identity = alpha_identity
        self.train_init_state = train_init_state
        self.frozen = frozen
        self.l1_in = l1_in
        self.l1_rec = l1_rec
        self.l1_out = l1_out
        self.l2_in = l2_in
        self.l2_rec = l2_rec
        self.l2_out = l2_out
        self.l2_firing_rate = l2_firing_rate
        self.clip_grad_norm = clip_grad_norm
        self.solver = solver
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.chunk_size = chunk_size
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.warm_start = warm_start
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    # ---------------------------------------------------------------- building
    def _weight_initializer(self, n_in, n_out, numpy_gen):
        if isinstance(self.initializer, WeightInitializer):
            init = self.initializer
            if (init.n_in, init.n_rec, init.n_out) != (n_in, self.n_rec, n_out):
                raise ValueError(
                    f"initializer has shapes (n_in={init.n_in}, n_rec={init.n_rec}, n_out={init.n_out}); "
                    f"the data and n_rec need ({n_in}, {self.n_rec}, {n_out})."
                )
            given = [
                name
                for name in ("dale_ratio", "input_connectivity", "rec_connectivity", "output_connectivity")
                if getattr(self, name) is not None
            ] + ([] if self.autapses else ["autapses"])
            if given:
                raise ValueError(
                    f"initializer is a WeightInitializer, which carries its own constraints; do not also set {given}."
                )
            return init
        common = {
            "input_connectivity": self.input_connectivity,
            "rec_connectivity": self.rec_connectivity,
            "output_connectivity": self.output_connectivity,
            "autapses": self.autapses,
            "dale_ratio": self.dale_ratio,
            "random_state": numpy_gen,
        }
        if self.initializer == "gaussian_spectral_radius":
            return GaussianSpectralRadius(
                n_in, self.n_rec, n_out, spec_rad=self.spectral_radius, radius_of=self.radius_of, **common
            )
        if self.initializer == "alpha_identity":
            return AlphaIdentity(n_in, self.n_rec, n_out, alpha=self.alpha_identity, **common)
        return WeightInitializer(n_in, self.n_rec, n_out, which_rand_init=self.initializer, **common)

    def _new_module(self, init, dtype, device):
        values = init.initializations
        dale = values["dale_ratio"] is not None
        signs = init.dale_signs
        module = LeakyRNN(
            init.n_in,
            init.n_rec,
            init.n_out,
            dt=self.dt,
            tau=self.tau,
            activation=self.activation,
            rec_noise=self.rec_noise,
            input_mask=values["input_connectivity"],
            rec_mask=values["rec_connectivity"],
            output_mask=values["output_connectivity"],
            input_signs=np.ones(init.n_in) if dale else None,
            rec_signs=signs if dale else None,
            output_signs=(signs > 0).astype(float) if dale else None,
            train_init_state=self.train_init_state,
            dtype=dtype,
            device=device,
        )
        with torch.no_grad():
            for name in ("W_in", "W_rec", "W_out", "b_rec", "b_out", "init_state"):
                getattr(module, name).copy_(
                    torch.as_tensor(np.asarray(values[name]).reshape(-1)).reshape(getattr(module, name).shape)
                )
        return module

    # ----------------------------------------------------------------- fitting
    def _penalty(self, module):
        W = dict(zip(("in", "rec", "out"), module.effective_weights()))
        total = module.W_rec.new_zeros(())
        for kind, weights in W.items():
            l1, l2 = getattr(self, f"l1_{kind}"), getattr(self, f"l2_{kind}")
            if l1 and weights.numel():
                total = total + l1 * weights.abs().mean()
            if l2 and weights.numel():
                total = total + l2 * (weights**2).mean()
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
        unknown = [name for name in self.frozen if name not in _TRAINABLE]
        if unknown:
            raise ValueError(f"frozen entries must be among {_TRAINABLE}; got {unknown}.")
        for name in ("input_connectivity", "rec_connectivity", "output_connectivity"):
            value = getattr(self, name)
            if value is not None:
                arr = np.asarray(value, dtype=np.float64)
                if not np.isin(arr, (0.0, 1.0)).all():
                    raise ValueError(f"{name} must contain only 0 and 1 (connection absent or present).")
        if not 0 < self.dt / self.tau <= 1:
            raise ValueError(f"dt/tau must lie in (0, 1]; got dt={self.dt}, tau={self.tau}.")
        warm = self.warm_start and hasattr(self, "module_")
        X = _check_trials("X", X, self.n_features_in_ if warm else None)
        y = _check_trials("y", y)
        if y.shape[:2] != X.shape[:2]:
            raise ValueError(f"X and y must have the same n_trials and n_steps; got {X.shape[:2]} and {y.shape[:2]}.")
        mask = _check_mask(sample_weight, y)
        device, dtype = self._resolve_device_dtype()
        torch_gen, numpy_gen = make_generators(self.random_state)
        if warm:
            module = self.module_.to(device=device, dtype=dtype)
        else:
            module = self._new_module(self._weight_initializer(X.shape[2], y.shape[2], numpy_gen), dtype, device)
        frozen = [getattr(module, name) for name in self.frozen]
        n_steps, n_out, n_rec = X.shape[1], y.shape[2], self.n_rec
        noisy = self.rec_noise > 0

        def loss(m, xb, yb, mb):
            out, _, rates = m(xb, noise=noisy, generator=torch_gen)
            total = (mb * (out - yb) ** 2).sum() / (n_steps * n_out)
            if self.l2_firing_rate:
                total = total + self.l2_firing_rate * (rates**2).sum() / (n_steps * n_rec)
            return total

        data = tuple(torch.tensor(a, dtype=dtype) for a in (X, y, mask))
        for p in frozen:
            p.requires_grad_(False)
        try:
            result = fit_module(
                module,
                loss,
                data,
                penalty=self._penalty,
                generator=torch_gen,
                clip_grad_norm=self.clip_grad_norm,
                **self._engine_options(),
            )
        finally:
            for p in frozen:
                p.requires_grad_(True)
        self.module_, self.device_, self.n_features_in_ = module, device, X.shape[2]
        self.loss_curve_, self.n_iter_, self.n_updates_ = result.loss_curve, result.n_iter, result.n_updates
        self._store_weights()
        return self

    def _store_weights(self):
        m = self.module_
        self.W_in_, self.W_rec_, self.W_out_ = (to_numpy(w) for w in m.effective_weights())
        self.b_rec_, self.b_out_, self.init_state_ = to_numpy(m.b_rec), to_numpy(m.b_out), to_numpy(m.init_state)
        self.dale_signs_ = np.ones(m.n_rec) if m.rec_signs is None else to_numpy(m.rec_signs)

    # -------------------------------------------------------------- prediction
    def _run(self, X, *, noise=False, generator=None, rec_multiplier=None):
        check_is_fitted(self)
        X = _check_trials("X", X, self.n_features_in_)
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
        """Noise-free outputs, shape (n_trials, n_steps, n_outputs), float64."""
        return self._run(X)[0]

    def predict_states(self, X):
        """Noise-free rates ``f(x_1) … f(x_T)``, shape (n_trials, n_steps, n_rec), float64."""
        return self._run(X)[2]

    def simulate(self, X, *, noise=True, random_state=None, rec_multiplier=None):
        """Run the network with recurrent noise (as PsychRNN's ``test``).

        Parameters
        ----------
        X : array-like of shape (n_trials, n_steps, n_inputs)
        noise : bool, default=True
        random_state : int, RandomState, Generator or None
        rec_multiplier : array-like of shape (n_rec, n_rec) or (n_steps, n_rec, n_rec), optional

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
        """
        y = _check_trials("y", y)
        pred = self.predict(X)
        if y.shape != pred.shape:
            raise ValueError(f"y must have shape {pred.shape}; got {y.shape}.")
        mask = _check_mask(sample_weight, y)
        axes = (0, 1)
        mean = (mask * y).sum(axes) / mask.sum(axes)
        resid = (mask * (y - pred) ** 2).sum(axes)
        total = (mask * (y - mean) ** 2).sum(axes)
        return float(np.mean(1.0 - resid / np.where(total > 0, total, 1.0)))

    def get_weights(self):
        """Effective weights and biases with PsychRNN's keys (float64 arrays)."""
        check_is_fitted(self)
        return {
            "W_in": self.W_in_,
            "W_rec": self.W_rec_,
            "W_out": self.W_out_,
            "b_rec": self.b_rec_,
            "b_out": self.b_out_,
            "init_state": self.init_state_,
        }

    def save_weights(self, path):
        """Write the trained weights and constraints as an ``.npz`` file (no pickle).

        :meth:`WeightInitializer.load` reads it back, e.g. as the ``initializer`` of a new
        estimator (a curriculum), or to inspect the raw weights.

        Parameters
        ----------
        path : str or path-like
        """
        check_is_fitted(self)
        m = self.module_
        WeightInitializer(
            m.n_in,
            m.n_rec,
            m.n_out,
            input_connectivity=to_numpy(m.input_mask),
            rec_connectivity=to_numpy(m.rec_mask),
            output_connectivity=to_numpy(m.output_mask),
            dale_ratio=None if m.rec_signs is None else float((to_numpy(m.rec_signs) > 0).mean()),
            W_in=to_numpy(m.W_in),
            W_rec=to_numpy(m.W_rec),
            W_out=to_numpy(m.W_out),
            b_rec=to_numpy(m.b_rec),
            b_out=to_numpy(m.b_out),
            init_state=to_numpy(m.init_state),
        ).save(path)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.target_tags.multi_output = True
        return tags

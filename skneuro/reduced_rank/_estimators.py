"""scikit-learn estimators of (non)linear reduced-rank regression."""

from __future__ import annotations

import copy
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    RegressorMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted

from .._engine import LearningRateSchedule, TorchEstimatorMixin, fit_module, make_generators
from .._engine.base import engine_parameter_constraints, to_numpy
from ..utils._docstrings import fill_doc
from ..utils._linalg import link_numpy
from ..utils._validation import NamedScoreMixin, check_range, check_spread, named_validate_data
from ._closed_form import closed_form_fit, standard_form, target_scales
from ._init import alternate_fit, match_linear_fit
from ._modules import ReducedRankModule

__all__ = ["RRExpRegressor", "RRLinearRegressor", "RRReluRegressor", "RRSigmoidRegressor"]

_LINK_PARAMS = {
    "linear": ("w0", "w1", "o2", "v"),
    "sigmoid": ("w0", "w1", "o1", "o2", "g", "v"),
    "exp": ("w0", "w1", "o2", "g", "v"),
    "relu": ("w0", "w1", "o1", "o2", "v"),
}


def _rho_from_v(v, floor, scales):
    """``rho`` with ``floor + exp(rho) = v`` (a variance at the floor gets a tiny excess)."""
    return np.log(np.maximum(v - floor, 1e-12 * scales))


class _ReducedRankBase(
    ClassNamePrefixFeaturesOutMixin,
    TorchEstimatorMixin,
    TransformerMixin,
    NamedScoreMixin,
    RegressorMixin,
    BaseEstimator,
):
    _link = "linear"

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "solver": [StrOptions({"auto", "closed_form", "adam", "lbfgs"})],
        "init": [StrOptions({"closed_form", "random"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "w0_l1": [Interval(Real, 0, None, closed="left")],
        "w0_l2": [Interval(Real, 0, None, closed="left")],
        "w1_l1": [Interval(Real, 0, None, closed="left")],
        "w1_l2": [Interval(Real, 0, None, closed="left")],
        "min_var": [Interval(Real, 0, None, closed="left")],
        "fixed_params": [tuple, list],
        **engine_parameter_constraints(),
    }

    def __init__(
        self,
        n_components=2,
        *,
        solver="auto",
        init="closed_form",
        alpha=0.0,
        w0_l1=0.0,
        w0_l2=0.0,
        w1_l1=0.0,
        w1_l2=0.0,
        min_var=1e-4,
        fixed_params=(),
        max_iter=300,
        learning_rate=None,
        batch_size=None,
        chunk_size=None,
        tol=1e-4,
        n_iter_no_change=10,
        warm_start=False,
        device="cpu",
        dtype="float32",
        random_state=None,
        verbose=0,
        callback=None,
    ):
        self.n_components = n_components
        self.solver = solver
        self.init = init
        self.alpha = alpha
        self.w0_l1 = w0_l1
        self.w0_l2 = w0_l2
        self.w1_l1 = w1_l1
        self.w1_l2 = w1_l2
        self.min_var = min_var
        self.fixed_params = fixed_params
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.chunk_size = chunk_size
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.warm_start = warm_start
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose
        self.callback = callback

    # ------------------------------------------------------------------ fitting
    def _penalised(self):
        return any(getattr(self, name) > 0 for name in ("w0_l1", "w0_l2", "w1_l1", "w1_l2"))

    def _check_fixed_params(self):
        allowed = _LINK_PARAMS[self._link]
        fixed = tuple(self.fixed_params)
        for name in fixed:
            if name not in allowed:
                raise ValueError(
                    f"fixed_params contains {name!r}, which is not a parameter of the {self._link} "
                    f"model; expected names among {allowed}."
                )
        return fixed

    def _resolve_solver(self, fixed):
        solver = self.solver
        if solver == "closed_form":
            if self._link != "linear":
                raise ValueError(f"solver='closed_form' is only available for the linear link, not {self._link!r}.")
            if self._penalised() or fixed:
                raise ValueError("solver='closed_form' cannot be combined with l1/l2 penalties or fixed_params.")
            return "closed_form"
        if solver == "auto":
            if self._link == "linear" and not self._penalised() and not fixed and not self._warm():
                return "closed_form"
            if self.batch_size is not None or self.w0_l1 > 0 or self.w1_l1 > 0:
                return "adam"
            return "lbfgs"
        return solver

    def _warm(self):
        return self.warm_start and hasattr(self, "module_")

    def _initial_params(self, X, Y, floor, scales, numpy_gen):
        """Float64 parameters to start from (standard names plus ``v``)."""
        d, p, k = X.shape[1], Y.shape[1], self.n_components
        if self.init == "random":
            y_mean, y_std = Y.mean(axis=0), np.sqrt(scales)
            params = {
                "w0": numpy_gen.normal(scale=1.0 / np.sqrt(d), size=(d, k)),
                "w1": numpy_gen.normal(scale=1.0 / np.sqrt(k), size=(p, k)),
                "o2": y_mean.copy(),
                "v": np.maximum(scales, floor),
            }
            if self._link == "sigmoid":
                params.update(o1=np.zeros(p), g=4.0 * y_std, o2=y_mean - 2.0 * y_std)
            elif self._link == "exp":
                params.update(g=y_std, o2=y_mean - y_std)
            elif self._link == "relu":
                params.update(o1=np.ones(p), o2=y_mean - y_std)
            return params
        W, o2, v, _ = closed_form_fit(X, Y, k, alpha=self.alpha, var_floor=floor)
        w0, w1 = _factor(W, k)
        params = match_linear_fit(self._link, X, Y, w0, w1, o2)
        if self._link == "linear":
            params["v"] = np.maximum(v, floor)
            return params
        return _constant_targets_flat(alternate_fit(self._link, X, Y, params, var_floor=floor), Y)

    def _build_module(self, params, floor, scales, device, dtype):
        d, k = params["w0"].shape
        # A throw-away local generator: the values are overwritten below, and the global RNG
        # must not be touched.
        module = ReducedRankModule(
            d, params["w1"].shape[0], k, self._link, dtype=dtype, device=device, generator=torch.Generator()
        )
        values = dict(params)
        values["rho"] = _rho_from_v(params["v"], floor, scales)
        with torch.no_grad():
            module.var_floor.copy_(torch.as_tensor(floor))
            for name, tensor in module.named_parameters():
                tensor.copy_(torch.as_tensor(values[name]))
        return module

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit the model to data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)

        Returns
        -------
        self : object
        """
        warm = self._warm()
        X, y = named_validate_data(
            self, X, y, reset=not warm, multi_output=True, y_numeric=True, dtype=np.float64, ensure_min_samples=2
        )
        y = y.astype(np.float64, copy=False)  # boolean targets stay bool through validate_data
        check_range("X", X, self.dtype)
        check_range("y", y, self.dtype)
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        n, d = X.shape
        p = Y.shape[1]
        if self.n_components > max(d, p):
            raise ValueError(
                f"n_components={self.n_components} must be at most max(n_features={d}, n_targets={p}); "
                f"components beyond min(n_features, n_targets)={min(d, p)} are always zero."
            )
        fixed = self._check_fixed_params()
        if self.learning_rate is not None:
            LearningRateSchedule(self.learning_rate)  # validate even when the closed form ignores it
        solver = self._resolve_solver(fixed)
        device, dtype = self._resolve_device_dtype()
        if solver != "closed_form":
            check_spread("X", X, self.dtype)
            check_spread("y", Y, self.dtype)
        torch_gen, numpy_gen = make_generators(self.random_state)
        scales = target_scales(Y)
        floor = self.min_var * scales
        if warm and (self.module_.n_targets != p or self.module_.n_components != self.n_components):
            raise ValueError("warm_start=True needs the same n_targets and n_components as the previous fit.")
        if solver == "closed_form":
            W, o2, v, history = closed_form_fit(
                X, Y, self.n_components, alpha=self.alpha, var_floor=floor, max_rounds=min(self.max_iter, 100)
            )
            w0, w1 = _factor(W, self.n_components)
            exact = {"w0": w0, "w1": w1, "o2": o2, "v": v}
            module = self._build_module(exact, floor, scales, device, dtype)
            curve, n_iter, n_updates = list(history), len(history), 0
        else:
            exact = None
            if warm:
                module = self.module_.to(device=device, dtype=dtype)
                with torch.no_grad():
                    module.var_floor.copy_(torch.as_tensor(floor))
            else:
                params = self._initial_params(X, Y, floor, scales, numpy_gen)
                module = self._build_module(params, floor, scales, device, dtype)
            result = self._train(module, X, Y, solver, fixed, torch_gen, dtype)
            curve, n_iter, n_updates = result.loss_curve, result.n_iter, result.n_updates
        # Fitted attributes are set together, only once everything above has succeeded.
        self.device_, self._y_ndim, self.var_floor_, self.solver_ = device, y.ndim, floor, solver
        self.loss_curve_, self.n_iter_, self.n_updates_ = curve, n_iter, n_updates
        self.module_ = module
        self._store_standard_form(exact)
        return self

    def _train(self, module, X, Y, solver, fixed, torch_gen, dtype):
        """Run the engine on the negative log-likelihood (plus penalties)."""
        frozen = [getattr(module, "rho" if name == "v" else name) for name in fixed]
        lr = self.learning_rate
        if lr is None:
            lr = 0.01 if solver == "adam" else 1.0
        penalty = None
        if self._penalised():

            def penalty(m):
                return m.penalty(self.w0_l1, self.w0_l2, self.w1_l1, self.w1_l2)

        for param in frozen:
            param.requires_grad_(False)
        try:
            return fit_module(
                module,
                _nll_sum,
                (torch.tensor(X, dtype=dtype), torch.tensor(Y, dtype=dtype)),
                penalty=penalty,
                generator=torch_gen,
                **self._engine_options(solver=solver, learning_rate=lr),
                log_terms=self._log_terms,
            )
        finally:
            for param in frozen:
                param.requires_grad_(True)

    def _log_terms(self, module):
        return {
            name: float(module.penalty(**{name: 1.0}))
            for name in ("w0_l1", "w0_l2", "w1_l1", "w1_l2")
            if getattr(self, name) > 0
        }

    def _store_standard_form(self, exact=None):
        """Standardise the module's parameters and expose them as float64 attributes.

        ``exact``: float64 values of ``w0 w1 o2 v`` (closed form) used instead of the
        module's, which may be float32.
        """
        m = self.module_

        def get(name):
            if exact is not None and name in exact:
                return exact[name]
            t = getattr(m, name)
            return None if t is None else to_numpy(t)

        w0, w1, o1, o2, g = standard_form(get("w0"), get("w1"), get("o1"), get("o2"), get("g"))
        with torch.no_grad():
            for name, value in (("w0", w0), ("w1", w1), ("o1", o1), ("o2", o2), ("g", g)):
                if value is not None:
                    getattr(m, name).copy_(torch.as_tensor(value))
        self.w0_, self.w1_, self.o2_ = w0, w1, o2
        self.v_ = np.array(get("v") if exact is not None else to_numpy(m.v))
        if o1 is not None:
            self.o1_ = o1
        if g is not None:
            self.g_ = g

    # --------------------------------------------------------------- prediction
    def _params(self):
        p = self.w1_.shape[0]
        o1 = getattr(self, "o1_", np.zeros(p))
        g = getattr(self, "g_", np.ones(p))
        return o1, g

    def _check_X(self, X):
        check_is_fitted(self)
        X = named_validate_data(self, X, reset=False, dtype=np.float64)
        check_range("X", X, "float64")
        return X

    def _format(self, out):
        return out[:, 0] if self._y_ndim == 1 and out.ndim == 2 else out

    def latent_rep(self, X):
        """Intermediate quantities of the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        mean : ndarray (n_samples, n_targets)
            ``scaled + o2_``, equal to ``predict(X)``.
        scaled : ndarray (n_samples, n_targets)
            ``g_ ⊙ f(pre_activation)``.
        pre_activation : ndarray (n_samples, n_targets)
            ``latents w1_ᵀ + o1_``.
        latents : ndarray (n_samples, n_components)
            ``X w0_``.
        """
        X = self._check_X(X)
        o1, g = self._params()
        latents = X @ self.w0_
        pre = latents @ self.w1_.T + o1
        scaled = g * link_numpy(self._link, pre)
        mean = scaled + self.o2_
        return self._format(mean), self._format(scaled), self._format(pre), latents

    def predict(self, X):
        """Mean prediction ``g_ ⊙ f(X w0_ w1_ᵀ + o1_) + o2_`` (float64).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_targets)
        """
        return self.latent_rep(X)[0]

    def transform(self, X):
        """Latent projections ``X w0_`` of shape (n_samples, n_components)."""
        return self._check_X(X) @ self.w0_

    @property
    def _n_features_out(self):
        return self.w0_.shape[1]

    def log_likelihood(self, X, y):
        """Mean per-sample Gaussian log-likelihood of ``y`` given ``X`` (with the 2π term).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)

        Returns
        -------
        float
        """
        mean = self.latent_rep(X)[0]
        try:
            y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"y: {exc}") from exc
        if y.shape != mean.shape:
            raise ValueError(f"y must have shape {mean.shape}; got {y.shape}.")
        resid = (y - mean).reshape(len(y), -1)
        per_sample = np.sum(0.5 * np.log(self.v_) + resid**2 / (2.0 * self.v_), axis=1)
        return float(-per_sample.mean() - 0.5 * len(self.v_) * np.log(2.0 * np.pi))

    def sample(self, X, random_state=None):
        """Draw ``predict(X) + N(0, diag(v_))`` from a local generator.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        random_state : int, RandomState, Generator or None

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_targets)
        """
        mean = self.predict(X)
        _, numpy_gen = make_generators(random_state)
        noise = numpy_gen.standard_normal(size=(mean.shape[0], len(self.v_))) * np.sqrt(self.v_)
        return mean + self._format(noise)

    def vary_latents(self, p_mat, mean_input, latent_values):
        """Predictions when the latents vary in a subspace and the rest stays at ``mean_input``.

        Parameters
        ----------
        p_mat : array-like of shape (n_components, m)
            Orthonormal columns spanning the varied subspace of the latent space.
        mean_input : array-like of shape (n_features,)
            Input that fixes the latents outside the subspace.
        latent_values : array-like of shape (n_points, m) or (n_points,) when m = 1
            Coordinates in the subspace.

        Returns
        -------
        mean : ndarray (n_points, n_targets)
        w0_proj : ndarray (n_features, m)
            ``w0_ p_mat``.
        w1_proj : ndarray (n_targets, m)
            ``w1_ p_mat``.
        """
        check_is_fitted(self)
        k = self.w0_.shape[1]
        p_mat = np.asarray(p_mat, dtype=np.float64)
        if p_mat.ndim != 2 or p_mat.shape[0] != k:
            raise ValueError(f"p_mat must have shape (n_components={k}, m); got {p_mat.shape}.")
        if not np.allclose(p_mat.T @ p_mat, np.eye(p_mat.shape[1]), atol=1e-6):
            raise ValueError("p_mat must have orthonormal columns (p_mat.T @ p_mat == I).")
        mean_input = np.asarray(mean_input, dtype=np.float64).reshape(-1)
        if mean_input.shape[0] != self.w0_.shape[0]:
            raise ValueError(f"mean_input must have {self.w0_.shape[0]} entries; got {mean_input.shape[0]}.")
        latent_values = np.asarray(latent_values, dtype=np.float64)
        if latent_values.ndim == 1 and p_mat.shape[1] == 1:
            latent_values = latent_values[:, None]
        if latent_values.ndim != 2 or latent_values.shape[1] != p_mat.shape[1]:
            raise ValueError(f"latent_values must have shape (n_points, {p_mat.shape[1]}); got {latent_values.shape}.")
        o1, g = self._params()
        w0_proj, w1_proj = self.w0_ @ p_mat, self.w1_ @ p_mat
        fixed = self.w1_ @ (np.eye(k) - p_mat @ p_mat.T) @ self.w0_.T @ mean_input
        mean = g * link_numpy(self._link, latent_values @ w1_proj.T + fixed + o1) + self.o2_
        return self._format(mean), w0_proj, w1_proj

    def align_signs(self, other):
        """Copy of ``self`` with component signs matched to ``other``.

        Column ``c`` of ``w0_`` and ``w1_`` is negated where that brings it closer (in
        squared distance) to ``other``'s; predictions are unchanged.

        Parameters
        ----------
        other : fitted reduced-rank estimator with the same shapes

        Returns
        -------
        aligned : estimator
        """
        check_is_fitted(self)
        check_is_fitted(other)
        if getattr(other, "w0_", np.empty(0)).shape != self.w0_.shape or other.w1_.shape != self.w1_.shape:
            raise ValueError("other must be a fitted reduced-rank estimator with the same w0_ and w1_ shapes.")
        aligned = copy.deepcopy(self)
        keep = np.sum((self.w0_ - other.w0_) ** 2, 0) + np.sum((self.w1_ - other.w1_) ** 2, 0)
        flip = np.sum((self.w0_ + other.w0_) ** 2, 0) + np.sum((self.w1_ + other.w1_) ** 2, 0)
        signs = np.where(flip < keep, -1.0, 1.0)
        aligned.w0_ = self.w0_ * signs
        aligned.w1_ = self.w1_ * signs
        with torch.no_grad():
            for param in (aligned.module_.w0, aligned.module_.w1):
                param.mul_(torch.as_tensor(signs, dtype=param.dtype, device=param.device))
        return aligned

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


def _nll_sum(module, X, Y):
    return module.neg_log_likelihood(module(X), Y).sum()


def _constant_targets_flat(params, Y):
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


def _factor(W, k):
    """Standard-form factors ``(w0 (d, k), w1 (p, k))`` of a (d, p) matrix of rank ≤ k."""
    d, p = W.shape
    w0, w1, *_ = standard_form(W, np.eye(p))
    out0, out1 = np.zeros((d, k)), np.zeros((p, k))
    m = min(k, p)
    out0[:, :m], out1[:, :m] = w0[:, :m], w1[:, :m]
    return out0, out1


_COMMON_DOC = """{summary}

    .. math::

        {equation}

    with diagonal Gaussian noise ``y = mean + ε``, ``ε ~ N(0, diag(v))``. The fit
    maximises the likelihood (minimises the mean negative log-likelihood plus the
    optional penalties). Read more in :ref:`the user guide <reduced_rank>`.

    Parameters
    ----------
    n_components : int, default=2
        Rank k: number of shared input projections. At most
        ``max(n_features, n_targets)``; components beyond ``min(n_features, n_targets)``
        are zero.
    solver : {{"auto", "closed_form", "adam", "lbfgs"}}, default="auto"
        "auto" is the closed form for the unpenalised linear model; otherwise Adam when
        ``batch_size`` or an l1 penalty is set, else L-BFGS. ``solver_`` records it.
    init : {{"closed_form", "random"}}, default="closed_form"
        Start of iterative solvers: the closed-form linear fit matched to the link
        (then, for nonlinear links, a per-target Levenberg–Marquardt refinement), or
        random weights.
    alpha : float, default=0.0
        Ridge penalty of the closed form and of the initialisation.
    w0_l1, w0_l2, w1_l1, w1_l2 : float, default=0.0
        l1 and squared-l2 penalties on ``w0`` and ``w1`` (not divided by n).
    min_var : float, default=1e-4
        Noise variance floor relative to each target's training variance.
    fixed_params : tuple of str, default=()
        Parameters among ``{fixed}`` held at their initial values.
    {{engine_parameters}}

    Attributes
    ----------
    w0_ : ndarray of shape (n_features, n_components)
        Input projections (standard form: they carry the singular values).
    w1_ : ndarray of shape (n_targets, n_components)
        Output loadings with orthonormal columns.
{extra_attributes}    o2_ : ndarray of shape (n_targets,)
        Output offsets.
    v_ : ndarray of shape (n_targets,)
        Noise variances.
    var_floor_ : ndarray of shape (n_targets,)
        ``min_var`` times each target's training variance.
    solver_ : str
        The solver used.
    {{engine_attributes}}

    See Also
    --------
    {see_also}

    Examples
    --------
    >>> from scipy.linalg import subspace_angles
    >>> from skneuro.datasets import make_reduced_rank_regression
    >>> from skneuro.reduced_rank import {name}
    >>> X, y, truth = make_reduced_rank_regression(n_samples=1000, link="{link}", random_state=0,
    ...                                            return_params=True)
    >>> model = {name}(n_components=2, random_state=0).fit(X, y)
    >>> model.predict(X).shape, model.transform(X).shape
    ((1000, 20), (1000, 2))

    The fitted input subspace is close to the true one (angles in radians):

    >>> bool(subspace_angles(model.w0_, truth["w0"]).max() < 0.1)
    True
    """

_O1_DOC = """    o1_ : ndarray of shape (n_targets,)
        Offsets inside the link.
"""
_G_DOC = """    g_ : ndarray of shape (n_targets,)
        Gains of the link (non-negative for sigmoid).
"""


def _doc(name, link, summary, equation):
    extra = (_O1_DOC if link in ("sigmoid", "relu") else "") + (_G_DOC if link in ("sigmoid", "exp") else "")
    others = [n for n in ("RRLinearRegressor", "RRSigmoidRegressor", "RRExpRegressor", "RRReluRegressor") if n != name]
    doc = _COMMON_DOC.format(
        summary=summary,
        equation=equation,
        fixed=", ".join(_LINK_PARAMS[link]),
        extra_attributes=extra,
        see_also="\n    ".join(f"{n} : The same model with another link." for n in others),
        name=name,
        link=link,
    )
    holder = type("_Doc", (), {"__doc__": doc})
    fill_doc(max_iter=300, learning_rate="None (0.01 for adam, 1.0 for lbfgs)", tol=1e-4, n_iter_no_change=10)(holder)
    return holder.__doc__


class RRLinearRegressor(_ReducedRankBase):
    __doc__ = _doc(
        "RRLinearRegressor",
        "linear",
        "Linear reduced-rank regression with per-target noise variances.",
        r"\operatorname{mean}(X) = X w_0 w_1^\top + o_2",
    )
    _link = "linear"


class RRSigmoidRegressor(_ReducedRankBase):
    __doc__ = _doc(
        "RRSigmoidRegressor",
        "sigmoid",
        "Reduced-rank regression through a saturating sigmoid.",
        r"\operatorname{mean}(X) = g \odot \sigma(X w_0 w_1^\top + o_1) + o_2",
    )
    _link = "sigmoid"


class RRExpRegressor(_ReducedRankBase):
    __doc__ = _doc(
        "RRExpRegressor",
        "exp",
        "Reduced-rank regression through an expansive exponential.",
        r"\operatorname{mean}(X) = g \odot \varphi(X w_0 w_1^\top) + o_2,\quad "
        r"\varphi(a) = e^a\ (a \le 20),\ e^{20}(1 + a - 20)\ (a > 20)",
    )
    _link = "exp"


class RRReluRegressor(_ReducedRankBase):
    __doc__ = _doc(
        "RRReluRegressor",
        "relu",
        "Reduced-rank regression through a threshold-linear (relu) link.",
        r"\operatorname{mean}(X) = \max(X w_0 w_1^\top + o_1, 0) + o_2",
    )
    _link = "relu"

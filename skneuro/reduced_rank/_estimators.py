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

from .._engine import LearningRateSchedule, TorchEstimatorMixin, fit_module, make_generators
from .._engine.base import early_stopping_constraints, engine_parameter_constraints, to_numpy
from .._persist import SaveLoadMixin
from ..utils._linalg import target_scales
from ..utils._validation import NamedScoreMixin, check_range, check_spread, named_validate_data
from ._closed_form import closed_form_fit, standard_form
from ._docs import _doc
from ._init import alternate_fit, constant_targets_flat, factor, match_linear_fit
from ._modules import LINK_PARAMS, ReducedRankModule
from ._predict import ReducedRankPredictMixin

__all__ = ["RRExpRegressor", "RRLinearRegressor", "RRReluRegressor", "RRSigmoidRegressor"]


def _rho_from_v(v, floor, scales):
    """``rho`` with ``floor + exp(rho) = v`` (a variance at the floor gets a tiny excess)."""
    return np.log(np.maximum(v - floor, 1e-12 * scales))


class _ReducedRankBase(
    ReducedRankPredictMixin,
    ClassNamePrefixFeaturesOutMixin,
    TorchEstimatorMixin,
    SaveLoadMixin,
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
        "l1_w0": [Interval(Real, 0, None, closed="left")],
        "l2_w0": [Interval(Real, 0, None, closed="left")],
        "l1_w1": [Interval(Real, 0, None, closed="left")],
        "l2_w1": [Interval(Real, 0, None, closed="left")],
        "min_var": [Interval(Real, 0, None, closed="left")],
        "fixed_params": [tuple, list],
        **engine_parameter_constraints(),
        **early_stopping_constraints(),
    }

    def __init__(
        self,
        n_components=2,
        *,
        solver="auto",
        init="closed_form",
        alpha=0.0,
        l1_w0=0.0,
        l2_w0=0.0,
        l1_w1=0.0,
        l2_w1=0.0,
        min_var=1e-4,
        fixed_params=(),
        max_iter=300,
        learning_rate=None,
        batch_size=None,
        chunk_size=None,
        tol=1e-4,
        n_iter_no_change=10,
        early_stopping=False,
        validation_fraction=0.1,
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
        self.l1_w0 = l1_w0
        self.l2_w0 = l2_w0
        self.l1_w1 = l1_w1
        self.l2_w1 = l2_w1
        self.min_var = min_var
        self.fixed_params = fixed_params
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.chunk_size = chunk_size
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.warm_start = warm_start
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose
        self.callback = callback

    # ------------------------------------------------------------------ fitting
    def _penalised(self):
        return any(getattr(self, name) > 0 for name in ("l1_w0", "l2_w0", "l1_w1", "l2_w1"))

    def _check_fixed_params(self):
        allowed = LINK_PARAMS[self._link]
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
            if self.early_stopping:
                raise ValueError(
                    "solver='closed_form' has no epochs to stop: use early_stopping=False or an iterative solver."
                )
            return "closed_form"
        if solver == "auto":
            iterative = self._penalised() or fixed or self._warm() or self.early_stopping
            if self._link == "linear" and not iterative:
                return "closed_form"
            if self.batch_size is not None or self.l1_w0 > 0 or self.l1_w1 > 0:
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
        w0, w1 = factor(W, k)
        params = match_linear_fit(self._link, X, Y, w0, w1, o2)
        if self._link == "linear":
            params["v"] = np.maximum(v, floor)
            return params
        return constant_targets_flat(alternate_fit(self._link, X, Y, params, var_floor=floor), Y)

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
        if warm and (self.module_.n_targets != p or self.module_.n_components != self.n_components):
            raise ValueError("warm_start=True needs the same n_targets and n_components as the previous fit.")
        if solver == "closed_form":
            scales = target_scales(Y)
            floor = self.min_var * scales
            W, o2, v, history = closed_form_fit(
                X, Y, self.n_components, alpha=self.alpha, var_floor=floor, max_rounds=min(self.max_iter, 100)
            )
            w0, w1 = factor(W, self.n_components)
            exact = {"w0": w0, "w1": w1, "o2": o2, "v": v}
            module = self._build_module(exact, floor, scales, device, dtype)
            curve, n_iter, n_updates, result = list(history), len(history), 0, None
        else:
            exact = None
            module, floor, result = self._fit_iterative(X, Y, solver, fixed, warm, device, dtype)
            curve, n_iter, n_updates = result.loss_curve, result.n_iter, result.n_updates
        # Fitted attributes are set together, only once everything above has succeeded.
        self.device_, self._y_ndim, self.var_floor_, self.solver_ = device, y.ndim, floor, solver
        self.loss_curve_, self.n_iter_, self.n_updates_ = curve, n_iter, n_updates
        self._store_validation(result)
        self.module_ = module
        self._store_standard_form(exact)
        return self

    def _fit_iterative(self, X, Y, solver, fixed, warm, device, dtype):
        """``(module, var_floor, FitResult)`` of an iterative fit, with early stopping if asked.

        Early stopping chooses how long to train, then trains that long on every sample
        (Goodfellow et al. (2016), algorithm 7.2): the fit on the samples not held out
        keeps its best-validation iteration ``i*``; then the same start computed from all
        samples is trained again for at most ``i*`` iterations (the training rule may stop
        it sooner, as without early stopping). The start of these models is the
        closed-form fit of the data, so the held-out samples would otherwise be lost to
        it while the iterations over-fit little. ``validation_scores`` and
        ``best_validation_score`` of the result are those of the choice; a Ctrl-C during
        it keeps its best-validation parameters without training again.
        """
        start = self.module_ if warm else None
        train, held_out = self._validation_split(X.shape[0])
        if held_out is None:
            return self._start_and_train(X, Y, solver, fixed, start, device, dtype)
        saved = None if start is None else copy.deepcopy(start.state_dict())
        module, floor, choice = self._start_and_train(
            X[train], Y[train], solver, fixed, start, device, dtype, validation=(X[held_out], Y[held_out])
        )
        if choice.stop_reason not in ("converged", "max_iter"):
            return module, floor, choice
        if saved is not None:
            start.load_state_dict(saved)
        best_iter = int(np.argmax(choice.validation_scores)) + 1
        module, floor, result = self._start_and_train(X, Y, solver, fixed, start, device, dtype, max_iter=best_iter)
        result.validation_scores, result.best_validation_score = choice.validation_scores, choice.best_validation_score
        return module, floor, result

    def _start_and_train(self, X, Y, solver, fixed, start, device, dtype, validation=None, max_iter=None):
        """Build the starting module (``start``: continue from it) and train it."""
        torch_gen, numpy_gen = make_generators(self.random_state)
        scales = target_scales(Y)
        floor = self.min_var * scales
        if start is not None:
            module = start.to(device=device, dtype=dtype)
            with torch.no_grad():
                module.var_floor.copy_(torch.as_tensor(floor))
        else:
            params = self._initial_params(X, Y, floor, scales, numpy_gen)
            module = self._build_module(params, floor, scales, device, dtype)
        result = self._train(module, X, Y, solver, fixed, torch_gen, dtype, validation, max_iter)
        return module, floor, result

    def _train(self, module, X, Y, solver, fixed, torch_gen, dtype, validation=None, max_iter=None):
        """Run the engine on the negative log-likelihood (plus penalties); ``max_iter``: a cap that does not warn."""
        held = {"rho" if name == "noise_variance" else name for name in fixed}
        params = [p for name, p in module.named_parameters() if name not in held]
        lr = self.learning_rate
        if lr is None:
            lr = 0.01 if solver == "adam" else 1.0
        cap = {} if max_iter is None else {"max_iter": max_iter, "warn_not_converged": False}
        penalty = None
        if self._penalised():

            def penalty(m):
                return m.penalty(self.l1_w0, self.l2_w0, self.l1_w1, self.l2_w1)

        return fit_module(
            module,
            _nll_sum,
            (torch.tensor(X, dtype=dtype), torch.tensor(Y, dtype=dtype)),
            penalty=penalty,
            params=params,
            generator=torch_gen,
            validation_data=None if validation is None else tuple(torch.tensor(a, dtype=dtype) for a in validation),
            **self._engine_options(solver=solver, learning_rate=lr, **cap),
            log_terms=self._log_terms,
        )

    def _log_terms(self, module):
        return {
            name: float(module.penalty(**{name: 1.0}))
            for name in ("l1_w0", "l2_w0", "l1_w1", "l2_w1")
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
        self.noise_variance_ = np.array(get("v") if exact is not None else to_numpy(m.v))
        if o1 is not None:
            self.o1_ = o1
        if g is not None:
            self.g_ = g

    # --------------------------------------------------------------- prediction
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


def _nll_sum(module, X, Y):
    return module.neg_log_likelihood(module(X), Y).sum()


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

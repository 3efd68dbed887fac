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
from .._engine.data import LazyRows
from .._persist import SaveLoadMixin
from ..utils._chunks import RowReader, chunk_rows, is_array_source
from ..utils._linalg import scales_from_moments
from ..utils._validation import NamedScoreMixin, check_range, check_spread_extremes, named_validate_data
from ._closed_form import closed_form_moments, standard_form
from ._docs import _doc
from ._init import alternate_fit, constant_targets_flat, factor, match_linear_fit, polish_fit
from ._modules import LINK_PARAMS, ReducedRankModule
from ._moments import data_moments
from ._predict import ReducedRankPredictMixin

__all__ = ["RRExpRegressor", "RRLinearRegressor", "RRReluRegressor", "RRSigmoidRegressor"]


#: data (samples x (features + targets)) up to which every stage sees all rows at once (also from
#: files): the nonlinear start runs on all rows and the engine gets whole tensors; beyond
#: it the start runs on a row subsample, is polished on all rows in chunks, and the engine
#: reads row chunks
IN_ONE_PIECE = 2**23
#: rows of the subsample that the nonlinear start is fitted on, beyond ``IN_ONE_PIECE``
SUBSAMPLE_ROWS = 2000


def _chunk_budget(n, width, out_of_core):
    """Elements per chunk (``width``: columns of X and y together).

    In memory a thirty-second of the data, within [2**18, 2**22] elements; from files a
    256th, within [2**16, 2**22]. A chunk's forward and backward pass holds about ten
    chunk-sized arrays (some float64): about a third of the data's size in memory, a
    twentieth from files.
    """
    if out_of_core:
        return int(min(2**22, max(2**16, n * width // 256)))
    return int(min(2**22, max(2**18, n * width // 32)))


def _subsample(n, k, out_of_core=False):
    """Increasing rows for the nonlinear start: one at random in each of m equal strata (fixed seed).

    From files at most a quarter of the rows is held (fewer rows than 50 per target
    parameter make a start that all-row rounds repair only slowly).
    """
    m = max(SUBSAMPLE_ROWS, 200 * (k + 3))
    if out_of_core:
        m = min(m, max(1, n // 4))
    if n <= m:
        return None
    edges = np.linspace(0, n, m + 1).astype(np.int64)
    rng = np.random.default_rng(0)
    return edges[:-1] + (rng.random(m) * (edges[1:] - edges[:-1])).astype(np.int64)


def _scales(mom):
    """Per-target scales (``target_scales``) from the moments."""
    return scales_from_moments(mom.y_var, np.maximum(np.abs(mom.y_min), np.abs(mom.y_max)))


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

    def _initial_params(self, mom, Xr, Yr, floor, scales, numpy_gen, budget):
        """Float64 parameters to start from (standard names plus ``v``)."""
        d, p, k = Xr.shape[1], Yr.shape[1], self.n_components
        if self.init == "random":
            y_mean, y_std = mom.y_mean, np.sqrt(scales)
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
        w0, w1, o2, v, _ = closed_form_moments(mom, k, alpha=self.alpha, var_floor=floor)
        w0, w1 = factor(w0, w1, k)
        params = match_linear_fit(self._link, mom, w0, w1, o2)
        if self._link == "linear":
            params["v"] = np.maximum(v, floor)
            return params
        if mom.x_sub is None:  # all rows at once
            X_start, Y_start = Xr.read(0, Xr.shape[0]), Yr.read(0, Yr.shape[0])
        else:
            X_start, Y_start = mom.x_sub, mom.y_sub
        params = alternate_fit(self._link, X_start, Y_start, params, var_floor=floor)
        if mom.x_sub is not None:
            params.pop("v")
            params = polish_fit(self._link, Xr, Yr, params, var_floor=floor, budget=budget)
        return constant_targets_flat(params, mom)

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
            Also a ``numpy.memmap`` or any array with row slicing and a ``shape`` (an
            ``h5py`` dataset, a ``zarr`` array): such inputs are read in row chunks and
            never loaded whole (see the user guide's "Large data" page).
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            As ``X``.

        Returns
        -------
        self : object
        """
        warm = self._warm()
        Xr, Yr, y_ndim, out_of_core = self._fit_readers(X, y, reset=not warm)
        n, d = Xr.shape
        p = Yr.shape[1]
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
        if warm and (self.module_.n_targets != p or self.module_.n_components != self.n_components):
            raise ValueError("warm_start=True needs the same n_targets and n_components as the previous fit.")
        if solver == "closed_form":
            mom = data_moments(Xr, Yr, budget=_chunk_budget(n, d + p, out_of_core))
            self._check_moments(mom, solver)
            floor = self.min_var * _scales(mom)
            w0, w1, o2, v, history = closed_form_moments(
                mom, self.n_components, alpha=self.alpha, var_floor=floor, max_rounds=min(self.max_iter, 100)
            )
            w0, w1 = factor(w0, w1, self.n_components)
            exact = {"w0": w0, "w1": w1, "o2": o2, "v": v}
            module = self._build_module(exact, floor, _scales(mom), device, dtype)
            curve, n_iter, n_updates, result = list(history), len(history), 0, None
        else:
            exact = None
            module, floor, result = self._fit_iterative(Xr, Yr, solver, fixed, warm, device, dtype, out_of_core)
            curve, n_iter, n_updates = result.loss_curve, result.n_iter, result.n_updates
        # Fitted attributes are set together, only once everything above has succeeded.
        self.device_, self._y_ndim, self.var_floor_, self.solver_ = device, y_ndim, floor, solver
        self.loss_curve_, self.n_iter_, self.n_updates_ = curve, n_iter, n_updates
        self._store_validation(result)
        self.module_ = module
        self._store_standard_form(exact)
        return self

    def _fit_iterative(self, Xr, Yr, solver, fixed, warm, device, dtype, out_of_core):
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
        train, held_out = self._validation_split(Xr.shape[0])
        if held_out is None:
            return self._start_and_train(Xr, Yr, solver, fixed, start, device, dtype, out_of_core)
        saved = None if start is None else copy.deepcopy(start.state_dict())
        validation = (Xr.subset(held_out), Yr.subset(held_out))
        module, floor, choice = self._start_and_train(
            Xr.subset(train), Yr.subset(train), solver, fixed, start, device, dtype, out_of_core, validation=validation
        )
        if choice.stop_reason not in ("converged", "max_iter"):
            return module, floor, choice
        if saved is not None:
            start.load_state_dict(saved)
        best_iter = int(np.argmax(choice.validation_scores)) + 1
        module, floor, result = self._start_and_train(
            Xr, Yr, solver, fixed, start, device, dtype, out_of_core, max_iter=best_iter
        )
        result.validation_scores, result.best_validation_score = choice.validation_scores, choice.best_validation_score
        return module, floor, result

    def _start_and_train(
        self, Xr, Yr, solver, fixed, start, device, dtype, out_of_core, validation=None, max_iter=None
    ):
        """Check the rows, build the starting module (``start``: continue from it) and train it.

        One pass over the rows gives their moments (and checks them); up to
        ``IN_ONE_PIECE`` (samples × (features + targets)) the start and the engine see all rows at
        once, beyond it the start is fitted on a row subsample and polished on all rows,
        and the engine reads row chunks.
        """
        n, d = Xr.shape
        p = Yr.shape[1]
        budget = _chunk_budget(n, d + p, out_of_core)
        if validation is not None:
            self._check_moments(data_moments(*validation, budget=budget), solver)
        big = n * (d + p) > IN_ONE_PIECE  # memmaps and files below it are read whole (<= 64 MB)
        subsample = None
        if big and self._link != "linear" and self.init != "random" and start is None:
            subsample = _subsample(n, self.n_components, out_of_core)
        mom = data_moments(Xr, Yr, subsample=subsample, budget=budget)
        self._check_moments(mom, solver)
        torch_gen, numpy_gen = make_generators(self.random_state)
        scales = _scales(mom)
        floor = self.min_var * scales
        if start is not None:
            module = start.to(device=device, dtype=dtype)
            with torch.no_grad():
                module.var_floor.copy_(torch.as_tensor(floor))
        else:
            params = self._initial_params(mom, Xr, Yr, floor, scales, numpy_gen, budget)
            module = self._build_module(params, floor, scales, device, dtype)
        del mom  # the subsample
        chunk = self.chunk_size
        if chunk is None and (big or device.type == "cpu"):
            # chunks of the data (no more than the chunk budget in any autograd graph); small
            # data on a GPU stay there whole
            chunk = chunk_rows(d + p, budget)
        result = self._train(module, Xr, Yr, solver, fixed, torch_gen, dtype, validation, chunk, max_iter)
        return module, floor, result

    def _fit_readers(self, X, y, reset):
        """Validated ``(X reader, y reader, y.ndim, out_of_core)``.

        In-memory inputs go through scikit-learn's validation (float32 and float64 kept as
        they are); memmaps and file-backed arrays are checked without being read here
        (finite values are checked chunk by chunk during the fit, naming the row).
        """
        if not (is_array_source(X) or is_array_source(y)):
            X, y = named_validate_data(
                self,
                X,
                y,
                reset=reset,
                multi_output=True,
                y_numeric=True,
                dtype=[np.float64, np.float32],
                ensure_min_samples=2,
            )
            return RowReader(X, "X"), RowReader(y, "y"), y.ndim, False
        sources = {}
        for name, value, ndims in (("X", X, (2,)), ("y", y, (1, 2))):
            if not is_array_source(value):
                if name == "X":  # in memory: scikit-learn's checks, feature names included
                    value = named_validate_data(
                        self, value, reset=reset, dtype=[np.float64, np.float32], ensure_min_samples=2
                    )
                value = np.asarray(value)
            kind = np.dtype(value.dtype).kind
            if kind not in "biuf":
                raise TypeError(f"{name} must be a real numeric array; got dtype {value.dtype}.")
            if value.ndim not in ndims:
                wanted = " or ".join(f"{n}-D" for n in ndims)
                raise ValueError(f"{name} must be {wanted}; got an array of shape {tuple(value.shape)}.")
            if value.ndim == 2 and value.shape[1] < 1:
                raise ValueError(f"{name} has 0 columns (shape {tuple(value.shape)}); at least 1 is required.")
            sources[name] = value
        X, y = sources["X"], sources["y"]
        if X.shape[0] != y.shape[0]:
            raise ValueError(
                f"X and y have different numbers of rows: X has shape {tuple(X.shape)}, y has shape {tuple(y.shape)}."
            )
        if X.shape[0] < 2:
            raise ValueError(f"X: found {X.shape[0]} sample(s) while a minimum of 2 is required.")
        if is_array_source(X):
            if reset:
                self.n_features_in_ = int(X.shape[1])
                if hasattr(self, "feature_names_in_"):
                    del self.feature_names_in_
            elif X.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"X has {X.shape[1]} features, but {type(self).__name__} is expecting {self.n_features_in_} "
                    "features as input."
                )
        return RowReader(X, "X"), RowReader(y, "y"), y.ndim, True

    def _check_moments(self, mom, solver):
        """Values training in ``dtype`` cannot represent (from each column's extremes)."""
        check_range("X", np.concatenate([mom.x_min, mom.x_max]), self.dtype)
        check_range("y", np.concatenate([mom.y_min, mom.y_max]), self.dtype)
        if solver != "closed_form":
            check_spread_extremes("X", mom.x_min, mom.x_max, self.dtype)
            check_spread_extremes("y", mom.y_min, mom.y_max, self.dtype)

    def _train(self, module, Xr, Yr, solver, fixed, torch_gen, dtype, validation=None, chunk_size=None, max_iter=None):
        """Run the engine on the negative log-likelihood (plus penalties).

        Whole tensors when ``chunk_size`` is None; otherwise :class:`LazyRows`: every
        evaluation reads the rows chunk by chunk from where they are. ``max_iter``: a cap
        that does not warn (the refit after early stopping).
        """
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

        def as_data(readers):
            if chunk_size is None:
                return tuple(torch.tensor(r.read(0, r.shape[0]), dtype=dtype) for r in readers)
            return tuple(LazyRows(r, dtype) for r in readers)

        return fit_module(
            module,
            _nll_sum,
            as_data((Xr, Yr)),
            penalty=penalty,
            params=params,
            generator=torch_gen,
            validation_data=None if validation is None else as_data(validation),
            # the objective sums over targets: ``tol`` is per target
            **self._engine_options(
                solver=solver, learning_rate=lr, chunk_size=chunk_size, tol=self.tol * Yr.shape[1], **cap
            ),
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

"""scikit-learn regressor made of a sum of Gaussian bumps."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.cluster import kmeans_plusplus
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._engine import TorchEstimatorMixin, fit_module, make_generators
from .._engine.base import early_stopping_constraints, engine_parameter_constraints, to_numpy
from .._persist import SaveLoadMixin
from ..utils._docstrings import fill_doc
from ..utils._validation import NamedScoreMixin, check_range, named_sample_weight, named_validate_data
from ._modules import BumpSumWithIntercept, SlowSumOfBumpFcns, SumOfBumpFcns

__all__ = ["SumOfBumpsRegressor"]

_ROWS_PER_CHUNK = 16384


def _weighted_stats(X, weights, center=True):
    mean = np.average(X, axis=0, weights=weights) if center else np.zeros(X.shape[1])
    scale = np.sqrt(np.average((X - mean) ** 2, axis=0, weights=weights))
    # a spread at the level of rounding (e.g. one row carrying all the weight) is no spread
    negligible = scale <= 64 * np.finfo(np.float64).eps * np.maximum(np.abs(X).max(axis=0), np.abs(mean))
    return mean, np.where((scale > 0) & ~negligible, scale, 1.0)


def _float_array(name, value):
    try:
        return np.asarray(value, dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"{name} must be a numeric array (or one of its named options): {exc}") from exc


def _bump_activations(X, centers, widths, kappa=None):
    """``φ (n, B)`` in float64, accumulated one dimension at a time."""
    exponent = np.zeros((X.shape[0], centers.shape[0]))
    inside = np.ones(exponent.shape, dtype=bool)
    for d in range(centers.shape[1]):
        diff = X[:, d : d + 1] - centers[:, d]
        exponent += (diff / widths[:, d]) ** 2
        if kappa is not None:
            inside &= np.abs(diff) < kappa * np.abs(widths[:, d])
    phi = np.exp(-exponent)
    return phi * inside if kappa is not None else phi


def _grid_cells(g, D, B, numpy_gen):
    """Integer coordinates (B, D) of B distinct cells of the g^D grid, in C order.

    The grid itself is never built: with many features g^D is astronomically large.
    """
    n_cells = g**D
    if n_cells == B:
        flat = np.arange(B)
    elif n_cells < 2**62:
        flat = np.sort(numpy_gen.choice(n_cells, size=B, replace=False))
    else:  # beyond int64: B distinct random cells by rejection (duplicates are vanishingly rare)
        cells = set()
        while len(cells) < B:
            cells.add(tuple(int(i) for i in numpy_gen.integers(g, size=D)))
        return np.array(sorted(cells), dtype=np.float64)
    return np.stack(np.unravel_index(flat, (g,) * D), axis=1).astype(np.float64)


@fill_doc(max_iter=300, learning_rate=0.05, tol=1e-6, n_iter_no_change=20)
class SumOfBumpsRegressor(TorchEstimatorMixin, SaveLoadMixin, NamedScoreMixin, RegressorMixin, BaseEstimator):
    r"""Regression with a sum of axis-aligned Gaussian bumps.

    .. math::

        \hat y_k(x) = \beta_k + \sum_b m_{bk} \exp\Big(-\sum_d \big((x_d - c_{bd}) / w_{bd}\big)^2\Big)

    Each bump reads as "+m at c, w wide" (half-width at half maximum ``w·sqrt(ln 2)``).
    The fit standardises X and y, places centers (k-means++ by default) with widths
    from the center spacing, solves the magnitudes and intercept by weighted least
    squares, then optimises everything jointly on the weighted mean squared error.
    The bumps are janelia_core's ``BumpFcn``/``SumOfBumpFcns`` [1]_. Read more in
    :ref:`the user guide <bumps>`.

    Parameters
    ----------
    n_bumps : int, default=10
        Number of bumps B.
    init : {"kmeans++", "grid", "random"} or array-like of shape (n_bumps, n_features), default="kmeans++"
        Initial centers: k-means++ seeding on the standardised inputs, a cell-centred grid
        over the center bounds, distinct training rows, or given centers (input units).
    width_init : "auto", float or array-like of shape (n_bumps, n_features), default="auto"
        "auto": the distance from each initial center to its nearest neighbour in
        standardised units (1.0 for one bump); a float: that many feature standard
        deviations; an array: widths in input units.
    bounds : array-like of shape (2, n_features) or None, default=None
        Center bounds in input units (row 0 lower, row 1 upper); None: the training range.
    width_bounds : array-like of shape (2, n_features) or None, default=None
        Width bounds in input units; None: ``[1e-3, 10]`` feature standard deviations.
    c_grad_std, w_grad_std : float, default=0.0
        Gradient noise on centers and widths (standardised units), see
        :class:`~skneuro.bumps.SumOfBumpFcns`.
    m_grad_gain : float, default=0.0
        ``> 0`` pushes magnitudes up (keeps bumps alive), ``< 0`` is weight decay.
    support_p : float in (0, 1) or None, default=None
        Cut each bump where it falls below ``support_p``; None is exact.
    implementation : {"fast", "slow"}, default="fast"
        :class:`~skneuro.bumps.SumOfBumpFcns` or the memory-lean
        :class:`~skneuro.bumps.SlowSumOfBumpFcns`.
    fit_intercept : bool, default=True
        Learn the intercept β.
    solver : {"adam", "lbfgs"}, default="adam"
        Optimiser of the joint fit (gradient noise requires "adam").
    {engine_parameters}
    {early_stopping_parameters}

    Attributes
    ----------
    centers_ : ndarray of shape (n_bumps, n_features)
        Bump centers in input units, ordered by decreasing magnitude norm.
    widths_ : ndarray of shape (n_bumps, n_features)
        Positive bump widths in input units.
    magnitudes_ : ndarray of shape (n_bumps,) or (n_bumps, n_targets)
        Bump heights in target units.
    intercept_ : float or ndarray of shape (n_targets,)
        β in target units (0 when ``fit_intercept=False``).
    x_mean_, x_scale_ : ndarray of shape (n_features,)
        Standardisation of the inputs used by ``module_``.
    y_mean_, y_scale_ : ndarray of shape (n_targets,)
        Standardisation of the targets used by ``module_``.
    {engine_attributes}

    See Also
    --------
    sklearn.kernel_ridge.KernelRidge : Kernel regression with fixed kernel centers.
    skneuro.bumps.SumOfBumpFcns : The torch module fitted here.
    skneuro.latent_regression.MultiSubjectLatentRegressor : Uses sums of bumps to predict
        modes from neuron properties.

    References
    ----------
    .. [1] William Bishop (Janelia Research Campus), janelia_core,
       ``janelia_core.ml.wandering_modules`` (read at commit 5f52e5e): ``WanderingModule``,
       ``BumpFcn``, ``SumOfBumpFcns``, ``SlowSumOfBumpFcns``.

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.bumps import SumOfBumpsRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(size=(500, 2))
    >>> y = np.exp(-(((X - [0.3, 0.6]) / 0.2) ** 2).sum(1)) + 0.05 * rng.normal(size=500)
    >>> model = SumOfBumpsRegressor(n_bumps=3, random_state=0).fit(X, y)
    >>> bool(model.score(X, y) > 0.9), model.centers_.shape
    (True, (3, 2))
    """

    _parameter_constraints: dict = {
        "n_bumps": [Interval(Integral, 1, None, closed="left")],
        "init": [StrOptions({"kmeans++", "grid", "random"}), "array-like"],
        "width_init": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither"), "array-like"],
        "bounds": [None, "array-like"],
        "width_bounds": [None, "array-like"],
        "c_grad_std": [Interval(Real, 0, None, closed="left")],
        "w_grad_std": [Interval(Real, 0, None, closed="left")],
        "m_grad_gain": [Interval(Real, None, None, closed="neither")],
        "support_p": [None, Interval(Real, 0, 1, closed="neither")],
        "implementation": [StrOptions({"fast", "slow"})],
        "fit_intercept": ["boolean"],
        "solver": [StrOptions({"adam", "lbfgs"})],
        **engine_parameter_constraints(),
        **early_stopping_constraints(),
    }

    def __init__(
        self,
        n_bumps=10,
        *,
        init="kmeans++",
        width_init="auto",
        bounds=None,
        width_bounds=None,
        c_grad_std=0.0,
        w_grad_std=0.0,
        m_grad_gain=0.0,
        support_p=None,
        implementation="fast",
        fit_intercept=True,
        solver="adam",
        learning_rate=0.05,
        max_iter=300,
        batch_size=None,
        chunk_size=None,
        tol=1e-6,
        n_iter_no_change=20,
        early_stopping=False,
        validation_fraction=0.1,
        warm_start=False,
        device="cpu",
        dtype="float32",
        random_state=None,
        verbose=0,
        callback=None,
    ):
        self.n_bumps = n_bumps
        self.init = init
        self.width_init = width_init
        self.bounds = bounds
        self.width_bounds = width_bounds
        self.c_grad_std = c_grad_std
        self.w_grad_std = w_grad_std
        self.m_grad_gain = m_grad_gain
        self.support_p = support_p
        self.implementation = implementation
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.learning_rate = learning_rate
        self.max_iter = max_iter
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

    # ----------------------------------------------------------------- set-up
    def _check_settings(self, n_samples):
        if self.solver == "lbfgs":
            for name in ("c_grad_std", "w_grad_std", "m_grad_gain"):
                if getattr(self, name) != 0:
                    raise ValueError(
                        f"{name}={getattr(self, name)!r} needs solver='adam': gradient perturbations "
                        "break the L-BFGS line search."
                    )
        if self.n_bumps > n_samples:
            raise ValueError(f"n_bumps={self.n_bumps} must not exceed the number of samples, n_samples={n_samples}.")

    def _scaled_bounds(self, name, value, default, n_features, offset, scale, positive=False):
        if value is None:
            return default
        b = _float_array(name, value)
        if b.shape != (2, n_features):
            raise ValueError(f"{name} must have shape (2, n_features={n_features}); got {b.shape}.")
        if np.isnan(b).any() or (b[0] > b[1]).any() or (b[0] == np.inf).any() or (b[1] == -np.inf).any():
            raise ValueError(
                f"{name}: row 0 (lower) must not exceed row 1 (upper), no entry may be NaN, no lower bound +inf "
                "and no upper bound -inf."
            )
        if positive and (b[0] <= 0).any():
            raise ValueError(f"{name}: lower width bounds must be positive.")
        scaled = (b - offset) / scale
        finfo = np.finfo(self.dtype)
        if (np.abs(scaled[np.isfinite(scaled)]) > finfo.max).any():
            raise ValueError(f"{name}: finite bounds must lie within {finfo.dtype.name}'s range once standardised.")
        if positive and (scaled[0] < finfo.tiny).any():
            raise ValueError(f"{name}: lower width bounds are below {finfo.dtype.name}'s smallest positive number.")
        return scaled

    def _initial_centers(self, Xs, weights, c_bounds, numpy_gen, x_mean, x_scale):
        n, D = Xs.shape
        B = self.n_bumps
        if isinstance(self.init, str):
            if self.init == "kmeans++":
                seed = int(numpy_gen.integers(2**31 - 1))
                centers, _ = kmeans_plusplus(Xs, B, sample_weight=weights, random_state=seed)
                return centers
            if self.init == "random":
                candidates = np.flatnonzero(weights > 0)
                if candidates.size < B:
                    raise ValueError(
                        f"init='random' needs n_bumps={B} rows with positive sample_weight; got {candidates.size}."
                    )
                return Xs[numpy_gen.choice(candidates, size=B, replace=False)]
            g = int(np.ceil(B ** (1.0 / D) - 1e-9))
            lo, hi = c_bounds
            lo = np.where(np.isfinite(lo), lo, Xs.min(axis=0))
            hi = np.where(np.isfinite(hi), hi, Xs.max(axis=0))
            return lo + (hi - lo) * (_grid_cells(g, D, B, numpy_gen) + 0.5) / g
        centers = _float_array("init", self.init)
        if centers.shape != (B, D) or not np.isfinite(centers).all():
            raise ValueError(
                f"init must be 'kmeans++', 'grid', 'random' or a finite array of shape "
                f"(n_bumps={B}, n_features={D}); got shape {centers.shape}."
            )
        return (centers - x_mean) / x_scale

    def _initial_widths(self, centers, x_scale):
        B, D = centers.shape
        if isinstance(self.width_init, str):
            if B == 1:
                return np.ones((1, D))
            dist = np.sqrt(((centers[:, None, :] - centers[None, :, :]) ** 2).sum(-1))
            np.fill_diagonal(dist, np.inf)
            nearest = dist.min(axis=1)
            positive = nearest[(nearest > 0) & np.isfinite(nearest)]
            nearest = np.where(nearest > 0, nearest, positive.mean() if positive.size else 1.0)
            return np.repeat(nearest[:, None], D, axis=1)
        widths = _float_array("width_init", self.width_init)
        if widths.ndim == 0:
            return np.full((B, D), float(widths))
        if widths.shape != (B, D) or not np.isfinite(widths).all() or (widths <= 0).any():
            raise ValueError(
                f"width_init must be 'auto', a positive float or a positive array of shape "
                f"(n_bumps={B}, n_features={D}); got shape {widths.shape}."
            )
        return widths / x_scale

    def _least_squares(self, Xs, Ys, weights, centers, widths, kappa):
        """Magnitudes and intercept by ridge-stabilised weighted least squares (float64)."""
        B = centers.shape[0]
        cols = B + int(self.fit_intercept)
        gram = np.zeros((cols, cols))
        rhs = np.zeros((cols, Ys.shape[1]))
        for start in range(0, Xs.shape[0], _ROWS_PER_CHUNK):
            rows = slice(start, start + _ROWS_PER_CHUNK)
            design = _bump_activations(Xs[rows], centers, widths, kappa)
            if self.fit_intercept:
                design = np.hstack([design, np.ones((design.shape[0], 1))])
            weighted = design * weights[rows, None]
            gram += weighted.T @ design
            rhs += weighted.T @ Ys[rows]
        ridge = 1e-6 * np.trace(gram[:B, :B]) / B + 1e-12
        gram[np.arange(B), np.arange(B)] += ridge
        solution = np.linalg.lstsq(gram, rhs, rcond=None)[0]
        return solution[:B], (solution[B] if self.fit_intercept else np.zeros(Ys.shape[1]))

    def _new_module(self, Xs, Ys, weights, numpy_gen, device, dtype, x_mean, x_scale, multi_output):
        D = Xs.shape[1]
        present = Xs[weights > 0]  # a zero weight is a row left out
        lo, hi = present.min(axis=0), present.max(axis=0)
        c_bounds = self._scaled_bounds("bounds", self.bounds, np.stack([lo, hi]), D, x_mean, x_scale)
        w_bounds = self._scaled_bounds(
            "width_bounds", self.width_bounds, np.array([[1e-3] * D, [10.0] * D]), D, 0.0, x_scale, positive=True
        )
        centers = np.clip(
            self._initial_centers(Xs, weights, c_bounds, numpy_gen, x_mean, x_scale), c_bounds[0], c_bounds[1]
        )
        widths = np.clip(self._initial_widths(centers, x_scale), w_bounds[0], w_bounds[1])
        kappa = None if self.support_p is None else np.sqrt(-np.log(self.support_p))
        magnitudes, intercept = self._least_squares(Xs, Ys, weights, centers, widths, kappa)
        bump_class = SumOfBumpFcns if self.implementation == "fast" else SlowSumOfBumpFcns
        t = {"dtype": dtype}
        bumps = bump_class(
            torch.as_tensor(centers, **t),
            torch.as_tensor(widths, **t),
            torch.as_tensor(magnitudes if multi_output else magnitudes[:, 0], **t),
            c_bounds=torch.as_tensor(c_bounds, **t),
            w_bounds=torch.as_tensor(w_bounds, **t),
            c_grad_std=self.c_grad_std,
            w_grad_std=self.w_grad_std,
            m_grad_gain=self.m_grad_gain,
            support_p=self.support_p,
        )
        return BumpSumWithIntercept(bumps, intercept, fit_intercept=self.fit_intercept).to(device)

    # ---------------------------------------------------------------- fitting
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the bumps to data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : object
        """
        warm = self.warm_start and hasattr(self, "module_")
        X, y = named_validate_data(
            self, X, y, reset=not warm, multi_output=True, y_numeric=True, dtype=[np.float64, np.float32]
        )
        X = X.astype(np.float64, copy=False)
        y = y.astype(np.float64, copy=False)
        check_range("X", X, "float64")  # standardised in float64 first
        check_range("y", y, "float64")
        weights = named_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        train, held_out = self._validation_split(X.shape[0])
        validation = None
        if held_out is not None:
            validation = (X[held_out], Y[held_out], weights[held_out])
            X, Y, weights = X[train], Y[train], weights[train]
        if not weights.mean() > 0:
            raise ValueError("sample_weight of the training samples (those not held out for validation) sums to 0.")
        weights = weights / weights.mean()
        self._check_settings(X.shape[0])
        device, dtype = self._resolve_device_dtype()
        torch_gen, numpy_gen = make_generators(self.random_state)
        if warm:
            if self.module_.bumps.n_outputs != Y.shape[1] or self.module_.bumps.n_bumps != self.n_bumps:
                raise ValueError("warm_start=True needs the same n_bumps and number of targets as the previous fit.")
            if (y.ndim == 2) != self._multi_output:
                raise ValueError("warm_start=True needs y of the same number of dimensions as the previous fit.")
            multi_output = self._multi_output
            x_mean, x_scale, y_mean, y_scale = self.x_mean_, self.x_scale_, self.y_mean_, self.y_scale_
            module = self.module_.to(device=device, dtype=dtype)
        else:
            multi_output = y.ndim == 2
            x_mean, x_scale = _weighted_stats(X, weights)
            # without an intercept, subtracting the mean of y would act as one
            y_mean, y_scale = _weighted_stats(Y, weights, center=self.fit_intercept)
        Xs = (X - x_mean) / x_scale
        Ys = (Y - y_mean) / y_scale
        check_range("X (standardised with the sample weights)", Xs, self.dtype)
        check_range("y (standardised with the sample weights)", Ys, self.dtype)
        if not warm:
            module = self._new_module(Xs, Ys, weights, numpy_gen, device, dtype, x_mean, x_scale, multi_output)
        if validation is not None:
            X_val, Y_val, w_val = validation
            validation = ((X_val - x_mean) / x_scale, (Y_val - y_mean) / y_scale, w_val / weights.mean())
        result = self._train(module, Xs, Ys, weights, multi_output, torch_gen, dtype, validation)
        # Fitted attributes are set together, only once everything above has succeeded.
        self.device_, self._multi_output, self.module_ = device, multi_output, module
        self.x_mean_, self.x_scale_, self.y_mean_, self.y_scale_ = x_mean, x_scale, y_mean, y_scale
        self.loss_curve_, self.n_iter_, self.n_updates_ = result.loss_curve, result.n_iter, result.n_updates
        self._store_validation(result)
        self._store_attributes()
        return self

    def _train(self, module, Xs, Ys, weights, multi_output, torch_gen, dtype, validation=None):
        """Joint optimisation by the engine of the weighted mean squared error (standardised units)."""
        n_outputs = Ys.shape[1]

        def loss(m, xb, yb, wb):
            pred = m(xb)
            pred = pred if multi_output else pred[:, None]
            return (wb[:, None] * (yb - pred) ** 2).sum() / n_outputs

        return fit_module(
            module,
            loss,
            tuple(torch.as_tensor(a, dtype=dtype) for a in (Xs, Ys, weights)),
            generator=torch_gen,
            validation_data=None if validation is None else tuple(torch.as_tensor(a, dtype=dtype) for a in validation),
            **self._engine_options(),
        )

    def _store_attributes(self):
        """Map the module's parameters to input units and order the bumps canonically."""
        bumps = self.module_.bumps
        centers = self.x_mean_ + self.x_scale_ * to_numpy(bumps.c)
        widths = self.x_scale_ * np.abs(to_numpy(bumps.w))
        magnitudes = to_numpy(bumps.m).reshape(bumps.n_bumps, -1) * self.y_scale_
        intercept = self.y_mean_ + self.y_scale_ * to_numpy(self.module_.intercept)
        norms = np.sqrt((magnitudes**2).sum(axis=1))
        order = np.lexsort(tuple(centers[:, d] for d in reversed(range(centers.shape[1]))) + (-norms,))
        self._reorder(order)
        self.centers_, self.widths_ = centers[order], widths[order]
        magnitudes = magnitudes[order]
        self.magnitudes_ = magnitudes if self._multi_output else magnitudes[:, 0]
        self.intercept_ = intercept if self._multi_output else float(intercept[0])

    def _reorder(self, order):
        bumps = self.module_.bumps
        index = torch.as_tensor(order, device=self.device_)
        if isinstance(bumps, SlowSumOfBumpFcns):
            bumps.bump_fcns = torch.nn.ModuleList([bumps.bump_fcns[i] for i in order])
            return
        with torch.no_grad():
            for name in ("c", "w", "m"):
                param = getattr(bumps, name)
                param.copy_(param[index].clone())
            bumps.w.abs_()

    # ------------------------------------------------------------- prediction
    def bump_activations(self, X):
        """Activations ``φ_b(x)`` of every bump, without magnitudes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_bumps)
        """
        check_is_fitted(self)
        X = named_validate_data(self, X, reset=False, dtype=[np.float64, np.float32]).astype(np.float64, copy=False)
        kappa = None if self.support_p is None else np.sqrt(-np.log(self.support_p))
        return (
            np.vstack(
                [
                    _bump_activations(X[start : start + _ROWS_PER_CHUNK], self.centers_, self.widths_, kappa)
                    for start in range(0, max(X.shape[0], 1), _ROWS_PER_CHUNK)
                ]
            )
            if X.shape[0]
            else np.zeros((0, self.centers_.shape[0]))
        )

    def predict(self, X):
        """``intercept_ + Σ_b magnitudes_[b] φ_b(X)`` in float64.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_targets)
        """
        return self.bump_activations(X) @ self.magnitudes_ + self.intercept_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

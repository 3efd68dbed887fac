"""Estimator checks: the expected sklearn failures, and our suite for 3-D and list input.

``tests/test_common.py`` passes :data:`EXPECTED_FAILED_CHECKS` to
:func:`sklearn.utils.estimator_checks.parametrize_with_checks` as ``expected_failed_checks``
(at most two entries per estimator, each with its reason).

sklearn's checks feed 2-D arrays. Estimators on trials ``(n_trials, n_steps, n_features)``
or on a list of :class:`~skneuro.latent_regression.SubjectData` run the replacement suite
below instead, over the same ground (clone, get/set_params, pickling, idempotent fit,
not-fitted error, bad shapes, NaN, unchanged inputs, ``GridSearchCV``,
``cross_val_score``): :func:`check_estimator_nd` yields ``(estimator, check)`` pairs and
:func:`parametrize_with_checks_nd` turns them into a pytest parametrization, as
:func:`~sklearn.utils.estimator_checks.parametrize_with_checks` does. The data of each
estimator is passed in, as a :class:`TrialData` or a :class:`SubjectListData`.
"""

from __future__ import annotations

import copy
import inspect
import pickle
import re
import warnings
from functools import partial
from unittest import SkipTest

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

__all__ = [
    "EXPECTED_FAILED_CHECKS",
    "expected_failed_checks",
    "TrialData",
    "SubjectListData",
    "assert_same",
    "check_estimator_nd",
    "parametrize_with_checks_nd",
]

EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {
    "SumOfBumpsRegressor": {
        "check_sample_weight_equivalence_on_dense_data": (
            "the seeded k-means++ center initialisation draws differently from weighted rows than "
            "from repeated rows, and float32 Adam amplifies the rounding differences beyond the "
            "check's rtol=1e-7 (with a deterministic init in float64 the fits agree to ~1e-8)"
        ),
    },
}

#: Absolute tolerance of every "the same numbers" assertion of the suite.
ATOL = 1e-12

#: Output methods called with ``X`` alone wherever an estimator has them.
OUTPUT_METHODS = ("predict", "transform", "predict_states", "simulate")


def expected_failed_checks(estimator) -> dict[str, str]:
    """Expected failures of ``estimator``'s class (an empty dict for most).

    Examples
    --------
    >>> from skneuro.utils.estimator_checks import expected_failed_checks
    >>> from skneuro.reduced_rank import RRLinearRegressor
    >>> expected_failed_checks(RRLinearRegressor())
    {}
    """
    return dict(EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {}))


# ====================================================================== data
class TrialData:
    """Trials for the checks: ``X (n_trials, n_steps, n_inputs)``, ``y``, and an output mask.

    Parameters
    ----------
    X : ndarray of shape (n_trials, n_steps, n_inputs)
    y : ndarray of shape (n_trials, n_steps, n_outputs)
    sample_weight : ndarray of shape (n_trials, n_steps, n_outputs) or None, default=None
        The output mask, passed to ``fit`` (and ``cross_val_score``/``GridSearchCV``).
    param_grid : dict
        A small grid for ``GridSearchCV`` (two values of one parameter).
    cv : int or cross-validation generator, default=2
    method_args : dict of str to tuple, default=None
        Further methods and their positional arguments that need a fitted estimator (for
        example ``{"get_weights": ()}``): each must raise ``NotFittedError`` before fit and
        give the same result after pickling.

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.utils.estimator_checks import TrialData
    >>> X = np.zeros((4, 3, 2))
    >>> TrialData(X, X, param_grid={"n_rec": [3, 4]}).n_features_in
    2
    """

    def __init__(self, X, y, sample_weight=None, *, param_grid, cv=2, method_args=None):
        self.X, self.y, self.sample_weight = X, y, sample_weight
        self.param_grid, self.cv = param_grid, cv
        self.method_args = dict(method_args or {})

    @property
    def n_features_in(self):
        return self.X.shape[2]

    @property
    def fit_params(self):
        return {} if self.sample_weight is None else {"sample_weight": self.sample_weight}

    def inputs(self):
        """Everything the estimator is handed, to compare before and after."""
        return (self.X, self.y, self.sample_weight)

    def _with(self, what, index, value):
        arrays = {"X": self.X.copy(), "y": self.y.copy(), "sample_weight": self.sample_weight}
        if arrays["sample_weight"] is None:
            arrays["sample_weight"] = np.ones_like(self.y)
        arrays[what] = arrays[what].copy()
        arrays[what][index] = value
        return arrays["X"], arrays["y"], {"sample_weight": arrays["sample_weight"]}

    def bad_fit_shapes(self):
        """``(name, X, y, fit_params, error, match)`` of data ``fit`` must refuse."""
        X, y, fp = self.X, self.y, self.fit_params
        cases = [
            ("X 2-D", X[:, :, 0], y, fp, ValueError, "X"),
            ("y 2-D", X, y[:, :, 0], fp, ValueError, "y"),
            ("fewer trials in y", X, y[:-1], {}, ValueError, "X and y"),
            ("fewer steps in y", X, y[:, :-1], {}, ValueError, "X and y"),
        ]
        mask = np.ones_like(y) if self.sample_weight is None else self.sample_weight
        cases += [
            ("mask steps", X, y, {"sample_weight": mask[:, :-1]}, ValueError, "sample_weight"),
            ("mask all zero", X, y, {"sample_weight": np.zeros_like(mask)}, ValueError, "sample_weight"),
            ("mask negative", *self._with("sample_weight", (0, 1, 0), -1.0), ValueError, "sample_weight"),
        ]
        return cases

    def bad_predict_shapes(self):
        """``(name, X, error, match)`` that a fitted estimator's ``predict`` must refuse."""
        return [
            ("X with a feature less", self.X[:, :, :-1], ValueError, "X"),
            ("X 2-D", self.X[:, :, 0], ValueError, "X"),
        ]

    def bad_score_inputs(self):
        """``(name, X, y, score_params, error, match)`` that a fitted estimator's ``score`` must refuse."""
        return [("mask negative", *self._with("sample_weight", (0, 1, 0), -1.0), ValueError, "sample_weight")]

    def nonfinite_fit(self, value):
        """``(name, X, y, fit_params, match)`` with ``value`` (NaN or inf) somewhere."""
        return [
            ("X", *self._with("X", (0, 0, 0), value), "X"),
            ("y", *self._with("y", (1, 1, 0), value), "y"),
            ("sample_weight", *self._with("sample_weight", (0, 1, 0), value), "sample_weight"),
        ]

    def nonfinite_predict(self, value):
        """``(name, X, match)`` with ``value`` in ``X``."""
        return [("X", self._with("X", (0, 0, 0), value)[0], "X")]

    def nonfinite_construction(self, value):
        """``(match, make)``: input containers whose constructor must refuse ``value`` (none for arrays)."""
        return []


class SubjectListData:
    """Subjects for the checks: ``X`` a list of ``SubjectData``, ``y`` a list of output arrays.

    Each subject is one sample for scikit-learn (``cv=LeaveOneOut()`` leaves one subject out).
    The methods that build bad data are those of :class:`TrialData`, for subjects.

    Parameters
    ----------
    X : list of SubjectData
    y : list of ndarray
        One ``(n_samples, n_outputs)`` array per subject.
    param_grid : dict
        A small grid for ``GridSearchCV``.
    cv : int or cross-validation generator, default=None
        None: ``LeaveOneOut()``.
    method_args : dict of str to tuple, default=None
        As in :class:`TrialData` (for example ``{"predict_modes": (X[0],)}``).

    Examples
    --------
    >>> from skneuro.datasets import make_multi_subject_latent_regression
    >>> from skneuro.utils.estimator_checks import SubjectListData
    >>> X, y = make_multi_subject_latent_regression(3, 20, random_state=0)
    >>> data = SubjectListData(X, y, param_grid={"n_components": [1, 2]})
    >>> data.n_features_in is None, len(data.bad_fit_shapes()) > 0
    (True, True)
    """

    n_features_in = None

    @property
    def fit_params(self):
        return {}

    def __init__(self, X, y, *, param_grid, cv=None, method_args=None):
        from sklearn.model_selection import LeaveOneOut

        self.X, self.y = list(X), list(y)
        self.param_grid = param_grid
        self.cv = LeaveOneOut() if cv is None else cv
        self.method_args = dict(method_args or {})

    def inputs(self):
        return (self.X, [s.x for s in self.X], [s.input_properties for s in self.X], self.y)

    def _subject(self, subject, **changes):
        from skneuro.latent_regression import SubjectData

        values = {
            "subject_id": subject.subject_id,
            "x": subject.x,
            "input_properties": subject.input_properties,
            "output_properties": subject.output_properties,
        }
        return SubjectData(**{**values, **changes})

    def bad_fit_shapes(self):
        X, y = self.X, self.y
        return [
            ("X not a list", X[0], y, {}, TypeError, "X must be a list of SubjectData"),
            ("X of arrays", [s.x for s in X], y, {}, TypeError, "X must be a list of SubjectData"),
            ("fewer y than subjects", X, y[:-1], {}, ValueError, "one entry per subject"),
            ("y rows", X, [y[0][:-1], *y[1:]], {}, ValueError, r"y\[0\] of subject"),
            ("y columns", X, [y[0][:, :-1], *y[1:]], {}, ValueError, r"y\[0\] of subject"),
            ("no subjects", [], [], {}, ValueError, "subject"),
        ]

    def bad_predict_shapes(self):
        first = self.X[0]
        fewer = self._subject(
            first,
            input_properties=first.input_properties[:, :-1],
            output_properties=first.output_properties[:, :-1],
        )
        return [
            ("X not a list", first, TypeError, "X must be a list of SubjectData"),
            ("properties per neuron", [fewer], ValueError, "properties per neuron"),
        ]

    def bad_score_inputs(self):
        return [("fewer y than subjects", self.X, self.y[:-1], {}, ValueError, "one entry per subject")]

    def nonfinite_fit(self, value):
        y = [a.copy() for a in self.y]
        y[1][1, 0] = value
        return [("y", self.X, y, {}, r"y\[0\] of subject")]

    def nonfinite_predict(self, value):
        return []

    def nonfinite_construction(self, value):
        """``SubjectData`` itself refuses NaN and inf in x and in the properties."""
        first = self.X[0]
        out = []
        for field in ("x", "input_properties", "output_properties"):
            arr = np.array(getattr(first, field), dtype=float)
            arr[0, 0] = value
            out.append((field, partial(self._subject, first, **{field: arr})))
        return out


# ============================================================= helpers
def _require(condition, message):
    """``assert`` that survives ``python -O``."""
    if not condition:
        raise AssertionError(message)


def _fit(estimator, data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning of tiny max_iter
        return estimator.fit(data.X, data.y, **data.fit_params)


def _fitted_attributes(estimator):
    return {k: v for k, v in vars(estimator).items() if k.endswith("_") and not k.startswith("_")}


def _as_numpy(value):
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().cpu().double().numpy()
    return value


def assert_same(a, b, *, atol=ATOL, where="value"):
    """Assert that two results hold the same numbers (to ``atol``), recursing into containers.

    Arrays, tensors, lists, tuples (named tuples too), dicts and torch modules (by
    ``state_dict``) are compared entry by entry; anything else with ``==``.

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.utils.estimator_checks import assert_same
    >>> assert_same({"w": np.ones(2)}, {"w": np.ones(2) + 1e-14})
    >>> assert_same([1.0], [1.1])
    Traceback (most recent call last):
    ...
    AssertionError: value[0]: 1.0 != 1.1
    """
    import torch

    if isinstance(a, torch.nn.Module):
        a, b = a.state_dict(), b.state_dict()
    a, b = _as_numpy(a), _as_numpy(b)
    if isinstance(a, dict):
        _require(isinstance(b, dict) and list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}")
        for key in a:
            assert_same(a[key], b[key], atol=atol, where=f"{where}[{key!r}]")
    elif isinstance(a, list | tuple):
        _require(type(a) is type(b) and len(a) == len(b), f"{where}: {type(a).__name__} of {len(a)} != {b!r:.80}")
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, atol=atol, where=f"{where}[{i}]")
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        _require(a.shape == b.shape, f"{where}: shape {a.shape} != {b.shape}")
        if np.issubdtype(a.dtype, np.number) or a.dtype == bool:
            np.testing.assert_allclose(a, b, rtol=0, atol=atol, err_msg=where)
        else:
            np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, float) and isinstance(b, float):
        _require(abs(a - b) <= atol or (np.isnan(a) and np.isnan(b)), f"{where}: {a!r} != {b!r}")
    else:
        _require(a == b, f"{where}: {a!r} != {b!r}")


def _outputs(estimator, data):
    """Every output method's result on ``data.X`` (noise-free or seeded), by name."""
    out = {}
    for name in OUTPUT_METHODS:
        method = getattr(estimator, name, None)
        if method is None:
            continue
        out[name] = method(data.X, random_state=0) if name == "simulate" else method(data.X)
    out["score"] = estimator.score(data.X, data.y, **data.fit_params)
    for name, args in data.method_args.items():
        out[name] = getattr(estimator, name)(*args)
    return out


def _raises(error, match, func, *args, **kwargs):
    try:
        func(*args, **kwargs)
    except error as exc:
        _require(re.search(match, str(exc)), f"{type(exc).__name__} {str(exc)!r} does not match {match!r}")
        return exc
    raise AssertionError(f"{getattr(func, '__name__', func)} did not raise {error.__name__} ({match!r})")


# ============================================================== the checks
def check_init_stores_params(estimator, data):
    """``__init__`` stores every parameter as given (the same object, even an invalid one), nothing else.

    Validation belongs to ``fit``: ``__init__`` must accept any value, here a bare
    ``object()`` for every parameter.
    """
    params = estimator.get_params(deep=False)
    _require(
        set(params) == set(inspect.signature(type(estimator)).parameters),
        "get_params() does not list the __init__ parameters",
    )
    for given in (params, {name: object() for name in params}):
        twin = type(estimator)(**given)
        for name, value in given.items():
            _require(getattr(twin, name) is value, f"__init__ changed {name}")
        _require(not _fitted_attributes(twin), f"__init__ set {sorted(_fitted_attributes(twin))}")


def check_clone(estimator, data):
    """A clone, of the unfitted or the fitted estimator, has equal parameters and is unfitted."""
    params = estimator.get_params()
    twin = clone(estimator)
    _require(twin is not estimator, "clone returned the estimator itself")
    assert_same(twin.get_params(), params, where="clone.get_params()")
    fitted = _fit(clone(estimator), data)
    fresh = clone(fitted)
    assert_same(fresh.get_params(), fitted.get_params(), where="clone(fitted).get_params()")
    _require(not _fitted_attributes(fresh), f"clone kept {sorted(_fitted_attributes(fresh))}")
    _raises(NotFittedError, "", fresh.predict, data.X)


def check_get_set_params(estimator, data):
    """``set_params(**get_params())`` round-trips, returns self, and refuses unknown names."""
    est = clone(estimator)
    params = est.get_params()
    _require(est.set_params(**params) is est, "set_params did not return self")
    assert_same(est.get_params(), params, where="get_params()")
    name, values = next(iter(data.param_grid.items()))
    est.set_params(**{name: values[-1]})
    _require(getattr(est, name) == values[-1] == est.get_params()[name], f"set_params({name}=...) not stored")
    _raises(ValueError, "Invalid parameter", est.set_params, no_such_parameter=1)


def check_fit_returns_self(estimator, data):
    """``fit`` returns the estimator and sets ``n_iter_``, a finite ``loss_curve_``, ``n_features_in_``."""
    est = clone(estimator)
    _require(_fit(est, data) is est, "fit did not return self")
    for name in ("n_iter_", "loss_curve_", "module_"):
        _require(hasattr(est, name), f"fit did not set {name}")
    _require(est.n_iter_ == len(est.loss_curve_) >= 1, "n_iter_ != len(loss_curve_), or no iteration")
    _require(np.isfinite(est.loss_curve_).all(), "loss_curve_ is not finite")
    if data.n_features_in is not None:
        _require(
            est.n_features_in_ == data.n_features_in,
            f"n_features_in_ is {est.n_features_in_}, X has {data.n_features_in}",
        )


def check_not_fitted(estimator, data):
    """Every output method, ``score`` and the listed methods raise ``NotFittedError`` before fit."""
    est = clone(estimator)
    calls = [(name, (data.X,)) for name in OUTPUT_METHODS if hasattr(est, name)]
    calls += [("score", (data.X, data.y)), *data.method_args.items()]
    for name, args in calls:
        _raises(NotFittedError, "", getattr(est, name), *args)


def check_fit_idempotent(estimator, data):
    """Fitting twice gives the same loss curve, fitted attributes and outputs (to 1e-12)."""
    est = _fit(clone(estimator), data)
    first, outputs = copy.deepcopy(_fitted_attributes(est)), _outputs(est, data)
    _fit(est, data)
    assert_same(_fitted_attributes(est), first, where="fitted attributes")
    assert_same(_outputs(est, data), outputs, where="outputs")


def check_random_state(estimator, data):
    """The same ``random_state`` gives the same fit; another seed gives other predictions."""
    seed = estimator.get_params().get("random_state")
    seed = 0 if seed is None else seed
    a = _fit(clone(estimator).set_params(random_state=seed), data)
    b = _fit(clone(estimator).set_params(random_state=seed), data)
    assert_same(_fitted_attributes(a), _fitted_attributes(b), where="fitted attributes")
    assert_same(_outputs(a, data), _outputs(b, data), where="outputs")
    c = _fit(clone(estimator).set_params(random_state=seed + 1), data)
    try:
        assert_same(a.predict(data.X), c.predict(data.X), atol=0)
    except AssertionError:
        return
    raise AssertionError(f"random_state={seed} and {seed + 1} gave the same predictions")


def check_global_random_state_untouched(estimator, data):
    """Fit, predict and simulate draw from local generators only (also with ``random_state=None``)."""
    import torch

    for seed in (estimator.get_params().get("random_state"), None):
        np.random.seed(123)
        torch.manual_seed(123)
        np_state, torch_state = np.random.get_state(), torch.get_rng_state().clone()
        est = _fit(clone(estimator).set_params(random_state=seed), data)
        _outputs(est, data)
        after = np.random.get_state()
        _require(np.array_equal(after[1], np_state[1]) and after[2] == np_state[2], "numpy's global state moved")
        _require(torch.equal(torch.get_rng_state(), torch_state), "torch's global state moved")


def check_pickle_roundtrip(estimator, data):
    """Pickling and deep-copying keep parameters, every fitted attribute and every output (to 1e-12)."""
    est = _fit(clone(estimator), data)
    outputs = _outputs(est, data)
    for how, twin in (("pickle", pickle.loads(pickle.dumps(est))), ("deepcopy", copy.deepcopy(est))):
        assert_same(twin.get_params(), est.get_params(), where=f"{how}: get_params()")
        assert_same(_fitted_attributes(twin), _fitted_attributes(est), where=f"{how}: fitted attributes")
        assert_same(_outputs(twin, data), outputs, where=f"{how}: outputs")


def check_cuda_pickle_maps_to_cpu(estimator, data):
    """A state pickled on a GPU machine loads on a CPU-only one, with a warning, same outputs."""
    import torch

    if torch.cuda.is_available():
        raise SkipTest("a GPU is present: nothing to map")
    est = _fit(clone(estimator), data)
    state = est.__getstate__()
    state["device_"] = "cuda:0"  # as pickled on a GPU machine
    moved = type(est).__new__(type(est))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        moved.__setstate__(state)
    _require(any("mapped to 'cpu'" in str(w.message) for w in caught), "no warning about the device")
    _require(moved.device_ == torch.device("cpu"), "device_ is not the CPU")
    assert_same(_outputs(moved, data), _outputs(est, data), where="outputs")


def check_float64_outputs(estimator, data):
    """With ``dtype="float32"`` training, outputs are float64 and ``score`` a Python float."""
    est = _fit(clone(estimator).set_params(dtype="float32"), data)

    def arrays(value):
        if isinstance(value, np.ndarray):
            yield value
        elif isinstance(value, list | tuple):
            for v in value:
                yield from arrays(v)

    for name in OUTPUT_METHODS:
        if hasattr(est, name):
            result = getattr(est, name)(data.X)
            found = list(arrays(result))
            _require(found and all(a.dtype == np.float64 for a in found), f"{name} is not float64")
    _require(isinstance(est.score(data.X, data.y, **data.fit_params), float), "score is not a float")


def check_inputs_unchanged(estimator, data):
    """``fit``, the output methods and ``score`` leave every input object and value as it was."""
    before = copy.deepcopy(data.inputs())
    objects = [id(a) for a in _leaves(data.inputs())]
    est = _fit(clone(estimator), data)
    _outputs(est, data)
    _require([id(a) for a in _leaves(data.inputs())] == objects, "an input object was replaced")
    dtypes = [getattr(a, "dtype", None) for a in _leaves(_comparable(data.inputs()))]
    _require(dtypes == [getattr(a, "dtype", None) for a in _leaves(_comparable(before))], "an input changed dtype")
    assert_same(_comparable(data.inputs()), _comparable(before), atol=0, where="inputs")


def _leaves(value):
    if isinstance(value, list | tuple):
        for v in value:
            yield from _leaves(v)
    elif value is not None:
        yield value


def _comparable(value):
    """Input containers with ``SubjectData`` replaced by its arrays."""
    if isinstance(value, list | tuple):
        return [_comparable(v) for v in value]
    if hasattr(value, "input_properties"):
        return [value.subject_id, value.x, value.input_properties, value.output_properties]
    return value


def check_warm_start(estimator, data):
    """``warm_start=True`` continues from the fitted module; without it a refit starts over.

    Training noise (parameters ending in ``_noise``) is switched off, so that the first loss
    of the second fit can be compared with the last of the first.
    """
    quiet = {name: 0.0 for name in estimator.get_params(deep=False) if name.endswith("_noise")}
    estimator = clone(estimator).set_params(**quiet)
    est = _fit(clone(estimator).set_params(warm_start=True), data)
    module, last, first = est.module_, est.loss_curve_[-1], copy.deepcopy(_fitted_attributes(est))
    _fit(est, data)
    _require(est.module_ is module, "a warm-started fit replaced module_")
    if "n_updates_" in first:  # the optimizer steps of the latest fit (project-wide convention)
        _require(est.n_updates_ == first["n_updates_"], f"n_updates_ {est.n_updates_} != {first['n_updates_']}")
    _require(est.loss_curve_[0] <= last + 1e-6, "the second fit did not start where the first ended")
    cold = _fit(clone(estimator).set_params(warm_start=False), data)
    first.pop("module_")
    assert_same({k: v for k, v in _fitted_attributes(cold).items() if k in first}, first, where="cold refit")


def check_bad_shapes(estimator, data):
    """Data of the wrong shape raises an error naming the argument, and leaves the estimator unfitted."""
    for name, X, y, fit_params, error, match in data.bad_fit_shapes():
        est = clone(estimator)
        try:
            _raises(error, match, est.fit, X, y, **fit_params)
        except AssertionError as exc:
            raise AssertionError(f"fit with {name}: {exc}") from None
        _require(not _fitted_attributes(est), f"a failed fit ({name}) left {sorted(_fitted_attributes(est))}")
    fitted = _fit(clone(estimator), data)
    for name, X, error, match in data.bad_predict_shapes():
        try:
            _raises(error, match, fitted.predict, X)
        except AssertionError as exc:
            raise AssertionError(f"predict with {name}: {exc}") from None
    for name, X, y, params, error, match in data.bad_score_inputs():
        try:
            _raises(error, match, fitted.score, X, y, **params)
        except AssertionError as exc:
            raise AssertionError(f"score with {name}: {exc}") from None


def check_nan_rejected(estimator, data):
    """NaN and inf in any input raise a ``ValueError`` naming it, at fit and at predict."""
    fitted = _fit(clone(estimator), data)
    for value in (np.nan, np.inf):
        for name, X, y, fit_params, match in data.nonfinite_fit(value):
            try:
                _raises(ValueError, match, clone(estimator).fit, X, y, **fit_params)
            except AssertionError as exc:
                raise AssertionError(f"fit with {value} in {name}: {exc}") from None
        for name, X, match in data.nonfinite_predict(value):
            try:
                _raises(ValueError, match, fitted.predict, X)
            except AssertionError as exc:
                raise AssertionError(f"predict with {value} in {name}: {exc}") from None
        for name, make in data.nonfinite_construction(value):
            try:
                _raises(ValueError, name, make)
            except AssertionError as exc:
                raise AssertionError(f"building data with {value} in {name}: {exc}") from None


def check_in_cross_val_score(estimator, data):
    """``cross_val_score`` gives one finite score per fold, each the fold estimator's own ``score``."""
    from sklearn.model_selection import check_cv, cross_val_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = cross_val_score(clone(estimator), data.X, data.y, cv=data.cv, params=data.fit_params)
    folds = list(check_cv(data.cv).split(data.X))
    _require(
        scores.shape == (len(folds),) and np.isfinite(scores).all(),
        f"scores {scores} are not one finite value per fold",
    )
    train, test = folds[0]
    pick = (lambda a, idx: [a[i] for i in idx]) if isinstance(data.X, list) else (lambda a, idx: a[idx])
    fold = clone(estimator)
    fold_params = {k: pick(v, train) for k, v in data.fit_params.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fold.fit(pick(data.X, train), pick(data.y, train), **fold_params)
    expected = fold.score(pick(data.X, test), pick(data.y, test))
    _require(abs(scores[0] - expected) <= 1e-10, f"fold 0 scored {scores[0]}, its estimator {expected}")


def check_in_gridsearch(estimator, data):
    """``GridSearchCV`` runs over ``data.param_grid`` and refits the best on all the data."""
    from sklearn.model_selection import GridSearchCV

    search = GridSearchCV(clone(estimator), data.param_grid, cv=data.cv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search.fit(data.X, data.y, **data.fit_params)
    name, values = next(iter(data.param_grid.items()))
    _require(search.best_params_[name] in values, f"best_params_ {search.best_params_} not in the grid")
    _require(np.isfinite(search.cv_results_["mean_test_score"]).all(), "GridSearchCV test scores are not finite")
    best = _fit(clone(estimator).set_params(**search.best_params_), data)
    assert_same(search.predict(data.X), best.predict(data.X), where="best_estimator_ predictions")


CHECKS = (
    check_init_stores_params,
    check_clone,
    check_get_set_params,
    check_fit_returns_self,
    check_not_fitted,
    check_fit_idempotent,
    check_random_state,
    check_global_random_state_untouched,
    check_pickle_roundtrip,
    check_cuda_pickle_maps_to_cpu,
    check_float64_outputs,
    check_inputs_unchanged,
    check_warm_start,
    check_bad_shapes,
    check_nan_rejected,
    check_in_cross_val_score,
    check_in_gridsearch,
)


# ============================================================== entry points
def check_estimator_nd(estimator, data):
    """The replacement check suite of an estimator on 3-D or list input, as ``(estimator, check)`` pairs.

    Each check is called as ``check(estimator)``, works on clones, and raises
    ``AssertionError`` (or ``unittest.SkipTest``) when the estimator breaks the contract.

    Parameters
    ----------
    estimator : estimator instance
        A small configuration (few units, ``max_iter`` 1-3): every check fits it a few times.
    data : TrialData or SubjectListData, or a callable returning one
        The data the checks fit and predict on.

    Yields
    ------
    estimator : estimator instance
    check : callable
        ``functools.partial`` of a check function with ``data`` bound; its ``func.__name__``
        names the check.

    See Also
    --------
    parametrize_with_checks_nd : The same pairs as a pytest parametrization.
    sklearn.utils.estimator_checks.check_estimator : sklearn's suite for 2-D estimators.

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.rnn import RateRNNRegressor
    >>> from skneuro.utils.estimator_checks import TrialData, check_estimator_nd
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(8, 5, 2)); y = np.cumsum(X, axis=1) / 10
    >>> data = TrialData(X, y, param_grid={"n_rec": [3, 4]})
    >>> rnn = RateRNNRegressor(n_rec=3, max_iter=1, batch_size=4, random_state=0)
    >>> for est, check in check_estimator_nd(rnn, data):
    ...     check(est)
    >>> [check.func.__name__ for _, check in check_estimator_nd(rnn, data)][:3]
    ['check_init_stores_params', 'check_clone', 'check_get_set_params']
    """
    if callable(data) and not hasattr(data, "param_grid"):
        data = data()
    for check in CHECKS:
        yield estimator, partial(check, data=data)


def _estimator_id(estimator):
    return re.sub(r"\s", "", str(estimator))


def parametrize_with_checks_nd(cases):
    """A pytest decorator running the replacement suite over ``(estimator, data)`` cases.

    The 3-D and list-input counterpart of
    :func:`sklearn.utils.estimator_checks.parametrize_with_checks`: the decorated test
    receives ``estimator`` and ``check`` and calls ``check(estimator)``.

    Parameters
    ----------
    cases : list of (estimator, data)
        ``data`` is a :class:`TrialData`, a :class:`SubjectListData` or a callable
        returning one (built once, when the test module is collected).

    Returns
    -------
    decorator : pytest.mark.parametrize
        With ids ``"<estimator repr>-<check name>"``.

    See Also
    --------
    check_estimator_nd : The generator of ``(estimator, check)`` pairs.

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.rnn import RateRNNRegressor
    >>> from skneuro.utils.estimator_checks import TrialData, parametrize_with_checks_nd
    >>> X = np.random.default_rng(0).normal(size=(8, 5, 2))
    >>> data = TrialData(X, np.cumsum(X, axis=1) / 10, param_grid={"n_rec": [3, 4]})
    >>> @parametrize_with_checks_nd([(RateRNNRegressor(n_rec=3, max_iter=1), data)])
    ... def test_nd_estimators(estimator, check):
    ...     check(estimator)
    """
    import pytest

    pairs = [pair for estimator, data in cases for pair in check_estimator_nd(estimator, data)]
    ids = [f"{_estimator_id(est)}-{check.func.__name__}" for est, check in pairs]
    return pytest.mark.parametrize("estimator, check", pairs, ids=ids)

"""Input checks whose errors name the argument at fault.

scikit-learn's ``validate_data`` and ``_check_sample_weight`` explain *what* is wrong
("Complex data not supported", "inconsistent numbers of samples") but not always *which*
argument; these wrappers find the culprit and put its name first. ``check_range`` rejects
finite values that training in a given precision cannot represent (their squares overflow,
or the data's spread underflows), instead of letting the fit fail later with a message that
names nothing.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.utils.validation import _check_sample_weight, check_array, validate_data

__all__ = [
    "NamedScoreMixin",
    "check_numeric",
    "check_param_ranges",
    "check_range",
    "check_spread_extremes",
    "named_sample_weight",
    "named_validate_data",
]


def check_numeric(name, value):
    """``value`` as a real, finite numeric array (bool allowed); errors start with ``name``.

    Examples
    --------
    >>> from skneuro.utils._validation import check_numeric
    >>> check_numeric("X", [[1, 2]]).shape
    (1, 2)
    >>> try:
    ...     check_numeric("X", [["a"]])
    ... except TypeError as exc:
    ...     print(exc)
    X must be a numeric array; got dtype <U1.
    """
    try:
        arr = np.asarray(value)
    except Exception as exc:  # noqa: BLE001 - any conversion failure is bad input
        raise TypeError(f"{name} must be a numeric array; got {type(value).__name__}.") from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be a numeric array; got dtype {arr.dtype}.")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real; got dtype {arr.dtype}.")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinity.")
    return arr


def _prefixed(exc, name):
    message = str(exc)
    if message.startswith(f"{name}:") or message.startswith(f"{name} "):
        return exc
    cls = TypeError if isinstance(exc, TypeError) else ValueError
    return cls(f"{name}: {message}")


def named_validate_data(estimator, X, y="no_validation", **kwargs):
    """``sklearn.utils.validation.validate_data`` whose errors start with ``X:``, ``y:`` or ``X and y:``."""
    try:
        out = validate_data(estimator, X, y, **kwargs)
    except (ValueError, TypeError) as exc:
        if isinstance(y, str) and y == "no_validation":
            raise _prefixed(exc, "X") from exc
        keys = ("dtype", "ensure_all_finite", "ensure_min_samples", "ensure_min_features")
        x_kwargs = {k: v for k, v in kwargs.items() if k in keys}
        try:
            check_array(X, **x_kwargs, input_name="X")
        except (ValueError, TypeError):
            raise _prefixed(exc, "X") from exc
        try:
            check_array(y, ensure_2d=False, dtype=np.float64 if kwargs.get("y_numeric") else None, input_name="y")
        except (ValueError, TypeError):
            raise _prefixed(exc, "y") from exc
        if "feature" in str(exc):  # the number or names of X's columns against the fitted ones
            raise _prefixed(exc, "X") from exc
        raise _prefixed(exc, "X and y") from exc
    if isinstance(y, str) and y == "no_validation":
        return out
    X_out, y_out = out
    if kwargs.get("y_numeric"):
        # sklearn converts only object-dtype y; strings, and None inside objects, must fail by name
        y_out = np.asarray(y_out)
        keep = kwargs.get("dtype")
        if isinstance(keep, (list, tuple)) and y_out.dtype in keep and _float_typed(y):
            return X_out, y_out  # float y checked finite by scikit-learn: not copied (float32 stays float32)
        try:
            y_out = y_out.astype(np.float64)
        except (ValueError, TypeError) as exc:
            raise _prefixed(exc, "y") from exc
        if not np.isfinite(y_out).all():
            raise ValueError("y: contains NaN, infinity or missing values (None).")
    return X_out, y_out


def _float_typed(y) -> bool:
    """Whether ``y`` (array, Series, DataFrame, tensor) holds floats only: nothing scikit-learn converted."""
    dtypes = getattr(y, "dtypes", None)
    if dtypes is not None and not hasattr(y, "dtype"):  # a data frame
        return all(str(dt) in ("float32", "float64") for dt in dtypes)
    return str(getattr(y, "dtype", "")).replace("torch.", "") in ("float32", "float64")


def named_sample_weight(sample_weight, X, **kwargs):
    """``_check_sample_weight`` whose errors start with ``sample_weight:``; also rescaled to max 1.

    Rescaling by the largest weight changes nothing in a weighted fit and keeps sums of huge
    weights finite.
    """
    try:
        weights = _check_sample_weight(sample_weight, X, **kwargs)
    except (ValueError, TypeError) as exc:
        raise _prefixed(exc, "sample_weight") from exc
    top = float(np.max(weights)) if weights.size else 0.0
    if not top > 0:
        raise ValueError("sample_weight must contain at least one positive weight.")
    return weights / top


def _limit(dtype):
    """Largest magnitude whose square the dtype represents."""
    return float(np.sqrt(np.finfo(dtype).max))


def check_range(name, values, dtype="float32"):
    """Reject finite values that training in ``dtype`` cannot represent.

    Values whose squares overflow ``dtype`` (|x| > 1.8e19 for float32, 1.3e154 for float64)
    raise ``ValueError`` naming ``name`` and saying what to do.

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.utils._validation import check_range
    >>> check_range("X", np.array([1.0, 2.0]))
    >>> try:
    ...     check_range("X", np.array([1.0, 1e30]))
    ... except ValueError as exc:
    ...     print(str(exc)[:46])
    X has values up to 1e+30 in magnitude; squares
    """
    arr = np.asarray(values)
    if arr.size == 0:
        return
    dtype = np.dtype(dtype)
    # the extremes in the array's own dtype: no float64 copy of the data
    top = max(abs(float(np.max(arr))), abs(float(np.min(arr))))
    limit = _limit(dtype)
    if top > limit:
        hint = f"Rescale {name} or use dtype='float64'." if dtype == np.float32 else f"Rescale {name}."
        raise ValueError(
            f"{name} has values up to {top:.3g} in magnitude; squares of values beyond {limit:.2g} overflow "
            f"{dtype.name}. {hint}"
        )


def check_spread(name, values, dtype="float32"):
    """Reject data whose spread is too small for ``dtype`` (it would underflow when standardised).

    Constant columns are fine; columns that vary by less than the dtype's smallest normal
    number's square root (1.1e-19 for float32) raise ``ValueError`` naming ``name``.
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return
    arr = arr.reshape(arr.shape[0], -1)
    check_spread_extremes(name, arr.min(axis=0), arr.max(axis=0), dtype)


def check_spread_extremes(name, col_min, col_max, dtype="float32"):
    """:func:`check_spread` from each column's smallest and largest value.

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.utils._validation import check_spread_extremes
    >>> check_spread_extremes("y", np.array([0.0, 5.0]), np.array([1.0, 5.0]))
    >>> try:
    ...     check_spread_extremes("y", np.array([0.0]), np.array([1e-20]))
    ... except ValueError as exc:
    ...     print(str(exc)[:30])
    y varies by less than 1.1e-19
    """
    col_min = np.asarray(col_min, dtype=np.float64)
    col_max = np.asarray(col_max, dtype=np.float64)
    spread = col_max - col_min
    scale = np.maximum(np.maximum(np.abs(col_min), np.abs(col_max)), np.finfo(np.float64).tiny)
    varying = spread > 64 * np.finfo(np.float64).eps * scale
    tiny = float(np.sqrt(np.finfo(np.dtype(dtype)).tiny))
    if np.any(varying & (spread < tiny)):
        raise ValueError(
            f"{name} varies by less than {tiny:.2g} in some column; such values underflow in "
            f"{np.dtype(dtype).name}. Rescale {name}"
            + (" or use dtype='float64'." if np.dtype(dtype) == np.float32 else ".")
        )


def _hashable(constraint):
    try:
        hash(constraint)
        return constraint
    except TypeError:
        return None


def check_param_ranges(estimator, dtype):
    """Parameters that are numbers (or arrays of numbers) within what ``dtype`` represents.

    Integers given as ``True``/``False`` are refused (``n_components=True`` is a mistake, not
    1); a learning rate beyond the training dtype's range, and other floats whose squares
    overflow it, raise ``ValueError`` naming the parameter.
    """
    constraints = getattr(estimator, "_parameter_constraints", {})
    params = estimator.get_params(deep=False)
    schedule = params.get("learning_rate")
    if isinstance(schedule, (tuple, list)):
        for pair in schedule:
            if isinstance(pair, (tuple, list)) and len(pair) == 2 and isinstance(pair[1], Real):
                if np.isfinite(pair[1]) and abs(pair[1]) > np.finfo(dtype).max:
                    raise ValueError(f"learning_rate {pair[1]!r} is beyond what {np.dtype(dtype).name} represents.")
    for name, value in params.items():
        allowed = constraints.get(name, [])
        if isinstance(value, (bool, np.bool_)) and not ({"boolean", "verbose", bool} & set(map(_hashable, allowed))):
            raise ValueError(f"{name} must be a number, not a bool; got {value!r}.")
        if isinstance(value, Real) and not isinstance(value, (bool, Integral)):
            # a step size only needs to be representable; other numbers enter squares and products
            limit = float(np.finfo(dtype).max) if name == "learning_rate" else _limit(dtype)
            if np.isfinite(value) and abs(value) > limit:
                raise ValueError(
                    f"{name}={value!r} is beyond what {np.dtype(dtype).name} training represents "
                    f"(|{name}| <= {limit:.2g})."
                )


class NamedScoreMixin:
    """``score`` = R² of ``predict`` (as ``RegressorMixin``), with errors naming X, y or sample_weight."""

    def score(self, X, y, sample_weight=None):
        """R² of ``predict(X)`` against ``y``, averaged uniformly over targets.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        float
        """
        from sklearn.metrics import r2_score

        y_pred = self.predict(X)  # errors about X name X
        try:
            y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
        except (ValueError, TypeError) as exc:
            raise _prefixed(exc, "y") from exc
        if y.reshape(len(y), -1).shape != y_pred.reshape(len(y_pred), -1).shape:
            raise ValueError(f"y must have shape {y_pred.shape} (one row per row of X); got {y.shape}.")
        if sample_weight is not None:
            sample_weight = named_sample_weight(sample_weight, y_pred)
        return float(r2_score(y.reshape(y_pred.shape), y_pred, sample_weight=sample_weight))

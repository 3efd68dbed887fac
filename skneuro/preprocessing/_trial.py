"""Transformers of trials ``(n_trials, n_steps, n_features)`` for scikit-learn pipelines.

scikit-learn's transformers take 2-D ``(n_samples, n_features)`` arrays; the rate RNNs
take 3-D trials. The two transformers here apply a per-feature transformation to every
time point of every trial (rows ``X.reshape(-1, n_features)``) and give the trials back
in their shape, so a :class:`~sklearn.pipeline.Pipeline` can put them in front of an RNN.
The output mask (``sample_weight``) says which time points the fit looks at.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin, _fit_context, clone
from sklearn.preprocessing import StandardScaler
from sklearn.utils import get_tags
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, has_fit_parameter

from .._persist import SaveLoadMixin
from ..utils._validation import check_numeric

__all__ = ["TrialScaler", "TrialTransformer"]

_SHAPE = "(n_trials, n_steps, n_features)"


def _check_trials(X):
    """``X`` as a finite float64 3-D array of trials; errors name ``X`` and the expected shape."""
    arr = check_numeric("X", X)
    if arr.ndim != 3:
        hint = (
            " For 2-D data (n_samples, n_features) use the scikit-learn transformer itself; for a "
            "single trial of shape (n_steps, n_features) pass X[np.newaxis]."
            if arr.ndim == 2
            else ""
        )
        raise ValueError(f"X must be a 3-D array of trials {_SHAPE}; got shape {arr.shape}.{hint}")
    if 0 in arr.shape:
        raise ValueError(f"X must have at least one trial, one step and one feature {_SHAPE}; got shape {arr.shape}.")
    return arr.astype(np.float64, copy=False)


def _step_weights(sample_weight, X):
    """One weight per time point, flattened like ``X.reshape(-1, n_features)`` (None: all equal).

    A mask of shape ``(n_trials, n_steps, n_outputs)`` (the RNNs' output mask) counts a time
    point with the largest weight of its outputs: it counts when any output counts.
    """
    if sample_weight is None:
        return None
    w = check_numeric("sample_weight", sample_weight)
    n_trials, n_steps = X.shape[:2]
    if w.ndim not in (2, 3) or w.shape[:2] != X.shape[:2] or (w.ndim == 3 and w.shape[2] == 0):
        raise ValueError(
            f"sample_weight must have shape (n_trials, n_steps) = ({n_trials}, {n_steps}) or "
            f"(n_trials, n_steps, n_outputs) = ({n_trials}, {n_steps}, n_outputs), matching X of shape "
            f"{X.shape}; got shape {w.shape}."
        )
    if (w < 0).any():
        raise ValueError("sample_weight must be non-negative.")
    w = w.astype(np.float64)
    if w.ndim == 3:
        w = w.max(axis=2)
    w = w.reshape(-1)
    if not (w > 0).any():
        raise ValueError("sample_weight is zero everywhere: no time point is left to fit on.")
    return w


class _TrialTransformerBase(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """What both trial transformers share: 3-D checks, the mask, ``set_output`` and tags.

    ``auto_wrap_output_keys=None`` keeps scikit-learn from wrapping ``transform``: a
    DataFrame cannot hold 3-D trials. ``set_output`` accepts ``"default"`` (and None) only.
    """

    def __init_subclass__(cls, **kwargs):
        # every subclass outputs 3-D trials too: no automatic DataFrame wrapping
        kwargs.setdefault("auto_wrap_output_keys", None)
        super().__init_subclass__(**kwargs)

    def _validate_trials(self, X, *, reset):
        X = _check_trials(X)
        if reset:
            self.n_features_in_ = X.shape[2]
        elif X.shape[2] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[2]} features in its last axis, but {type(self).__name__} was fitted "
                f"with {self.n_features_in_}."
            )
        return X

    @staticmethod
    def _fit_rows(X, sample_weight):
        """``(rows, weights)`` to fit on: the time points whose weight is positive."""
        rows = X.reshape(-1, X.shape[2])
        w = _step_weights(sample_weight, X)
        if w is None:
            return rows, None
        keep = w > 0
        return rows[keep], w[keep]

    def set_output(self, *, transform=None):
        """Set the output container: only ``"default"`` (a 3-D ndarray) is possible.

        Trials are 3-D, which neither a pandas nor a polars DataFrame can hold, so
        ``"pandas"`` and ``"polars"`` raise an error here (and so does
        ``Pipeline.set_output`` for a pipeline that contains this transformer). The global
        ``sklearn.set_config(transform_output=...)`` is ignored: the output stays an ndarray.

        Parameters
        ----------
        transform : {"default"} or None, default=None
            ``"default"`` or None leave the output as it is.

        Returns
        -------
        self : object
        """
        if transform not in (None, "default"):
            raise ValueError(
                f"{type(self).__name__} returns 3-D trials {_SHAPE}, which a DataFrame cannot hold: "
                f"set_output accepts transform='default' or None only; got transform={transform!r}."
            )
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags


class TrialScaler(SaveLoadMixin, OneToOneFeatureMixin, _TrialTransformerBase):
    """Standardise each feature of trials over all trials and time steps.

    :class:`~sklearn.preprocessing.StandardScaler` for 3-D trials ``X`` of shape
    ``(n_trials, n_steps, n_features)``: the mean and standard deviation of each feature
    are taken over every time point of every trial, and ``transform`` returns
    ``(X - mean_) / scale_`` in the shape of ``X``. It takes the place of ``StandardScaler``
    in front of a :class:`~skneuro.rnn.RateRNNRegressor` in a
    :class:`~sklearn.pipeline.Pipeline` [2]_, as MNE-Python's decoding ``Scaler`` does for
    epochs of M/EEG data [1]_.

    ``sample_weight`` (the output mask) weighs the time points in the statistics, as
    ``StandardScaler(...).fit(rows, sample_weight=...)`` on the rows
    ``X.reshape(-1, n_features)``: a mask of shape ``(n_trials, n_steps)`` directly, one of
    shape ``(n_trials, n_steps, n_outputs)`` through its largest weight over outputs.
    Time points with weight 0, such as the padding of trials of unequal length, then leave
    the statistics untouched. In a pipeline the mask reaches the scaler through
    scikit-learn's metadata routing (``set_fit_request(sample_weight=True)``); with
    ``sample_weight=False`` the scaler uses every time point, which is what a task whose
    mask covers only the response period usually wants (the inputs are then scaled by their
    statistics over the whole trial).

    Parameters
    ----------
    with_mean : bool, default=True
        Subtract the mean of each feature.
    with_std : bool, default=True
        Divide by the standard deviation of each feature (features of zero variance are
        left unscaled).

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,) or None
        Mean of each feature (None when ``with_mean=False`` and ``with_std=False``).
    var_ : ndarray of shape (n_features,) or None
        Variance of each feature (None when ``with_std=False``).
    scale_ : ndarray of shape (n_features,) or None
        Divisor of each feature (None when ``with_std=False``).
    n_features_in_ : int
        Number of features, the last axis of ``X``.

    See Also
    --------
    TrialTransformer : any 2-D scikit-learn transformer applied to trials.
    sklearn.preprocessing.StandardScaler : the same for 2-D data.

    Notes
    -----
    The output is always a float64 ndarray of the shape of ``X``; ``set_output`` accepts
    ``"default"`` only, since a DataFrame cannot hold 3-D trials.

    References
    ----------
    .. [1] A. Gramfort et al., "MEG and EEG data analysis with MNE-Python", Frontiers in
       Neuroscience 7:267, 2013 (the ``mne.decoding`` module: ``Scaler``,
       ``Vectorizer``, ``SlidingEstimator``).
    .. [2] F. Pedregosa et al., "Scikit-learn: Machine Learning in Python", Journal of
       Machine Learning Research 12:2825-2830, 2011.

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.preprocessing import TrialScaler
    >>> X = np.random.default_rng(0).normal(3.0, 2.0, size=(10, 50, 2))
    >>> Xt = TrialScaler().fit_transform(X)
    >>> Xt.shape, np.allclose(Xt.reshape(-1, 2).mean(axis=0), 0), np.allclose(Xt.reshape(-1, 2).std(axis=0), 1)
    ((10, 50, 2), True, True)
    """

    _parameter_constraints: dict = {"with_mean": ["boolean"], "with_std": ["boolean"]}

    def __init__(self, *, with_mean=True, with_std=True):
        self.with_mean = with_mean
        self.with_std = with_std

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Compute the mean and standard deviation of each feature.

        Parameters
        ----------
        X : array-like of shape (n_trials, n_steps, n_features)
        y : None
            Ignored.
        sample_weight : array-like of shape (n_trials, n_steps) or (n_trials, n_steps, n_outputs), default=None
            Weight of each time point (the output mask); None weighs all equally.

        Returns
        -------
        self : object
        """
        X = self._validate_trials(X, reset=True)
        rows, w = self._fit_rows(X, sample_weight)
        scaler = StandardScaler(with_mean=self.with_mean, with_std=self.with_std).fit(rows, sample_weight=w)
        self.mean_, self.var_, self.scale_ = scaler.mean_, scaler.var_, scaler.scale_
        return self

    def transform(self, X):
        """Standardise trials.

        Parameters
        ----------
        X : array-like of shape (n_trials, n_steps, n_features)

        Returns
        -------
        X_scaled : ndarray of shape (n_trials, n_steps, n_features)
        """
        check_is_fitted(self)
        X = self._validate_trials(X, reset=False)
        out = X - self.mean_ if self.with_mean else X
        out = out / self.scale_ if self.with_std else out
        return X.copy() if out is X else out

    def inverse_transform(self, X):
        """Undo the standardisation.

        Parameters
        ----------
        X : array-like of shape (n_trials, n_steps, n_features)

        Returns
        -------
        X_original : ndarray of shape (n_trials, n_steps, n_features)
        """
        check_is_fitted(self)
        X = self._validate_trials(X, reset=False)
        out = X * self.scale_ if self.with_std else X
        out = out + self.mean_ if self.with_mean else out
        return X.copy() if out is X else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64"]
        return tags


def _inner_has(name):
    """``available_if`` check: the wrapped transformer has method ``name``."""
    return lambda self: hasattr(self.transformer_ if hasattr(self, "transformer_") else self.transformer, name)


class TrialTransformer(_TrialTransformerBase):
    """Apply a 2-D scikit-learn transformer to the feature axis of trials.

    The transformer (e.g. :class:`~sklearn.decomposition.PCA`) is cloned and fitted on the
    rows ``X.reshape(-1, n_features)``, one per time point of every trial, and
    ``transform`` maps every time point the same way, returning trials of shape
    ``(n_trials, n_steps, n_features_out)`` (as MNE-Python brings M/EEG epochs into
    scikit-learn pipelines [1]_). For instance ``TrialTransformer(PCA(3))``
    reduces many input channels to their three leading components before a
    :class:`~skneuro.rnn.RateRNNRegressor`.

    ``sample_weight`` (the output mask) selects the time points to fit on: a mask of shape
    ``(n_trials, n_steps)`` directly, one of shape ``(n_trials, n_steps, n_outputs)``
    through its largest weight over outputs. Time points of weight 0 are left out; the
    positive weights are passed on as ``sample_weight`` when the transformer's ``fit``
    takes one, and must all be equal otherwise (a 0/1 mask). The mask reaches this
    transformer through scikit-learn's metadata routing
    (``set_fit_request(sample_weight=True)``).

    Parameters
    ----------
    transformer : estimator with ``fit`` and ``transform``
        A scikit-learn transformer of 2-D data; it is cloned, never fitted itself.

    Attributes
    ----------
    transformer_ : estimator
        The fitted clone of ``transformer``.
    n_features_in_ : int
        Number of features, the last axis of ``X``.

    See Also
    --------
    TrialScaler : per-feature standardisation of trials.

    Notes
    -----
    The output is a 3-D ndarray whatever the transformer's own output setting: a
    DataFrame cannot hold trials, so ``set_output`` accepts ``"default"`` only, and the
    output of a transformer configured for DataFrames (or sparse output) is turned into a
    dense array. ``y`` is not passed to the transformer. ``inverse_transform`` and
    ``get_feature_names_out`` exist when the transformer has them.

    References
    ----------
    .. [1] A. Gramfort et al., "MEG and EEG data analysis with MNE-Python", Frontiers in
       Neuroscience 7:267, 2013 (``mne.decoding.Vectorizer`` and ``SlidingEstimator``
       bring 3-D data into scikit-learn pipelines the same way).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.decomposition import PCA
    >>> from skneuro.preprocessing import TrialTransformer
    >>> X = np.random.default_rng(0).normal(size=(10, 50, 6))
    >>> pca = TrialTransformer(PCA(n_components=2)).fit(X)
    >>> pca.transform(X).shape, pca.get_feature_names_out().tolist()
    ((10, 50, 2), ['pca0', 'pca1'])
    """

    _parameter_constraints: dict = {"transformer": [HasMethods(["fit", "transform"])]}

    def __init__(self, transformer):
        self.transformer = transformer

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None, sample_weight=None):
        """Fit a clone of the transformer on every time point of every trial.

        Parameters
        ----------
        X : array-like of shape (n_trials, n_steps, n_features)
        y : None
            Ignored (not passed to the transformer).
        sample_weight : array-like of shape (n_trials, n_steps) or (n_trials, n_steps, n_outputs), default=None
            Weight of each time point (the output mask); None weighs all equally.

        Returns
        -------
        self : object
        """
        X = self._validate_trials(X, reset=True)
        rows, w = self._fit_rows(X, sample_weight)
        transformer = clone(self.transformer)
        params = {}
        if w is not None:
            if has_fit_parameter(transformer, "sample_weight"):
                params["sample_weight"] = w
            elif not np.all(w == w[0]):
                raise ValueError(
                    f"sample_weight: {type(transformer).__name__}.fit takes no sample_weight, so the mask can "
                    "only select time points (weights 0 or one positive value); got unequal positive weights."
                )
        self.transformer_ = transformer.fit(rows, **params)
        return self

    @staticmethod
    def _dense(out, n_rows):
        """The transformer's output as a dense 2-D ndarray of ``n_rows`` rows."""
        if sparse.issparse(out):
            out = out.toarray()
        out = np.asarray(out)
        if out.ndim != 2 or out.shape[0] != n_rows:
            raise ValueError(
                f"the transformer must return one row per time point ({n_rows}); got an output of shape {out.shape}."
            )
        return out

    def transform(self, X):
        """Transform every time point of every trial.

        Parameters
        ----------
        X : array-like of shape (n_trials, n_steps, n_features)

        Returns
        -------
        X_new : ndarray of shape (n_trials, n_steps, n_features_out)
        """
        check_is_fitted(self)
        X = self._validate_trials(X, reset=False)
        n_trials, n_steps, n_features = X.shape
        out = self._dense(self.transformer_.transform(X.reshape(-1, n_features)), n_trials * n_steps)
        return out.reshape(n_trials, n_steps, -1)

    @available_if(_inner_has("inverse_transform"))
    def inverse_transform(self, X):
        """Map transformed trials back with the transformer's ``inverse_transform``.

        Parameters
        ----------
        X : array-like of shape (n_trials, n_steps, n_features_out)

        Returns
        -------
        X_original : ndarray of shape (n_trials, n_steps, n_features)
        """
        check_is_fitted(self)
        X = _check_trials(X)
        n_trials, n_steps, n_features = X.shape
        out = self._dense(self.transformer_.inverse_transform(X.reshape(-1, n_features)), n_trials * n_steps)
        return out.reshape(n_trials, n_steps, -1)

    @available_if(_inner_has("get_feature_names_out"))
    def get_feature_names_out(self, input_features=None):
        """Names of the output features, those of the fitted transformer.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Names of the input features (the last axis of ``X``); None: ``x0``, ``x1``, ...

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        check_is_fitted(self)
        return self.transformer_.get_feature_names_out(input_features)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        try:
            inner = get_tags(self.transformer).transformer_tags
        except (AttributeError, TypeError):  # not an estimator: fit's parameter validation says so
            inner = None
        if inner is not None:
            tags.transformer_tags.preserves_dtype = list(inner.preserves_dtype)
        return tags

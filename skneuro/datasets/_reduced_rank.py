"""Ground-truth simulator of reduced-rank regression (numpy only)."""

from __future__ import annotations

from numbers import Integral

import numpy as np

from ..utils._linalg import link_numpy, standard_form
from ..utils._random import as_generator

__all__ = ["make_reduced_rank_regression"]

_O2_DEFAULTS = {"linear": None, "sigmoid": (5.0, 10.0), "relu": (5.0, 10.0), "exp": (0.0, 1.0)}
_LINKS = ("linear", "sigmoid", "exp", "relu")


def _check_range(name, value):
    value = tuple(float(x) for x in value)
    if len(value) != 2 or value[0] > value[1]:
        raise ValueError(f"{name} must be a (low, high) pair with low <= high; got {value!r}.")
    return value


def make_reduced_rank_regression(
    n_samples=1000,
    n_features=10,
    n_targets=20,
    n_components=2,
    link="linear",
    *,
    w_gain=1.0,
    noise_var_range=(0.5, 1.0),
    gain_range=(5.0, 10.0),
    o1_range=(-0.2, 0.2),
    o2_range=None,
    exp_scale=0.3,
    random_state=None,
    return_params=False,
):
    """Simulate data from a random reduced-rank regression model.

    ``X ~ N(0, I)`` and ``y = g ⊙ f(X w0 w1ᵀ + o1) + o2 + ε``, ``ε ~ N(0, diag(v))``,
    with parameters drawn as follows: ``w0 ~ N(0, (w_gain/√d)²)``, ``w1 ~ N(0, w_gain²)``
    (exp: ``N(−1, w_gain²)`` and ``w0`` multiplied by ``exp_scale``), ``v ~ U(noise_var_range)``,
    ``g ~ U(gain_range)`` (sigmoid, exp), ``o1 ~ U(o1_range)`` (sigmoid, relu) and
    ``o2 ~ U(o2_range)``; ``o2_range=None`` gives ``N(0, 10²)`` for linear, ``U(5, 10)``
    for sigmoid and relu and ``U(0, 1)`` for exp.

    Parameters
    ----------
    n_samples, n_features, n_targets, n_components : int
        n, d, p and the rank k.
    link : {"linear", "sigmoid", "exp", "relu"}, default="linear"
    w_gain : float, default=1.0
    noise_var_range, gain_range, o1_range : (float, float)
    o2_range : (float, float) or None
    exp_scale : float, default=0.3
        Multiplies ``w0`` for the exp link (1.0 reproduces the original generator, whose
        exp inputs span many decades).
    random_state : int, numpy Generator, RandomState or None
    return_params : bool, default=False
        Also return the true parameters (standard form).

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples, n_targets)
    params : dict, only when ``return_params``
        ``w0 w1 o2``, ``noise_variance`` (v) and ``o1``/``g`` where the link has them.

    Examples
    --------
    >>> from skneuro.datasets import make_reduced_rank_regression
    >>> X, y, params = make_reduced_rank_regression(100, 5, 8, 2, link="sigmoid",
    ...                                             random_state=0, return_params=True)
    >>> X.shape, y.shape, params["w0"].shape, sorted(params)
    ((100, 5), (100, 8), (5, 2), ['g', 'noise_variance', 'o1', 'o2', 'w0', 'w1'])
    """
    if link not in _LINKS:
        raise ValueError(f"link must be one of {_LINKS}; got {link!r}.")
    for name, value in (
        ("n_samples", n_samples),
        ("n_features", n_features),
        ("n_targets", n_targets),
        ("n_components", n_components),
    ):
        if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}.")
    rng = as_generator(random_state)
    d, p, k = n_features, n_targets, n_components
    # every range is checked, used by this link or not, before anything is drawn
    noise_var_range = _check_range("noise_var_range", noise_var_range)
    o1_range = _check_range("o1_range", o1_range)
    gain_range = _check_range("gain_range", gain_range)
    o2_range = _O2_DEFAULTS[link] if o2_range is None else _check_range("o2_range", o2_range)
    w0 = rng.normal(scale=w_gain / np.sqrt(d), size=(d, k))
    w1 = rng.normal(loc=-1.0 if link == "exp" else 0.0, scale=w_gain, size=(p, k))
    if link == "exp":
        w0 = w0 * exp_scale
    v = rng.uniform(*noise_var_range, size=p)
    o1 = rng.uniform(*o1_range, size=p) if link in ("sigmoid", "relu") else None
    g = rng.uniform(*gain_range, size=p) if link in ("sigmoid", "exp") else None
    o2 = rng.normal(scale=10.0, size=p) if o2_range is None else rng.uniform(*o2_range, size=p)
    X = rng.standard_normal(size=(n_samples, d))
    pre = X @ w0 @ w1.T + (0.0 if o1 is None else o1)
    mean = (1.0 if g is None else g) * link_numpy(link, pre) + o2
    y = mean + rng.standard_normal(size=(n_samples, p)) * np.sqrt(v)
    if not return_params:
        return X, y
    w0, w1, o1, o2, g = standard_form(w0, w1, o1, o2, g)
    params = {"w0": w0, "w1": w1, "o2": o2, "noise_variance": v}
    if o1 is not None:
        params["o1"] = o1
    if g is not None:
        params["g"] = g
    return X, y, params

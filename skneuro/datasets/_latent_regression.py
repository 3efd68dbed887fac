"""Ground-truth simulator of multi-subject latent regression (numpy only)."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np

from ..latent_regression._data import SubjectData
from ..utils._random import as_generator

__all__ = ["make_multi_subject_latent_regression"]

_erf = np.vectorize(math.erf, otypes=[float])


def _check_count(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        kind = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{name} must be a {kind} integer; got {value!r}.")
    return int(value)


def _check_count_range(name, value):
    """An int, or a (low, high) pair of ints with 1 <= low <= high, as (low, high)."""
    if isinstance(value, Integral) and not isinstance(value, bool):
        value = (value, value)
    try:
        low, high = value
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive integer or a (low, high) pair; got {value!r}.") from None
    if any(isinstance(v, bool) or not isinstance(v, Integral) for v in (low, high)) or not 1 <= low <= high:
        raise ValueError(
            f"{name} must be a positive integer or a (low, high) pair with 1 <= low <= high; got {value!r}."
        )
    return int(low), int(high)


def _check_range(name, value, positive=False, nonnegative=False):
    """A real, or a (low, high) pair with low <= high, as a (low, high) pair of floats."""
    if isinstance(value, Real) and not isinstance(value, bool):
        value = (value, value)
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or a (low, high) pair; got {value!r}.") from None
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise ValueError(f"{name} must be a finite (low, high) pair with low <= high; got {value!r}.")
    if (positive and low <= 0) or (nonnegative and low < 0):
        raise ValueError(f"{name} must be {'positive' if positive else 'non-negative'}; got {value!r}.")
    return low, high


def _check_n_samples(n_samples, n_subjects):
    if isinstance(n_samples, Integral) and not isinstance(n_samples, bool):
        return [_check_count("n_samples", n_samples, minimum=0)] * n_subjects
    try:
        values = list(n_samples)
    except TypeError:
        raise ValueError(f"n_samples must be an integer or one integer per subject; got {n_samples!r}.") from None
    if len(values) != n_subjects:
        raise ValueError(f"n_samples has {len(values)} entries; expected one per subject ({n_subjects}).")
    return [_check_count("n_samples", v, minimum=0) for v in values]


def _bump_sum(properties, c, w, m):
    """``Σ_b m_b exp(−Σ_d ((r_d − c_bd) / w_bd)²)`` (the convention of ``skneuro.bumps``)."""
    phi = np.exp(-(((properties[:, None, :] - c) / w) ** 2).sum(axis=-1))
    return phi @ m


def _mean_square_on_cube(c, w, m):
    """Exact mean of ``(Σ_b m_b φ_b(r))²`` over r uniform in [0, 1]^q (products of Gaussians, erf)."""
    a, b = c[:, None, :], c[None, :, :]
    s2, t2 = w[:, None, :] ** 2, w[None, :, :] ** 2
    precision = 1.0 / s2 + 1.0 / t2
    center = (a / s2 + b / t2) / precision
    root = np.sqrt(precision)
    integral = (
        np.exp(-((a - b) ** 2) / (s2 + t2))
        * math.sqrt(math.pi)
        / (2.0 * root)
        * (_erf(root * (1.0 - center)) + _erf(root * center))
    )
    return float(m @ integral.prod(axis=-1) @ m)


def _draw_mode_functions(rng, n_components, n_properties, n_bumps, width_range, rms):
    """K functions of n_bumps bumps each, as one bump sum with block magnitudes (K·n_bumps, K)."""
    n_total = n_components * n_bumps
    c = rng.uniform(size=(n_total, n_properties))
    w = rng.uniform(*width_range, size=(n_total, n_properties))
    m = np.zeros((n_total, n_components))
    for k in range(n_components):
        rows = slice(k * n_bumps, (k + 1) * n_bumps)
        raw = rng.standard_normal(n_bumps)
        m[rows, k] = raw * rms / math.sqrt(_mean_square_on_cube(c[rows], w[rows], raw))
    return {"c": c, "w": w, "m": m}


def make_multi_subject_latent_regression(
    n_subjects: int = 3,
    n_samples=1000,
    n_inputs=(60, 80),
    n_outputs=(60, 80),
    n_components: int = 2,
    n_properties: int = 3,
    *,
    n_bumps: int = 4,
    bump_width_range=(0.3, 0.6),
    noise_std=(0.1, 0.2),
    scale_range=(1.0, 1.0),
    offset_range=(0.0, 0.0),
    random_state=None,
    return_params: bool = False,
):
    """Simulate subjects whose neurons' modes are smooth functions of their properties.

    Every subject ``s`` records its own neurons: ``d_s`` inputs and ``e_s`` outputs, with
    counts drawn uniformly from ``n_inputs`` and ``n_outputs`` and properties
    ``R_s (d_s, q)``, ``Q_s (e_s, q)`` uniform in ``[0, 1]^q``. The modes are
    ``P_s = π(R_s)`` and ``U_s = υ(Q_s)``, where each of the K columns of π and of υ is a
    sum of ``n_bumps`` Gaussian bumps ``m_b exp(−Σ_d ((r_d − c_bd) / w_bd)²)``, drawn once
    and shared by all subjects: centres uniform in ``[0, 1]^q``, widths uniform in
    ``bump_width_range``, magnitudes ``N(0, 1)`` rescaled so that each output function has
    root-mean-square 1 over ``[0, 1]^q`` and each input function ``1/√d̄``
    (``d̄`` the midpoint of ``n_inputs``), so the latents have about unit variance. Then

    ``X_s ~ N(0, I)``, ``Y_s = (X_s P_s) U_sᵀ ⊙ c_sᵀ + o_sᵀ + ε``, ``ε ~ N(0, diag ψ_s)``,

    with per-neuron scales ``c ~ U(scale_range)``, offsets ``o ~ U(offset_range)`` (unit
    scales and zero offsets by default) and noise standard deviations
    ``√ψ ~ U(noise_std)``. All neurons, functions and parameters are drawn before any
    sample, so they depend on ``random_state`` but not on ``n_samples``.

    Parameters
    ----------
    n_subjects : int, default=3
    n_samples : int or sequence of int, default=1000
        Samples per subject (one value for all, or one per subject; 0 is allowed).
    n_inputs, n_outputs : int or (int, int), default=(60, 80)
        Neurons per subject, or an inclusive (low, high) range each subject draws from.
    n_components : int, default=2
        K, the number of modes.
    n_properties : int, default=3
        q, the number of properties of a neuron.
    n_bumps : int, default=4
        Bumps per mode function.
    bump_width_range : float or (float, float), default=(0.3, 0.6)
        Range of the bump widths (positive).
    noise_std : float or (float, float), default=(0.1, 0.2)
        Range of the per-neuron noise standard deviations (non-negative).
    scale_range, offset_range : float or (float, float), default=(1.0, 1.0) and (0.0, 0.0)
        Ranges of the per-neuron scales ``c`` and offsets ``o``.
    random_state : int, numpy Generator, RandomState or None, default=None
        Seeds a local generator; the global random state is never touched.
    return_params : bool, default=False
        Also return the true parameters.

    Returns
    -------
    X : list of SubjectData
        One per subject, ids ``"s0"``, ``"s1"``, ...; ``x`` of shape (n_samples, d_s),
        ``input_properties`` (d_s, q), ``output_properties`` (e_s, q).
    y : list of ndarray of shape (n_samples, e_s)
    params : dict, only when ``return_params``
        ``"input_bumps"``, ``"output_bumps"``: the shared mode functions as dicts of
        centres ``"c"`` (K·n_bumps, q), widths ``"w"`` (K·n_bumps, q) and magnitudes
        ``"m"`` (K·n_bumps, K) (bumps ``k·n_bumps … (k+1)·n_bumps − 1`` feed mode k only): the
        parameters of a ``skneuro.bumps.SumOfBumpFcns`` that computes P (resp. U);
        ``"input_modes"`` (P_s), ``"output_modes"`` (U_s), ``"scales"``, ``"offsets"`` and
        ``"noise_variance"``: lists with one array per subject.

    See Also
    --------
    make_reduced_rank_regression : the single-subject, property-free counterpart.

    Examples
    --------
    >>> from skneuro.datasets import make_multi_subject_latent_regression
    >>> X, y, params = make_multi_subject_latent_regression(
    ...     n_subjects=2, n_samples=100, n_inputs=5, n_outputs=(4, 6), random_state=0, return_params=True
    ... )
    >>> [s.subject_id for s in X], X[0].n_samples, X[0].n_inputs, X[0].n_properties
    (['s0', 's1'], 100, (5,), 3)
    >>> all(yi.shape == (100, s.n_outputs[0]) for s, yi in zip(X, y))
    True
    >>> params["input_modes"][0].shape, sorted(params["output_bumps"])
    ((5, 2), ['c', 'm', 'w'])
    """
    n_subjects = _check_count("n_subjects", n_subjects)
    sample_counts = _check_n_samples(n_samples, n_subjects)
    input_range = _check_count_range("n_inputs", n_inputs)
    output_range = _check_count_range("n_outputs", n_outputs)
    K = _check_count("n_components", n_components)
    q = _check_count("n_properties", n_properties)
    n_bumps = _check_count("n_bumps", n_bumps)
    width_range = _check_range("bump_width_range", bump_width_range, positive=True)
    noise_range = _check_range("noise_std", noise_std, nonnegative=True)
    scale_range = _check_range("scale_range", scale_range)
    offset_range = _check_range("offset_range", offset_range)
    rng = as_generator(random_state)

    input_bumps = _draw_mode_functions(rng, K, q, n_bumps, width_range, 1.0 / math.sqrt(np.mean(input_range)))
    output_bumps = _draw_mode_functions(rng, K, q, n_bumps, width_range, 1.0)
    subjects = []
    for _ in range(n_subjects):
        d = int(rng.integers(input_range[0], input_range[1] + 1))
        e = int(rng.integers(output_range[0], output_range[1] + 1))
        subjects.append(
            {
                "R": rng.uniform(size=(d, q)),
                "Q": rng.uniform(size=(e, q)),
                "c": rng.uniform(*scale_range, size=e),
                "o": rng.uniform(*offset_range, size=e),
                "noise_variance": rng.uniform(*noise_range, size=e) ** 2,
            }
        )
    X, y = [], []
    for i, (s, n) in enumerate(zip(subjects, sample_counts)):
        s["P"] = _bump_sum(s["R"], **input_bumps)
        s["U"] = _bump_sum(s["Q"], **output_bumps)
        x = rng.standard_normal(size=(n, len(s["R"])))
        noise = rng.standard_normal(size=(n, len(s["Q"]))) * np.sqrt(s["noise_variance"])
        y.append((x @ s["P"]) @ s["U"].T * s["c"] + s["o"] + noise)
        X.append(SubjectData(f"s{i}", x, s["R"], s["Q"]))
    if not return_params:
        return X, y
    params = {
        "input_bumps": input_bumps,
        "output_bumps": output_bumps,
        "input_modes": [s["P"] for s in subjects],
        "output_modes": [s["U"] for s in subjects],
        "scales": [s["c"] for s in subjects],
        "offsets": [s["o"] for s in subjects],
        "noise_variance": [s["noise_variance"] for s in subjects],
    }
    return X, y, params

r"""Smoothing of the output modes after training (``smooth_output_modes``; numpy, float64).

Trained by the likelihood alone, the output predictor follows every training neuron's own
mode: with thousands of samples a neuron's mode is known to within a fraction of a percent,
so nothing tells the predictor that part of it (the neuron's own deviation from any smooth
function of position, and its own scale) is not shared with other neurons. A neuron never
seen, of a subject never seen, is predicted from its position alone, and what generalises
is the *smooth* part. So after training, every training output neuron's mode
``û_j`` is estimated by least squares on its subject's latents (``y_j − ȳ_j ≈ (t − t̄) û_j``)
and the output predictor is replaced by the posterior mean of a Gaussian process fitted
to them:

.. math::

    û_j = f(q_j) + ε_j, \quad f_k \sim GP\bigl(0,\ a^2 g(q, q')\bigr),\quad
    g(q, q') = \exp(-\textstyle\sum_d ((q_d - q'_d)/w_d)^2), \quad ε_{jk} \sim N(0, σ^2),

with ``w = ℓ · span`` (the training properties' range per dimension) and ``a²``, ``ℓ``, ``σ²``
maximising the marginal likelihood (shared by the K columns) of at most 400 of the N
neurons, drawn at random.

The posterior mean is that of the subset-of-regressors (Nyström) approximation with
``M = min(N, 1000)`` inducing centres ``c_m`` (neurons drawn at random; with ``N ≤ 1000``
every neuron is a centre and the mean is the exact GP's):

.. math::

    f(q) = \textstyle\sum_m β_m\, g(q, c_m), \quad
    β = (G_{MN} G_{NM} + (σ^2/a^2)\, G_{MM})^{-1} G_{MN} Û,

computed stably through ``G_MM = V E Vᵀ`` (eigenvalues below 1e-10 of the largest dropped):
``Φ = G_NM V E^{-1/2}``, ``β = V E^{-1/2} (ΦᵀΦ + σ²/a² I)⁻¹ ΦᵀÛ``, with ``ΦᵀΦ`` and ``ΦᵀÛ``
accumulated over blocks of neurons. Time is O(N M²), memory O(M²) (never N × N), and ``f``
is a sum of at most M Gaussian bumps, stored as a :class:`~skneuro.bumps.SumOfBumpFcns`
like any bump predictor.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize, minimize_scalar

__all__ = ["least_squares_modes", "smooth_modes"]

_MAX_SEARCH_POINTS = 400  # neurons used to choose the hyperparameters (an eigh of this size per length)
_MAX_CENTRES = 1000  # inducing centres (bumps) of the posterior mean
_LENGTH_RANGE = (0.02, 2.0)  # ℓ, in units of the properties' range per dimension
_LENGTH_TOL = 0.05  # in log ℓ: the posterior mean barely changes within 5 % of the best length
_BLOCK_ELEMENTS = 2**20  # neurons × centres per block of the cross gram (8 MB in float64)
_RELATIVE_EIGENVALUE_FLOOR = 1e-10
_BLOCK_ROWS_ELEMENTS = 2**22  # samples × neurons per block of y converted to float64 (32 MB)


def least_squares_modes(latents, y):
    """Each neuron's least-squares loading on the centred latents: ``û_j``, shape (n_neurons, K).

    ``y_j − ȳ_j ≈ (t − t̄) û_j``. As ``t − t̄`` sums to zero over samples, ``(t − t̄)ᵀ(y − ȳ) =
    (t − t̄)ᵀ y``: y is neither centred nor copied, only read in blocks of rows (float64
    accumulation), so memory is O(block + n_neurons · K) whatever the data size.

    Parameters
    ----------
    latents : ndarray of shape (n_samples, K)
    y : array-like of shape (n_samples, n_neurons)
        Any array supporting row slices (ndarray, memmap).

    Returns
    -------
    modes : ndarray of shape (n_neurons, K)
    """
    t = np.asarray(latents, dtype=np.float64)
    t = t - t.mean(axis=0)
    cross = np.zeros((t.shape[1], y.shape[1]))
    block = max(1, _BLOCK_ROWS_ELEMENTS // max(1, y.shape[1]))
    for start in range(0, len(t), block):
        cross += t[start : start + block].T @ np.asarray(y[start : start + block], dtype=np.float64)
    return np.linalg.lstsq(t.T @ t, cross, rcond=None)[0].T


def _cross_gram(points, centres, widths):
    """``g(points_i, centres_m)``, shape (len(points), len(centres))."""
    a, b = points / widths, centres / widths
    sq = (a**2).sum(axis=1)[:, None] + (b**2).sum(axis=1)[None, :] - 2.0 * a @ b.T
    return np.exp(-np.maximum(sq, 0.0, out=sq), out=sq)


def _best_amplitudes(evals, projected, total_var):
    """Max over (log a², log σ²) of the marginal likelihood given the gram's eigensystem."""
    sq = (projected**2).sum(axis=1)  # summed over the K columns
    n_cols = projected.shape[1]

    def negative(log_params):
        a2, s2 = np.exp(log_params)
        var = a2 * evals + s2
        return 0.5 * ((sq / var).sum() + n_cols * np.log(var).sum())

    start = np.log([total_var, 0.1 * total_var])
    result = minimize(negative, start, method="L-BFGS-B", bounds=[(None, None), (np.log(1e-8 * total_var), None)])
    return result.fun, np.exp(result.x)


def _hyperparameters(points, targets, span):
    """``(ℓ, a², σ²)`` maximising the exact marginal likelihood of ``targets`` at ``points``."""
    total_var = max(float(np.mean(targets**2)), 1e-300)
    found = {}

    def negative_evidence(log_length):
        evals, evecs = np.linalg.eigh(_cross_gram(points, points, np.exp(log_length) * span))
        value, amplitudes = _best_amplitudes(np.maximum(evals, 0.0), evecs.T @ targets, total_var)
        found[float(log_length)] = amplitudes
        return value

    bounds = np.log(_LENGTH_RANGE)
    result = minimize_scalar(negative_evidence, bounds=bounds, method="bounded", options={"xatol": _LENGTH_TOL})
    log_length = float(result.x)
    if log_length not in found:
        negative_evidence(log_length)
    a2, s2 = found[log_length]
    return float(np.exp(log_length)), float(a2), float(s2)


def _subset_of_regressors(positions, modes, centres, widths, ratio):
    """Heights ``β`` (M, K) of the bumps at ``centres``: the SoR posterior mean, noise/signal ``ratio``."""
    evals, evecs = np.linalg.eigh(_cross_gram(centres, centres, widths))
    keep = evals > _RELATIVE_EIGENVALUE_FLOOR * evals[-1]
    to_features = evecs[:, keep] / np.sqrt(evals[keep])  # Φ = G_NM @ to_features
    r = to_features.shape[1]
    normal, rhs = np.zeros((r, r)), np.zeros((r, modes.shape[1]))
    block = max(1, _BLOCK_ELEMENTS // len(centres))
    for start in range(0, len(positions), block):
        features = _cross_gram(positions[start : start + block], centres, widths) @ to_features
        normal += features.T @ features
        rhs += features.T @ modes[start : start + block]
    normal[np.diag_indices(r)] += ratio
    return to_features @ np.linalg.solve(normal, rhs)


def smooth_modes(positions, modes, *, random_state=0, max_centres=_MAX_CENTRES):
    """Gaussian-process posterior mean of ``modes`` as a function of ``positions``, as bumps.

    Parameters
    ----------
    positions : ndarray of shape (n_neurons, q)
    modes : ndarray of shape (n_neurons, K)
    random_state : int, default=0
        Draws the neurons used to choose the hyperparameters (when there are more than 400)
        and the inducing centres (when there are more than ``max_centres``).
    max_centres : int, default=1000
        Most inducing centres M, hence bumps. Time is O(n_neurons · M²), memory O(M²).

    Returns
    -------
    centres : ndarray of shape (M, q)
        Bump centres: ``min(n_neurons, max_centres)`` of the positions.
    widths : ndarray of shape (M, q)
        ``ℓ · span``, the same for every bump.
    magnitudes : ndarray of shape (M, K)
        Bump heights ``β``.

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.latent_regression._smoothing import smooth_modes
    >>> rng = np.random.default_rng(0)
    >>> q = rng.uniform(size=(300, 2))
    >>> truth = np.sin(3 * q[:, :1]) + q[:, 1:]
    >>> c, w, m = smooth_modes(q, truth + 0.1 * rng.normal(size=truth.shape))
    >>> fitted = (np.exp(-(((q[:, None] - c[None]) / w[None]) ** 2).sum(-1)) @ m)
    >>> bool(np.sqrt(np.mean((fitted - truth) ** 2)) < 0.05)
    True
    """
    positions = np.asarray(positions, dtype=np.float64)
    modes = np.asarray(modes, dtype=np.float64)
    lo, hi = positions.min(axis=0), positions.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    n = len(positions)
    order = np.random.default_rng(random_state).permutation(n) if n > min(_MAX_SEARCH_POINTS, max_centres) else None
    search = np.arange(n) if n <= _MAX_SEARCH_POINTS else np.sort(order[:_MAX_SEARCH_POINTS])
    length, a2, s2 = _hyperparameters(positions[search], modes[search], span)
    widths = length * span
    centres = positions.copy() if n <= max_centres else positions[np.sort(order[:max_centres])]
    magnitudes = _subset_of_regressors(positions, modes, centres, widths, s2 / a2)
    return centres, np.tile(widths, (len(centres), 1)), magnitudes

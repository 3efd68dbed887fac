r"""Smoothing of the modes after training (``smooth_modes``; numpy, float64).

Input modes: :func:`._input_smoothing.smooth_input_modes` (a Gaussian-process regression
through the data, or its weighted sum with free bumps through the same data, the weight
chosen on held-out subjects; described there), run first. Output modes: :func:`smooth_modes`, below:
the Gaussian process's posterior mean, or its weighted sum with free bumps (each with its
own centre and widths, :mod:`._free_bumps`), the weight chosen on held-out neurons.

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

with ``w_d = ℓ_d · span_d`` (``span``: the training properties' range per dimension; a
length ``ℓ_d`` per property) and ``a²``, ``ℓ``, ``σ²`` maximising the marginal likelihood
(shared by the K columns) of at most 400 of the N neurons, drawn at random: one length
for every property first (a bounded 1-D search), then from there every property's own
(L-BFGS with the analytic gradient; automatic relevance determination). A property the
modes do not depend on goes to long lengths (up to 100 ranges), one they change fast
with (cortical depth, say) to short ones; with one length for all, that property's
length is a compromise that over-smooths the one and under-smooths the others (on a
suite generator with functions 8x sharper in depth, the unseen subject's gap to the
ceiling was 0.070 with one length, 0.009 with a length per property).

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

from functools import partial

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.optimize import minimize, minimize_scalar

from . import _free_bumps
from ._statistics import column_moments

__all__ = ["least_squares_fit", "least_squares_modes", "smooth_modes"]

_MAX_SEARCH_POINTS = 400  # neurons used to choose the hyperparameters (an eigh of this size per length)
_MAX_CENTRES = 1000  # inducing centres (bumps) of the posterior mean
_LENGTH_RANGE = (0.02, 2.0)  # ℓ, in units of the properties' range per dimension
_LENGTH_TOL = 0.05  # in log ℓ: the posterior mean barely changes within 5 % of the best length
_ARD_OUTPUT_LENGTH_RANGE = (0.02, 100.0)  # per-property lengths: 100 ranges is a property the modes ignore
_MIN_NOISE_RATIO = 1e-6  # least σ²/a² in the search over lengths per property (see _hyperparameters)
_BLOCK_ELEMENTS = 2**20  # neurons × centres per block of the cross gram (8 MB in float64)
_RELATIVE_EIGENVALUE_FLOOR = 1e-10
_BLOCK_ROWS_ELEMENTS = 2**22  # samples × neurons per block of y converted to float64 (32 MB)


def least_squares_fit(latents, y):
    """:func:`least_squares_modes` and each neuron's residual variance about them.

    Returns
    -------
    modes : ndarray of shape (n_neurons, K)
    residual_variance : ndarray of shape (n_neurons,)
        ``mean((y_j − ȳ_j − (t − t̄) û_j)²)`` over samples (y's centred sums of squares
        from :func:`column_moments`, in row blocks).
    """
    modes = least_squares_modes(latents, y)
    t = np.asarray(latents, dtype=np.float64)
    t = t - t.mean(axis=0)
    explained = ((modes @ (t.T @ t)) * modes).sum(axis=1)
    return modes, np.maximum(column_moments(y)[1] - explained, 0.0) / max(len(t), 1)


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


def _isotropic_hyperparameters(points, targets, span):
    """``(ℓ, a², σ²)`` maximising the exact marginal likelihood, one length ``ℓ`` for every property."""
    total_var = max(float(np.mean(targets**2)), 1e-300)
    found = {}

    def negative_evidence(log_length):
        evals, evecs = np.linalg.eigh(_cross_gram(points, points, np.exp(log_length) * span))
        value, amplitudes = _best_amplitudes(np.maximum(evals, 0.0), evecs.T @ targets, total_var)
        found[float(log_length)] = (value, amplitudes)
        return value

    bounds = np.log(_LENGTH_RANGE)
    result = minimize_scalar(negative_evidence, bounds=bounds, method="bounded", options={"xatol": _LENGTH_TOL})
    log_length = float(result.x)
    if log_length not in found:
        negative_evidence(log_length)
    value, (a2, s2) = found[log_length]
    return value, float(np.exp(log_length)), float(a2), float(s2)


def _negative_evidence_and_gradient(theta, squared_distances, targets):
    """Negative log marginal likelihood of ``targets`` (N, K) and its gradient in ``θ``.

    ``θ = (log ℓ_1, …, log ℓ_q, log a², log r)``, ``r = σ²/a²``; ``squared_distances[d]``
    holds ``((q_id − q_jd)/span_d)²``. With ``C = a² (G + r I)``, ``G = exp(−Σ_d D_d/ℓ_d²)``
    and ``α = C⁻¹Y``: value ``½ Σ Y ⊙ α + (K/2) log|C|`` (less ``½ N K log 2π``), gradient
    ``½ tr((K C⁻¹ − ααᵀ) ∂C/∂θ)`` with ``∂C/∂log ℓ_d = a² G ⊙ 2 D_d/ℓ_d²``,
    ``∂C/∂log a² = C`` and ``∂C/∂log r = a² r I``. The bound on ``r`` keeps ``C``
    positive definite (smallest eigenvalue at least ``a² r``); should the factorisation
    still fail, the value is a huge finite number, which the line search backs away from.
    """
    q = len(squared_distances)
    n, n_cols = targets.shape
    lengths, a2, ratio = np.exp(theta[:q]), np.exp(theta[q]), np.exp(theta[q + 1])
    signal = a2 * np.exp(-np.tensordot(1.0 / lengths**2, squared_distances, axes=1))
    covariance = signal.copy()
    covariance[np.diag_indices(n)] += a2 * ratio
    try:
        factor = cho_factor(covariance, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        return 1e300, np.zeros_like(theta)
    alpha = cho_solve(factor, targets, check_finite=False)
    value = 0.5 * float((targets * alpha).sum()) + n_cols * float(np.log(np.diag(factor[0])).sum())
    inner = n_cols * cho_solve(factor, np.eye(n), check_finite=False) - alpha @ alpha.T
    weighted = inner * signal
    noise_part = 0.5 * a2 * ratio * float(np.trace(inner))
    gradient = np.empty_like(theta)
    gradient[:q] = [float((weighted * squared_distances[d]).sum()) / lengths[d] ** 2 for d in range(q)]
    gradient[q] = 0.5 * float(weighted.sum()) + noise_part
    gradient[q + 1] = noise_part
    return value, gradient


def _hyperparameters(points, targets, span):
    """``(ℓ, a², σ²)`` maximising the exact marginal likelihood; ``ℓ`` of shape (q,), a length per property.

    The isotropic optimum (one length, a bounded 1-D search) is the start of an L-BFGS
    search over every property's log length, log a² and log σ²/a² with the analytic
    gradient (automatic relevance determination: a property the modes do not depend on
    goes to long lengths, up to 100 ranges). ``σ²/a²`` is kept at least 1e-6: with long
    lengths on smooth, nearly noise-free modes the evidence otherwise drives it towards
    0 and the posterior mean becomes large bump heights that cancel, which float32
    evaluation of the predictor cannot resolve. The isotropic optimum (its ``σ²/a²``
    raised to that floor) is kept if the search does not improve on it.
    """
    q = points.shape[1]
    _, length, a2, s2 = _isotropic_hyperparameters(points, targets, span)
    if q == 1:  # one property: its length is the isotropic one
        return np.full(1, length), a2, s2
    scaled = points / span
    squared_distances = np.stack([(scaled[:, d, None] - scaled[None, :, d]) ** 2 for d in range(q)])
    start = np.r_[np.full(q, np.log(length)), np.log(a2), np.log(max(s2 / a2, _MIN_NOISE_RATIO))]
    bounds = [tuple(np.log(_ARD_OUTPUT_LENGTH_RANGE))] * q + [(None, None), (np.log(_MIN_NOISE_RATIO), None)]
    result = minimize(
        _negative_evidence_and_gradient, start, args=(squared_distances, targets), jac=True, method="L-BFGS-B",
        bounds=bounds,
    )  # fmt: skip
    start_value = _negative_evidence_and_gradient(start, squared_distances, targets)[0]
    best = result.x if np.isfinite(result.fun) and result.fun < start_value else start
    a2 = float(np.exp(best[q]))
    return np.exp(best[:q]), a2, a2 * float(np.exp(best[q + 1]))


def _subset_of_regressors(positions, modes, centres, widths, ratio):
    """Heights ``β`` (M, K) of the bumps at ``centres``: the SoR posterior mean, noise/signal ``ratio``."""
    to_features = _feature_map(centres, widths)  # Φ = G_NM @ to_features
    r = to_features.shape[1]
    normal, rhs = np.zeros((r, r)), np.zeros((r, modes.shape[1]))
    block = max(1, _BLOCK_ELEMENTS // len(centres))
    for start in range(0, len(positions), block):
        features = _cross_gram(positions[start : start + block], centres, widths) @ to_features
        normal += features.T @ features
        rhs += features.T @ modes[start : start + block]
    normal[np.diag_indices(r)] += ratio
    return to_features @ np.linalg.solve(normal, rhs)


def smooth_modes(positions, modes, *, random_state=0, max_centres=_MAX_CENTRES, free_bumps=True):
    """Smooth function of ``positions`` fitted to ``modes``, as bumps: a Gaussian-process
    posterior mean, or its weighted sum with free bumps, ``w · free + (1 − w) · process``,
    ``w`` in [0, 1] the weight that predicts held-out neurons best.

    With ``free_bumps=False``, always the process's posterior mean (:mod:`._free_bumps`
    describes the free bumps and the weight).

    Parameters
    ----------
    positions : ndarray of shape (n_neurons, q)
    modes : ndarray of shape (n_neurons, K)
    random_state : int, default=0
        Draws the neurons used to choose the hyperparameters (when there are more than 400),
        the inducing centres (when there are more than ``max_centres``) and, with
        ``free_bumps``, the held-out neurons, the fitted subset and the candidate centres.
    max_centres : int, default=1000
        Most inducing centres M, hence bumps. The process's time is O(n_neurons · M²), its
        memory O(M²); free bumps add O(min(n_neurons, 2000) · 2,500) memory.
    free_bumps : bool, default=True
        Weigh the process and free bumps on held-out neurons
        (:func:`._free_bumps.free_bumps`; errors summed over the K columns).

    Returns
    -------
    centres : ndarray of shape (M, q)
        Bump centres: ``min(n_neurons, max_centres)`` of the positions, then the free
        bumps' (none where their weight is 0; only theirs where it is 1).
    widths : ndarray of shape (M, q)
        ``ℓ_d · span_d`` per property, the same for every process bump; free bumps have
        their own.
    magnitudes : ndarray of shape (M, K)
        Bump heights: the process's ``β`` times ``1 − w``, the free bumps' times ``w``.

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
    lengths, a2, s2 = _hyperparameters(positions[search], modes[search], span)
    widths = lengths * span
    centres = positions.copy() if n <= max_centres else positions[np.sort(order[:max_centres])]
    magnitudes = _subset_of_regressors(positions, modes, centres, widths, s2 / a2)
    process = centres, np.tile(widths, (len(centres), 1)), magnitudes
    if not free_bumps:
        return process
    found = _free_bumps.free_bumps(
        positions, modes, partial(smooth_modes, random_state=random_state, max_centres=max_centres, free_bumps=False),
        random_state=random_state,
    )  # fmt: skip
    if found is None:
        return process
    centres, widths, heights, weight = found
    if weight >= 1.0:
        return centres, widths, heights
    return (
        np.vstack([process[0], centres]),
        np.vstack([process[1], widths]),
        np.vstack([(1.0 - weight) * magnitudes, weight * heights]),
    )


def _features(points, centres, widths, to_features):
    """Subset-of-regressors features ``g(points, centres) @ to_features`` (see :func:`_feature_map`)."""
    return _cross_gram(points, centres, widths) @ to_features


def _feature_map(centres, widths):
    """``V E^{-1/2}`` of the centres' gram ``V E Vᵀ`` (eigenvalues below 1e-10 of the largest dropped)."""
    evals, evecs = np.linalg.eigh(_cross_gram(centres, centres, widths))
    keep = evals > _RELATIVE_EIGENVALUE_FLOOR * evals[-1]
    return evecs[:, keep] / np.sqrt(evals[keep])

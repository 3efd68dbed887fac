r"""Smoothing of the modes after training (``smooth_modes``; numpy, float64).

Input modes: :func:`smooth_input_modes` (a Gaussian-process regression through the data,
described there), run first. Output modes: :func:`smooth_modes`, below.

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

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.optimize import minimize, minimize_scalar

from ._statistics import column_moments, data_moments, project_rows

__all__ = ["least_squares_fit", "least_squares_modes", "smooth_input_modes", "smooth_modes"]

_MAX_SEARCH_POINTS = 400  # neurons used to choose the hyperparameters (an eigh of this size per length)
_MAX_CENTRES = 1000  # inducing centres (bumps) of the posterior mean
_LENGTH_RANGE = (0.02, 2.0)  # ℓ, in units of the properties' range per dimension
_LENGTH_TOL = 0.05  # in log ℓ: the posterior mean barely changes within 5 % of the best length
_ARD_OUTPUT_LENGTH_RANGE = (0.02, 100.0)  # per-property lengths: 100 ranges is a property the modes ignore
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

    ``θ = (log ℓ_1, …, log ℓ_q, log a², log σ²)``; ``squared_distances[d]`` holds
    ``((q_id − q_jd)/span_d)²``. With ``C = a² G + σ² I``, ``G = exp(−Σ_d D_d/ℓ_d²)`` and
    ``α = C⁻¹Y``: value ``½ Σ Y ⊙ α + (K/2) log|C|``, gradient ``½ tr((K C⁻¹ − ααᵀ) ∂C/∂θ)``
    with ``∂C/∂log ℓ_d = a² G ⊙ 2 D_d/ℓ_d²``, ``∂C/∂log a² = a² G``, ``∂C/∂log σ² = σ² I``.
    Where ``C`` is not numerically positive definite the value is +inf (a step the line
    search rejects).
    """
    q = len(squared_distances)
    n, n_cols = targets.shape
    lengths, a2, s2 = np.exp(theta[:q]), np.exp(theta[q]), np.exp(theta[q + 1])
    signal = a2 * np.exp(-np.tensordot(1.0 / lengths**2, squared_distances, axes=1))
    covariance = signal.copy()
    covariance[np.diag_indices(n)] += s2
    try:
        factor = cho_factor(covariance, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        return np.inf, np.zeros_like(theta)
    alpha = cho_solve(factor, targets, check_finite=False)
    value = 0.5 * float((targets * alpha).sum()) + n_cols * float(np.log(np.diag(factor[0])).sum())
    inner = n_cols * cho_solve(factor, np.eye(n), check_finite=False) - alpha @ alpha.T
    weighted = inner * signal
    gradient = np.empty_like(theta)
    gradient[:q] = [float((weighted * squared_distances[d]).sum()) / lengths[d] ** 2 for d in range(q)]
    gradient[q] = 0.5 * float(weighted.sum())
    gradient[q + 1] = 0.5 * s2 * float(np.trace(inner))
    return value, gradient


def _hyperparameters(points, targets, span):
    """``(ℓ, a², σ²)`` maximising the exact marginal likelihood, ``ℓ`` a length per property.

    The isotropic optimum (one length, a bounded 1-D search) is the start of an L-BFGS
    search over every property's log length and log a², log σ² with the analytic
    gradient (automatic relevance determination: a property the modes do not depend on
    goes to long lengths, up to 100 ranges); the isotropic optimum is kept if the search
    does not improve on it.
    """
    q = points.shape[1]
    value, length, a2, s2 = _isotropic_hyperparameters(points, targets, span)
    scaled = points / span
    squared_distances = np.stack([(scaled[:, d, None] - scaled[None, :, d]) ** 2 for d in range(q)])
    total_var = max(float(np.mean(targets**2)), 1e-300)
    start = np.r_[np.full(q, np.log(length)), np.log(a2), np.log(s2)]
    bounds = [tuple(np.log(_ARD_OUTPUT_LENGTH_RANGE))] * q + [(None, None), (np.log(1e-8 * total_var), None)]
    result = minimize(
        _negative_evidence_and_gradient, start, args=(squared_distances, targets), jac=True, method="L-BFGS-B",
        bounds=bounds,
    )  # fmt: skip
    start_value = _negative_evidence_and_gradient(start, squared_distances, targets)[0]
    if not (np.isfinite(result.fun) and result.fun < start_value):
        return np.full(q, length), a2, s2
    return np.exp(result.x[:q]), float(np.exp(result.x[q])), float(np.exp(result.x[q + 1]))


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
        ``ℓ_d · span_d`` per property, the same for every bump.
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
    lengths, a2, s2 = _hyperparameters(positions[search], modes[search], span)
    widths = lengths * span
    centres = positions.copy() if n <= max_centres else positions[np.sort(order[:max_centres])]
    magnitudes = _subset_of_regressors(positions, modes, centres, widths, s2 / a2)
    return centres, np.tile(widths, (len(centres), 1)), magnitudes


# ----------------------------------------------------------------------------- input modes
_INPUT_LENGTHS = np.geomspace(0.05, 1.0, 10)  # ℓ searched, in units of the properties' range
_MODE_NOISE_RATIOS = (0.0, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)  # σ² searched, relative to the modes' mean square
_LOG_PRIOR_GRID = np.linspace(-8.0, 8.0, 33)  # log a², relative to the modes' mean square
_MAX_INPUT_CENTRES = 400
_ARD_LENGTH_RANGE = (0.01, 100.0)  # per-property lengths: 100 ranges is a property the modes ignore
_ARD_SWEEPS = 3


def _features(points, centres, widths, to_features):
    return _cross_gram(points, centres, widths) @ to_features


def _feature_map(centres, widths):
    evals, evecs = np.linalg.eigh(_cross_gram(centres, centres, widths))
    keep = evals > _RELATIVE_EIGENVALUE_FLOOR * evals[-1]
    return evecs[:, keep] / np.sqrt(evals[keep])


def _log_evidence(const, nu, g, a2):
    """``const + ½Σ g²/(ν + 1/a²) − ½Σ log(1 + a²ν)``: the log marginal likelihood at prior variance ``a2``."""
    a2 = np.asarray(a2, dtype=np.float64)[..., None]
    with np.errstate(over="ignore", divide="ignore"):  # a² → 0: 1/a² = inf gives the limit, 0
        return const + 0.5 * (g**2 / (nu + 1.0 / a2)).sum(axis=-1) - 0.5 * np.log1p(a2 * nu).sum(axis=-1)


def _best_prior(const, nu, g, reference):
    """Max over log a² of :func:`_log_evidence`: a grid around ``reference``, then a bounded search."""
    grid = np.log(reference) + _LOG_PRIOR_GRID
    values = _log_evidence(const, nu, g, np.exp(grid))
    j = int(np.argmax(values))
    lo, hi = grid[max(j - 1, 0)], grid[min(j + 1, len(grid) - 1)]
    result = minimize_scalar(
        lambda v: -float(_log_evidence(const, nu, g, np.exp(v))), bounds=(lo, hi), method="bounded",
        options={"xatol": 0.05},
    )  # fmt: skip
    if -result.fun >= values[j]:
        return -result.fun, float(np.exp(result.x))
    return float(values[j]), float(np.exp(grid[j]))


def smooth_input_modes(inputs, positions, current_modes, outputs, loadings, noise_variances, *, random_state=0):
    r"""Input modes as a Gaussian process of position, regressed through the data.

    An input neuron's mode is seen only through the latents ``x P`` it contributes to, so
    unlike an output neuron's it has no least-squares estimate of its own (correlated inputs
    make the per-neuron estimates noise). The model: each subject's centred outputs
    ``Y − Ȳ = (X − X̄) P Ũᵀ + E``, ``E`` Gaussian with the per-neuron variances ``ψ``, the
    loadings ``Ũ`` (per output neuron, scales and mapping included) held at their fitted
    values; each input mode ``P_{jk} = f_k(r_j) + η_{jk}``, ``f_k`` a Gaussian process
    (RBF kernel of lengths ``ℓ_kd`` times the properties' ranges, variance ``a_k²``, subset of
    regressors on at most 400 training input neurons as centres) shared by all subjects,
    ``η_{jk} ~ N(0, σ_k²)`` the neuron's own deviation. ``P`` and ``η`` are integrated out
    in closed form: with ``XᵀX = W Λ Wᵀ`` per subject, the data give each coordinate of
    ``Wᵀ P`` a Gaussian likelihood, and ``η`` widens it. Per mode, the lengths ``ℓ_k``
    (one for every property on a grid, then each property's own doubled or halved while
    it rises), ``σ_k²`` (on a grid) and ``a_k²`` maximise the marginal likelihood of the
    data (exact for one mode,
    the other modes held at ``current_modes``; searched in the basis where the pooled
    ``ŨᵀΨ⁻¹Ũ`` is diagonal); the posterior mean of ``f`` is then solved jointly over the
    modes.

    Cost: one ``d_s × d_s`` eigendecomposition per subject and one pass over its data;
    then O(Σ_s d_s² · M) per length and O(Σ_s d_s · M² + M³) per grid point, M ≤ 400.

    Parameters
    ----------
    inputs : list of array-like of shape (n_samples_s, n_inputs_s)
        Read in row blocks (memmaps are not loaded whole).
    positions : list of ndarray of shape (n_inputs_s, q)
    current_modes : list of ndarray of shape (n_inputs_s, K)
        The fitted input modes (those ``loadings`` were estimated with): while one mode's
        hyperparameters are chosen the other modes are held at them, and their mean square
        per mode centres the grids of ``σ²`` and ``a²``.
    outputs : list of array-like of shape (n_samples_s, n_outputs_s)
    loadings : list of ndarray of shape (n_outputs_s, K)
        ``Ũ``: how each latent moves each output neuron.
    noise_variances : list of ndarray of shape (n_outputs_s,)
    random_state : int, default=0
        Draws the centres when there are more than 400 training input neurons.

    Returns
    -------
    centres : ndarray of shape (B, q)
    widths : ndarray of shape (B, q)
    magnitudes : ndarray of shape (B, K)
        Bumps ``exp(−Σ_d ((r_d − c_d)/w_d)²)`` whose weighted sum is the posterior mean of
        ``f`` (one set of centres per distinct length, B ≤ K · 400).

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.latent_regression._smoothing import smooth_input_modes
    >>> rng = np.random.default_rng(0)
    >>> R = [rng.uniform(size=(150, 2)) for _ in range(2)]
    >>> f = lambda r: np.sin(3 * r[:, :1]) + r[:, 1:]
    >>> X = [rng.normal(size=(2000, 150)) for _ in range(2)]
    >>> U = [rng.normal(size=(40, 1)) for _ in range(2)]
    >>> Y = [x @ (f(r) + 0.05 * rng.normal(size=(150, 1))) @ u.T + 0.1 * rng.normal(size=(2000, 40))
    ...      for x, r, u in zip(X, R, U)]
    >>> c, w, m = smooth_input_modes(X, R, [f(r) for r in R], Y, U, [np.full(40, 0.01)] * 2)
    >>> r = rng.uniform(size=(500, 2))
    >>> fitted = np.exp(-(((r[:, None] - c[None]) / w[None]) ** 2).sum(-1)) @ m
    >>> bool(np.sqrt(np.mean((fitted - f(r)) ** 2)) < 0.05)
    True
    """
    K = loadings[0].shape[1]
    pooled = np.vstack([np.asarray(p, dtype=np.float64) for p in positions])
    lo, hi = pooled.min(axis=0), pooled.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    weights = [_weighted(u, v) for u, v in zip(loadings, noise_variances)]
    precision = sum(w.T @ np.asarray(u, dtype=np.float64) for w, u in zip(weights, loadings))  # Σ ŨᵀΨ⁻¹Ũ
    _, rotation = np.linalg.eigh((precision + precision.T) / 2)
    current = np.vstack([np.asarray(p, dtype=np.float64) for p in current_modes]) @ rotation
    reference = np.maximum((current**2).mean(axis=0), 1e-12 * max(float((current**2).mean()), 1e-300))
    subjects = [
        _subject_terms(
            x, r, y, w @ rotation, rotation.T @ (w.T @ np.asarray(u, dtype=np.float64)) @ rotation, p @ rotation
        )
        for x, r, y, w, u, p in zip(inputs, positions, outputs, weights, loadings, current_modes)
    ]
    rng = np.random.default_rng(random_state)
    n_pooled = len(pooled)
    centres = (
        pooled if n_pooled <= _MAX_INPUT_CENTRES else pooled[np.sort(rng.permutation(n_pooled)[:_MAX_INPUT_CENTRES])]
    )
    hyper = _search(subjects, centres, span, reference)
    heights = _posterior_heights(subjects, centres, span, hyper)
    by_length = {}
    for k, (lengths, _, _) in enumerate(hyper):
        by_length.setdefault(lengths, np.zeros((len(centres), K)))[:, k] = heights[k]
    out_centres = np.vstack([centres for _ in by_length])
    out_widths = np.vstack([np.tile(np.asarray(lengths) * span, (len(centres), 1)) for lengths in by_length])
    return out_centres, out_widths, np.vstack(list(by_length.values())) @ rotation.T


def _search(subjects, centres, span, reference):
    """Per mode, ``(ℓ, a², σ²)`` maximising the evidence (``ℓ`` a length per property).

    Isotropic first, coordinate-wise over the grids: lengths at the middle deviation
    ratio, then ratios at the best length, then lengths again at the best ratio (24
    evaluations per mode instead of the 60 of the full grid; it found the full grid's
    optimum on the suite's generators). Then per property (automatic relevance
    determination): its length doubled or halved while the evidence rises (a property
    the modes do not depend on goes to long lengths, one they change fast with to short
    ones), sweeps until no length moves, and the ratios once more at the lengths found.
    """
    K, q = len(reference), len(span)
    start_ratio = _MODE_NOISE_RATIOS[len(_MODE_NOISE_RATIOS) // 2]
    found = [{} for _ in range(K)]  # (lengths, ratio) -> (evidence, a²), per mode

    def evaluate(requests):
        """Evidence of (mode, lengths, ratio) requests; features computed once per lengths."""
        by_lengths = {}
        for k, lengths, ratio in requests:
            if (lengths, ratio) not in found[k]:
                by_lengths.setdefault(lengths, set()).add((k, ratio))
        for lengths, pairs in by_lengths.items():
            widths = np.asarray(lengths) * span
            to_features = _feature_map(centres, widths)
            feats = [s["vecs"].T @ _features(s["r"], centres, widths, to_features) for s in subjects]
            for k, ratio in sorted(pairs):
                found[k][(lengths, ratio)] = _mode_evidence(subjects, feats, k, ratio * reference[k], reference[k])

    def best(k):
        return max(found[k], key=lambda key: found[k][key][0])

    isotropic = [(float(v),) * q for v in _INPUT_LENGTHS]
    evaluate([(k, lengths, start_ratio) for lengths in isotropic for k in range(K)])
    evaluate([(k, best(k)[0], r) for k in range(K) for r in _MODE_NOISE_RATIOS])
    evaluate([(k, lengths, best(k)[1]) for lengths in isotropic for k in range(K)])
    for _ in range(_ARD_SWEEPS):
        before = [best(k) for k in range(K)]
        for d in range(q):
            moving = {k: (2.0, 0.5) for k in range(K)}  # the factors still tried along property d, per mode
            while moving:
                tried = {}  # mode -> [(factor, lengths)]
                for k, factors in moving.items():
                    lengths, ratio = best(k)
                    tried[k] = [
                        (f, lengths[:d] + (lengths[d] * f,) + lengths[d + 1 :])
                        for f in factors
                        if _ARD_LENGTH_RANGE[0] <= lengths[d] * f <= _ARD_LENGTH_RANGE[1]
                    ]
                evaluate([(k, lengths, best(k)[1]) for k, pairs in tried.items() for _, lengths in pairs])
                moving = {}
                for k, pairs in tried.items():
                    winner = next((f for f, lengths in pairs if best(k)[0] == lengths), None)
                    if winner is not None:
                        moving[k] = (winner,)  # it rose: keep going that way
        if [best(k) for k in range(K)] == before:
            break
    evaluate([(k, best(k)[0], r) for k in range(K) for r in _MODE_NOISE_RATIOS])
    hyper = []
    for k in range(K):
        lengths, ratio = best(k)
        hyper.append((lengths, found[k][(lengths, ratio)][1], ratio * reference[k]))
    return hyper


def _weighted(loadings, noise_variances):
    """``Ψ⁻¹Ũ``; a neuron of zero noise variance (a constant one) weighs nothing."""
    u = np.asarray(loadings, dtype=np.float64)
    v = np.asarray(noise_variances, dtype=np.float64)[:, None]
    return np.divide(u, v, out=np.zeros_like(u), where=v > 0)


def _subject_terms(x, r, y, weights, coupling, current):
    """What a subject's data say about its input modes: ``XᵀX = W Λ Wᵀ``, ``Wᵀ Xᵀ(Y − Ȳ)Ψ⁻¹Ũ``, ``ŨᵀΨ⁻¹Ũ``.

    ``current`` (d × K): the modes the other modes are held at while one mode's
    hyperparameters are chosen, kept as ``Wᵀ current``.
    """
    _, _, _, xtx, xtz, _ = data_moments(x, project_rows(y, weights))  # centred XᵀX, Xᵀ(Y − Ȳ)Ψ⁻¹Ũ
    lam, vecs = np.linalg.eigh(xtx)
    return {
        "r": np.asarray(r, dtype=np.float64),
        "vecs": vecs,
        "lam": np.maximum(lam, 0.0),
        "b": vecs.T @ xtz,
        "coupling": (coupling + coupling.T) / 2,
        "current": vecs.T @ np.asarray(current, dtype=np.float64),
    }


def _evidence_terms(subjects, feats, k, s2):
    """``(const, ν, g)`` of mode k's log marginal likelihood (see :func:`_log_evidence`).

    The other modes are held at each subject's ``current`` modes: the likelihood of mode k
    is then that of the data less their part, ``b_k − Λ Σ_{m≠k} C_km q_m`` in the ``W`` basis
    (``C = ŨᵀΨ⁻¹Ũ`` of the subject, which differs between subjects even where the pooled
    one is diagonal). ``feats`` are the subjects' SoR features rotated by ``Wᵀ``; ``s2`` the
    deviations' variance σ_k². The terms left out do not depend on the hyperparameters.
    """
    H, h, const = 0.0, 0.0, 0.0
    for s, phi in zip(subjects, feats):
        coupling, current = s["coupling"][:, k], s["current"]
        b = s["b"][:, k] - s["lam"] * (current @ coupling - current[:, k] * coupling[k])
        alpha = coupling[k] * s["lam"]
        den = 1.0 + s2 * alpha
        H = H + (phi * (alpha / den)[:, None]).T @ phi
        h = h + phi.T @ (b / den)
        const += 0.5 * s2 * float((b**2 / den).sum()) - 0.5 * float(np.log(den).sum())
    nu, vecs = np.linalg.eigh(H)
    return const, np.maximum(nu, 0.0), vecs.T @ h


def _mode_evidence(subjects, feats, k, s2, reference):
    """Mode k's log marginal likelihood at its best ``a²`` and that ``a²``."""
    return _best_prior(*_evidence_terms(subjects, feats, k, s2), reference)


def _posterior_heights(subjects, centres, span, hyper):
    """Posterior mean of ``f_k`` as bump heights at ``centres``, one array per mode, jointly over modes.

    ``hyper[k] = (ℓ_k, a_k², σ_k²)``.
    """
    K = len(hyper)
    maps = [_feature_map(centres, np.asarray(lengths) * span) for lengths, _, _ in hyper]
    feats = [
        [s["vecs"].T @ _features(s["r"], centres, np.asarray(lengths) * span, m) for s in subjects]
        for (lengths, _, _), m in zip(hyper, maps)
    ]
    offsets = np.concatenate([[0], np.cumsum([m.shape[1] for m in maps])])
    normal, rhs = np.zeros((offsets[-1], offsets[-1])), np.zeros(offsets[-1])
    deviations = np.diag([s2 for _, _, s2 in hyper])
    for i, s in enumerate(subjects):
        alpha = s["lam"][:, None, None] * s["coupling"][None]  # (d, K, K): the data's precision per coordinate
        widen = np.linalg.inv(np.eye(K)[None] + alpha @ deviations[None])
        alpha, b = widen @ alpha, (widen @ s["b"][:, :, None])[:, :, 0]
        for k in range(K):
            rows = slice(offsets[k], offsets[k + 1])
            rhs[rows] += feats[k][i].T @ b[:, k]
            for m in range(K):
                normal[rows, offsets[m] : offsets[m + 1]] += (feats[k][i] * alpha[:, k, m][:, None]).T @ feats[m][i]
    for k, (_, a2, _) in enumerate(hyper):
        diagonal = np.arange(offsets[k], offsets[k + 1])
        normal[diagonal, diagonal] += 1.0 / a2
    coefficients = np.linalg.solve((normal + normal.T) / 2, rhs)
    heights = [m @ coefficients[offsets[k] : offsets[k + 1]] for k, m in enumerate(maps)]
    return heights

r"""Smoothing of the input modes after training: a Gaussian-process regression through the data,
weighed with free bumps through the same data (:mod:`._input_free_bumps`).

The output side and the shared subset-of-regressors pieces are in :mod:`._smoothing`;
this module holds :func:`smooth_input_modes` (run first) and its evidence, search and
posterior mean.
"""

from __future__ import annotations

from functools import partial

import numpy as np
from scipy.optimize import minimize_scalar

from ._input_free_bumps import free_input_bumps
from ._smoothing import _cross_gram, _feature_map, _features
from ._statistics import data_moments, project_rows

__all__ = ["smooth_input_modes"]

_INPUT_LENGTHS = np.geomspace(0.05, 1.0, 10)  # ℓ searched, in units of the properties' range
_MODE_NOISE_RATIOS = (0.0, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)  # σ² searched, relative to the modes' mean square
_LOG_PRIOR_GRID = np.linspace(-8.0, 8.0, 33)  # log a², relative to the modes' mean square
_MAX_INPUT_CENTRES = 400
_MAX_SEARCH_CENTRES = 250  # the hyperparameters are searched on a subset of the centres (cost ∝ M³)
_ARD_LENGTH_RANGE = (0.01, 100.0)  # per-property lengths: 100 ranges is a property the modes ignore
_ARD_SWEEPS = 3  # per step size, at most
# lengths are moved by these factors, coarse to fine: doubling alone stops in a local optimum
# a factor of 2 away from better ones (on the suite, evidence and prediction both improve)
_ARD_FACTORS = (2.0, 2.0**0.5, 2.0**0.25)


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


def smooth_input_modes(
    inputs, positions, current_modes, outputs, loadings, noise_variances, *, random_state=0, free_bumps=True
):
    r"""Input modes as a Gaussian process of position, regressed through the data, or its weighted
    sum with free bumps fitted through the same data.

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
    (one for every property on a grid, then each property's own moved by factors of 2,
    then √2, then 2^¼ while it rises), ``σ_k²`` (on a grid) and ``a_k²`` maximise the
    marginal likelihood of the data (exact for one mode,
    the other modes held at ``current_modes``; searched in the basis where the pooled
    ``ŨᵀΨ⁻¹Ũ`` is diagonal, with at most 250 of the centres); the posterior mean of ``f``
    is then solved jointly over the modes, with all centres. With ``free_bumps``, a few
    Gaussian bumps with their own centres and widths are fitted through the same likelihood
    and weighed beside the process on held-out subjects
    (:func:`._input_free_bumps.free_input_bumps`, which describes them).

    Cost: one ``d_s × d_s`` eigendecomposition per subject and one pass over its data;
    then O(Σ_s d_s² · M + M³) per distinct set of lengths (20 for the isotropic grids,
    typically 40-100 more for the lengths per property, shared by the modes that ask for
    the same lengths) and O(Σ_s d_s · M² + M³) per mode and grid point, M ≤ 250 in the
    search and M ≤ 400 for the posterior mean: on the suite 1-4 s, one thread; free bumps
    add 1-3 s there. The predictor has up to K · 400 bumps (one set of centres per distinct
    set of lengths), and the free bumps beside them (at most 10 K).

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
        Draws the centres when there are more than 400 training input neurons, the
        centres of the search when there are more than 250, and the free bumps' candidate
        centres when there are more than 500.
    free_bumps : bool, default=True
        Weigh the process and free bumps through the data on held-out subjects (with at
        least two training subjects; :func:`._input_free_bumps.free_input_bumps`). False:
        the process's posterior mean alone.

    Returns
    -------
    centres : ndarray of shape (B, q)
    widths : ndarray of shape (B, q)
    magnitudes : ndarray of shape (B, K)
        Bumps ``exp(−Σ_d ((r_d − c_d)/w_d)²)`` whose weighted sum is the smoothed modes:
        the process's posterior mean of ``f`` (one set of centres per distinct set of
        lengths, at most K · 400 bumps), heights times ``1 − w``, then the free bumps
        (none where their weight ``w`` is 0), heights times ``w``.

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.latent_regression._input_smoothing import smooth_input_modes
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
    searched = (
        centres
        if len(centres) <= _MAX_SEARCH_CENTRES
        else centres[np.sort(rng.permutation(len(centres))[:_MAX_SEARCH_CENTRES])]
    )
    hyper = _search(subjects, searched, span, reference)
    heights = _posterior_heights(subjects, centres, span, hyper)
    by_length = {}
    for k, (lengths, _, _) in enumerate(hyper):
        by_length.setdefault(lengths, np.zeros((len(centres), K)))[:, k] = heights[k]
    out_centres = np.vstack([centres for _ in by_length])
    out_widths = np.vstack([np.tile(np.asarray(lengths) * span, (len(centres), 1)) for lengths in by_length])
    magnitudes = np.vstack(list(by_length.values()))
    if free_bumps:
        positions = [np.asarray(p, dtype=np.float64) for p in positions]
        found = free_input_bumps(
            subjects, positions, np.diag([s2 for _, _, s2 in hyper]),
            partial(_process_of, subjects, positions, span, hyper, random_state), random_state=random_state,
        )  # fmt: skip
        if found is not None:
            free_centres, free_widths, free_heights, weight = found
            out_centres = np.vstack([out_centres, free_centres])
            out_widths = np.vstack([out_widths, free_widths])
            magnitudes = np.vstack([(1.0 - weight) * magnitudes, weight * free_heights])
    return out_centres, out_widths, magnitudes @ rotation.T


def _process_of(subjects, positions, span, hyper, random_state, indices):
    """The process's posterior mean given the subjects ``indices`` alone (hyperparameters kept), as a
    callable from positions (n, q) to modes (n, K); its centres are those subjects' input neurons."""
    pooled = np.vstack([positions[j] for j in indices])
    if len(pooled) > _MAX_INPUT_CENTRES:
        pooled = pooled[np.sort(np.random.default_rng(random_state).permutation(len(pooled))[:_MAX_INPUT_CENTRES])]
    heights = _posterior_heights([subjects[j] for j in indices], pooled, span, hyper)

    def predict(points):
        return np.column_stack(
            [_cross_gram(points, pooled, np.asarray(lengths) * span) @ h for (lengths, _, _), h in zip(hyper, heights)]
        )

    return predict


def _search(subjects, centres, span, reference):
    """Per mode, ``(ℓ, a², σ²)`` maximising the evidence (``ℓ`` a length per property).

    Isotropic first, coordinate-wise over the grids: lengths at the middle deviation
    ratio, then ratios at the best length, then lengths again at the best ratio (24
    evaluations per mode instead of the 60 of the full grid; it found the full grid's
    optimum on the suite's generators). Then a length per property
    (:func:`_per_property_lengths`) with steps of 2, √2 and 2^¼ in turn, the ratios
    again after each. Doubling and halving alone stop a factor of 2 from lengths of
    higher evidence: on the suite's generators the finer steps raised the evidence and,
    with it, how well the modes predict an unseen subject (through the data, given the
    true output side: 0.0153 → 0.0072 below the ceiling on two subjects of 1,000 samples).
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
    if q > 1:
        for factor in _ARD_FACTORS:
            _per_property_lengths(evaluate, best, K, q, factor)
            evaluate([(k, best(k)[0], r) for k in range(K) for r in _MODE_NOISE_RATIOS])
    else:  # one property: its length is the isotropic one
        evaluate([(k, best(k)[0], r) for k in range(K) for r in _MODE_NOISE_RATIOS])
    hyper = []
    for k in range(K):
        lengths, ratio = best(k)
        hyper.append((lengths, found[k][(lengths, ratio)][1], ratio * reference[k]))
    return hyper


def _per_property_lengths(evaluate, best, K, q, factor=2.0):
    """Automatic relevance determination on the input side: per mode, each property's length
    multiplied or divided by ``factor`` while the evidence rises.

    A property the modes do not depend on goes to long lengths (up to 100 ranges), one
    they change fast with to short ones. At most ``_ARD_SWEEPS`` sweeps over the
    properties, fewer if a sweep moves no length. ``evaluate`` takes (mode, lengths,
    ratio) requests; ``best(k)`` is mode k's best (lengths, ratio) so far.
    """
    for _ in range(_ARD_SWEEPS):
        before = [best(k) for k in range(K)]
        for d in range(q):
            moving = {k: (factor, 1.0 / factor) for k in range(K)}  # the factors still tried along d, per mode
            while moving:
                tried = {}  # mode -> [(factor, lengths)]
                for k, factors in moving.items():
                    lengths = best(k)[0]
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
            return


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

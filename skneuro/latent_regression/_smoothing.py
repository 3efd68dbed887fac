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

    û_j = f(q_j) + ε_j, \quad f_k \sim GP\bigl(0,\ a^2 \exp(-\textstyle\sum_d ((q_d - q'_d)/w_d)^2)\bigr),
    \quad ε_{jk} \sim N(0, σ^2),

with ``w = ℓ · span`` (the training properties' range per dimension) and ``a²``, ``ℓ``, ``σ²``
maximising the marginal likelihood (shared by the K columns). The posterior mean
``f(q) = Σ_j a² α_j exp(−Σ_d ((q_d − q_jd)/w_d)²)``, ``α = (a²K + σ²I)⁻¹Û``, is a sum of
Gaussian bumps centred on the training neurons, so it is stored as a
:class:`~skneuro.bumps.SumOfBumpFcns` like any bump predictor.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize, minimize_scalar

__all__ = ["smooth_modes"]

_MAX_SEARCH_POINTS = 600  # neurons used to choose the hyperparameters (the final solve uses all)
_LENGTH_RANGE = (0.02, 2.0)  # ℓ, in units of the properties' range per dimension


def _gram(points, widths):
    scaled = points / widths
    sq = (scaled**2).sum(axis=1)
    return np.exp(-np.maximum(sq[:, None] + sq[None, :] - 2.0 * scaled @ scaled.T, 0.0))


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


def smooth_modes(positions, modes, *, random_state=0):
    """Gaussian-process posterior mean of ``modes`` as a function of ``positions``.

    Parameters
    ----------
    positions : ndarray of shape (n_neurons, q)
    modes : ndarray of shape (n_neurons, K)
    random_state : int
        Draws the neurons used to choose the hyperparameters when there are more than 600.

    Returns
    -------
    centres : ndarray of shape (n_neurons, q)
        The positions (bump centres).
    widths : ndarray of shape (n_neurons, q)
        ``ℓ · span``, the same for every bump.
    magnitudes : ndarray of shape (n_neurons, K)
        ``a² α``.

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
    search = np.arange(len(positions))
    if len(search) > _MAX_SEARCH_POINTS:
        search = np.sort(np.random.default_rng(random_state).choice(len(search), _MAX_SEARCH_POINTS, replace=False))
    points, targets = positions[search], modes[search]
    total_var = max(float(np.mean(targets**2)), 1e-300)
    found = {}

    def negative_evidence(log_length):
        evals, evecs = np.linalg.eigh(_gram(points, np.exp(log_length) * span))
        value, amplitudes = _best_amplitudes(np.maximum(evals, 0.0), evecs.T @ targets, total_var)
        found[float(log_length)] = amplitudes
        return value

    result = minimize_scalar(negative_evidence, bounds=np.log(_LENGTH_RANGE), method="bounded", options={"xatol": 0.02})
    log_length = float(result.x)
    if log_length not in found:
        negative_evidence(log_length)
    a2, s2 = found[log_length]
    widths = np.exp(log_length) * span
    gram = _gram(positions, widths)
    alpha = np.linalg.solve(a2 * gram + s2 * np.eye(len(positions)), modes)
    return positions.copy(), np.tile(widths, (len(positions), 1)), a2 * alpha

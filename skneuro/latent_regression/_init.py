r"""Alternating least-squares start of bump mode predictors (numpy, float64).

With the bump centres and widths fixed, one input and one output group, unit scales and the
offsets at the data means, the model is bilinear in the bump magnitudes ``M_P`` (B, K) and
``M_U`` (B, K): ``Ȳ_s ≈ Z_s M_P M_Uᵀ Φ_sᵀ`` with ``Z_s = X̄_s Φ(R_s)`` and ``Φ_s = Φ(Q_s)``.
Each half-step is a small ridge-stabilised linear system built from per-subject
sufficient statistics ``Z_sᵀZ_s`` and ``Z_sᵀȲ_s``, computed once.
"""

from __future__ import annotations

import numpy as np

__all__ = ["bilinear_als"]


def _solve(lhs, rhs, ridge_factor):
    ridge = ridge_factor * np.mean(np.diag(lhs)) + 1e-300
    return np.linalg.solve(lhs + ridge * np.eye(lhs.shape[0]), rhs)


def bilinear_als(stats, n_components, *, numpy_gen, n_sweeps=20, ridge_factor=1e-6):
    """Magnitudes ``(M_P, M_U)`` minimising ``Σ_s ‖Ȳ_s − Z_s M_P M_Uᵀ Φ_sᵀ‖²``.

    Parameters
    ----------
    stats : list of dict
        Per subject: ``ztz`` (B_p, B_p) = Z_sᵀZ_s, ``zty`` (B_p, e_s) = Z_sᵀȲ_s and
        ``phi_out`` (e_s, B_u) = Φ(Q_s).
    n_components : int
    numpy_gen : numpy.random.Generator
        Draws the starting ``M_U``.

    Returns
    -------
    M_P : ndarray (B_p, K)
    M_U : ndarray (B_u, K)

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.latent_regression._init import bilinear_als
    >>> rng = np.random.default_rng(0)
    >>> Z, phi = rng.normal(size=(200, 4)), rng.uniform(size=(6, 3))
    >>> Y = Z @ np.ones((4, 1)) @ np.ones((1, 3)) @ phi.T
    >>> MP, MU = bilinear_als([{"ztz": Z.T @ Z, "zty": Z.T @ Y, "phi_out": phi}], 1, numpy_gen=rng)
    >>> bool(np.allclose(Z @ MP @ MU.T @ phi.T, Y, atol=1e-6))
    True
    """
    K = n_components
    b_in = stats[0]["ztz"].shape[0]
    b_out = stats[0]["phi_out"].shape[1]
    gram_out = [s["phi_out"].T @ s["phi_out"] for s in stats]
    M_U = numpy_gen.normal(scale=1.0 / np.sqrt(b_out), size=(b_out, K))
    M_P = np.zeros((b_in, K))
    for _ in range(n_sweeps):
        lhs = np.zeros((b_in * K, b_in * K))
        rhs = np.zeros(b_in * K)
        for s in stats:
            V = s["phi_out"] @ M_U
            lhs += np.kron(V.T @ V, s["ztz"])
            rhs += (s["zty"] @ V).reshape(-1, order="F")
        M_P = _solve(lhs, rhs, ridge_factor).reshape(b_in, K, order="F")
        lhs = np.zeros((b_out * K, b_out * K))
        rhs = np.zeros(b_out * K)
        for s, g_out in zip(stats, gram_out):
            lhs += np.kron(M_P.T @ s["ztz"] @ M_P, g_out)
            rhs += (s["phi_out"].T @ s["zty"].T @ M_P).reshape(-1, order="F")
        M_U = _solve(lhs, rhs, ridge_factor).reshape(b_out, K, order="F")
    return M_P, M_U

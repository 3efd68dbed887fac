r"""Free bumps for the input modes, fitted through the data, and their weight beside the process.

The Gaussian process of :func:`._input_smoothing.smooth_input_modes` has one set of kernel
lengths per mode. As on the output side (:mod:`._free_bumps`), input modes made of a few
local features of different sizes are then over-smoothed where they are sharp, and a few
Gaussian bumps with their own centres and widths, shared by the K modes with a height per
mode, describe them better. An input neuron's mode has no estimate of its own, so the bumps
are fitted *through the data*, with the likelihood the process uses: per subject, in the
eigenbasis ``XᵀX = W Λ Wᵀ`` of its centred inputs, the coordinates ``p_i`` of ``Wᵀ P``
(``P = Φ H`` the bumps' modes at the subject's input neurons) have the log likelihood

.. math::

    -\tfrac12 \textstyle\sum_i p_i^\top α_i\, p_i + p_i^\top b_i,\qquad
    α_i = (I + λ_i C Σ)^{-1} λ_i C,\quad b_i = (I + λ_i C Σ)^{-1} (W^\top X^\top (Y-\bar Y) Ψ^{-1} \tilde U)_i,

``C = ŨᵀΨ⁻¹Ũ`` and ``Σ = diag(σ_k²)`` the neurons' own deviations (the process's, from its
marginal likelihood), which widen every coordinate as they do in the process. The
heights ``H`` maximise it less a ridge (*variable projection*: solved in closed form
whenever the centres and widths move). The ridge is per mode: 1e-4 times the data's
total precision for that mode, ``Σ_s Σ_i α_i[k, k]`` (as the output side's 1e-4 times the
number of neurons), so that the result does not depend on how the modes are scaled in the
basis where the pooled ``ŨᵀΨ⁻¹Ũ`` is diagonal, the basis both smoothers work in. With one
ridge for all modes, the estimator's loadings (the true ones up to a change of basis, to
1e-8) gave free bumps no better than the process on the suite's generator 0 (unseen
subject's gap 0.0037 against 0.0035), against 0.0010 with a ridge per mode.

Bumps are added one at a time (*greedy*): the next one goes where, of candidate centres at
training input neurons and widths of 0.05-1 times the properties' ranges, it raises the
likelihood most given the bumps so far (``g_cᵀ Q_c⁻¹ g_c``, ``g_c`` the likelihood's
gradient along the candidate, ``Q_c`` its curvature); then every centre and width is
refined (L-BFGS, 15 iterations).

How many bumps, and with what weight beside the process, is decided on subjects the bumps
did not see (there are no held-out neurons to score: a neuron's mode is seen only through
its subject's data). The training subjects are split in two groups (every other subject);
on each group a path of bumps and the process (its hyperparameters kept, its posterior mean
recomputed) are fitted, and both predict the other group's data: its squared error
``Σ_i λ_i p_iᵀ C p_i − 2 p_iᵀ (Wᵀ X^⊤ (Y−Ȳ) Ψ⁻¹ Ũ)_i`` (up to a constant; no widening:
this is how well the modes predict that subject's outputs). For every number of bumps the
weight ``w`` in [0, 1] of ``w · bumps + (1 − w) · process`` that predicts both groups best
is solved in closed form (least squares, clipped); the number with the best weighted
prediction is kept (the paths stop 4 bumps after it, or at ``min(10 K, n/10)``). The bumps are
then grown again to that number on all subjects, and the smoothed input modes are the
weighted sum. A subject group has to predict a subject it has not seen, which is what an
unseen subject asks, and on waves, which the process fits and bumps do not, the weight is
near 0.

Measured with the output side known (the benchmark's *input through data* reference:
each training output neuron's least-squares loading on the true latents, and the true
output function at the unseen subject), the unseen subject's gap to the ceiling went from
the process's 0.0072 to 0.0035 on the suite's generator 2 (bumps, two subjects of 1,000
samples) and from 0.0489 to 0.0107 on its redraw 1031, and from 0.0038 to 0.0011 on
generator 0 (sharp bumps); on waves and gradients (generator 1) the weight was small
(0.0015 → 0.0017). In the estimator (``benchmarks/latent_regression.py``, one thread,
``random_state=0``) generator 2 went from 0.0129 to 0.0107 below its ceiling (0.0137 to
0.0111 on average over ``random_state`` 0-9, within 0.015 at 10 of 10 seeds against 8),
generator 0 from 0.0040 to 0.0014, and the suite's redraws within 0.015 from 27 to 29 of 30
(the redraw 1031: 0.0387 → 0.0135).

Cost: per likelihood evaluation, each subject's ``Wᵀ Φ`` (``d_s² M`` for ``d_s`` inputs and
``M`` bumps) and a solve for the ``K M`` heights; per path, the candidates' ``Wᵀ Φ_c`` once
(``d_s² · 2,500``); three paths per fit (two groups, then all subjects) and the process's
posterior mean twice more. With one training subject, fewer than 50 input neurons in
either group of subjects, or a subject of more than 1,000 inputs, the process is kept
alone.
"""

from __future__ import annotations

import numpy as np
import torch

from ._free_bumps import _CANDIDATE_WIDTHS, _activations, minimise_over_bumps

__all__ = ["free_input_bumps", "widened_terms"]

_RIDGE = 1e-4  # per bump and mode, times the data's precision for that mode (Σ_s Σ_i α_i[k, k])
_MAX_BUMPS_PER_MODE = 10
_PATIENCE = 4  # bumps grown after the best weighted prediction before the paths stop
_STEP_ITERATIONS = 15
_FINAL_ITERATIONS = 50
_MAX_CANDIDATES = 500
_MAX_INPUTS = 1000  # inputs per subject: a d_s × d_s projection per likelihood evaluation
_MIN_NEURONS = 50  # input neurons in each of the two groups of subjects; fewer: the process alone
_FLOAT = {"dtype": torch.float64, "device": "cpu"}


def widened_terms(subject, deviations):
    """``(α, b̃)`` of a subject: its data's precision (d, K, K) and pull (d, K) per eigen-coordinate,
    each widened by the neurons' own deviations ``deviations`` (K × K, diagonal ``σ_k²``).

    ``α_i = (I + λ_i C Σ)⁻¹ λ_i C`` and ``b̃_i = (I + λ_i C Σ)⁻¹ b_i`` (see the module docstring).

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.latent_regression._input_free_bumps import widened_terms
    >>> subject = {"lam": np.array([4.0]), "coupling": np.eye(1), "b": np.array([[2.0]])}
    >>> alpha, b = widened_terms(subject, np.eye(1) * 0.25)
    >>> float(alpha[0, 0, 0]), float(b[0, 0])
    (2.0, 1.0)
    """
    K = len(deviations)
    alpha = subject["lam"][:, None, None] * subject["coupling"][None]
    widen = np.linalg.inv(np.eye(K)[None] + alpha @ np.asarray(deviations)[None])
    return widen @ alpha, (widen @ subject["b"][:, :, None])[:, :, 0]


class _Data:
    """One subject's terms as tensors: positions (scaled), ``W``, widened and plain terms."""

    def __init__(self, subject, scaled_positions, deviations):
        alpha, b = widened_terms(subject, deviations)
        self.r = torch.as_tensor(scaled_positions, **_FLOAT)
        self.vecs = torch.as_tensor(subject["vecs"], **_FLOAT)
        self.alpha, self.b = torch.as_tensor(alpha, **_FLOAT), torch.as_tensor(b, **_FLOAT)
        self.lam = torch.as_tensor(subject["lam"], **_FLOAT)
        self.coupling = torch.as_tensor(subject["coupling"], **_FLOAT)
        self.b_plain = torch.as_tensor(subject["b"], **_FLOAT)

    def coordinates(self, centres, log_widths):
        """``Wᵀ Φ`` (d, M): the bumps' activations at the subject's inputs, in its eigenbasis."""
        return self.vecs.T @ _activations(self.r, centres, log_widths)

    def cross(self, first, second):
        """``Σ_i λ_i a_iᵀ C c_i`` of two mode arrays (d, K) at its inputs (``a``, ``c`` their coordinates)."""
        a = self.vecs.T @ torch.as_tensor(first, **_FLOAT)
        c = self.vecs.T @ torch.as_tensor(second, **_FLOAT)
        return float(((a * self.lam[:, None]) @ self.coupling * c).sum())

    def pull(self, modes):
        """``Σ_i p_iᵀ b_i``, unwidened."""
        return float(((self.vecs.T @ torch.as_tensor(modes, **_FLOAT)) * self.b_plain).sum())

    def squared_error(self, modes):
        """``Σ_i λ_i p_iᵀ C p_i − 2 p_iᵀ b_i`` of modes (d, K) at its inputs: its outputs' error, less a constant."""
        return self.cross(modes, modes) - 2.0 * self.pull(modes)


def _heights(data, coordinates, ridge):
    """Heights (M, K) maximising the widened likelihood less ``½ Σ_k ridge_k ‖H_k‖²`` (block solve, K M unknowns)."""
    M, K = coordinates[0].shape[1], data[0].alpha.shape[1]
    normal = torch.zeros(K, M, K, M, **_FLOAT)
    rhs = torch.zeros(K, M, **_FLOAT)
    for d, F in zip(data, coordinates):
        normal = normal + torch.einsum("im,ikl,in->kmln", F, d.alpha, F)
        rhs = rhs + (F.T @ d.b).T
    normal = normal.reshape(K * M, K * M) + torch.diag(ridge.repeat_interleave(M))
    return torch.linalg.solve(normal, rhs.reshape(-1)).reshape(K, M).T


def _objective(data, centres, log_widths, ridge):
    """Negative widened log likelihood plus the ridge, at the best heights; and those heights."""
    coordinates = [d.coordinates(centres, log_widths) for d in data]
    heights = _heights(data, coordinates, ridge)
    value = 0.5 * (ridge * heights**2).sum()  # the penalty _heights minimises with
    for d, F in zip(data, coordinates):
        p = F @ heights
        value = value + 0.5 * torch.einsum("ik,ikl,il->", p, d.alpha, p) - (p * d.b).sum()
    return value, heights


def _refine(data, centres, log_widths, ridge, iterations):
    """Centres and log widths by L-BFGS on :func:`_objective`, heights in closed form."""
    centres, log_widths = minimise_over_bumps(
        lambda c, lw: _objective(data, c, lw, ridge)[0], centres, log_widths, iterations
    )
    with torch.no_grad():
        heights = _objective(data, centres, log_widths, ridge)[1]
    return centres, log_widths, heights


def _ridge(data):
    """Per mode (K,): 1e-4 times the data's total precision for that mode, ``Σ_s Σ_i α_i[k, k]``.

    Floored at 1e-12 of the largest: a mode the data say nothing about (a latent no output
    neuron loads on) keeps a solvable normal matrix, its heights 0.
    """
    ridge = _RIDGE * sum(torch.diagonal(d.alpha, dim1=1, dim2=2).sum(0) for d in data)
    return ridge.clamp_min(1e-12 * float(ridge.max().clamp_min(1e-300)))


def _grow(data, n_bumps, rng, final_iterations=None):
    """Greedy path of bumps through ``data``: yields ``(centres, log_widths, heights)`` after each bump."""
    ridge = _ridge(data)
    pooled = torch.cat([d.r for d in data])
    q, K = pooled.shape[1], data[0].alpha.shape[1]
    pick = np.sort(rng.permutation(len(pooled))[:_MAX_CANDIDATES]) if len(pooled) > _MAX_CANDIDATES else None
    candidates = pooled if pick is None else pooled[torch.as_tensor(pick)]
    projected, curvature = _candidate_terms(data, candidates, ridge)
    centres, log_widths = torch.zeros(0, q, **_FLOAT), torch.zeros(0, q, **_FLOAT)
    heights = torch.zeros(0, K, **_FLOAT)
    for m in range(n_bumps):
        with torch.no_grad():
            gain = _gains(data, projected, curvature, (centres, log_widths, heights))
            w_index, c_index = divmod(int(torch.argmax(gain)), len(candidates))
        centres = torch.cat([centres, candidates[c_index : c_index + 1]])
        log_widths = torch.cat([log_widths, torch.full((1, q), float(np.log(_CANDIDATE_WIDTHS[w_index])), **_FLOAT)])
        last = final_iterations is not None and m == n_bumps - 1
        centres, log_widths, heights = _refine(
            data, centres, log_widths, ridge, final_iterations if last else _STEP_ITERATIONS
        )
        yield centres, log_widths, heights


def _weigh(pairs):
    """The weight ``w`` in [0, 1] of ``w · bumps + (1 − w) · process`` that predicts held-out data best, and its error.

    ``pairs``: (held-out subject's data, process's modes, bumps' modes) at its inputs. The
    squared error is quadratic in ``w``: ``e(proc + w D) = e(proc) + 2 w (⟨D, proc⟩ − ⟨D, b⟩)
    + w² ⟨D, D⟩`` (``D = bumps − proc``, ``⟨·,·⟩`` the data's ``λ C`` product), least at
    ``w = Σ (⟨D, b⟩ − ⟨D, proc⟩) / Σ ⟨D, D⟩``, then clipped.
    """
    numerator = denominator = 0.0
    for d, proc, bump in pairs:
        difference = bump - proc
        numerator += d.pull(difference) - d.cross(difference, proc)
        denominator += d.cross(difference, difference)
    weight = float(np.clip(numerator / denominator, 0.0, 1.0)) if denominator > 0 else 0.0
    return weight, sum(d.squared_error(proc + weight * (bump - proc)) for d, proc, bump in pairs)


def _candidate_terms(data, candidates, ridge):
    """Per subject ``Wᵀ Φ_c`` (d, 5 C: every candidate width at every centre, width-major) and
    per candidate the curvature ``Σ_s Σ_i (Wᵀ Φ_c)_i² α_i + diag(ridge)`` (5 C, K, K)."""
    widths = torch.as_tensor(_CANDIDATE_WIDTHS, **_FLOAT)
    projected, curvature = [], 0.0
    for d in data:
        squared = ((d.r[:, None, :] - candidates[None]) ** 2).sum(-1)
        phi = torch.exp(-squared[:, None, :] / widths[None, :, None] ** 2).reshape(len(d.r), -1)
        Fc = d.vecs.T @ phi
        projected.append(Fc)
        curvature = curvature + torch.einsum("ic,ikl->ckl", Fc**2, d.alpha)
    return projected, curvature + torch.diag(ridge)[None]


def _gains(data, projected, curvature, bumps):
    """Per candidate, twice the drop of the objective when it is added to ``bumps`` (their
    heights held) with its best height: ``g_cᵀ Q_c⁻¹ g_c``, ``g_c = Σ_s (Wᵀ Φ_c)ᵀ (b̃ − α p)``
    the objective's slope along the candidate, ``Q_c`` (``curvature``) its curvature."""
    centres, log_widths, heights = bumps
    gradient = 0.0
    for d, Fc in zip(data, projected):
        p = d.coordinates(centres, log_widths) @ heights
        gradient = gradient + Fc.T @ (d.b - torch.einsum("ikl,il->ik", d.alpha, p))
    return (gradient[:, None, :] @ torch.linalg.solve(curvature, gradient[:, :, None]))[:, 0, 0]


def _modes_at(points, bumps):
    centres, log_widths, heights = bumps
    return (_activations(points, centres, log_widths) @ heights).numpy()


def free_input_bumps(subjects, positions, deviations, process, *, random_state=0):
    """Free input bumps through the data and their weight beside ``process``, from held-out subjects.

    Parameters
    ----------
    subjects : list of dict
        Each subject's terms, as :func:`._input_smoothing.smooth_input_modes` builds them
        (``vecs``, ``lam``, ``b``, ``coupling``; every mode in the basis they share).
    positions : list of ndarray of shape (n_inputs_s, q)
    deviations : ndarray of shape (K, K)
        ``diag(σ_k²)``: the neurons' own deviations from the smooth modes (the process's).
    process : callable
        ``process(indices) -> callable``: the process fitted to the subjects ``indices``;
        the returned callable maps positions (n, q) to modes (n, K).
    random_state : int, default=0
        Draws the candidate centres (when there are more than 500 input neurons).

    Returns
    -------
    tuple of (centres, widths, heights, weight) or None
        Bumps of shape (M, q), (M, q), (M, K) in the units of ``positions``, fitted to all
        subjects; ``weight`` in (0, 1]. None where the weight is 0, with one subject, with
        fewer than 50 input neurons in either group of subjects, with a subject of more
        than 1,000 inputs, or where the fit fails (a singular solve, non-finite bumps).

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.latent_regression._input_free_bumps import free_input_bumps
    >>> subjects = [{"vecs": np.eye(60), "lam": np.full(60, 50.0), "coupling": np.eye(1), "b": None}]
    >>> free_input_bumps(subjects, [np.zeros((60, 2))], np.eye(1), None) is None  # one subject
    True
    """
    n_subjects = len(subjects)
    groups = [list(range(n_subjects))[g::2] for g in range(2)]
    if (
        n_subjects < 2
        or any(len(p) > _MAX_INPUTS for p in positions)
        or min(sum(len(positions[j]) for j in group) for group in groups) < _MIN_NEURONS
    ):
        return None
    try:
        return _free_input_bumps(subjects, positions, deviations, process, groups, random_state)
    except torch.linalg.LinAlgError:
        return None


def _free_input_bumps(subjects, positions, deviations, process, groups, random_state):
    """:func:`free_input_bumps` past its checks: the two groups' paths, the weight, the final path."""
    pooled = np.vstack(positions)
    lo, hi = pooled.min(axis=0), pooled.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    data = [_Data(s, (p - lo) / span, deviations) for s, p in zip(subjects, positions)]
    K = len(deviations)
    cap = max(1, min(_MAX_BUMPS_PER_MODE * K, len(pooled) // 10))
    rng = np.random.default_rng(random_state)
    folds = []  # per fold: its path, the held-out data and the process's prediction there
    for g in range(2):
        train, held = groups[1 - g], groups[g]
        predict = process(train)
        folds.append(
            {
                "path": _grow([data[j] for j in train], cap, rng),
                "held": held,
                "process": [predict(positions[j]) for j in held],
            }
        )
    best, best_m = None, 0
    for m in range(1, cap + 1):
        pairs = []  # (held data, process modes, bumps' modes)
        for fold in folds:
            bumps = next(fold["path"])
            for j, process_modes in zip(fold["held"], fold["process"]):
                pairs.append((data[j], process_modes, _modes_at(data[j].r, bumps)))
        weight, error = _weigh(pairs)
        if np.isfinite(error) and (best is None or error < best[0]):
            best, best_m = (error, weight), m
        elif m - best_m >= _PATIENCE:
            break
    if best is None or not best[1] > 0.0:
        return None
    weight = best[1]
    *_, bumps = _grow(data, best_m, rng, final_iterations=_FINAL_ITERATIONS)  # the path's last step
    centres, log_widths, heights = (t.numpy() for t in bumps)
    centres, widths = lo + centres * span, np.exp(log_widths) * span
    if not (np.isfinite(centres).all() and np.isfinite(widths).all() and np.isfinite(heights).all()):
        return None
    return centres, widths, heights, weight

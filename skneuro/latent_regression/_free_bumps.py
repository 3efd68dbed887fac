r"""Free bumps for the output modes: a few Gaussian bumps with their own centres and widths.

The Gaussian process of :func:`._smoothing.smooth_modes` has one kernel length per property
for the whole function. Modes that are sums of a few local features of different sizes
(sharp here, broad there) are then over-smoothed where they are sharp or under-smoothed
where they are broad. A few bumps, each with its own centre and widths, shared by the K
modes with a height per mode,

.. math::

    f(q) = \textstyle\sum_{m=1}^M β_m \exp\bigl(-\sum_d ((q_d - c_{md}) / w_{md})^2\bigr),
    \quad β_m \in \mathbb{R}^K,

describe such functions with far fewer numbers and, from a few hundred neurons, predict
them better. On smooth, spread-out functions (waves) the process is better. So held-out
neurons weigh the two (:func:`free_bumps`):

1. a fifth of the neurons (at most 500) is held out;
2. on the rest, bumps are added one at a time (*greedy*): the new bump goes where, of
   candidate centres at training neurons and candidate widths, it explains most of what
   the bumps so far leave over (summed over the modes); then all centres and widths are
   refined together (L-BFGS; the heights solved in closed form at every step, a ridge
   regression: *variable projection*). The held-out neurons' error is recorded for every
   ``M``; the path stops 6 bumps after its best, or at ``6 K`` bumps if its best is still
   twice the process's error;
3. the process, fitted to the same neurons, predicts the same held-out neurons;
4. the weight ``w`` in [0, 1] of the best ``M``'s bumps in ``w · free + (1 − w) · process``
   is the one that predicts the held-out neurons best (least squares, clipped:
   :func:`stacking_weight`; *stacking*). Where it is above 0, the bumps are refined once
   more on all neurons (at most 2,000) and the smoothed modes are that weighted sum, itself
   a sum of bumps (the process's, heights times ``1 − w``, and the free ones, times ``w``);
   where it is 0, the process alone.

Weighing rather than choosing: the two smoothers' errors differ by less than one split's
noise on some data, and a choice made on one split of a few hundred neurons then follows
the split. On the suite's generator 2 (559 neurons; smoothed modes compared with the true
functions at the unseen subject's neurons), with the earlier ridge of 1e-3 on the heights
(see ``_heights``), the choice gave relative errors of 0.0067 to 0.0120 with the
estimator's seed (0-4), the weighted sum 0.0074 to 0.0114, 0.0097 on average against
0.0107; over 18 smoothings (the ten generators at seed 0, generator 2 at seeds 1-4, redraws
1031 and 1032 of generator 2, 1063 of generator 5 and 1073 of generator 6) it was better on
9, worse on 3, within 0.0001 on the rest. The ridge of 1e-4 then took generator 2 to
0.0032-0.0081 (0.0051 on average) and was better on 12 of the 18, worse on 1 (generator 4,
broad bumps: 0.0009 → 0.0014) and within 0.0001 on 5.

Errors are summed over the K modes, so the modes should be in the metric that matters:
the estimator passes its loadings multiplied by a square root of the latents' covariance
(an error of ``δ`` in a neuron's loadings moves its prediction by ``t δᵀ``).

Cost: one greedy path of at most ``min(32 K, N/10)`` bumps,
O(M_max · iterations · N · M · q), N at most 2,000 neurons (a random subset above that):
0.5-4 s on the suite, one thread; memory O(N · (M + 2,500)) (the candidates' activations).
The held-out neurons choose the path's length and then the weight: a small bias towards
free bumps, which the suite's redraws measure.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["free_bumps", "grow_bumps", "minimise_over_bumps", "stacking_weight"]

_MAX_BUMPS_PER_MODE = 32
_MAX_NEURONS = 2000  # neurons the bumps are fitted to (a random subset above that)
_MAX_CANDIDATES = 500  # candidate centres per step: training neurons
_CANDIDATE_WIDTHS = (0.05, 0.1, 0.2, 0.4, 1.0)  # in units of the properties' range
_PATIENCE = 6  # bumps added after the best held-out error before the path stops
_GIVE_UP = 2.0  # the path stops at 6 K bumps if its best held-out error is this many times the process's
_GIVE_UP_BUMPS_PER_MODE = 6
_STEP_ITERATIONS = 15  # L-BFGS iterations after each added bump
_FINAL_ITERATIONS = 100  # on the chosen bumps, all neurons
_RIDGE = 1e-4  # on the heights, times the number of neurons (the loss is a mean); see _heights
_MIN_NEURONS = 50  # fewer: the process alone
_HELD_OUT_FRACTION = 0.2
_MAX_HELD_OUT = 500
_FLOAT = {"dtype": torch.float64, "device": "cpu"}


def _activations(points, centres, log_widths):
    return torch.exp(-(((points[:, None, :] - centres[None]) / log_widths.exp()[None]) ** 2).sum(-1))


def _heights(features, targets, ridge):
    """Ridge heights (M, K) of ``features`` (N, M) for ``targets`` (N, K): the variable projection.

    The ridge is ``ridge · N`` for every bump: a bump under few neurons (sharp, or off the
    neurons' range) is shrunk more than a broad one, a prior against heights that only a
    few neurons support. (Relative to each bump's own squared norm instead, the suite's
    redraws had fits 0.1-0.5 below the ceiling: bumps of large, cancelling heights.)

    How much: a bump of widths ``w_d`` (in units of the properties' range) inside the
    neurons' range has a mean squared activation of about ``Π_d w_d √(π/2)`` over uniform
    neurons, so the default 1e-4 shrinks a bump of widths 0.1 in three properties by about
    5 %, and one of the narrowest candidate widths, 0.05, by about 30 %. The earlier 1e-3
    shrank the first by a third, and that bias, not the search, limited the free bumps. On
    the suite's generator 2 (bumps of widths 0.1-0.4, 559 neurons; the modes of the
    estimator's fit at seed 1), bumps started at the true functions' bumps and refined
    predict new neurons' modes with a relative error of 0.0139 at 1e-3, 0.0017 at 1e-4 and
    0.0014 with no ridge; from the greedy path, with the process beside them, 0.0074-0.0114
    at 1e-3 and 0.0032-0.0081 at 1e-4 (estimator seeds 0-4). Below 1e-4 the path keeps more
    bumps fitted to single neurons: no better on the suite, and slower.
    """
    normal = features.T @ features
    normal = normal + ridge * len(features) * torch.eye(normal.shape[0], **_FLOAT)
    return torch.linalg.solve(normal, features.T @ targets)


def minimise_over_bumps(objective, centres, log_widths, iterations):
    """Centres and log widths minimising ``objective(centres, log_widths)`` (a scalar tensor) by L-BFGS.

    The heights are the objective's business (solved in closed form inside it: *variable
    projection*). A failed line search (non-finite centres or widths) keeps the start.
    Shared by the output side's free bumps and the input side's (:mod:`._input_free_bumps`).

    Examples
    --------
    >>> import torch
    >>> from skneuro.latent_regression._free_bumps import minimise_over_bumps
    >>> target = torch.tensor([[0.3, 0.7]], dtype=torch.float64)
    >>> c, lw = minimise_over_bumps(
    ...     lambda c, lw: ((c - target) ** 2).sum() + (lw**2).sum(),
    ...     torch.zeros(1, 2, dtype=torch.float64), torch.ones(1, 2, dtype=torch.float64), 50,
    ... )
    >>> c.numpy().round(6).tolist(), bool(lw.abs().max() < 1e-6)
    ([[0.3, 0.7]], True)
    """
    start = (centres.clone(), log_widths.clone())
    centres = centres.clone().requires_grad_(True)
    log_widths = log_widths.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS(
        [centres, log_widths], max_iter=iterations, line_search_fn="strong_wolfe", tolerance_grad=1e-10,
        tolerance_change=1e-14,
    )  # fmt: skip

    def closure():
        optimizer.zero_grad()
        value = objective(centres, log_widths)
        value.backward()
        return value

    optimizer.step(closure)
    centres, log_widths = centres.detach(), log_widths.detach()
    if not (torch.isfinite(centres).all() and torch.isfinite(log_widths).all()):
        return start
    return centres, log_widths


def _refine(points, targets, centres, log_widths, iterations, ridge):
    """Centres and log widths by L-BFGS on the mean squared error, heights in closed form."""

    def mean_squared_error(c, lw):
        features = _activations(points, c, lw)
        return ((features @ _heights(features, targets, ridge) - targets) ** 2).sum(1).mean()

    centres, log_widths = minimise_over_bumps(mean_squared_error, centres, log_widths, iterations)
    with torch.no_grad():
        return centres, log_widths, _heights(_activations(points, centres, log_widths), targets, ridge)


def grow_bumps(points, targets, n_bumps, *, held_out=None, give_up=None, random_state=0, ridge=_RIDGE):
    """Greedy sum of at most ``n_bumps`` free Gaussian bumps fitted to ``targets``.

    Parameters
    ----------
    points : ndarray of shape (n, q)
        Positions, scaled so that every property's range is about 1 (the candidate
        widths 0.05-1 are in those units).
    targets : ndarray of shape (n, K) or (n,)
    n_bumps : int
        Most bumps.
    held_out : tuple of (ndarray of shape (m, q), ndarray like ``targets``), optional
        Points and values to score every number of bumps on (mean over points of the
        squared error summed over columns). The path then stops 6 bumps after the best
        score, and the bumps of the best score are returned.
    give_up : float, optional
        With ``held_out``: the path stops at ``6 K`` bumps if its best score is above this.
    random_state : int, default=0
        Draws the candidate centres when there are more than 500 points.
    ridge : float, default=1e-4
        Ridge on the heights, times ``n``.

    Returns
    -------
    centres : ndarray of shape (M, q)
    widths : ndarray of shape (M, q)
    heights : ndarray of shape (M, K) or (M,)
    scores : ndarray
        The held-out score after each bump added (empty without ``held_out``).

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.latent_regression._free_bumps import grow_bumps
    >>> rng = np.random.default_rng(0)
    >>> q = rng.uniform(size=(300, 2))
    >>> truth = np.exp(-(((q - [0.3, 0.6]) / 0.1) ** 2).sum(1)) - np.exp(-(((q - 0.7) / 0.3) ** 2).sum(1))
    >>> c, w, h, _ = grow_bumps(q, truth + 0.01 * rng.normal(size=300), 2)
    >>> fitted = np.exp(-(((q[:, None] - c[None]) / w[None]) ** 2).sum(-1)) @ h
    >>> bool(np.sqrt(np.mean((fitted - truth) ** 2)) < 0.01)
    True
    """
    pts, y = torch.as_tensor(points, **_FLOAT), torch.as_tensor(targets, **_FLOAT)
    vector = y.ndim == 1
    y = y[:, None] if vector else y
    n, q = pts.shape
    K = y.shape[1]
    pick = np.random.default_rng(random_state).permutation(n)[:_MAX_CANDIDATES] if n > _MAX_CANDIDATES else None
    candidates = pts if pick is None else pts[torch.as_tensor(np.sort(pick))]
    widths = torch.as_tensor(_CANDIDATE_WIDTHS, **_FLOAT)
    # (n, W·C) candidate activations (width-major) and their squared norms, once
    squared = ((pts[:, None, :] - candidates[None]) ** 2).sum(-1)
    cand = torch.exp(-squared[:, None, :] / widths[None, :, None] ** 2).reshape(n, -1)
    cand_norms = (cand**2).sum(0).clamp_min(1e-300)
    if held_out is not None:
        held_points, held_y = (torch.as_tensor(a, **_FLOAT) for a in held_out)
        held_y = held_y[:, None] if held_y.ndim == 1 else held_y
    centres, log_widths, heights = torch.zeros(0, q, **_FLOAT), torch.zeros(0, q, **_FLOAT), torch.zeros(0, K, **_FLOAT)
    scores, best, best_m = [], None, 0
    for m in range(n_bumps):
        with torch.no_grad():
            residual = y - _activations(pts, centres, log_widths) @ heights
            gain = ((residual.T @ cand) ** 2).sum(0) / cand_norms
            w_index, c_index = divmod(int(torch.argmax(gain)), len(candidates))
        centres = torch.cat([centres, candidates[c_index : c_index + 1]])
        log_widths = torch.cat([log_widths, torch.full((1, q), float(np.log(_CANDIDATE_WIDTHS[w_index])), **_FLOAT)])
        iterations = _FINAL_ITERATIONS if held_out is None and m == n_bumps - 1 else _STEP_ITERATIONS
        centres, log_widths, heights = _refine(pts, y, centres, log_widths, iterations, ridge)
        if held_out is None:
            continue
        with torch.no_grad():
            held_error = _activations(held_points, centres, log_widths) @ heights - held_y
            scores.append(float((held_error**2).sum(1).mean()))
        if best is None or scores[-1] < scores[best_m]:
            best, best_m = (centres, log_widths, heights), m
        elif m - best_m >= _PATIENCE:
            break
        if give_up is not None and m + 1 >= _GIVE_UP_BUMPS_PER_MODE * K and scores[best_m] > give_up:
            break
    if best is not None:
        centres, log_widths, heights = best
    heights = heights[:, 0] if vector else heights
    return centres.numpy(), log_widths.exp().numpy(), heights.numpy(), np.asarray(scores)


def _evaluate(points, centres, widths, heights):
    return np.exp(-(((points[:, None, :] - centres[None]) / widths[None]) ** 2).sum(-1)) @ heights


def stacking_weight(first, second, targets):
    """Weight ``w`` in [0, 1] of ``first`` in ``w · first + (1 − w) · second`` that best fits ``targets``.

    Least squares over every row and column (``w = ⟨f − s, t − s⟩ / ‖f − s‖²``), clipped to
    [0, 1]: 0 where ``second`` alone is best or the two predictions agree.

    Parameters
    ----------
    first, second, targets : ndarray of shape (n, K)
        Two predictions of the same held-out values, and the values.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.latent_regression._free_bumps import stacking_weight
    >>> stacking_weight(np.array([[2.0]]), np.array([[0.0]]), np.array([[1.5]]))
    0.75
    >>> stacking_weight(np.array([[2.0]]), np.array([[0.0]]), np.array([[-1.0]]))
    0.0
    """
    difference = first - second
    norm = float((difference**2).sum())
    if not norm > 0.0:
        return 0.0
    return float(np.clip((difference * (targets - second)).sum() / norm, 0.0, 1.0))


def free_bumps(positions, modes, process, *, random_state=0):
    """Free bumps for ``modes`` and their weight beside ``process``, both from held-out neurons.

    Parameters
    ----------
    positions : ndarray of shape (n_neurons, q)
    modes : ndarray of shape (n_neurons, K)
        Two-dimensional, in the metric errors should be measured in (see the module
        docstring).
    process : callable
        ``process(positions, modes) -> (centres, widths, magnitudes)``: the other smoother
        (the Gaussian process's bumps), fitted here to the training part of the split to
        predict the held-out part.
    random_state : int, default=0
        Draws the held-out neurons, the subset fitted (above 2,000 neurons) and the
        candidate centres.

    Returns
    -------
    tuple of (centres, widths, heights, weight) or None
        ``centres``, ``widths`` of shape (M, q) in the units of ``positions``, ``heights``
        of shape (M, K), refitted on all neurons; ``weight`` in (0, 1], the free bumps'
        share of the smoothed modes, ``weight · free + (1 − weight) · process``
        (:func:`stacking_weight` on the held-out neurons). None where the weight is 0 (the
        process alone predicts the held-out neurons best) or there are fewer than 50 neurons.

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.latent_regression._free_bumps import free_bumps
    >>> from skneuro.latent_regression._smoothing import smooth_modes
    >>> rng = np.random.default_rng(0)
    >>> q = rng.uniform(size=(400, 2))
    >>> sharp = np.exp(-(((q - 0.3) / 0.05) ** 2).sum(1)) + np.exp(-(((q - 0.7) / 0.5) ** 2).sum(1))
    >>> modes = sharp[:, None] + 0.02 * rng.normal(size=(400, 1))
    >>> process = lambda p, m: smooth_modes(p, m, free_bumps=False)
    >>> centres, widths, heights, weight = free_bumps(q, modes, process)
    >>> bool(weight > 0.5)
    True
    """
    positions = np.asarray(positions, dtype=np.float64)
    modes = np.asarray(modes, dtype=np.float64)
    n, K = modes.shape
    if n < _MIN_NEURONS:
        return None
    lo, hi = positions.min(axis=0), positions.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    scaled = (positions - lo) / span
    rng = np.random.default_rng(random_state)
    order = rng.permutation(n)
    n_held = min(_MAX_HELD_OUT, max(1, round(_HELD_OUT_FRACTION * n)))
    held, train = order[:n_held], order[n_held:][:_MAX_NEURONS]
    process_held = _evaluate(positions[held], *process(positions[train], modes[train]))
    process_error = float(((process_held - modes[held]) ** 2).sum(axis=1).mean())
    seed = int(rng.integers(2**31 - 1))
    centres, widths, heights, scores = grow_bumps(
        scaled[train], modes[train], max(1, min(_MAX_BUMPS_PER_MODE * K, len(train) // 10)),
        held_out=(scaled[held], modes[held]), give_up=_GIVE_UP * process_error, random_state=seed,
    )  # fmt: skip
    if not len(scores):
        return None
    weight = stacking_weight(_evaluate(scaled[held], centres, widths, heights), process_held, modes[held])
    if not weight > 0.0:
        return None
    fitted = order[:_MAX_NEURONS] if n > _MAX_NEURONS else np.arange(n)
    centres, log_widths, heights = _refine(
        torch.as_tensor(scaled[fitted], **_FLOAT), torch.as_tensor(modes[fitted], **_FLOAT),
        torch.as_tensor(centres, **_FLOAT), torch.as_tensor(np.log(widths), **_FLOAT), _FINAL_ITERATIONS, _RIDGE,
    )  # fmt: skip
    centres, widths, heights = lo + centres.numpy() * span, np.exp(log_widths.numpy()) * span, heights.numpy()
    if not (np.isfinite(centres).all() and np.isfinite(heights).all() and np.isfinite(widths).all()):
        return None
    if not (widths > 0).all():
        return None
    return centres, widths, heights, weight

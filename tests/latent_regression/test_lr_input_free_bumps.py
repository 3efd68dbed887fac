"""Free bumps for the input modes, fitted through the data (``_input_free_bumps``), and their
weight beside the process in ``smooth_input_modes``."""

import numpy as np
import pytest
import torch

from skneuro.latent_regression import _input_free_bumps as fb
from skneuro.latent_regression import _input_smoothing as sm

SHARP_AND_BROAD = (
    np.array([[0.3, 0.6], [0.7, 0.35]]),  # centres
    np.array([[0.07, 0.09], [0.35, 0.3]]),  # widths: one sharp, one broad
    np.array([[1.0, -0.4], [-0.6, 1.0]]),  # heights (bumps, modes)
)


def _bumps(points, centres, widths, heights):
    return np.exp(-(((points[:, None] - centres[None]) / widths[None]) ** 2).sum(-1)) @ heights


def _through_data(function, sizes=((220, 60), (240, 70)), n=1500, deviation=0.03, seed=0):
    """Subjects whose outputs are ``x P Uᵀ + noise``, ``P = function(r) + deviations``: inputs
    correlated (a few shared drives), loadings known."""
    rng = np.random.default_rng(seed)
    X, R, Y, U, P = [], [], [], [], []
    for d, e in sizes:
        r = rng.uniform(size=(d, 2))
        x = 0.6 * rng.normal(size=(n, d)) + 0.4 * rng.normal(size=(n, 4)) @ rng.normal(size=(4, d))
        modes = function(r)
        modes = modes + deviation * np.sqrt(np.mean(modes**2)) * rng.normal(size=modes.shape)
        u = rng.normal(size=(e, modes.shape[1]))
        X.append(x), R.append(r), U.append(u), P.append(modes)
        Y.append(x @ modes @ u.T + 0.3 * rng.normal(size=(n, e)))
    return X, R, Y, U, P


@pytest.fixture(scope="module")
def sharp_and_broad():
    return _through_data(lambda r: _bumps(r, *SHARP_AND_BROAD))


def _smoothed(problem, **kwargs):
    X, R, Y, U, P = problem
    return sm.smooth_input_modes(X, R, P, Y, U, [np.full(len(u), 0.09) for u in U], **kwargs)


def test_widening_is_the_precision_of_the_data_with_the_deviations_integrated_out():
    """``(I + λ C Σ)⁻¹ λ C = (Σ + (λ C)⁻¹)⁻¹``: a coordinate seen with precision ``λ C`` of a
    mode that deviates with covariance ``Σ`` is seen with the precision of the sum of both
    covariances; the pull ``b`` is mapped alike."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2, 2))
    coupling = a @ a.T + np.eye(2)
    lam = np.array([0.5, 3.0, 40.0])
    b = rng.normal(size=(3, 2))
    deviations = np.diag([0.2, 0.05])
    alpha, pull = fb.widened_terms({"lam": lam, "coupling": coupling, "b": b}, deviations)
    for i in range(3):
        expected = np.linalg.inv(deviations + np.linalg.inv(lam[i] * coupling))
        np.testing.assert_allclose(alpha[i], expected, rtol=1e-12)
        np.testing.assert_allclose(pull[i], expected @ np.linalg.solve(lam[i] * coupling, b[i]), rtol=1e-12)


def _data(problem, K):
    """The subjects' terms as ``smooth_input_modes`` builds them (no rotation: ``Ũ`` as given)."""
    X, R, Y, U, _ = problem
    terms = []
    for x, r, y, u in zip(X, R, Y, U):
        weights = u / 0.09
        terms.append(sm._subject_terms(x, r, y, weights, u.T @ weights, np.zeros((x.shape[1], K))))
    return terms


def test_heights_minimise_the_widened_objective(sharp_and_broad):
    """At the heights of the block solve the objective's gradient in the heights is zero, and
    moving any height raises it."""
    K = 2
    terms = _data(sharp_and_broad, K)
    data = [fb._Data(t, r, np.diag([0.01, 0.02])) for t, r in zip(terms, sharp_and_broad[1])]
    centres = torch.tensor([[0.3, 0.6], [0.7, 0.35], [0.5, 0.5]], dtype=torch.float64)
    log_widths = torch.log(torch.tensor([[0.1, 0.1], [0.3, 0.3], [0.2, 0.2]], dtype=torch.float64))
    ridge = fb._ridge(data)
    assert ridge.shape == (K,) and torch.all(ridge > 0)
    heights = fb._heights(data, [d.coordinates(centres, log_widths) for d in data], ridge).requires_grad_(True)

    def objective(h):
        value = 0.5 * (ridge * h**2).sum()
        for d in data:
            p = d.coordinates(centres, log_widths) @ h
            value = value + 0.5 * torch.einsum("ik,ikl,il->", p, d.alpha, p) - (p * d.b).sum()
        return value

    value = objective(heights)
    (gradient,) = torch.autograd.grad(value, heights)
    assert float(gradient.abs().max()) < 1e-8 * float(heights.detach().abs().max() * ridge.max())
    with torch.no_grad():
        for step in (1e-3, -1e-3):
            moved = heights.clone()
            moved[1, 0] += step
            assert objective(moved) > value
    assert float(fb._objective(data, centres, log_widths, ridge)[0]) == pytest.approx(float(value.detach()), rel=1e-10)


def test_the_weight_is_the_clipped_least_squares_weight_on_held_out_subjects(sharp_and_broad):
    """``_weigh`` against a grid of weights: its weight has the least held-out error, within a
    grid step, and its error is the error at that weight."""
    K = 2
    terms = _data(sharp_and_broad, K)
    data = [fb._Data(t, r, np.diag([0.01, 0.01])) for t, r in zip(terms, sharp_and_broad[1])]
    P = sharp_and_broad[4]
    rng = np.random.default_rng(1)
    pairs = [
        (d, 0.7 * p + 0.05 * rng.normal(size=p.shape), p + 0.1 * rng.normal(size=p.shape)) for d, p in zip(data, P)
    ]
    weight, error = fb._weigh(pairs)
    grid = np.linspace(0.0, 1.0, 201)
    errors = [sum(d.squared_error(a + w * (b - a)) for d, a, b in pairs) for w in grid]
    assert 0.0 < weight < 1.0
    assert abs(weight - grid[int(np.argmin(errors))]) <= 0.005
    assert error == pytest.approx(sum(d.squared_error(a + weight * (b - a)) for d, a, b in pairs), rel=1e-12)
    assert error <= min(errors) + 1e-9 * abs(min(errors))
    # bumps worse than the process everywhere: the weight clips at 0
    worse = [(d, a, a + 5.0 * (a - b)) for d, a, b in pairs]
    assert fb._weigh(worse)[0] == 0.0


def test_free_input_bumps_recover_sharp_and_broad_modes_better_than_the_process(sharp_and_broad, monkeypatch):
    """Modes made of one sharp and one broad bump, seen only through the data of two subjects:
    the free bumps get most of the weight and the smoothed modes come back closer to the
    function (measured: relative squared error 0.00059 against the process's 0.0020, weight
    0.92 on 4 bumps)."""
    test = np.random.default_rng(5).uniform(0.05, 0.95, size=(3000, 2))
    truth = _bumps(test, *SHARP_AND_BROAD)
    errors, found = {}, []
    original = sm.free_input_bumps
    monkeypatch.setattr(sm, "free_input_bumps", lambda *a, **k: found.append(original(*a, **k)) or found[-1])
    for free in (False, True):
        c, w, m = _smoothed(sharp_and_broad, free_bumps=free)
        errors[free] = np.mean((_bumps(test, c, w, m) - truth) ** 2) / np.mean(truth**2)
    (result,) = found
    assert result is not None and 0.8 < result[3] <= 1.0, result
    assert errors[True] < 0.4 * errors[False], errors


def test_waves_give_the_free_input_bumps_almost_no_weight(monkeypatch):
    """A plane wave, which the process fits and a few bumps do not: the bumps' weight is small
    and the smoothed modes stay within 10 % of the process's error (measured: weight 0.05,
    relative squared error 7.0e-5 against 6.7e-5)."""
    wave = lambda r: np.c_[np.sin(2 * np.pi * r @ [1.5, 0.5])]  # noqa: E731
    problem = _through_data(wave, seed=2)
    test = np.random.default_rng(5).uniform(0.05, 0.95, size=(3000, 2))
    truth = wave(test)
    found = []
    original = sm.free_input_bumps
    monkeypatch.setattr(sm, "free_input_bumps", lambda *a, **k: found.append(original(*a, **k)) or found[-1])
    errors = {}
    for free in (False, True):
        c, w, m = _smoothed(problem, free_bumps=free)
        errors[free] = np.mean((_bumps(test, c, w, m) - truth) ** 2) / np.mean(truth**2)
    (result,) = found
    assert result is None or result[3] < 0.1, result
    assert errors[True] < 1.1 * errors[False], errors


def test_free_input_bumps_need_two_groups_of_50_neurons_and_at_most_1000_inputs_a_subject():
    """One subject, fewer than 50 input neurons in a group of subjects, or a subject of more
    than 1,000 inputs: None (the process alone), before any fitting."""
    never = lambda indices: pytest.fail("fitted")  # noqa: E731
    deviations = np.eye(1)
    assert fb.free_input_bumps([{}], [np.zeros((300, 2))], deviations, never) is None
    assert fb.free_input_bumps([{}, {}], [np.zeros((300, 2)), np.zeros((49, 2))], deviations, never) is None
    assert fb.free_input_bumps([{}, {}], [np.zeros((1001, 2)), np.zeros((300, 2))], deviations, never) is None
    # three subjects: groups {0, 2} (90 neurons) and {1} (30), not {0} and {1, 2} (60 and 60)
    sizes = [np.zeros((60, 2)), np.zeros((30, 2)), np.zeros((30, 2))]
    assert fb.free_input_bumps([{}, {}, {}], sizes, deviations, never) is None


def test_input_smoothing_is_equivariant_to_a_rotation_of_the_modes(sharp_and_broad):
    """Loadings ``Ũ O`` and modes ``P O`` for an orthogonal ``O`` (another latent basis, as
    orthonormal): the smoothed modes are rotated and nothing else changes. Both smoothers
    work in the basis where the pooled ``ŨᵀΨ⁻¹Ũ`` is diagonal, which turns with ``O``; the free
    bumps' ridge is per mode in that basis. Measured: 4e-7 of the largest mode (rounding,
    grown along the flat directions of the bumps' fit); the process alone 1e-13."""
    X, R, Y, U, P = sharp_and_broad
    noise = [np.full(len(u), 0.09) for u in U]
    rotation, _ = np.linalg.qr(np.random.default_rng(8).normal(size=(2, 2)))
    test = np.random.default_rng(7).uniform(size=(500, 2))
    for free, tolerance in ((False, 1e-10), (True, 1e-5)):
        plain = sm.smooth_input_modes(X, R, P, Y, U, noise, free_bumps=free)
        turned = sm.smooth_input_modes(
            X, R, [p @ rotation for p in P], Y, [u @ rotation for u in U], noise, free_bumps=free
        )
        a, b = _bumps(test, *plain) @ rotation, _bumps(test, *turned)
        np.testing.assert_allclose(b, a, atol=tolerance * np.abs(a).max())


def test_the_greedy_gain_is_twice_the_drop_of_the_objective(sharp_and_broad):
    """Adding a candidate to two bumps (their heights held) with its best height lowers the
    objective by half its gain ``g_cᵀ Q_c⁻¹ g_c``, for every candidate width and centre."""
    K = 2
    terms = _data(sharp_and_broad, K)
    data = [fb._Data(t, r, np.diag([0.01, 0.02])) for t, r in zip(terms, sharp_and_broad[1])]
    ridge = fb._ridge(data)
    centres = torch.tensor([[0.3, 0.6], [0.7, 0.35]], dtype=torch.float64)
    log_widths = torch.log(torch.tensor([[0.1, 0.1], [0.3, 0.3]], dtype=torch.float64))
    heights = fb._heights(data, [d.coordinates(centres, log_widths) for d in data], ridge)
    candidates = torch.tensor([[0.5, 0.5], [0.2, 0.8]], dtype=torch.float64)
    projected, curvature = fb._candidate_terms(data, candidates, ridge)
    gains = fb._gains(data, projected, curvature, (centres, log_widths, heights))
    assert gains.shape == (len(fb._CANDIDATE_WIDTHS) * 2,)

    def objective(c, lw, h):
        value = 0.5 * (ridge * h**2).sum()
        for d in data:
            p = d.coordinates(c, lw) @ h
            value = value + 0.5 * torch.einsum("ik,ikl,il->", p, d.alpha, p) - (p * d.b).sum()
        return float(value)

    before = objective(centres, log_widths, heights)
    for index in (0, 3, 7):
        w_index, c_index = divmod(index, 2)
        c = torch.cat([centres, candidates[c_index : c_index + 1]])
        lw = torch.cat([log_widths, torch.full((1, 2), float(np.log(fb._CANDIDATE_WIDTHS[w_index])))])
        # a height of 0 changes nothing; the objective is quadratic in the candidate's height
        # (the others held): fitted exactly from a 3 x 3 grid, its least value is the drop
        zero = torch.zeros(1, K, dtype=torch.float64)
        assert objective(c, lw, torch.cat([heights, zero])) == pytest.approx(before, rel=1e-12)
        basis = np.eye(K)
        values = {}
        for a in range(-1, 2):
            for b in range(-1, 2):
                h = torch.as_tensor(0.01 * (a * basis[0] + b * basis[1]), dtype=torch.float64)
                values[a, b] = objective(c, lw, torch.cat([heights, h[None]]))
        A, rhs = [], []
        for (a, b), v in values.items():
            x, y = 0.01 * a, 0.01 * b
            A.append([1, x, y, x * x, x * y, y * y]), rhs.append(v)
        k0, kx, ky, kxx, kxy, kyy = np.linalg.lstsq(np.array(A), np.array(rhs), rcond=None)[0]
        H = np.array([[2 * kxx, kxy], [kxy, 2 * kyy]])
        g = np.array([kx, ky])
        drop = 0.5 * g @ np.linalg.solve(H, g)
        assert float(gains[index]) / 2 == pytest.approx(drop, rel=1e-5, abs=1e-9 * abs(before))


def test_held_out_process_given_all_subjects_is_the_process(sharp_and_broad, monkeypatch):
    """The process ``free_input_bumps`` scores the bumps against, refitted on every subject, is
    the process ``smooth_input_modes`` returns (same centres, hyperparameters and heights),
    in the basis where the pooled ``ŨᵀΨ⁻¹Ũ`` is diagonal; its modes are in ``hyper``'s order."""
    X, R, Y, U, P = sharp_and_broad
    noise = [np.full(len(u), 0.09) for u in U]
    seen = {}
    original = sm.free_input_bumps

    def spy(subjects, positions, deviations, process, **kwargs):
        seen["process"] = process
        return original(subjects, positions, deviations, process, **kwargs)

    monkeypatch.setattr(sm, "free_input_bumps", spy)
    sm.smooth_input_modes(X, R, P, Y, U, noise)
    process = sm.smooth_input_modes(X, R, P, Y, U, noise, free_bumps=False)
    precision = sum(u.T @ (u / v[:, None]) for u, v in zip(U, noise))
    _, rotation = np.linalg.eigh((precision + precision.T) / 2)
    test = np.random.default_rng(9).uniform(size=(300, 2))
    np.testing.assert_allclose(seen["process"]([0, 1])(test) @ rotation.T, _bumps(test, *process), atol=1e-9)
    # refitted on one subject, it differs
    assert not np.allclose(seen["process"]([0])(test) @ rotation.T, _bumps(test, *process), atol=1e-3)


def test_input_smoothing_is_equivariant_to_an_affine_change_of_the_positions(sharp_and_broad):
    """Positions in other units and origins per property (``r · (100, 3) + (−50, 7)``): the
    smoothed modes at the moved points are the same, to within what the bumps' optimisation
    resolves (measured 5e-5 of the largest mode), the process alone to 1e-8."""
    X, R, Y, U, P = sharp_and_broad
    noise = [np.full(len(u), 0.09) for u in U]
    scale, shift = np.array([100.0, 3.0]), np.array([-50.0, 7.0])
    test = np.random.default_rng(10).uniform(size=(500, 2))
    for free, tolerance in ((False, 1e-8), (True, 1e-3)):
        plain = sm.smooth_input_modes(X, R, P, Y, U, noise, free_bumps=free)
        moved = sm.smooth_input_modes(X, [r * scale + shift for r in R], P, Y, U, noise, free_bumps=free)
        a, b = _bumps(test, *plain), _bumps(test * scale + shift, *moved)
        np.testing.assert_allclose(b, a, atol=tolerance * np.abs(a).max())

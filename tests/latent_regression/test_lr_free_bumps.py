"""Free bumps for the output modes (``_free_bumps``), their weight beside the process, and the latents' metric."""

import numpy as np
import pytest

from skneuro.latent_regression._building import latent_metric
from skneuro.latent_regression._free_bumps import free_bumps, grow_bumps, stacking_weight
from skneuro.latent_regression._smoothing import smooth_modes


def _bumps(points, centres, widths, heights):
    return np.exp(-(((points[:, None] - centres[None]) / widths[None]) ** 2).sum(-1)) @ heights


CENTRES = np.array([[0.3, 0.6, 0.5], [0.7, 0.3, 0.4]])
WIDTHS = np.array([[0.08, 0.1, 0.12], [0.3, 0.25, 0.35]])  # one sharp, one broad
HEIGHTS = np.array([[1.0, -0.5], [-0.6, 1.2]])  # (bumps, modes): both modes share the two bumps


@pytest.fixture(scope="module")
def sharp_and_broad():
    rng = np.random.default_rng(0)
    q = rng.uniform(size=(500, 3))
    return q, _bumps(q, CENTRES, WIDTHS, HEIGHTS)


def test_two_bumps_are_recovered(sharp_and_broad):
    """Noise-free modes made of two shared bumps: two free bumps find their centres, widths
    and heights."""
    q, modes = sharp_and_broad
    centres, widths, heights, scores = grow_bumps(q, modes, 2, ridge=1e-9)
    assert scores.size == 0
    order = np.argsort(widths[:, 0])  # sharp first, as in CENTRES
    np.testing.assert_allclose(centres[order], CENTRES, atol=2e-3)
    np.testing.assert_allclose(widths[order], WIDTHS, rtol=2e-2)
    np.testing.assert_allclose(heights[order], HEIGHTS, rtol=2e-2, atol=2e-3)
    test = np.random.default_rng(1).uniform(size=(300, 3))
    error = _bumps(test, centres, widths, heights) - _bumps(test, CENTRES, WIDTHS, HEIGHTS)
    assert np.sqrt(np.mean(error**2)) < 1e-2 * np.sqrt(np.mean(modes**2))


def test_the_held_out_path_returns_its_best_number_of_bumps(sharp_and_broad):
    q, modes = sharp_and_broad
    noisy = modes + 0.05 * np.random.default_rng(2).normal(size=modes.shape)
    centres, widths, heights, scores = grow_bumps(q[:400], noisy[:400], 30, held_out=(q[400:], noisy[400:]))
    assert len(centres) == int(np.argmin(scores)) + 1 == len(heights)
    assert len(scores) < 30  # it stopped 6 bumps after its best
    assert len(scores) - len(centres) == 6
    # the held-out score of the returned bumps is the best one
    held = ((_bumps(q[400:], centres, widths, heights) - noisy[400:]) ** 2).sum(1).mean()
    assert held == pytest.approx(scores.min(), rel=1e-9)


def test_a_vector_target_gives_vector_heights(sharp_and_broad):
    q, modes = sharp_and_broad
    _, _, heights, _ = grow_bumps(q, modes[:, 0], 3)
    assert heights.shape == (3,)


def test_free_bumps_get_most_weight_for_sharp_and_broad_features_and_predict_better(sharp_and_broad):
    """Modes with a sharp and a broad bump, 7.5 % noise: the process's one length per
    property fits neither; free bumps get almost all the weight and predict new neurons far
    better (measured: error 0.023 against the process's 0.134, as a fraction of the modes'
    rms, weight 0.96, the stacked modes 0.024; with the earlier ridge of 1e-3 on the heights,
    which shrank the sharp bump's height, 0.055, weight 0.77 and 0.065)."""
    q, modes = sharp_and_broad
    noisy = modes + 0.075 * np.sqrt(np.mean(modes**2)) * np.random.default_rng(3).normal(size=modes.shape)
    process = smooth_modes(q, noisy, free_bumps=False)
    found = free_bumps(q, noisy, lambda p, m: smooth_modes(p, m, free_bumps=False))
    assert found is not None
    centres, widths, heights, weight = found
    assert 0.85 < weight <= 1.0, weight
    test = np.random.default_rng(4).uniform(size=(2000, 3))
    truth = _bumps(test, CENTRES, WIDTHS, HEIGHTS)
    rms = np.sqrt(np.mean(truth**2))
    free_error = np.sqrt(np.mean((_bumps(test, centres, widths, heights) - truth) ** 2)) / rms
    process_error = np.sqrt(np.mean((_bumps(test, *process) - truth) ** 2)) / rms
    assert free_error < 0.25 * process_error, (free_error, process_error)
    # smooth_modes returns the stacked modes: weight · free bumps + (1 − weight) · process, as bumps
    c, w, m = smooth_modes(q, noisy)
    assert len(c) == len(process[0]) + len(centres)
    expected = weight * _bumps(test, centres, widths, heights) + (1 - weight) * _bumps(test, *process)
    np.testing.assert_allclose(_bumps(test, c, w, m), expected, rtol=1e-8, atol=1e-10)
    stacked_error = np.sqrt(np.mean((expected - truth) ** 2)) / rms
    assert stacked_error < 0.3 * process_error, (stacked_error, process_error)


def test_waves_give_the_free_bumps_almost_no_weight():
    """Plane waves: the process predicts the held-out neurons; the free bumps' weight is
    near 0 (measured 0.003) and the stacked modes predict as the process's do."""
    rng = np.random.default_rng(5)
    q = rng.uniform(size=(500, 3))
    modes = np.c_[np.sin(2 * np.pi * q @ [0.8, 0.3, -0.5]), np.cos(2 * np.pi * q @ [-0.2, 0.9, 0.4])]
    noisy = modes + 0.05 * rng.normal(size=modes.shape)
    found = free_bumps(q, noisy, lambda p, m: smooth_modes(p, m, free_bumps=False))
    assert found is None or found[3] < 0.02
    test = rng.uniform(size=(2000, 3))
    truth = np.c_[np.sin(2 * np.pi * test @ [0.8, 0.3, -0.5]), np.cos(2 * np.pi * test @ [-0.2, 0.9, 0.4])]
    stacked = np.sqrt(np.mean((_bumps(test, *smooth_modes(q, noisy)) - truth) ** 2))
    process = np.sqrt(np.mean((_bumps(test, *smooth_modes(q, noisy, free_bumps=False)) - truth) ** 2))
    assert abs(stacked - process) < 0.02 * process, (stacked, process)


def test_smooth_modes_returns_the_process_or_the_free_bumps_alone_at_the_weights_ends(sharp_and_broad, monkeypatch):
    """Weight 0 (``free_bumps`` gives None): the process's bumps, unchanged; weight 1: the free
    bumps alone, no process bumps beside them."""
    from skneuro.latent_regression import _free_bumps

    q, modes = sharp_and_broad
    process = smooth_modes(q, modes, free_bumps=False)
    monkeypatch.setattr(_free_bumps, "free_bumps", lambda *args, **kwargs: None)
    for a, b in zip(smooth_modes(q, modes), process):
        np.testing.assert_array_equal(a, b)
    free = (CENTRES, WIDTHS, HEIGHTS)
    monkeypatch.setattr(_free_bumps, "free_bumps", lambda *args, **kwargs: (*free, 1.0))
    for a, b in zip(smooth_modes(q, modes), free):
        np.testing.assert_array_equal(a, b)
    monkeypatch.setattr(_free_bumps, "free_bumps", lambda *args, **kwargs: (*free, 0.25))
    c, w, m = smooth_modes(q, modes)
    np.testing.assert_array_equal(c, np.vstack([process[0], CENTRES]))
    np.testing.assert_array_equal(w, np.vstack([process[1], WIDTHS]))
    np.testing.assert_allclose(m, np.vstack([0.75 * process[2], 0.25 * HEIGHTS]), rtol=1e-15)


def test_the_stacking_weight_is_the_clipped_least_squares_weight():
    """``w = ⟨f − s, t − s⟩ / ‖f − s‖²`` over all entries, clipped to [0, 1]; 0 where the two agree."""
    first = np.array([[1.0, 2.0], [3.0, 0.0]])
    second = np.array([[0.0, 1.0], [1.0, 1.0]])
    targets = np.array([[0.5, 2.0], [2.0, 0.0]])
    # f − s = [[1, 1], [2, −1]] (norm² 7); t − s = [[0.5, 1], [1, −1]]: ⟨·,·⟩ = 0.5 + 1 + 2 + 1 = 4.5
    assert stacking_weight(first, second, targets) == pytest.approx(4.5 / 7)
    assert stacking_weight(first, second, second - (first - second)) == 0.0  # w = −1, clipped
    assert stacking_weight(first, second, first + 2 * (first - second)) == 1.0  # w = 3, clipped
    assert stacking_weight(second, second, targets) == 0.0
    # the weight minimises the held-out error: moving it either way costs
    w = stacking_weight(first, second, targets)
    error = lambda v: ((v * first + (1 - v) * second - targets) ** 2).sum()  # noqa: E731
    assert error(w) < min(error(w - 0.05), error(w + 0.05))


def test_fewer_than_50_neurons_keep_the_process(sharp_and_broad):
    q, modes = sharp_and_broad
    assert free_bumps(q[:49], modes[:49], lambda p, m: smooth_modes(p, m, free_bumps=False)) is None
    found = free_bumps(q[:50], modes[:50], lambda p, m: smooth_modes(p, m, free_bumps=False))
    # 50: the path runs
    assert found is None or (found[0].shape[1] == 3 and found[2].shape[1] == 2 and 0 < found[3] <= 1)


def test_the_estimator_smooths_its_loadings_in_the_latents_metric(monkeypatch):
    """What ``_smooth_output_modes`` hands ``smooth_modes`` is the training neurons' least-squares
    loadings times the Cholesky factor of the latents' covariance pooled over subjects (weighted
    by samples), and the output predictor it leaves is the smoothed result mapped back by L⁻¹."""
    from skneuro.datasets import make_multi_subject_latent_regression
    from skneuro.latent_regression import MultiSubjectLatentRegressor, _building
    from skneuro.latent_regression._smoothing import least_squares_modes

    X, y = make_multi_subject_latent_regression(n_subjects=2, n_samples=600, n_components=2, random_state=0)
    seen = {}
    original = _building.smooth_modes

    def spy(positions, modes, **kwargs):
        seen["modes"], seen["result"] = modes, original(positions, modes, **kwargs)
        return seen["result"]

    def keep(self, module, subjects, ys):  # record the module as the output step leaves it
        seen["module"] = module
        return smooth_output(self, module, subjects, ys)

    smooth_output = _building.LatentModelBuilding._smooth_output_modes
    monkeypatch.setattr(_building, "smooth_modes", spy)
    monkeypatch.setattr(_building.LatentModelBuilding, "_smooth_output_modes", keep)
    monkeypatch.setattr(_building.LatentModelBuilding, "_standardise", lambda self, module, subjects: None)
    est = MultiSubjectLatentRegressor(2, max_iter=20, random_state=0).fit(X, y)
    module = seen["module"]
    latents, loadings, positions = [], [], []
    for s, y_s in zip(X, y):
        P, U = est.predict_modes(s)
        t = s.x @ P.astype(np.float64)
        latents.append(t)
        loadings.append(least_squares_modes(t, y_s))
        positions.append(s.output_properties)
    covariance = sum(np.cov(t, rowvar=False, bias=True) * len(t) for t in latents) / sum(len(t) for t in latents)
    L = latent_metric(covariance)
    assert not np.allclose(L, np.eye(2), atol=0.05)  # the metric is not the identity here
    scale = np.abs(seen["modes"]).max()
    np.testing.assert_allclose(seen["modes"], np.vstack(loadings) @ L, rtol=2e-3, atol=2e-4 * scale)
    q = positions[0]
    _, U = est.predict_modes(X[0])
    expected = _bumps(q, *seen["result"]) @ np.linalg.inv(L)
    np.testing.assert_allclose(U, expected, rtol=2e-3, atol=2e-4 * np.abs(expected).max())
    assert module is est.module_


def test_the_bump_path_is_equivariant_to_a_rotation_of_the_modes(sharp_and_broad):
    """Errors are summed over the modes, so an orthogonal change of basis of the modes (what a
    change of latent basis is once the modes are in the latents' metric) rotates the bumps'
    heights and changes nothing else: grow(U O) = grow(U) O, to rounding, while the bumps
    describe the modes (here the two true bumps)."""
    q, modes = sharp_and_broad
    rng = np.random.default_rng(6)
    noisy = modes + 0.05 * rng.normal(size=modes.shape)
    rotation, _ = np.linalg.qr(rng.normal(size=(2, 2)))
    plain, rotated = grow_bumps(q, noisy, 2), grow_bumps(q, noisy @ rotation, 2)
    np.testing.assert_allclose(rotated[0], plain[0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(rotated[1], plain[1], rtol=1e-9)
    np.testing.assert_allclose(rotated[2], plain[2] @ rotation, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", ["free bumps", "process"])
def test_smoothing_is_equivariant_to_a_rotation_of_the_modes(sharp_and_broad, kind):
    """smooth(U O) = smooth(U) O for the whole smoothing, to within what the free bumps'
    optimisation resolves. Bumps beyond those the modes need fit the noise along flat
    directions of the loss, where rounding differences grow (measured: bumps 3-6 of the
    sharp-and-broad modes move the fit by 2e-6 to 2e-3 of its largest value; the whole
    smoothing by 6e-3 there and by 4e-3 on waves, weights 0.92 and 0.03-0.04). A choice
    made per mode moves it by more (measured 5 % of the largest value on the sharp and
    broad modes; at least 3 % checked below);
    the process alone is equivariant to 1e-5."""
    q, modes = sharp_and_broad
    rng = np.random.default_rng(6)
    if kind == "process":
        modes = np.c_[np.sin(2 * np.pi * q @ [0.8, 0.3, -0.5]), np.cos(2 * np.pi * q @ [-0.2, 0.9, 0.4])]
    noisy = modes + 0.05 * rng.normal(size=modes.shape)
    rotation, _ = np.linalg.qr(rng.normal(size=(2, 2)))
    test = rng.uniform(size=(400, 3))
    process = lambda p, m: smooth_modes(p, m, free_bumps=False)  # noqa: E731
    weights = [(found or (0.0,) * 4)[3] for found in (free_bumps(q, u, process) for u in (noisy, noisy @ rotation))]
    assert weights[0] == pytest.approx(weights[1], abs=0.01 if kind == "process" else 1e-3)
    assert (weights[0] > 0.85) if kind == "free bumps" else (weights[0] < 0.05), weights
    plain = _bumps(test, *smooth_modes(q, noisy))
    rotated = _bumps(test, *smooth_modes(q, noisy @ rotation))
    np.testing.assert_allclose(rotated, plain @ rotation, atol=1e-2 * np.abs(plain).max())
    # a per-mode (basis-dependent) smoothing differs from the rotated one by far more than that
    per_mode = np.column_stack([_bumps(test, *smooth_modes(q, (noisy @ rotation)[:, [k]])) for k in range(2)])
    assert np.abs(per_mode - plain @ rotation).max() > 3e-2 * np.abs(plain).max()
    if kind == "process":
        plain, rotated = (_bumps(test, *process(q, u)) for u in (noisy, noisy @ rotation))
        np.testing.assert_allclose(rotated, plain @ rotation, atol=1e-5 * np.abs(plain).max())


def test_latent_metric_is_the_cholesky_factor_and_weighs_errors_as_predictions_do():
    rng = np.random.default_rng(7)
    t = rng.normal(size=(5000, 2)) @ np.array([[2.0, 0.0], [1.5, 0.3]])
    covariance = np.cov(t, rowvar=False, bias=True)
    L = latent_metric(covariance)
    floor = 1e-6 * np.trace(covariance) / 2
    np.testing.assert_allclose(L @ L.T, covariance + floor * np.eye(2), rtol=1e-12)
    assert np.allclose(L, np.tril(L))
    delta = np.array([0.1, -0.4])  # an error in one neuron's loadings
    t_centred = t - t.mean(axis=0)
    assert np.mean((t_centred @ delta) ** 2) == pytest.approx(np.sum((delta @ L) ** 2), rel=1e-4)


def test_a_latent_that_barely_varies_gets_a_bounded_inverse():
    """Latents (1, 1) and (1, 1 + 1e-9): singular to machine precision. The floor (1e-6 of the
    mean variance) keeps L⁻¹, which maps the smoothed modes back, within 1e3 of 1."""
    L = latent_metric(np.array([[1.0, 1.0], [1.0, 1.0 + 1e-9]]))
    assert np.isfinite(L).all()
    assert np.abs(np.linalg.inv(L)).max() < 2e3


@pytest.mark.parametrize("covariance", [np.zeros((2, 2)), np.full((2, 2), np.nan)])
def test_latent_metric_of_a_degenerate_covariance_is_the_identity(covariance):
    np.testing.assert_array_equal(latent_metric(covariance), np.eye(2))

"""find_fixed_points against scipy's Levenberg–Marquardt, slow points by hand, bad input."""

import warnings

import numpy as np
import pytest
import torch

from skneuro.analysis import FixedPoints, find_fixed_points
from skneuro.rnn import LeakyRNN, RateRNNRegressor

from ._nets import F64, leaky

X_GHOST = float(np.arcsinh(1.0))  # tanh'(x) = 1/2: where h(x) = 2 tanh(x) − x − 0.6 peaks
H_GHOST = 2 * np.tanh(X_GHOST) - X_GHOST - 0.6  # −0.0671600, so h has no root near it


def _random_net(activation, n, gain, bias, seed=0):
    """Random Gaussian weights of spectral radius about gain; gain < 0: positive weights of
    Perron root about −gain (with a positive bias and relu, no fixed point at all)."""
    rng = np.random.default_rng(seed)
    W = gain * rng.normal(size=(n, n)) / np.sqrt(n) if gain > 0 else -gain * np.abs(rng.normal(size=(n, n))) / (0.8 * n)
    return leaky(
        2,
        n,
        activation,
        W_rec=W,
        W_in=rng.normal(size=(n, 2)),
        b_rec=bias + 0.1 * rng.normal(size=n),
    )


def _visited_states(net, n_starts, seed=1):
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        _, x, _ = net(torch.tensor(0.5 * rng.normal(size=(n_starts, 60, net.n_in))), noise=False)
    return x[:, -1].numpy() + 0.1 * rng.normal(size=(n_starts, net.n_rec))


def _scipy_speeds(net, u, starts):
    """Final q of scipy.optimize.least_squares(method="lm") with the analytic Jacobian, per start."""
    least_squares = pytest.importorskip("scipy.optimize").least_squares
    with torch.no_grad():
        W_in, W, _ = (t.double().numpy() for t in net.effective_weights())
        b = net.b_rec.double().numpy()
    a, f, slope = (
        net.alpha,
        *{
            "tanh": (np.tanh, lambda x: 1 - np.tanh(x) ** 2),
            "relu": (lambda x: np.maximum(x, 0), lambda x: (x > 0) * 1.0),
            "softplus": (lambda x: np.logaddexp(0, x), lambda x: 0.5 * (1 + np.tanh(0.5 * x))),
        }[net.activation],
    )
    drive = W_in @ u + b
    speeds = []
    for x0 in starts:
        fit = least_squares(
            lambda x: a * (W @ f(x) + drive - x),
            x0,
            jac=lambda x: a * (W * slope(x)) - a * np.eye(x.size),
            method="lm",
        )
        speeds.append(0.5 * (fit.fun**2).sum())
    return np.array(speeds)


@pytest.mark.parametrize(
    "activation, n, gain, bias",
    [("tanh", 50, 1.5, 0.0), ("relu", 50, 0.9, 0.5), ("relu", 50, -1.5, 0.5), ("softplus", 60, 1.2, -0.5)],
    ids=["tanh-slow-points", "relu", "relu-exploding", "softplus"],
)
def test_converges_from_as_many_starts_as_scipy_lm(activation, n, gain, bias):
    net = _random_net(activation, n, gain, bias)
    starts, u = _visited_states(net, 16), np.zeros(2)
    fp = find_fixed_points(net, u, starts)
    reference = _scipy_speeds(net, u, starts)
    assert fp.converged.sum() >= (reference < 1e-12).sum()
    np.testing.assert_array_equal(fp.converged, fp.speeds < 1e-12)
    if gain < 0:  # exploding: no fixed point at all, and q no worse
        assert not fp.converged.any()
        assert np.median(fp.speeds / reference) <= 1.0


def test_tanh_network_reports_its_slow_points():
    net = _random_net("tanh", 50, 1.5, 0.0)
    fp = find_fixed_points(net, np.zeros(2), _visited_states(net, 16))
    slow = ~fp.converged
    assert 0 < slow.sum() < 16
    assert (fp.speeds[slow] > 1e-6).all() and (fp.gradient_norms[slow] < 1e-6).all()
    assert (fp.gradient_norms[fp.converged] < 1e-6).all()


def test_slow_point_by_hand():
    # x_{t+1} = 0.9 x + 0.1 (2 tanh x − 0.6): one fixed point near −2.6, a ghost at asinh(1)
    net = leaky(0, 1, "tanh", W_rec=[[2.0]], b_rec=[-0.6])
    fp = find_fixed_points(net, np.zeros(0), np.array([[1.5], [0.3], [-3.0]]), outlier_distance=None)
    np.testing.assert_allclose(fp.states[:2, 0], X_GHOST, atol=1e-5)
    np.testing.assert_allclose(fp.speeds[:2], 0.5 * 0.01 * H_GHOST**2, rtol=1e-8)
    assert not fp.converged[:2].any() and (fp.gradient_norms[:2] < 1e-8).all()
    assert fp.converged[2] and abs(2 * np.tanh(fp.states[2, 0]) - 0.6 - fp.states[2, 0]) < 1e-5
    np.testing.assert_array_equal(np.sort(fp.unique), [0, 2])  # the two ghost searches merged


def test_relu_without_fixed_point_claims_none():
    # h(x) = 2 relu(x) + 1 − x > 0 everywhere: x grows without bound; q is least, 0.005, at x = 0
    net = leaky(0, 1, "relu", W_rec=[[2.0]], b_rec=[1.0])
    fp = find_fixed_points(net, np.zeros(0), np.linspace(-3, 3, 8)[:, None])
    assert not fp.converged.any()
    assert (fp.speeds >= 0.005 * (1 - 1e-12)).all()
    assert np.min(fp.speeds) < 0.005 * 1.01


# ------------------------------------------------------------------ bad input, model untouched
def _snapshot(module):
    return {name: (p.requires_grad, p.detach().clone()) for name, p in module.named_parameters()}


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(4, 6, 2)), rng.normal(size=(4, 6, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return RateRNNRegressor(5, activation="tanh", max_iter=1, random_state=0).fit(X, y)


@pytest.mark.parametrize(
    "u, starts, kw, name",
    [
        (np.zeros(2), np.full((3, 5), np.nan), {}, "initial_states"),
        (np.zeros(2), np.array([[0.0, 0, 0, 0, np.inf]]), {}, "initial_states"),
        (np.zeros(2), np.zeros((3, 4)), {}, "initial_states"),
        (np.zeros(2), np.zeros((2, 3, 6)), {}, "initial_states"),
        (np.zeros(3), np.zeros((3, 5)), {}, "u"),
        (np.zeros((2, 2)), np.zeros((3, 5)), {}, "u"),
        (np.array([0.0, np.nan]), np.zeros((3, 5)), {}, "u"),
        (np.zeros(2), np.zeros((2, 3, 5)), {"n_init": 7}, "n_init"),
        (np.zeros(2), np.zeros((2, 3, 5)), {"n_init": 0}, "n_init"),
    ],
)
def test_bad_input_names_the_argument_and_leaves_the_model(fitted, u, starts, kw, name):
    module = fitted.module_
    module.b_out.requires_grad_(False)
    before = _snapshot(module)
    try:
        with pytest.raises(ValueError, match=name):
            find_fixed_points(fitted, u, starts, **kw)
        after = _snapshot(module)
        for key, (flag, value) in before.items():
            assert after[key][0] == flag and torch.equal(after[key][1], value), key
    finally:
        module.b_out.requires_grad_(True)


def test_unfitted_model_is_a_value_error_naming_model():
    with pytest.raises(ValueError, match="model.*not fitted"):
        find_fixed_points(RateRNNRegressor(5), np.zeros(2), np.zeros((2, 5)))


def test_module_in_float32_searched_in_float64():
    net = LeakyRNN(0, 1, 0, activation="tanh")
    with torch.no_grad():
        net.W_rec.fill_(2.0)
    fp = find_fixed_points(net, np.zeros(0), np.array([[3.0]]), tol=1e-24)
    assert fp.states.dtype == np.float64 and net.W_rec.dtype == torch.float32
    np.testing.assert_allclose(fp.states[0, 0], 1.9150080, atol=1e-7)
    assert net.W_rec.requires_grad and float(net.W_rec.detach()) == 2.0


@pytest.mark.cuda
def test_cuda_module_searched_on_its_device():
    net = _random_net("tanh", 50, 1.5, 0.0)
    starts = _visited_states(net, 8)
    cpu = find_fixed_points(net, np.zeros(2), starts)
    gpu = find_fixed_points(net.to("cuda"), np.zeros(2), starts)
    np.testing.assert_array_equal(gpu.converged, cpu.converged)
    np.testing.assert_allclose(gpu.states, cpu.states, atol=1e-6)
    assert net.W_rec.device.type == "cuda" and net.W_rec.dtype == F64


def test_three_bistable_units_hold_eight_memories():
    # three tanh units with self-weight 2 (each bistable: x ∈ {−x*, 0, x*}) drive three
    # leaky units: 27 fixed points, 8 stable (one per sign pattern), and saddles with
    # 1, 2 or 3 unstable directions (12, 6 and 1 of them)
    rng = np.random.default_rng(3)
    W = np.zeros((6, 6))
    W[:3, :3] = 2 * np.eye(3)
    W[3:, :3] = rng.normal(size=(3, 3))
    net = leaky(0, 6, "tanh", W_rec=W)
    fp = find_fixed_points(net, np.zeros(0), rng.normal(scale=2.0, size=(256, 6)), outlier_distance=None)
    points = fp[fp.unique]
    assert fp.converged.all() and len(points) == 27
    bits = np.sort(np.abs(points.states[:, :3]), axis=None)
    np.testing.assert_allclose(bits[bits > 1e-6], 1.9150080, atol=1e-6)
    stable = points.is_stable
    assert stable.sum() == 8
    assert len({tuple(np.sign(s[:3])) for s in points.states[stable]}) == 8
    n_unstable = (np.abs(points.eigenvalues) > 1).sum(1)
    np.testing.assert_array_equal(np.bincount(n_unstable), [8, 12, 6, 1])
    np.testing.assert_allclose(np.abs(points.eigenvalues[stable][:, 0]), 0.9166372, atol=1e-6)
    np.testing.assert_allclose(np.abs(points.eigenvalues[n_unstable == 3][0, :3]), 1.1, atol=1e-12)


def test_file_without_gradient_norms_loads(tmp_path):
    net = leaky(0, 1, "tanh", W_rec=[[2.0]])
    fp = find_fixed_points(net, np.zeros(0), np.array([[-3.0], [3.0]]))
    arrays = {name: value for name, value in vars(fp).items() if name != "gradient_norms"}
    np.savez(tmp_path / "old.npz", **arrays)  # as written before gradient norms were recorded
    back = FixedPoints.load(tmp_path / "old.npz")
    assert np.isnan(back.gradient_norms).all() and back.gradient_norms.shape == (2,)
    np.testing.assert_array_equal(back.states, fp.states)

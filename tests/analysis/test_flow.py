"""flow_field and plot_flow_field: velocities by hand, planes, centres, zero fields."""

import warnings

import matplotlib
import numpy as np
import pytest
from sklearn.decomposition import PCA

from skneuro.analysis import FlowField, find_fixed_points, flow_field
from skneuro.plotting import plot_flow_field

from ._nets import effective, fit_multi_region, leaky, random_net

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _rotation(theta):
    return np.array([[np.cos(theta), np.sin(theta)], [-np.sin(theta), np.cos(theta)]])


def test_linear_two_units_by_hand():
    W, W_in, b, u = np.array([[0.2, -1.0], [0.7, 0.4]]), np.array([[1.0], [-2.0]]), np.array([0.3, -0.1]), np.ones(1)
    net = leaky(1, 2, "linear", W_rec=W, W_in=W_in, b_rec=b)
    mean, comps = np.array([0.5, -1.0]), _rotation(0.3)
    field = flow_field(net, u, (mean, comps), n_points=5, extent=(2.0, 1.0))
    assert field.grid.shape == field.velocity.shape == (5, 5, 2) and field.speed.shape == (5, 5)
    xs, ys = np.linspace(-2, 2, 5), np.linspace(-1, 1, 5)
    for i in range(5):
        for j in range(5):
            c = np.array([xs[j], ys[i]])
            np.testing.assert_array_equal(field.grid[i, j], c)
            x = mean + c @ comps
            F = 0.9 * x + 0.1 * (W @ x + W_in @ u + b)
            np.testing.assert_allclose(field.velocity[i, j], comps @ (F - x), atol=1e-14)
    np.testing.assert_array_equal(field.speed, np.linalg.norm(field.velocity, axis=-1))
    assert abs(field.speed.max() - 1.0) > 0.1  # raw, not divided by its max
    np.testing.assert_array_equal(field.mean, mean)
    np.testing.assert_array_equal(field.components, comps)


def test_linear_option_equals_exact_for_linear_f():
    net = random_net("linear", n_rec=3, n_in=2, seed=1, signed=False, masked=False)
    rng = np.random.default_rng(2)
    plane, centres = rng.normal(size=(20, 3)), rng.normal(size=(3, 3))
    for follow in (False, True):
        kw = dict(regions=[2, 0], n_points=4, extent=1.5, centers=centres, follow=follow)
        exact = flow_field(net, np.ones(2), plane, **kw)
        lin = flow_field(net, np.ones(2), plane, linear=True, **kw)
        np.testing.assert_allclose(lin.velocity, exact.velocity, atol=1e-12)
        np.testing.assert_array_equal(lin.grid, exact.grid)


def test_linear_option_is_first_order_for_tanh():
    net = random_net("tanh", n_rec=3, n_in=2, seed=3, signed=False, masked=False)
    W_in, W, b = effective(net)
    u, mean, comps = np.array([0.2, -0.1]), np.array([0.3, -0.4]), _rotation(1.0)
    centre = np.array([0.0, 0.5, 0.0])
    field = flow_field(net, u, (mean, comps), regions=[0, 2], n_points=3, extent=0.5, centers=centre, linear=True)
    exact = flow_field(net, u, (mean, comps), regions=[0, 2], n_points=3, extent=0.5, centers=centre)
    np.testing.assert_allclose(field.velocity[1, 1], exact.velocity[1, 1], atol=1e-14)  # the expansion point
    assert np.abs(field.velocity - exact.velocity).max() > 1e-6
    # by hand at one corner: F(x0) + J (x − x0), J = 0.9 I + 0.1 W_SS D(x0_S)
    S = np.array([0, 2])
    x0 = np.array([mean[0], 0.5, mean[1]])
    J = 0.9 * np.eye(2) + 0.1 * W[np.ix_(S, S)] * (1 - np.tanh(x0[S]) ** 2)
    F0 = (0.9 * x0 + 0.1 * (W @ np.tanh(x0) + W_in @ u + b))[S]
    xs = mean + field.grid[0, 0] @ comps
    np.testing.assert_allclose(field.velocity[0, 0], comps @ (F0 + J @ (xs - mean) - xs), atol=1e-13)


def test_excluded_zero_vs_hold():
    net = random_net("tanh", n_rec=3, n_in=1, seed=4, signed=False, masked=False)
    _, W, _ = effective(net)
    mean, comps = np.array([0.1, 0.2]), _rotation(-0.4)
    centre = np.array([0.3, -0.6, 0.8])
    kw = dict(regions=[1, 0], n_points=4, centers=centre)
    hold = flow_field(net, np.ones(1), (mean, comps), excluded="hold", **kw)
    zero = flow_field(net, np.ones(1), (mean, comps), excluded="zero", **kw)
    drive = comps @ (0.1 * W[[1, 0], 2] * np.tanh(0.8))  # excluded unit 2's contribution (tanh(0) = 0)
    assert np.abs(drive).max() > 1e-3
    np.testing.assert_allclose(hold.velocity - zero.velocity, np.broadcast_to(drive, hold.velocity.shape), atol=1e-14)
    np.testing.assert_array_equal(hold.grid, zero.grid)
    with pytest.raises(ValueError, match="excluded"):
        flow_field(net, np.ones(1), (mean, comps), excluded="cancel")


def test_plane_from_states_matches_pca():
    rng = np.random.default_rng(5)
    states = rng.normal(size=(4, 30, 5)) @ np.diag([3.0, 0.2, 2.0, 0.1, 1.0])
    net = random_net("tanh", n_rec=5, n_in=1, seed=6, signed=False, masked=False)
    S = [4, 0, 2]
    field = flow_field(net, np.zeros(1), states, regions=S, n_points=3)
    pool = states.reshape(-1, 5)[:, S]
    np.testing.assert_allclose(field.components @ field.components.T, np.eye(2), atol=1e-12)
    np.testing.assert_allclose(field.mean, pool.mean(0), atol=1e-12)
    pca = PCA(2).fit(pool)
    for k in range(2):
        sign = np.sign(field.components[k] @ pca.components_[k])
        np.testing.assert_allclose(sign * field.components[k], pca.components_[k], atol=1e-10)
    np.testing.assert_array_equal(field.indices, S)
    np.testing.assert_allclose(field.project(states[0, :3]), (pool[:3] - pool.mean(0)) @ field.components.T)


def test_multiple_centres_and_follow():
    net = random_net("tanh", n_rec=4, n_in=1, seed=7, signed=False, masked=False)
    rng = np.random.default_rng(8)
    plane, centres = rng.normal(size=(20, 4)), rng.normal(size=(3, 4))
    kw = dict(regions=[0, 1], n_points=5, extent=0.7)
    fixed = flow_field(net, np.ones(1), plane, centers=centres, **kw)
    follow = flow_field(net, np.ones(1), plane, centers=centres, follow=True, **kw)
    assert fixed.grid.shape == (3, 5, 5, 2) and fixed.speed.shape == (3, 5, 5)
    for k in range(3):
        np.testing.assert_array_equal(fixed.grid[k], fixed.grid[0])
        np.testing.assert_allclose(follow.grid[k, 2, 2], follow.project(centres[k]), atol=1e-14)
        np.testing.assert_allclose(follow.grid[k] - follow.grid[k, 2, 2], fixed.grid[k], atol=1e-14)
        one = flow_field(net, np.ones(1), plane, centers=centres[k], follow=True, **kw)
        assert one.grid.shape == (5, 5, 2)
        sub = follow[k]
        assert isinstance(sub, FlowField) and sub.grid.shape == (5, 5, 2)
        np.testing.assert_allclose(sub.velocity, one.velocity, atol=1e-14)
        np.testing.assert_allclose(sub.speed, one.speed, atol=1e-14)
    assert not np.allclose(fixed.velocity[0], fixed.velocity[1])  # the held units differ
    with pytest.raises(IndexError):
        flow_field(net, np.ones(1), plane, **kw)[0]


def test_named_regions_out_of_order_equal_brute_force():
    est = fit_multi_region("tanh", seed=2)[0]
    rng = np.random.default_rng(9)
    centre, u = rng.normal(size=8), rng.normal(size=2)
    idx = np.r_[5:8, 0:2]  # ["c", "a"]
    mean, comps = rng.normal(size=5), np.linalg.qr(rng.normal(size=(5, 2)))[0].T
    field = flow_field(est, u, (mean, comps), regions=["c", "a"], n_points=3, centers=centre)
    np.testing.assert_array_equal(field.indices, idx)
    for i in range(3):
        for j in range(3):
            x = centre.copy()
            x[idx] = mean + field.grid[i, j] @ comps
            F = 0.9 * x + 0.1 * (est.W_rec_ @ np.tanh(x) + est.W_in_ @ u + est.b_rec_)
            np.testing.assert_allclose(field.velocity[i, j], comps @ (F - x)[idx], atol=1e-6)


def _zero_field():
    net = leaky(0, 2, "linear", W_rec=np.eye(2), dt=1.0, tau=1.0)  # F(x) = x exactly
    return flow_field(net, np.zeros(0), (np.zeros(2), np.eye(2)), n_points=6, extent=2.0)


def test_zero_field_has_zero_speed():
    field = _zero_field()
    assert np.all(field.velocity == 0) and np.all(field.speed == 0)
    assert not np.isnan(field.speed).any()


@pytest.mark.parametrize("kind", ["stream", "quiver"])
def test_plot_zero_field(kind):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ax = plot_flow_field(_zero_field(), kind=kind)
    assert ax.get_xlim() == (-2.0, 2.0) and ax.get_ylim() == (-2.0, 2.0)
    plt.close(ax.figure)


@pytest.mark.parametrize("kind", ["stream", "quiver"])
def test_plot_with_fixed_points_and_trajectory(kind):
    net = leaky(0, 2, "tanh", W_rec=[[2.0, 0.0], [0.0, 0.5]])
    fp = find_fixed_points(net, np.zeros(0), np.array([[-3.0, 1.0], [0.1, -1.0], [3.0, 0.5], [2.9, 0.4]]))
    assert fp.unique.size == 3 and fp.is_stable[fp.unique].sum() == 2
    field = flow_field(net, np.zeros(0), (np.zeros(2), np.eye(2)), n_points=8, extent=2.5)
    traj = np.stack([np.linspace(-2, 2, 10), np.linspace(1, -1, 10)], axis=-1)
    fig, ax = plt.subplots()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = plot_flow_field(field, ax=ax, kind=kind, fixed_points=fp, trajectory=traj)
    assert out is ax
    (line,) = ax.lines
    np.testing.assert_allclose(np.c_[line.get_xdata(), line.get_ydata()], traj)
    stable, unstable = ax.collections[-2:]
    uniq = fp[fp.unique]
    np.testing.assert_allclose(np.asarray(stable.get_offsets()), uniq.states[uniq.is_stable])
    np.testing.assert_allclose(np.asarray(unstable.get_offsets()), uniq.states[~uniq.is_stable])
    plot_flow_field(field, ax=ax, fixed_points=np.array([[0.0, 0.0]]), trajectory=traj[None])
    assert len(ax.lines) == 2
    with pytest.raises(ValueError, match="kind"):
        plot_flow_field(field, ax=ax, kind="contour")
    multi = flow_field(net, np.zeros(0), (np.zeros(2), np.eye(2)), n_points=3, centers=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="centres"):
        plot_flow_field(multi, ax=ax)
    plt.close(fig)


def test_bad_arguments():
    net = random_net("tanh", n_rec=3, n_in=1, signed=False, masked=False)
    plane = (np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="n_points"):
        flow_field(net, np.ones(1), plane, regions=[0, 1], n_points=1)
    with pytest.raises(ValueError, match="extent"):
        flow_field(net, np.ones(1), plane, regions=[0, 1], extent=0.0)
    with pytest.raises(ValueError, match="plane"):
        flow_field(net, np.ones(1), (np.zeros(3), np.eye(2)), regions=[0, 1])
    with pytest.raises(ValueError, match="centers"):
        flow_field(net, np.ones(1), plane, regions=[0, 1], centers=np.zeros((2, 4)))

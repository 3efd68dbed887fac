"""find_fixed_points and FixedPoints: known fixed points, regions, draws, npz, untouched models."""

import warnings

import numpy as np
import pytest
import torch

from skneuro.analysis import FixedPoints, Linearization, find_fixed_points, flow_field

from ._nets import fit_multi_region, leaky

X_STAR = 1.9150080  # x = tanh(2x), x > 0


def _linear_net(n=5, seed=0):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    W, W_in, b, u = 0.5 * Q, rng.normal(size=(n, 2)), rng.normal(size=n), rng.normal(size=2)
    net = leaky(2, n, "linear", W_rec=W, W_in=W_in, b_rec=b)
    return net, W, np.linalg.solve(np.eye(n) - W, W_in @ u + b), u


def _sorted(z):
    return z[np.lexsort((np.round(z.imag, 8), np.round(z.real, 8)))]


def test_linear_fixed_point():
    net, W, x_star, u = _linear_net()
    starts = np.random.default_rng(1).normal(scale=2.0, size=(32, 5))
    fp = find_fixed_points(net, u, starts, tol=1e-24)
    assert len(fp) == 32 and fp.states.shape == (32, 5) and fp.jacobians.shape == (32, 5, 5)
    np.testing.assert_allclose(fp.states, np.broadcast_to(x_star, (32, 5)), atol=1e-8, rtol=0)
    assert fp.converged.all() and (fp.speeds < 1e-24).all()
    assert fp.unique.shape == (1,)
    assert fp.unique[0] == np.argmin(fp.speeds)  # the lowest-speed point is kept
    expected = _sorted(0.9 + 0.1 * np.linalg.eigvals(W))
    for lam in fp.eigenvalues:
        np.testing.assert_allclose(_sorted(lam), expected, atol=1e-12)
        assert (np.diff(np.abs(lam)) <= 1e-14).all()
    assert fp.is_stable.all()
    np.testing.assert_array_equal(fp.inputs, np.broadcast_to(u, (32, 2)))


def test_one_tanh_unit_three_fixed_points():
    net = leaky(0, 1, "tanh", W_rec=[[2.0]])
    starts = np.array([[-3.0], [-2.5], [-0.05], [0.04], [2.5], [3.0]])
    fp = find_fixed_points(net, np.zeros(0), starts)
    assert fp.converged.all()
    uniq = fp[fp.unique]
    order = np.argsort(uniq.states[:, 0])
    np.testing.assert_allclose(uniq.states[order, 0], [-X_STAR, 0.0, X_STAR], atol=1e-6)
    np.testing.assert_allclose(uniq.jacobians[order, 0, 0], [0.9166372, 1.1, 0.9166372], atol=1e-6)
    np.testing.assert_array_equal(uniq.is_stable[order], [True, False, True])
    np.testing.assert_allclose(uniq.eigenvalues[order, 0].real, uniq.jacobians[order, 0, 0], atol=1e-15)
    # every start went to its nearest fixed point
    np.testing.assert_allclose(fp.states[:, 0], [-X_STAR, -X_STAR, 0, 0, X_STAR, X_STAR], atol=1e-6)


def test_regions_keep_other_units_fixed():
    rng = np.random.default_rng(2)
    net = leaky(
        1, 4, "tanh", W_rec=rng.normal(size=(4, 4)) * 0.8, W_in=rng.normal(size=(4, 1)), b_rec=rng.normal(size=4)
    )
    u = np.array([0.3])
    starts = rng.normal(size=(6, 4))
    for regions, kw in (([2, 0], {}), (["s"], {"region_slices": {"s": slice(0, 1), "t": slice(1, 2)}})):
        fp = find_fixed_points(net, u, starts, regions=regions, tol=1e-20, **kw)
        moved = np.array([0, 2]) if kw == {} else np.array([0])
        fixed = np.setdiff1d(np.arange(4), moved)
        np.testing.assert_array_equal(fp.states[:, fixed], starts[:, fixed])
        assert not np.allclose(fp.states[:, moved], starts[:, moved])
        assert fp.converged.all()
        F = Linearization(net).taylor(u, fp.states, np.zeros(1), np.zeros(4))  # F(x) itself
        np.testing.assert_allclose(F[:, moved], fp.states[:, moved], atol=1e-9)
        assert np.abs(F[:, fixed] - fp.states[:, fixed]).max() > 1e-3  # q ignores them
        assert fp.jacobians.shape == (6, 4, 4)


def test_trajectories_draw_reproducibly():
    net, _, x_star, u = _linear_net(n=3, seed=3)
    traj = np.random.default_rng(4).normal(size=(5, 10, 3))
    pool = traj.reshape(-1, 3)
    a = find_fixed_points(net, u, traj, max_iter=0, n_init=7, random_state=11)
    b = find_fixed_points(net, u, traj, max_iter=0, n_init=7, random_state=11)
    c = find_fixed_points(net, u, traj, max_iter=0, n_init=7, random_state=12)
    assert a.states.shape == (7, 3)
    np.testing.assert_array_equal(a.states, b.states)
    assert not np.array_equal(a.states, c.states)
    for s in a.states:  # each one a state of the trajectories
        assert (np.abs(pool - s).max(1) == 0).any()
    j1 = find_fixed_points(net, u, traj, max_iter=0, n_init=7, noise_scale=0.1, random_state=11)
    j2 = find_fixed_points(net, u, traj, max_iter=0, n_init=7, noise_scale=0.1, random_state=11)
    np.testing.assert_array_equal(j1.states, j2.states)
    assert 0 < np.abs(j1.states - a.states).max() < 1.0
    fp = find_fixed_points(net, u, traj, n_init=4, random_state=0, tol=1e-24)
    np.testing.assert_allclose(fp.states, np.broadcast_to(x_star, (4, 3)), atol=1e-8)


def test_adam_reaches_linear_fixed_point():
    net, _, x_star, u = _linear_net(n=3, seed=5)
    starts = x_star + np.random.default_rng(6).normal(scale=0.5, size=(3, 3))
    for start in starts:  # one state per call (see test_adam_is_per_state)
        fp = find_fixed_points(net, u, start[None], method="adam", tol=1e-16, max_iter=3000)
        np.testing.assert_allclose(fp.states[0], x_star, atol=1e-6, rtol=0)
        assert fp.converged.all() and fp.speeds[0] < 1e-16 and 0 < fp.n_iter[0] < 3000


def test_adam_is_per_state():
    net, _, x_star, u = _linear_net(n=4, seed=0)
    starts = np.stack([x_star + 1e-3, x_star + 3.0])
    alone = find_fixed_points(net, u, starts[:1], method="adam", tol=1e-10, max_iter=300)
    assert alone.converged.all()
    both = find_fixed_points(net, u, starts, method="adam", tol=1e-10, max_iter=300)
    assert both.converged[0]
    np.testing.assert_allclose(both.states[0], alone.states[0], atol=1e-12)


def test_save_load_round_trip(tmp_path):
    net = leaky(0, 1, "tanh", W_rec=[[2.0]])
    fp = find_fixed_points(net, np.zeros(0), np.array([[-3.0], [-2.0], [0.1], [3.0]]))
    path = tmp_path / "fp.npz"
    fp.save(path)
    with np.load(path, allow_pickle=False) as data:
        assert set(data.files) == {
            "states", "speeds", "gradient_norms", "converged", "n_iter", "inputs", "jacobians", "eigenvalues",
            "is_stable", "unique",
        }  # fmt: skip
    back = FixedPoints.load(path)
    for name in data.files:
        got, want = getattr(back, name), getattr(fp, name)
        assert got.dtype == want.dtype and got.shape == want.shape, name
        np.testing.assert_array_equal(got, want)
    assert len(back) == 4
    uniq = back[back.unique]
    assert len(uniq) == 3 == len(fp.unique)
    np.testing.assert_array_equal(uniq.unique, np.arange(3))
    np.testing.assert_array_equal(uniq.states, fp.states[fp.unique])
    one = fp[2]
    assert len(one) == 1 and one.states.shape == (1, 1)
    masked = fp[fp.is_stable]
    assert len(masked) == int(fp.is_stable.sum())


def test_outlier_distance():
    net = leaky(0, 1, "tanh", W_rec=[[2.0]])
    # centroid 0.3, mean distance to it 0.48: 1.915 lies beyond 2 x 0.48 of it, 0 does not
    starts = np.array([[-0.02], [-0.01], [0.01], [0.02], [1.5]])
    kept = find_fixed_points(net, np.zeros(0), starts, tol=1e-20, outlier_distance=2.0)
    np.testing.assert_allclose(kept.states[:, 0], [0, 0, 0, 0, X_STAR], atol=1e-6)
    assert kept.unique.size == 1 and abs(kept.states[kept.unique[0], 0]) < 1e-6
    assert find_fixed_points(net, np.zeros(0), starts, outlier_distance=5.0).unique.size == 2
    every = find_fixed_points(net, np.zeros(0), starts, tol=1e-20, outlier_distance=None)
    assert every.unique.size == 2
    np.testing.assert_allclose(np.sort(every.states[every.unique, 0]), [0, X_STAR], atol=1e-6)
    merged = find_fixed_points(net, np.zeros(0), starts, outlier_distance=None, unique_tol=3.0)
    assert merged.unique.size == 1


def test_bad_arguments():
    net = leaky(0, 1, "tanh", W_rec=[[2.0]])
    with pytest.raises(ValueError, match="method"):
        find_fixed_points(net, np.zeros(0), np.zeros((2, 1)), method="newton")
    with pytest.raises(ValueError, match="initial_states"):
        find_fixed_points(net, np.zeros(0), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="u"):
        find_fixed_points(net, np.zeros(2), np.zeros((2, 1)))


# ------------------------------------------------------------------ models left untouched
def _snapshot(module):
    return {name: (p.requires_grad, p.detach().clone()) for name, p in module.named_parameters()}


def _assert_same(before, after):
    assert before.keys() == after.keys()
    for name, (flag, value) in before.items():
        assert after[name][0] == flag, name
        assert torch.equal(after[name][1], value), name


def _run_all(model, u, x, **kw):
    Linearization(model, **kw).jacobian(u, x)
    find_fixed_points(model, u, x[None], max_iter=5, **kw)
    find_fixed_points(model, u, x[None], max_iter=5, method="adam", **kw)
    flow_field(model, u, np.stack([x, x + 1, x - 0.5 * np.arange(x.size)]), n_points=3, **kw)


def test_estimator_untouched_and_still_trains():
    est, X, y = fit_multi_region("tanh", seed=1)
    flags = {name: p.requires_grad for name, p in est.module_.named_parameters()}
    assert flags["W_rec"] and not flags["init_state"]
    before = _snapshot(est.module_)
    W_rec = est.W_rec_.copy()
    _run_all(est, np.zeros(2), np.linspace(-1, 1, 8))
    _assert_same(before, _snapshot(est.module_))
    np.testing.assert_array_equal(est.W_rec_, W_rec)
    est.set_params(warm_start=True, max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    assert np.abs(est.W_rec_ - W_rec).max() > 0
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in est.module_.parameters())


def test_module_untouched():
    net = leaky(1, 3, "tanh", W_rec=np.eye(3) * 0.5, W_in=np.ones((3, 1)))
    net.W_in.requires_grad_(False)
    net.init_state.requires_grad_(True)
    before = _snapshot(net)
    _run_all(net, np.ones(1), np.array([0.1, -0.2, 0.3]), regions=[2, 0])
    _assert_same(before, _snapshot(net))


def test_per_state_inputs_and_named_regions():
    net, W, _, _ = _linear_net(n=3, seed=7)
    W_in, b = net.W_in.detach().numpy(), net.b_rec.detach().numpy()
    U = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, -1.0]])
    fp = find_fixed_points(net, U, np.zeros((3, 3)), tol=1e-24, outlier_distance=None)
    for i in range(3):
        np.testing.assert_allclose(fp.states[i], np.linalg.solve(np.eye(3) - W, W_in @ U[i] + b), atol=1e-8)
    np.testing.assert_array_equal(fp.inputs, U)
    np.testing.assert_array_equal(fp.unique, [0, 2])  # same input and state merged, other input kept


def test_single_initial_state_keeps_its_fixed_point():
    net, _, x_star, u = _linear_net(n=3, seed=7)
    fp = find_fixed_points(net, u, np.zeros((1, 3)), tol=1e-24)
    np.testing.assert_allclose(fp.states[0], x_star, atol=1e-8)
    np.testing.assert_array_equal(fp.unique, [0])


def test_estimator_region_names():
    est = fit_multi_region("tanh", seed=3)[0]
    starts = np.random.default_rng(8).normal(size=(4, 8))
    fp = find_fixed_points(est, np.zeros(2), starts, regions=["c", "a"], tol=1e-20, outlier_distance=None)
    np.testing.assert_array_equal(fp.states[:, 2:5], starts[:, 2:5])
    x = fp.states
    F = 0.9 * x + 0.1 * (np.tanh(x) @ est.W_rec_.T + est.b_rec_)
    idx = np.r_[5:8, 0:2]
    np.testing.assert_allclose(F[:, idx][fp.converged], x[:, idx][fp.converged], atol=1e-6)
    assert fp.converged.sum() >= 3
    with pytest.raises(ValueError, match="pfx"):
        find_fixed_points(est, np.zeros(2), starts, regions=["pfx"])

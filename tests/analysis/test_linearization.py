"""Linearization: hand values, autograd Jacobians, subsets, Taylor error, shapes."""

import numpy as np
import pytest
import torch
from torch.func import jacrev

from skneuro.analysis import Linearization
from skneuro.rnn._modules import _activate

from ._nets import F64, NAN, effective, fit_multi_region, leaky, random_net

ACTIVATIONS = ["tanh", "softplus", "sigmoid", "relu"]
SIGNS = {
    "E": ([1.0] * 6, [1.0] * 3),
    "I": ([-1.0] * 6, [-1.0] * 3),
    "mixed": ([1.0, 1.0, -1.0, -1.0, NAN, NAN], [1.0, -1.0, NAN]),
}


@pytest.fixture(scope="module")
def est():
    return fit_multi_region("tanh")[0]


# ------------------------------------------------------------------ hand values
def test_hand_linear_rotation():
    net = leaky(1, 2, "linear", W_rec=[[0.0, 1.0], [-1.0, 0.0]])
    lin = Linearization(net)
    u, x = np.zeros(1), np.array([0.3, -0.7])
    J, J_u = lin.jacobian(u, x)
    np.testing.assert_allclose(J, [[0.9, 0.1], [-0.1, 0.9]], atol=1e-15)
    assert J.dtype == np.float64 and J_u.shape == (2, 1)
    lam, _ = lin.eigendecomposition(u, x)
    np.testing.assert_allclose(np.sort_complex(lam), [0.9 - 0.1j, 0.9 + 0.1j], atol=1e-14)
    assert lam.dtype == np.complex128
    J_r, _ = lin.jacobian(u, x, wrt="rate")
    np.testing.assert_allclose(J_r, [[0.0, 0.1], [-0.1, 0.0]], atol=1e-15)
    lam_r, _ = lin.eigendecomposition(u, x, wrt="rate")
    np.testing.assert_allclose(np.sort_complex(lam_r), [-0.1j, 0.1j], atol=1e-14)


def test_hand_relu():
    net = leaky(1, 2, "relu", W_rec=[[0.0, 2.0], [1.0, 0.0]])
    J, _ = Linearization(net).jacobian(np.zeros(1), np.array([1.0, -1.0]))
    np.testing.assert_allclose(J, [[0.9, 0.0], [0.1, 0.9]], atol=1e-15)


# ------------------------------------------------------------------ autograd
def _state_point(activation, seed):
    rng = np.random.default_rng(seed)
    x = rng.choice([-1.0, 1.0], size=6) * rng.uniform(0.3, 1.5, size=6)
    u = rng.normal(size=3)
    return u, x


def _autograd(net, u, x, rates=None):
    """Full-network Jacobians of the float64 step (state) and of f(x̃) (rate), by jacrev."""
    ut, xt = torch.tensor(u, dtype=F64), torch.tensor(x, dtype=F64)
    J_x = jacrev(lambda z: net.step(z[None], ut[None])[0])(xt).detach().numpy()
    J_ux = jacrev(lambda v: net.step(xt[None], v[None])[0])(ut).detach().numpy()
    W_in, W_rec, b = (torch.tensor(a) for a in effective(net))
    a = net.alpha

    def rate_map(r, v):
        return _activate(net.activation, (1 - a) * xt + a * (W_rec @ r + W_in @ v + b))

    r0 = _activate(net.activation, xt) if rates is None else torch.tensor(rates, dtype=F64)
    J_r = jacrev(rate_map, argnums=0)(r0, ut).detach().numpy()
    J_ur = jacrev(rate_map, argnums=1)(r0, ut).detach().numpy()
    x_next = ((1 - a) * xt + a * (W_rec @ r0 + W_in @ ut + b)).numpy()
    return J_x, J_ux, J_r, J_ur, x_next


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("signs", list(SIGNS))
def test_jacobians_equal_autograd(activation, signs):
    rec_signs, input_signs = SIGNS[signs]
    net = random_net(activation, signed=False)
    net.rec_signs = torch.tensor(rec_signs, dtype=F64)
    net.input_signs = torch.tensor(input_signs, dtype=F64)
    W_in, W_rec, _ = effective(net)
    if signs == "E":
        assert (W_rec >= 0).all() and (W_in >= 0).all()
    assert (W_rec[net.rec_mask.numpy() == 0] == 0).all()
    u, x = _state_point(activation, 1)
    J_x, J_ux, J_r, J_ur, x_next = _autograd(net, u, x)
    assert np.abs(x_next).min() > 1e-3  # away from the relu kink in the rate coordinates too
    for S in (None, np.array([4, 0, 2])):
        lin = Linearization(net, S)
        idx, exc = lin.indices_, lin.excluded_indices_
        for wrt, Jf, Juf in (("state", J_x, J_ux), ("rate", J_r, J_ur)):
            J, J_u = lin.jacobian(u, x, wrt=wrt)
            np.testing.assert_allclose(J, Jf[np.ix_(idx, idx)], atol=1e-6, rtol=0)
            np.testing.assert_allclose(J_u, Juf[idx], atol=1e-6, rtol=0)
            np.testing.assert_allclose(lin.jacobian_excluded(u, x, wrt=wrt), Jf[np.ix_(idx, exc)], atol=1e-6, rtol=0)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_rate_jacobian_with_given_rates(activation):
    net = random_net(activation)
    u, x = _state_point(activation, 2)
    rates = np.random.default_rng(3).uniform(0.2, 1.0, size=6)
    _, _, J_r, J_ur, x_next = _autograd(net, u, x, rates=rates)
    assert np.abs(x_next).min() > 1e-3
    lin = Linearization(net, [5, 1, 3])
    idx = lin.indices_
    J, J_u = lin.jacobian(u, x, wrt="rate", rates=rates)
    np.testing.assert_allclose(J, J_r[np.ix_(idx, idx)], atol=1e-6, rtol=0)
    np.testing.assert_allclose(J_u, J_ur[idx], atol=1e-6, rtol=0)
    np.testing.assert_allclose(
        lin.jacobian_excluded(u, x, wrt="rate", rates=rates), J_r[np.ix_(idx, lin.excluded_indices_)], atol=1e-6
    )
    if activation != "relu":  # the rates change the answer (they enter x̃); relu's 0/1 slopes may not
        assert not np.allclose(J, lin.jacobian(u, x, wrt="rate")[0])
    # taylor's base is f(x̃_S) with x̃ formed from the given rates
    base = lin.taylor(u, x, np.zeros(3), np.zeros(3), wrt="rate", rates=rates)
    np.testing.assert_allclose(base, _activate(activation, torch.tensor(x_next[idx])).numpy(), atol=1e-12)


@pytest.mark.parametrize("wrt", ["state", "rate"])
def test_batched_equals_looped(wrt):
    net = random_net("tanh")
    rng = np.random.default_rng(4)
    X, U = rng.normal(size=(5, 6)), rng.normal(size=(5, 3))
    lin = Linearization(net, [3, 0, 5, 1])
    J, J_u = lin.jacobian(U, X, wrt=wrt)
    J_E = lin.jacobian_excluded(U, X, wrt=wrt)
    lam, vec = lin.eigendecomposition(U, X, wrt=wrt)
    assert J.shape == (5, 4, 4) and J_u.shape == (5, 4, 3) and J_E.shape == (5, 4, 2) and lam.shape == (5, 4)
    for i in range(5):
        Ji, Jui = lin.jacobian(U[i], X[i], wrt=wrt)
        np.testing.assert_allclose(J[i], Ji, rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(J_u[i], Jui, rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(J_E[i], lin.jacobian_excluded(U[i], X[i], wrt=wrt), rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(lam[i], lin.eigendecomposition(U[i], X[i], wrt=wrt)[0], atol=1e-12)
    # a torch batch gives the same numpy answer
    Jt, _ = lin.jacobian(torch.tensor(U, dtype=torch.float32), torch.tensor(X))
    assert isinstance(Jt, np.ndarray) and Jt.dtype == np.float64


# ------------------------------------------------------------------ subsets
def test_named_subset_equals_full_slices(est):
    rng = np.random.default_rng(5)
    u, x = rng.normal(size=2), rng.normal(size=8)
    full = Linearization(est)
    lin = Linearization(est, ["c", "a"])
    idx = np.r_[5:8, 0:2]
    np.testing.assert_array_equal(lin.indices_, idx)
    np.testing.assert_array_equal(lin.excluded_indices_, [2, 3, 4])
    for wrt in ("state", "rate"):
        Jf, Juf = full.jacobian(u, x, wrt=wrt)
        J, J_u = lin.jacobian(u, x, wrt=wrt)
        np.testing.assert_allclose(J, Jf[np.ix_(idx, idx)], rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(J_u, Juf[idx], rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(
            lin.jacobian_excluded(u, x, wrt=wrt), Jf[np.ix_(idx, lin.excluded_indices_)], rtol=1e-13, atol=1e-15
        )
        du, dx = rng.normal(size=2) * 0.1, rng.normal(size=8) * 0.1
        sub = lin.taylor(u, x, du, dx[idx], dx_excluded=dx[lin.excluded_indices_], wrt=wrt)
        np.testing.assert_allclose(sub, full.taylor(u, x, du, dx, wrt=wrt)[idx], rtol=1e-12, atol=1e-13)
    # the module's own effective weights, by brute force
    J, _ = lin.jacobian(u, x)
    D = 1 - np.tanh(x) ** 2
    brute = 0.9 * np.eye(8) + 0.1 * est.W_rec_ * D[None, :]
    np.testing.assert_allclose(J, brute[np.ix_(idx, idx)], rtol=1e-6, atol=1e-12)


def test_region_names(est):
    with pytest.raises(ValueError, match="pfx"):
        Linearization(est, ["c", "pfx"])
    with pytest.raises(ValueError, match="'a'"):
        Linearization(est, ["a", "c", "a"])
    with pytest.raises(ValueError, match="b1"):
        Linearization(est, ["p", "b1"])  # a parent and its child: a repeat
    lin = Linearization(est, ["c", "p", "a"])
    np.testing.assert_array_equal(lin.indices_, [5, 6, 7, 2, 3, 4, 0, 1])
    assert lin.excluded_indices_.size == 0
    np.testing.assert_array_equal(Linearization(est, "b2").indices_, [4])


def test_names_need_region_slices():
    net = random_net("tanh")
    with pytest.raises(ValueError, match="region_slices"):
        Linearization(net, ["a"])
    lin = Linearization(net, ["y", "x"], region_slices={"x": slice(0, 2), "y": slice(2, 5)})
    np.testing.assert_array_equal(lin.indices_, [2, 3, 4, 0, 1])
    np.testing.assert_array_equal(lin.excluded_indices_, [5])


@pytest.mark.parametrize("regions", [np.array([4, 1]), torch.tensor([4, 1]), [4, 1]])
def test_index_arrays(regions):
    net = random_net("tanh")
    u, x = _state_point("tanh", 6)
    lin = Linearization(net, regions)
    np.testing.assert_array_equal(lin.indices_, [4, 1])
    np.testing.assert_array_equal(lin.excluded_indices_, [0, 2, 3, 5])
    Jf, _ = Linearization(net).jacobian(u, x)
    np.testing.assert_array_equal(lin.jacobian(u, x)[0], Jf[np.ix_([4, 1], [4, 1])])


@pytest.mark.parametrize("regions", [np.array([0, 6]), np.array([1, 1]), np.array([0.5]), np.array([], dtype=int)])
def test_bad_index_arrays(regions):
    with pytest.raises(ValueError):
        Linearization(random_net("tanh"), regions)


# ------------------------------------------------------------------ Taylor
@pytest.mark.parametrize("wrt", ["state", "rate"])
def test_taylor_error_is_second_order(wrt):
    net = random_net("tanh", seed=7)
    W_in, W_rec, b = effective(net)
    rng = np.random.default_rng(8)
    u, x = rng.normal(size=3), rng.normal(size=6)
    d = rng.normal(size=6)
    du = rng.normal(size=3)
    S = np.array([2, 5, 0])
    E = np.setdiff1d(np.arange(6), S)
    lin = Linearization(net, S)

    def exact(dx, dv):
        if wrt == "state":
            xx = x + dx
            return (0.9 * xx + 0.1 * (W_rec @ np.tanh(xx) + W_in @ (u + dv) + b))[S]
        r = np.tanh(x) + dx
        return np.tanh(0.9 * x + 0.1 * (W_rec @ r + W_in @ (u + dv) + b))[S]

    def err(eps):
        dx, dv = eps * d, eps * du
        pred = lin.taylor(u, x, dv, dx[S], dx_excluded=dx[E], wrt=wrt)
        return np.linalg.norm(pred - exact(dx, dv))

    e1, e2 = err(0.05), err(0.025)
    assert e1 > 1e-8
    assert 0.2 <= e2 / e1 <= 0.3
    assert np.linalg.norm(lin.taylor(u, x, 0 * du, 0 * d[S], wrt=wrt) - exact(0 * d, 0 * du)) < 1e-14


def test_taylor_linear_is_exact():
    net = random_net("linear", seed=9)
    W_in, W_rec, b = effective(net)
    rng = np.random.default_rng(10)
    u, x = rng.normal(size=3), rng.normal(size=6)
    dx, du = rng.normal(size=(4, 6)) * 3, rng.normal(size=(4, 3)) * 3  # a batch of large steps
    S = np.array([1, 4, 3])
    E = np.setdiff1d(np.arange(6), S)
    lin = Linearization(net, S)
    pred = lin.taylor(u, x, du, dx[:, S], dx_excluded=dx[:, E])
    assert pred.shape == (4, 3)
    exact = (0.9 * (x + dx) + 0.1 * ((x + dx) @ W_rec.T + (u + du) @ W_in.T + b))[:, S]
    np.testing.assert_allclose(pred, exact, atol=1e-12, rtol=0)
    # without dx_excluded the excluded units stay put
    exact0 = exact - 0.1 * dx[:, E] @ W_rec[np.ix_(S, E)].T
    np.testing.assert_allclose(lin.taylor(u, x, du, dx[:, S]), exact0, atol=1e-12, rtol=0)


# ------------------------------------------------------------------ eigendecomposition, shapes
@pytest.mark.parametrize("wrt", ["state", "rate"])
def test_eigendecomposition_sorted_and_consistent(wrt):
    net = random_net("softplus", seed=11)
    rng = np.random.default_rng(12)
    U, X = rng.normal(size=(3, 3)), rng.normal(size=(3, 6))
    lin = Linearization(net, [0, 2, 3, 5, 1])
    lam, vec = lin.eigendecomposition(U, X, wrt=wrt)
    J, _ = lin.jacobian(U, X, wrt=wrt)
    assert lam.shape == (3, 5) and vec.shape == (3, 5, 5) and vec.dtype == np.complex128
    assert (np.diff(np.abs(lam), axis=-1) <= 1e-14).all()
    for i in range(3):
        for k in range(5):
            np.testing.assert_allclose(J[i] @ vec[i, :, k], lam[i, k] * vec[i, :, k], atol=1e-12)
        np.testing.assert_allclose(np.sort_complex(lam[i]), np.sort_complex(np.linalg.eigvals(J[i])), atol=1e-12)


def test_one_unit_three_inputs_shapes():
    net = leaky(3, 1, "tanh", W_rec=[[0.5]], W_in=[[1.0, 2.0, -3.0]])
    lin = Linearization(net)
    for wrt in ("state", "rate"):
        J, J_u = lin.jacobian(np.ones(3), np.array([0.2]), wrt=wrt)
        assert J.shape == (1, 1) and J_u.shape == (1, 3)
        Jb, J_ub = lin.jacobian(np.ones((4, 3)), np.full((4, 1), 0.2), wrt=wrt)
        assert Jb.shape == (4, 1, 1) and J_ub.shape == (4, 1, 3)
        assert lin.jacobian_excluded(np.ones(3), np.array([0.2]), wrt=wrt).shape == (1, 0)
    J, J_u = lin.jacobian(np.ones(3), np.array([0.2]))
    np.testing.assert_allclose(J_u, [[0.1, 0.2, -0.3]], atol=1e-15)
    np.testing.assert_allclose(J, [[0.9 + 0.05 * (1 - np.tanh(0.2) ** 2)]], atol=1e-15)


def test_bad_arguments():
    lin = Linearization(random_net("tanh"))
    with pytest.raises(ValueError, match="wrt"):
        lin.jacobian(np.zeros(3), np.zeros(6), wrt="states")
    with pytest.raises(ValueError, match="x"):
        lin.jacobian(np.zeros(3), np.zeros(5))
    with pytest.raises(ValueError, match="u"):
        lin.jacobian(np.zeros(2), np.zeros(6))
    with pytest.raises(ValueError, match="rates"):
        lin.jacobian(np.zeros(3), np.zeros(6), wrt="rate", rates=np.zeros(5))

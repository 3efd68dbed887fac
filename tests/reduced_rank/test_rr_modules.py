"""ReducedRankModule and the exp link: hand-computed values (spec §5)."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from skneuro.reduced_rank import ReducedRankModule, exp_link


def _module(link, **values):
    """d = p = 2, k = 1, w0 = [[1], [0]], w1 = [[1], [2]] (spec §5), float64."""
    m = ReducedRankModule(2, 2, 1, link, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    values = {"w0": [[1.0], [0.0]], "w1": [[1.0], [2.0]], **values}
    with torch.no_grad():
        for name, value in values.items():
            getattr(m, name).copy_(torch.tensor(value, dtype=torch.float64))
    return m


@pytest.mark.parametrize("link", ["linear", "sigmoid", "exp", "relu"])
def test_forward_hand_computed(link, forward_cases):
    values, expected = forward_cases[link]
    m = _module(link, **values)
    out = m(torch.eye(2, dtype=torch.float64))
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-15, atol=1e-15)
    X = torch.eye(2, dtype=torch.float64)
    np.testing.assert_array_equal(m.latents(X).detach().numpy(), [[1.0], [0.0]])
    offset = np.array(values.get("o1", [0.0, 0.0]))
    np.testing.assert_array_equal(m.pre_activation(X).detach().numpy(), np.array([[1.0, 2.0], [0.0, 0.0]]) + offset)


def test_sigmoid_row_two_is_one():
    m = _module("sigmoid", g=[2.0, 2.0], o1=[0.0, 0.0], o2=[0.0, 0.0])
    np.testing.assert_array_equal(m(torch.eye(2, dtype=torch.float64))[1].detach().numpy(), [1.0, 1.0])


@pytest.mark.parametrize(
    "link,present,absent",
    [
        ("linear", ["w0", "w1", "o2", "rho"], ["o1", "g"]),
        ("sigmoid", ["w0", "w1", "o1", "g", "o2", "rho"], []),
        ("exp", ["w0", "w1", "g", "o2", "rho"], ["o1"]),
        ("relu", ["w0", "w1", "o1", "o2", "rho"], ["g"]),
    ],
)
def test_parameters_per_link(link, present, absent):
    m = ReducedRankModule(3, 4, 2, link)
    assert sorted(dict(m.named_parameters())) == sorted(present)
    for name in absent:
        assert getattr(m, name) is None
    assert m.w0.shape == (3, 2) and m.w1.shape == (4, 2) and m.var_floor.shape == (4,)
    assert "var_floor" in dict(m.named_buffers())
    assert "link='" + link + "'" in repr(m)


def test_unknown_link_raises():
    with pytest.raises(ValueError, match="link"):
        ReducedRankModule(2, 2, 1, link="tanh")


def test_generator_makes_initial_weights_reproducible_without_global_rng():
    np_state, torch_state = np.random.get_state(), torch.get_rng_state().clone()
    a = ReducedRankModule(5, 4, 2, "sigmoid", generator=torch.Generator().manual_seed(3))
    b = ReducedRankModule(5, 4, 2, "sigmoid", generator=torch.Generator().manual_seed(3))
    c = ReducedRankModule(5, 4, 2, "sigmoid", generator=torch.Generator().manual_seed(4))
    assert torch.equal(torch_state, torch.get_rng_state())
    assert np.array_equal(np_state[1], np.random.get_state()[1])
    assert torch.equal(a.w0, b.w0) and torch.equal(a.w1, b.w1)
    assert not torch.equal(a.w0, c.w0)
    assert torch.equal(a.o1, torch.zeros(4)) and torch.equal(a.g, torch.ones(4)) and torch.equal(a.rho, torch.zeros(4))


def test_negative_log_likelihood_hand_computed():
    m = _module("linear", o2=[0.0, 0.0], rho=[0.0, math.log(4.0)])  # var_floor 0, so v = [1, 4]
    np.testing.assert_allclose(m.v.detach().numpy(), [1.0, 4.0], rtol=1e-15)
    mean = torch.zeros(1, 2, dtype=torch.float64)
    nll = m.neg_log_likelihood(mean, torch.tensor([[1.0, 2.0]], dtype=torch.float64))
    assert nll.shape == (1,)
    np.testing.assert_allclose(nll.item(), math.log(2.0) + 1.0, rtol=1e-15)
    # with the 2π term it is the scipy log density
    np.testing.assert_allclose(-nll.item() - math.log(2 * math.pi), -3.531024, atol=5e-7)
    np.testing.assert_allclose(
        -nll.item() - math.log(2 * math.pi), norm.logpdf([1.0, 2.0], 0, [1.0, 2.0]).sum(), rtol=1e-14
    )


def test_variance_floor_is_added():
    m = _module("linear", o2=[0.0, 0.0], rho=[0.0, math.log(4.0)])
    with torch.no_grad():
        m.var_floor.copy_(torch.tensor([0.5, 0.0], dtype=torch.float64))
    np.testing.assert_allclose(m.v.detach().numpy(), [1.5, 4.0], rtol=1e-15)
    with torch.no_grad():
        m.rho.fill_(-1e4)  # exp(rho) underflows: v is the floor, log v stays finite
    assert torch.isfinite(m.log_v[0]) and m.v[0].item() == 0.5
    np.testing.assert_allclose(m.log_v[0].item(), math.log(0.5), rtol=1e-15)


def test_penalty_hand_computed():
    m = _module("linear", w0=[[1.0], [-2.0]], w1=[[3.0], [0.5]])
    # l1 w0: 3, l2 w0: 5, l1 w1: 3.5, l2 w1: 9.25
    assert m.penalty(1.0, 2.0, 3.0, 4.0).item() == 3.0 + 10.0 + 10.5 + 37.0
    assert m.penalty().item() == 0.0


def test_exp_link_values_and_continuity():
    a = torch.tensor([-1.0, 0.0, 20.0, 21.0, 1e6], dtype=torch.float64, requires_grad=True)
    out = exp_link(a)
    e20 = math.exp(20.0)
    np.testing.assert_allclose(
        out.detach().numpy(), [math.exp(-1), 1.0, e20, 2 * e20, e20 * (1 + 1e6 - 20)], rtol=1e-14
    )
    out.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [math.exp(-1), 1.0, e20, e20, e20], rtol=1e-14)
    # the slope is continuous at 20 (C1)
    below = torch.tensor(20.0 - 1e-7, dtype=torch.float64, requires_grad=True)
    above = torch.tensor(20.0 + 1e-7, dtype=torch.float64, requires_grad=True)
    exp_link(below).backward()
    exp_link(above).backward()
    np.testing.assert_allclose(below.grad.item(), above.grad.item(), rtol=1e-6)
    # no overflow where exp(a) would overflow float32
    np.testing.assert_allclose(exp_link(torch.tensor([1e4], dtype=torch.float32)).item(), e20 * (1e4 - 19), rtol=1e-6)

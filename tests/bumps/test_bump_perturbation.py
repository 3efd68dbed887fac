"""Gradient perturbations: statistics, seeding, the magnitude gain, and missing grads (spec §2, §3, §5)."""

import numpy as np
import pytest
import torch

from skneuro.bumps import BumpFcn, SlowSumOfBumpFcns, SumOfBumpFcns

N_CALLS = 10_000
SIGMA = 2.0


def _module(cls, B=1, D=1, dtype=torch.float32, **kwargs):
    if cls is BumpFcn:
        return cls(torch.zeros(D, dtype=dtype), torch.ones(D, dtype=dtype), torch.tensor(2.0, dtype=dtype), **kwargs)
    return cls(
        torch.zeros(B, D, dtype=dtype), torch.ones(B, D, dtype=dtype), torch.full((B,), 2.0, dtype=dtype), **kwargs
    )


def _grad(module, name):
    return (
        getattr(module, name).grad
        if not isinstance(module, SlowSumOfBumpFcns)
        else torch.stack([getattr(b, name).grad for b in module.bump_fcns]).reshape(getattr(module, name).shape)
    )


def _zero_grads(module):
    for p in module.parameters():
        p.grad = torch.zeros_like(p)


@pytest.mark.parametrize("cls", [BumpFcn, SumOfBumpFcns, SlowSumOfBumpFcns])
@pytest.mark.parametrize("name", ["c", "w"])
def test_noise_mean_and_standard_deviation(cls, name):
    module = _module(cls, dtype=torch.float64, **{f"{name}_grad_std": SIGMA})
    gen = torch.Generator().manual_seed(0)
    draws = np.empty(N_CALLS)
    for i in range(N_CALLS):
        _zero_grads(module)
        module.pert_grads(gen)
        draws[i] = float(_grad(module, name).reshape(-1)[0])
    assert abs(draws.mean()) <= 4 * SIGMA / np.sqrt(N_CALLS)
    assert abs(draws.std() / SIGMA - 1) <= 0.03
    other = "w" if name == "c" else "c"
    assert float(_grad(module, other).abs().max()) == 0.0  # nothing drawn for a std of 0
    assert float(_grad(module, "m").abs().max()) == 0.0


@pytest.mark.parametrize("cls", [BumpFcn, SumOfBumpFcns, SlowSumOfBumpFcns])
def test_same_seed_same_noise_and_global_state_untouched(cls):
    torch.manual_seed(123)
    state = torch.get_rng_state()
    grads = []
    for _ in range(2):
        module = _module(cls, B=3, D=2, c_grad_std=1.0, w_grad_std=0.5)
        gen = torch.Generator().manual_seed(7)
        for _ in range(3):
            module.pert_grads(gen)
        grads.append((_grad(module, "c").clone(), _grad(module, "w").clone()))
    assert torch.equal(grads[0][0], grads[1][0]) and torch.equal(grads[0][1], grads[1][1])
    assert float(grads[0][0].abs().min()) > 0
    assert torch.equal(torch.get_rng_state(), state)
    other = _module(cls, B=3, D=2, c_grad_std=1.0, w_grad_std=0.5)
    other.pert_grads(torch.Generator().manual_seed(8))
    assert not torch.equal(_grad(other, "c"), grads[0][0])


def test_noise_is_the_same_in_every_dtype():
    """Drawn in float64 on the CPU, then cast: float32 noise is float64 noise rounded."""
    noise = {}
    for dtype in (torch.float32, torch.float64):
        module = _module(SumOfBumpFcns, B=4, D=3, dtype=dtype, c_grad_std=1.0)
        module.pert_grads(torch.Generator().manual_seed(0))
        noise[dtype] = module.c.grad
    assert noise[torch.float32].dtype == torch.float32
    assert torch.equal(noise[torch.float64].float(), noise[torch.float32])


def test_slow_and_fast_draw_the_same_noise():
    fast = _module(SumOfBumpFcns, B=5, D=3, c_grad_std=1.5, w_grad_std=0.5)
    slow = fast.to_slow()
    fast.pert_grads(torch.Generator().manual_seed(4))
    slow.pert_grads(torch.Generator().manual_seed(4))
    assert torch.equal(_grad(slow, "c"), fast.c.grad)
    assert torch.equal(_grad(slow, "w"), fast.w.grad)


@pytest.mark.parametrize("cls", [BumpFcn, SumOfBumpFcns, SlowSumOfBumpFcns])
def test_m_grad_gain_with_zero_gradient(cls):
    """m = 2, gain 0.5, g = 0 -> -1; a None grad counts as zero (the original raised TypeError)."""
    module = _module(cls, m_grad_gain=0.5)
    assert all(p.grad is None for p in module.parameters())
    module.pert_grads(torch.Generator().manual_seed(0))
    g_m = _grad(module, "m")
    assert g_m.reshape(-1).tolist() == [-1.0]
    assert not g_m.requires_grad and g_m.grad_fn is None


@pytest.mark.parametrize("cls", [BumpFcn, SumOfBumpFcns, SlowSumOfBumpFcns])
def test_m_grad_gain_subtracts_exactly_and_builds_no_graph(cls):
    """g_m = g - gain·m exactly; the original applied the gain outside no_grad."""
    gen = torch.Generator().manual_seed(1)
    B = 1 if cls is BumpFcn else 4
    if cls is BumpFcn:
        module = cls(torch.zeros(2), torch.ones(2), torch.tensor(1.3), m_grad_gain=0.7)
    else:
        module = cls(torch.randn(B, 2, generator=gen), torch.ones(B, 2), torch.randn(B, generator=gen), m_grad_gain=0.7)
    x = torch.randn(50, 2, generator=gen)
    (module(x) ** 2).sum().backward()
    g = _grad(module, "m").clone()
    m = module.m.detach().clone()
    module.pert_grads(torch.Generator().manual_seed(0))
    g_m = _grad(module, "m")
    assert torch.equal(g_m, g - 0.7 * m.reshape(g.shape))
    assert not g_m.requires_grad


@pytest.mark.parametrize("cls", [BumpFcn, SumOfBumpFcns, SlowSumOfBumpFcns])
def test_pert_grads_before_any_backward(cls):
    module = _module(cls, B=2, D=2, c_grad_std=1.0, w_grad_std=1.0)
    module.pert_grads(torch.Generator().manual_seed(0))
    for name in "cw":
        grad = _grad(module, name)
        assert grad.shape == getattr(module, name).shape and float(grad.abs().min()) > 0
    assert _grad_is_none(module, "m")  # m_grad_gain = 0: the magnitude gradient is left alone


def _grad_is_none(module, name):
    if isinstance(module, SlowSumOfBumpFcns):
        return all(getattr(b, name).grad is None for b in module.bump_fcns)
    return getattr(module, name).grad is None


def test_noise_adds_to_an_existing_gradient():
    module = _module(SumOfBumpFcns, B=2, D=2, c_grad_std=0.5)
    gen = torch.Generator().manual_seed(0)
    module.c.grad = torch.full((2, 2), 3.0)
    module.pert_grads(gen)
    reference = _module(SumOfBumpFcns, B=2, D=2, c_grad_std=0.5)
    reference.pert_grads(torch.Generator().manual_seed(0))
    torch.testing.assert_close(module.c.grad, 3.0 + reference.c.grad, rtol=0, atol=1e-6)


def test_nothing_is_drawn_for_a_zero_std():
    module = _module(SumOfBumpFcns, B=3, D=2, dtype=torch.float64, w_grad_std=1.0)
    gen = torch.Generator().manual_seed(9)
    module.pert_grads(gen)
    expected = torch.randn((3, 2), generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    assert torch.equal(module.w.grad, expected)  # the first draw went to w: none was made for c
    quiet = _module(SumOfBumpFcns, B=3, D=2)
    gen = torch.Generator().manual_seed(9)
    state = gen.get_state()
    quiet.pert_grads(gen)
    assert torch.equal(gen.get_state(), state)

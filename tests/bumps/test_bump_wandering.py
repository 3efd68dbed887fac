"""Slow == fast, and the random walk of bumps on a flat loss, trained by the engine (spec §3, §5)."""

import numpy as np
import pytest
import torch

from skneuro._engine import fit_module
from skneuro.bumps import SlowSumOfBumpFcns, SumOfBumpFcns

B, D, N = 20, 3, 1000
TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-12}


def _problem(dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    c = torch.rand(B, D, generator=gen, dtype=torch.float64)
    w = 0.1 + 0.3 * torch.rand(B, D, generator=gen, dtype=torch.float64)
    m = torch.randn(B, generator=gen, dtype=torch.float64)
    x = torch.rand(N, D, generator=gen, dtype=torch.float64)
    r = torch.randn(N, generator=gen, dtype=torch.float64)
    return [t.to(dtype) for t in (c, w, m, x, r)]


def _slow_grad(slow, name, shape):
    return torch.stack([getattr(b, name).grad for b in slow.bump_fcns]).reshape(shape)


def _squared_error(module, x, y):
    return ((module(x) - y) ** 2).sum()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("support_p", [None, 0.01])
def test_slow_equals_fast_outputs_and_gradients(dtype, support_p):
    c, w, m, x, r = _problem(dtype)
    fast = SumOfBumpFcns(c, w, m, support_p=support_p)
    slow = SlowSumOfBumpFcns(c, w, m, support_p=support_p)
    out_fast, out_slow = fast(x), slow(x)
    difference = (out_fast - out_slow).detach()
    assert out_slow.dtype == dtype
    tol = TOLERANCE[dtype]
    scale = float(m.abs().sum())
    assert float(difference.abs().max()) <= tol * scale
    phi_fast, phi_slow = fast.bump_activations(x), slow.bump_activations(x)
    assert float((phi_fast - phi_slow).detach().abs().max()) <= tol
    (out_fast * r).sum().backward()
    (out_slow * r).sum().backward()
    for name in "cwm":
        g_fast = getattr(fast, name).grad
        g_slow = _slow_grad(slow, name, g_fast.shape)
        assert float((g_fast - g_slow).abs().max()) <= tol * float(g_fast.abs().max())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("support_p", [None, 0.01])
def test_slow_equals_fast_after_noisy_adam_steps(dtype, support_p):
    c, w, m, x, _ = _problem(dtype, seed=1)
    y = torch.sin(3 * x).sum(1)
    settings = {
        "c_bounds": [[0.0] * D, [1.0] * D],
        "w_bounds": [[0.05] * D, [1.0] * D],
        "c_grad_std": 0.5,
        "w_grad_std": 0.2,
        "m_grad_gain": 0.1,
        "support_p": support_p,
    }
    modules = [SumOfBumpFcns(c, w, m, **settings), SlowSumOfBumpFcns(c, w, m, **settings)]
    for module in modules:
        result = fit_module(
            module,
            _squared_error,
            (x, y),
            max_iter=20,
            learning_rate=0.01,
            tol=0.0,
            n_iter_no_change=1000,
            generator=torch.Generator().manual_seed(5),
            warn_not_converged=False,
        )
        assert result.n_updates == 20
    fast, slow = modules
    assert not torch.equal(fast.c.detach(), c)  # it moved
    tol = TOLERANCE[dtype]
    for name in "cwm":
        np.testing.assert_allclose(
            getattr(slow, name).detach().numpy(), getattr(fast, name).detach().numpy(), rtol=0, atol=tol
        )


# --------------------------------------------------------------- wandering
N_SEEDS, N_WALK_BUMPS, N_STEPS = 64, 4, 200


def _walk(seed, c_grad_std):
    """Bumps with m = 0 on y = 0: the loss is flat; record centers after steps 100 and 200."""
    module = SumOfBumpFcns(
        torch.zeros(N_WALK_BUMPS, 2), torch.ones(N_WALK_BUMPS, 2), torch.zeros(N_WALK_BUMPS), c_grad_std=c_grad_std
    )
    x = torch.linspace(-1, 1, 16)[:, None].repeat(1, 2)
    y = torch.zeros(16)
    snapshots = {}

    def record(epoch, loss):
        if epoch + 1 in (100, 200):
            snapshots[epoch + 1] = module.c.detach().clone()

    result = fit_module(
        module,
        _squared_error,
        (x, y),
        max_iter=N_STEPS,
        learning_rate=0.01,
        tol=0.0,
        n_iter_no_change=10 * N_STEPS,
        generator=torch.Generator().manual_seed(seed),
        callback=record,
        warn_not_converged=False,
    )
    assert result.n_updates == N_STEPS
    return module, snapshots


@pytest.mark.slow  # ~15 s
def test_flat_loss_without_noise_stays_put():
    for seed in range(N_SEEDS):
        module, _ = _walk(seed, c_grad_std=0.0)
        assert torch.equal(module.c.detach(), torch.zeros(N_WALK_BUMPS, 2))
        assert torch.equal(module.w.detach(), torch.ones(N_WALK_BUMPS, 2))
        assert torch.equal(module.m.detach(), torch.zeros(N_WALK_BUMPS))


@pytest.mark.slow  # ~15 s
def test_flat_loss_with_noise_is_a_random_walk():
    at_100, at_200 = [], []
    for seed in range(N_SEEDS):
        module, snapshots = _walk(seed, c_grad_std=1.0)
        assert torch.equal(module.m.detach(), torch.zeros(N_WALK_BUMPS))  # m stays 0
        assert torch.equal(module.w.detach(), torch.ones(N_WALK_BUMPS, 2))
        at_100.append(snapshots[100].numpy().ravel())
        at_200.append(snapshots[200].numpy().ravel())
    at_100, at_200 = np.concatenate(at_100), np.concatenate(at_200)
    standard_error = at_200.std(ddof=1) / np.sqrt(at_200.size)
    assert abs(at_200.mean()) <= 3 * standard_error
    assert at_200.std() > 0.01  # it walked
    ratio = at_200.var(ddof=1) / at_100.var(ddof=1)
    assert 1.6 <= ratio <= 2.5

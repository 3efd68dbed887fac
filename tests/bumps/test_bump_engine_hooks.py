"""The engine calls bound() and pert_grads() on wandering modules (spec §3 engine contract, §4)."""

import numpy as np
import pytest
import torch

from skneuro._engine import fit_module, hooked_modules
from skneuro.bumps import BumpFcn, SlowSumOfBumpFcns, SumOfBumpFcns, SumOfBumpsRegressor
from skneuro.bumps._modules import BumpSumWithIntercept


def _data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(n, 2))
    y = np.exp(-(((X - [0.4, 0.6]) / 0.2) ** 2).sum(1)) + 0.05 * rng.normal(size=n)
    return X, y


class _Spy:
    """Counts calls of a method on every instance of a class, per instance."""

    def __init__(self, monkeypatch, cls, name):
        self.calls = {}
        original = getattr(cls, name)
        spy = self

        def wrapper(module, *args, **kwargs):
            spy.calls[id(module)] = spy.calls.get(id(module), 0) + 1
            return original(module, *args, **kwargs)

        monkeypatch.setattr(cls, name, wrapper)

    @property
    def total(self):
        return sum(self.calls.values())


@pytest.mark.parametrize(
    "implementation,kwargs",
    [("fast", {}), ("fast", {"batch_size": 64}), ("fast", {"chunk_size": 50}), ("slow", {"batch_size": 100})],
)
def test_hooks_called_once_per_update(monkeypatch, implementation, kwargs):
    cls = SumOfBumpFcns if implementation == "fast" else SlowSumOfBumpFcns
    pert = _Spy(monkeypatch, cls, "pert_grads")
    bound = _Spy(monkeypatch, cls, "bound")
    inner_pert = _Spy(monkeypatch, BumpFcn, "pert_grads")
    X, y = _data()
    model = SumOfBumpsRegressor(
        n_bumps=3,
        implementation=implementation,
        c_grad_std=0.1,
        max_iter=7,
        n_iter_no_change=100,
        random_state=0,
        **kwargs,
    ).fit(X, y)
    assert model.n_updates_ >= model.n_iter_ == 7
    assert pert.total == model.n_updates_  # once per update, not per chunk
    assert bound.total == model.n_updates_ + 1  # before training and after every step
    assert inner_pert.total == 0  # the slow module's bumps are not hooked a second time


def test_bound_called_with_lbfgs(monkeypatch):
    bound = _Spy(monkeypatch, SumOfBumpFcns, "bound")
    X, y = _data()
    model = SumOfBumpsRegressor(n_bumps=3, solver="lbfgs", learning_rate=1.0, max_iter=5, random_state=0).fit(X, y)
    assert bound.total == model.n_updates_ + 1


@pytest.mark.parametrize("implementation", ["fast", "slow"])
def test_bounds_hold_after_a_noisy_fit(implementation):
    X, y = _data()
    bounds = np.array([[0.45, 0.5], [0.55, 0.7]])
    width_bounds = np.array([[0.05, 0.1], [0.1, 0.2]])
    model = SumOfBumpsRegressor(
        n_bumps=4,
        bounds=bounds,
        width_bounds=width_bounds,
        c_grad_std=3.0,
        w_grad_std=3.0,
        learning_rate=0.2,
        max_iter=30,
        implementation=implementation,
        random_state=0,
    ).fit(X, y)
    slack = 1e-6
    assert np.all(model.centers_ >= bounds[0] - slack) and np.all(model.centers_ <= bounds[1] + slack)
    assert np.all(model.widths_ >= width_bounds[0] * (1 - slack))
    assert np.all(model.widths_ <= width_bounds[1] * (1 + slack))
    # at least one bump was pushed against a bound and held there
    at_bound = np.isclose(model.centers_, bounds[0], atol=1e-5) | np.isclose(model.centers_, bounds[1], atol=1e-5)
    assert at_bound.any()


class _TwoBumpSums(torch.nn.Module):
    def __init__(self, first, second):
        super().__init__()
        self.first = first
        self.second = second
        self.shared = first  # a module reached twice is hooked once

    def forward(self, x):
        return self.first(x) + self.second(x)


def test_container_of_two_wandering_modules_hooks_each_once(monkeypatch):
    pert = _Spy(monkeypatch, SumOfBumpFcns, "pert_grads")
    bound = _Spy(monkeypatch, SumOfBumpFcns, "bound")
    first = SumOfBumpFcns(torch.zeros(2, 1), torch.ones(2, 1), torch.ones(2), c_grad_std=0.1)
    second = SumOfBumpFcns(torch.ones(3, 1), torch.ones(3, 1), torch.ones(3), c_grad_std=0.1)
    container = _TwoBumpSums(first, second)
    assert hooked_modules(container) == [first, second]
    x = torch.linspace(-1, 2, 30)[:, None]
    y = torch.sin(x[:, 0])
    result = fit_module(
        container,
        lambda m, x, y: ((m(x) - y) ** 2).sum(),
        (x, y),
        max_iter=6,
        batch_size=10,
        n_iter_no_change=100,
        generator=torch.Generator().manual_seed(0),
        warn_not_converged=False,
    )
    assert result.n_updates == 18
    assert pert.calls == {id(first): 18, id(second): 18}
    assert bound.calls == {id(first): 19, id(second): 19}


def test_slow_module_is_hooked_not_its_bumps():
    slow = SlowSumOfBumpFcns(torch.zeros(3, 2), torch.ones(3, 2), torch.ones(3))
    wrapped = BumpSumWithIntercept(slow, [0.0])
    assert hooked_modules(wrapped) == [slow]


@pytest.mark.parametrize("support_p", [None, 0.01])
def test_bump_far_from_the_data_moves_under_noise(support_p):
    """The original raised TypeError (no grad) or forced row 0 into an empty support."""
    x = torch.rand(50, 1, generator=torch.Generator().manual_seed(0))
    y = torch.zeros(50)

    def moved(c_grad_std):
        module = SumOfBumpFcns(
            torch.tensor([[100.0]]),
            torch.tensor([[0.1]]),
            torch.tensor([1.0]),
            c_grad_std=c_grad_std,
            support_p=support_p,
        )
        fit_module(
            module,
            lambda m, x, y: ((m(x) - y) ** 2).sum(),
            (x, y),
            max_iter=10,
            learning_rate=0.1,
            tol=0.0,
            n_iter_no_change=100,
            generator=torch.Generator().manual_seed(1),
            warn_not_converged=False,
        )
        return float((module.c.detach() - 100.0).abs().max())

    assert moved(0.0) == 0.0
    assert moved(1.0) > 0.1


def test_far_bump_moves_in_the_regressor():
    # minibatches: full-batch Adam keeps the best evaluated epoch, which may be the start
    X, y = _data()
    init = np.array([[0.4, 0.6], [50.0, 50.0]])
    width_init = np.array([[0.2, 0.2], [0.05, 0.05]])

    def far_center(c_grad_std):
        model = SumOfBumpsRegressor(
            n_bumps=2,
            init=init,
            width_init=width_init,
            bounds=[[-100, -100], [100, 100]],
            c_grad_std=c_grad_std,
            max_iter=10,
            batch_size=100,
            n_iter_no_change=100,
            random_state=0,
        ).fit(X, y)
        far = np.argmax(np.abs(model.centers_ - 50.0).sum(1) < 10)
        return model.centers_[far]

    np.testing.assert_allclose(far_center(0.0), [50.0, 50.0], rtol=1e-6)
    assert np.abs(far_center(1.0) - 50.0).max() > 0.05


@pytest.mark.parametrize("implementation", ["fast", "slow"])
def test_noisy_fit_same_seed_same_result_and_global_state_untouched(implementation):
    X, y = _data()
    torch.manual_seed(0)
    np.random.seed(0)
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()[1].copy()
    params = {
        "n_bumps": 4,
        "c_grad_std": 0.5,
        "w_grad_std": 0.2,
        "m_grad_gain": 0.05,
        "max_iter": 15,
        "batch_size": 64,
        "implementation": implementation,
    }
    first = SumOfBumpsRegressor(random_state=3, **params).fit(X, y)
    second = SumOfBumpsRegressor(random_state=3, **params).fit(X, y)
    third = SumOfBumpsRegressor(random_state=4, **params).fit(X, y)
    for name in ("centers_", "widths_", "magnitudes_", "intercept_", "loss_curve_"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    assert not np.array_equal(first.centers_, third.centers_)
    assert torch.equal(torch.get_rng_state(), torch_state)
    np.testing.assert_array_equal(np.random.get_state()[1], numpy_state)


@pytest.mark.parametrize("implementation", ["fast", "slow"])
def test_float64_fit(implementation):
    X, y = _data()
    model = SumOfBumpsRegressor(
        n_bumps=3, dtype="float64", support_p=0.01, implementation=implementation, max_iter=50, random_state=0
    ).fit(X, y)
    assert model.module_.bumps.m.dtype == torch.float64
    assert model.predict(X).dtype == np.float64
    assert model.score(X, y) > 0.8

"""The shared fitting engine: fit_module, schedules, seeding, devices, pickling."""

import math
import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from torch import nn

from skneuro._engine import (
    LearningRateSchedule,
    fit_module,
    hooked_modules,
    make_generators,
    resolve_device,
    resolve_dtype,
)
from skneuro.datasets import make_reduced_rank_regression
from skneuro.reduced_rank import RRLinearRegressor, RRSigmoidRegressor

CUDA = torch.cuda.is_available()


# --------------------------------------------------------------------------- toy problems
def _mlp(seed=1):
    gen = torch.Generator().manual_seed(seed)
    module = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
    return module


def _sq_loss(module, x, y):
    return ((module(x) - y) ** 2).sum()


def _data(n=17, seed=0):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 3, generator=gen, dtype=torch.float64)
    return X, torch.randn(n, 2, generator=gen, dtype=torch.float64)


def _flat(module):
    return torch.cat([p.detach().flatten() for p in module.parameters()])


class GradRecorder(nn.Module):
    """Wraps a module; its pert_grads hook records the accumulated gradients (unchanged)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.grads = []

    def forward(self, x):
        return self.inner(x)

    def pert_grads(self, generator):
        self.grads.append(torch.cat([p.grad.detach().flatten().clone() for p in self.parameters()]))

    def bound(self):
        pass


class Point(nn.Module):
    """A vector parameter ``w``; the toy losses below use it directly."""

    def __init__(self, values, dtype=torch.float64):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(values, dtype=dtype))


def _quad_loss(module, x):
    # per-sample ||x_i - w||^2, summed; the objective is the mean over samples
    return ((x - module.w) ** 2).sum()


# --------------------------------------------------------------------------- chunked gradients
@pytest.mark.parametrize("batch_size", [None, 5])
def test_chunked_gradient_equals_unchunked_gradient(batch_size):
    X, Y = _data()
    grads = {}
    for chunk in (None, 3):
        module = GradRecorder(_mlp())
        fit_module(
            module,
            lambda m, x, y: _sq_loss(m, x, y),
            (X, Y),
            solver="adam",
            max_iter=1,
            batch_size=batch_size,
            chunk_size=chunk,
            generator=torch.Generator().manual_seed(3),
            warn_not_converged=False,
        )
        grads[chunk] = torch.stack(module.grads)
    n_updates = 1 if batch_size is None else math.ceil(17 / batch_size)
    assert grads[None].shape[0] == n_updates
    assert torch.allclose(grads[3], grads[None], rtol=0, atol=1e-10)
    if batch_size is None:
        # and both equal the autograd gradient of the mean loss at the start
        reference = _mlp()
        (_sq_loss(reference, X, Y) / X.shape[0]).backward()
        expected = torch.cat([p.grad.flatten() for p in reference.parameters()])
        assert torch.allclose(grads[None][0], expected, rtol=0, atol=1e-12)


def test_chunked_gradient_float32_matches_within_rounding():
    X, Y = (t.float() for t in _data(40))
    grads = {}
    for chunk in (None, 3):
        module = GradRecorder(_mlp().float())
        fit_module(module, _sq_loss, (X, Y), max_iter=1, chunk_size=chunk, warn_not_converged=False)
        grads[chunk] = module.grads[0]
    scale = grads[None].abs().max()
    assert torch.allclose(grads[3], grads[None], rtol=0, atol=1e-6 * float(scale))


@pytest.mark.parametrize("solver,batch_size", [("adam", None), ("adam", 5), ("lbfgs", None)])
def test_whole_fit_with_chunks_equals_unchunked_fit(solver, batch_size):
    X, Y = _data()
    results = {}
    for chunk in (None, 3):
        module = _mlp()
        res = fit_module(
            module,
            _sq_loss,
            (X, Y),
            solver=solver,
            max_iter=25,
            batch_size=batch_size,
            learning_rate=0.05 if solver == "adam" else 1.0,
            chunk_size=chunk,
            tol=0.0,
            generator=torch.Generator().manual_seed(7),
            warn_not_converged=False,
        )
        results[chunk] = (_flat(module), res)
    (p0, r0), (p3, r3) = results[None], results[3]
    assert r0.n_iter == r3.n_iter == 25
    assert r0.n_updates == r3.n_updates
    assert np.allclose(r0.loss_curve, r3.loss_curve, rtol=0, atol=1e-10)
    assert torch.allclose(p0, p3, rtol=0, atol=1e-10)
    assert r0.loss_curve[-1] < r0.loss_curve[0]


def test_chunked_data_are_not_moved_or_modified():
    X, Y = _data()
    X0, Y0 = X.clone(), Y.clone()
    fit_module(_mlp(), _sq_loss, (X, Y), max_iter=3, chunk_size=4, warn_not_converged=False)
    assert torch.equal(X, X0) and torch.equal(Y, Y0)


# --------------------------------------------------------------------------- schedules
def test_schedule_values():
    schedule = LearningRateSchedule(((0, 0.1), (10, 0.01), (20, 0.001)))
    assert [schedule(e) for e in (0, 9, 10, 19, 20, 10_000)] == [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    assert LearningRateSchedule(0.5)(0) == LearningRateSchedule(0.5)(123) == 0.5
    assert LearningRateSchedule(np.float32(0.01)).pairs == ((0, float(np.float32(0.01))),)
    assert LearningRateSchedule(np.array(0.25)).pairs == ((0, 0.25),)
    assert LearningRateSchedule([[0, 1], [np.int64(3), np.float64(0.5)]]).pairs == ((0, 1.0), (3, 0.5))


@pytest.mark.parametrize(
    "bad",
    [
        0,
        -0.1,
        float("nan"),
        float("inf"),
        True,
        "0.1",
        None,
        [],
        [(1, 0.1)],
        [(0, 0.1), (0, 0.2)],
        [(0, 0.1), (5, 0.2), (3, 0.3)],
        [(0, 0.1, 1)],
        [(0.5, 0.1)],
        [(True, 0.1)],
        [(0, "a")],
        [(0, -1.0)],
        [(0, 0.1), (4, 0.0)],
    ],
)
def test_bad_schedules_are_rejected_naming_learning_rate(bad):
    with pytest.raises((ValueError, TypeError), match="learning_rate"):
        LearningRateSchedule(bad)
    with pytest.raises((ValueError, TypeError), match="learning_rate"):
        fit_module(Point([0.0]), _quad_loss, (torch.zeros(4, 1, dtype=torch.float64),), learning_rate=bad)


def _constant_gradient_fit(learning_rate, max_iter):
    # objective = w · c with c = mean of the rows: every Adam step moves w by lr * c/(|c| + eps)
    c = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    module = Point([0.0, 0.0, 0.0])
    res = fit_module(
        module,
        lambda m, x: (x @ m.w).sum(),
        (c.repeat(6, 1),),
        solver="adam",
        learning_rate=learning_rate,
        max_iter=max_iter,
        tol=0.0,
        n_iter_no_change=1000,
        warn_not_converged=False,
    )
    unit = (c / (c.abs() + 1e-8)).numpy()
    return module.w.detach().numpy(), unit, res


@pytest.mark.parametrize(
    "learning_rate,total",
    [
        (0.01, 0.04),
        (np.float32(0.01), 4 * float(np.float32(0.01))),
        (((0, 0.01),), 0.04),
        (((0, 0.1), (2, 0.01)), 0.22),
        ([[0, 0.3], [1, 0.1], [3, 0.2]], 0.3 + 0.1 + 0.1 + 0.2),
    ],
)
def test_schedule_is_applied_per_epoch(learning_rate, total):
    w, unit, res = _constant_gradient_fit(learning_rate, 4)
    assert res.n_updates == 4
    np.testing.assert_allclose(w, -total * unit, rtol=1e-9, atol=0)


# --------------------------------------------------------------------------- seeding
def test_same_generator_seed_gives_identical_minibatch_fits():
    X, Y = _data(40)
    runs = []
    for seed in (5, 5, 6):
        module = _mlp()
        res = fit_module(
            module,
            _sq_loss,
            (X, Y),
            batch_size=7,
            max_iter=5,
            learning_rate=0.05,
            generator=torch.Generator().manual_seed(seed),
            warn_not_converged=False,
        )
        runs.append((_flat(module), res.loss_curve))
    assert torch.equal(runs[0][0], runs[1][0]) and runs[0][1] == runs[1][1]
    assert not torch.equal(runs[0][0], runs[2][0])  # the seed does reach the minibatch order


def test_make_generators():
    t1, n1 = make_generators(3)
    t2, n2 = make_generators(np.int64(3))
    assert torch.equal(torch.rand(4, generator=t1), torch.rand(4, generator=t2))
    assert np.array_equal(n1.random(4), n2.random(4))
    rs, fresh = np.random.RandomState(0), np.random.RandomState(0)
    make_generators(rs)  # advances a RandomState by exactly one draw
    fresh.randint(0, 2**31 - 1)
    assert rs.randint(10**9) == fresh.randint(10**9)
    for bad in (-1, "seed", 1.5):
        with pytest.raises(ValueError, match="random_state"):
            make_generators(bad)


def _global_states():
    return np.random.get_state(), torch.get_rng_state().clone()


def _assert_same_global_states(before):
    np_state, torch_state = before
    now = np.random.get_state()
    assert np_state[0] == now[0] and np.array_equal(np_state[1], now[1]) and np_state[2:] == now[2:]
    assert torch.equal(torch_state, torch.get_rng_state())


@pytest.mark.parametrize("random_state", [0, None])
def test_fit_module_leaves_global_rng_untouched(random_state):
    X, Y = _data(30)
    torch_gen, _ = make_generators(random_state)
    first, second = _mlp(), _mlp()  # nn.Linear draws from the global RNG when built
    before = _global_states()
    fit_module(first, _sq_loss, (X, Y), batch_size=4, max_iter=3, generator=torch_gen, warn_not_converged=False)
    fit_module(second, _sq_loss, (X, Y), max_iter=3, warn_not_converged=False)  # default generator
    _assert_same_global_states(before)


# --------------------------------------------------------------------------- stopping
def test_stopping_rule_counts_epochs_without_improvement():
    X = torch.zeros(5, 2, dtype=torch.float64)
    res = fit_module(
        Point([1.0, -2.0]), _quad_loss, (X,), learning_rate=1e-3, tol=1e10, n_iter_no_change=4, max_iter=100
    )
    # the first epoch improves on +inf; the next four do not improve by tol
    assert res.stop_reason == "converged" and res.converged
    assert res.n_iter == 5 and len(res.loss_curve) == 5


def test_max_iter_reached_warns():
    with pytest.warns(ConvergenceWarning, match="max_iter=3"):
        res = fit_module(Point([1.0]), _quad_loss, (torch.zeros(3, 1, dtype=torch.float64),), max_iter=3, tol=0.0)
    assert res.stop_reason == "max_iter" and res.n_iter == 3


def test_lbfgs_reaches_the_minimum_of_the_rosenbrock_function():
    # A line search that cannot backtrack (or float32 objective values) stalls here.
    module = Point([-1.2, 1.0])

    def rosenbrock(m, x):
        a, b = m.w[0], m.w[1]
        return x.sum() * ((1 - a) ** 2 + 100 * (b - a**2) ** 2)

    res = fit_module(
        module,
        rosenbrock,
        (torch.ones(1, dtype=torch.float64),),
        solver="lbfgs",
        learning_rate=1.0,
        max_iter=200,
        tol=1e-14,
        n_iter_no_change=5,
    )
    np.testing.assert_allclose(module.w.detach().numpy(), [1.0, 1.0], atol=1e-6)
    assert res.loss_curve[-1] < 1e-12


def test_lbfgs_resolves_objective_changes_below_float32_precision():
    # objective 1e4 + (w - 1)^2 / 100: float32 values cannot tell w = 0 from w = 1
    module = Point([0.0])

    def loss(m, x):
        return (1e4 + (m.w[0] - 1.0) ** 2 / 100.0) * x.sum()

    fit_module(
        module,
        loss,
        (torch.ones(3, dtype=torch.float64),),
        solver="lbfgs",
        learning_rate=1.0,
        max_iter=50,
        tol=0.0,
        n_iter_no_change=3,
        warn_not_converged=False,
    )
    assert abs(module.w.item() - 1.0) < 1e-6


@pytest.mark.filterwarnings("error::UserWarning")
def test_penalty_and_params_subset():
    X = torch.zeros(4, 2, dtype=torch.float64)
    module = Point([1.0, 1.0])
    extra = nn.Parameter(torch.tensor(5.0, dtype=torch.float64))
    module.extra = extra
    # mean ||w||^2 + 3 ||w||^2 is minimised at w = 0 whatever the start; extra is not optimised
    res = fit_module(
        module,
        _quad_loss,
        (X,),
        penalty=lambda m: 3 * (m.w**2).sum() + 0 * m.extra,
        params=[module.w],
        solver="lbfgs",
        learning_rate=1.0,
        max_iter=30,
        tol=1e-14,
        n_iter_no_change=3,
    )
    assert abs(res.loss_curve[-1]) < 1e-12
    np.testing.assert_allclose(module.w.detach().numpy(), [0.0, 0.0], atol=1e-7)
    assert extra.item() == 5.0


@pytest.mark.filterwarnings("error::UserWarning")
def test_verbose_two_logs_one_line_per_epoch(capsys):
    # log_terms may return tensors that require grad: printing them must not warn
    res = fit_module(
        Point([1.0]),
        _quad_loss,
        (torch.zeros(3, 1, dtype=torch.float64),),
        max_iter=4,
        tol=0.0,
        verbose=2,
        log_terms=lambda m: {"w_l2": (m.w**2).sum()},
        warn_not_converged=False,
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == res.n_iter + 1 == 5  # one line per epoch, then the summary
    assert lines[-1].startswith("Point: 4 epoch(s), 4 update(s)") and lines[-1].endswith("stopped: max_iter")
    assert lines[0].startswith("epoch 1: objective 1") and "w_l2" in lines[0]


# --------------------------------------------------------------------------- divergence guard
def test_huge_learning_rate_diverges_and_restores_finite_parameters():
    module = Point([1.0, -2.0])
    with pytest.warns(ConvergenceWarning, match="diverged"):
        res = fit_module(
            module,
            _quad_loss,
            (torch.zeros(10, 2, dtype=torch.float64),),
            solver="adam",
            learning_rate=1e300,
            max_iter=20,
        )
    assert res.stop_reason == "diverged"
    # epoch 1 moved w by lr in the descent direction; epoch 2's objective overflowed there,
    # so the last parameters with a finite objective (the start) are restored
    assert res.n_iter == 1 and res.n_updates == 1
    np.testing.assert_array_equal(module.w.detach().numpy(), [1.0, -2.0])
    assert all(math.isfinite(v) for v in res.loss_curve)


def test_lbfgs_huge_learning_rate_diverges_instead_of_blaming_the_start():
    # the start is finite; only the line search leaves the finite region
    module = Point([1.0, -2.0])
    with pytest.warns(ConvergenceWarning, match="diverged"):
        res = fit_module(
            module,
            _quad_loss,
            (torch.zeros(10, 2, dtype=torch.float64),),
            solver="lbfgs",
            learning_rate=1e200,
            max_iter=20,
        )
    assert res.stop_reason == "diverged"
    np.testing.assert_array_equal(module.w.detach().numpy(), [1.0, -2.0])


def test_lbfgs_line_search_backtracks_from_a_non_finite_trial_point():
    # -log(w) + w, minimum at w = 1; from w = 2 the first trial step (lr = 10) lands at w = -3
    module = Point([2.0])

    def loss(m, x):
        return (-torch.log(m.w[0]) + m.w[0]) * x.sum()

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        res = fit_module(
            module,
            loss,
            (torch.ones(2, dtype=torch.float64),),
            solver="lbfgs",
            learning_rate=10.0,
            max_iter=50,
            tol=1e-14,
            n_iter_no_change=3,
        )
    assert res.stop_reason == "converged"
    assert abs(module.w.item() - 1.0) < 1e-6


def test_non_finite_first_step_diverges_and_restores_the_start():
    # |w|^0.5 has an infinite slope at 0: the first Adam step makes w NaN
    module = Point([0.0, 1.0])

    def loss(m, x):
        return (m.w.abs() ** 0.5).sum() * x.sum()

    with pytest.warns(ConvergenceWarning, match="diverged"):
        res = fit_module(module, loss, (torch.ones(3, dtype=torch.float64),), max_iter=5)
    assert res.stop_reason == "diverged" and res.n_updates == 0
    np.testing.assert_array_equal(module.w.detach().numpy(), [0.0, 1.0])


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_loss_becoming_nan_restores_last_finite_parameters(solver):
    X = torch.zeros(6, 2, dtype=torch.float64)
    calls = {"n": 0}

    def loss(m, x):
        calls["n"] += 1
        value = _quad_loss(m, x)
        return value * float("nan") if calls["n"] > 3 else value

    module = Point([1.0, -2.0])
    with pytest.warns(ConvergenceWarning, match="diverged"):
        res = fit_module(module, loss, (X,), solver=solver, learning_rate=0.1, max_iter=50)
    assert res.stop_reason == "diverged"
    assert torch.isfinite(module.w).all()
    assert all(math.isfinite(v) for v in res.loss_curve)
    if solver == "adam":
        # the parameters are those of a clean run stopped after the same three updates
        assert res.n_updates == res.n_iter == 3
        reference = Point([1.0, -2.0])
        # the fourth objective (after three updates) was NaN: the parameters of the third
        # evaluation, the last finite one, are those of a clean run stopped after two updates
        fit_module(reference, _quad_loss, (X,), learning_rate=0.1, max_iter=2, tol=0.0, warn_not_converged=False)
        assert torch.equal(module.w, reference.w)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_non_finite_initial_objective_raises(solver):
    module = Point([1.0, -2.0])
    X = torch.zeros(4, 2, dtype=torch.float64)
    X[2, 1] = float("nan")
    with pytest.raises(ValueError, match="not finite at the initial parameters"):
        fit_module(module, _quad_loss, (X,), solver=solver, max_iter=5)
    np.testing.assert_array_equal(module.w.detach().numpy(), [1.0, -2.0])


def test_estimator_lbfgs_divergence_keeps_a_usable_model():
    X, y = make_reduced_rank_regression(200, 5, 4, 2, link="sigmoid", random_state=0)
    with pytest.warns(ConvergenceWarning, match="diverged"):
        est = RRSigmoidRegressor(solver="lbfgs", learning_rate=1e30, random_state=0).fit(X, y)
    for name in ("w0_", "w1_", "o1_", "o2_", "g_", "noise_variance_"):
        assert np.isfinite(getattr(est, name)).all()
    assert np.isfinite(est.predict(X)).all()
    assert est.score(X, y) > 0.5  # the closed-form start, kept


# --------------------------------------------------------------------------- interruption
def test_keyboard_interrupt_in_callback_keeps_best_parameters():
    X = torch.zeros(6, 2, dtype=torch.float64)

    def stop_at_epoch_4(epoch, loss):
        if epoch == 3:
            raise KeyboardInterrupt

    module = Point([1.0, -2.0])
    with pytest.warns(UserWarning, match="interrupted"):
        res = fit_module(module, _quad_loss, (X,), learning_rate=0.1, max_iter=50, callback=stop_at_epoch_4)
    assert res.stop_reason == "interrupted" and res.n_iter == 4 and len(res.loss_curve) == 4
    # full-batch Adam evaluates epoch 4's objective before its update: those parameters are kept
    assert min(res.loss_curve) == res.loss_curve[3]
    np.testing.assert_allclose((module.w**2).sum().item(), res.loss_curve[3], rtol=1e-15)
    reference = Point([1.0, -2.0])
    fit_module(reference, _quad_loss, (X,), learning_rate=0.1, max_iter=3, tol=0.0, warn_not_converged=False)
    assert torch.equal(module.w, reference.w)


@pytest.mark.parametrize("learning_rate", [0.05, 0.6, 1.5])
def test_full_batch_adam_never_ends_worse_than_its_best_epoch(learning_rate):
    # Adam with a large step oscillates around the minimum of (w - 1)^2
    module = Point([0.0])
    X = torch.ones(4, 1, dtype=torch.float64)
    res = fit_module(
        module, _quad_loss, (X,), learning_rate=learning_rate, max_iter=15, tol=0.0, warn_not_converged=False
    )
    final = ((module.w - 1.0) ** 2).sum().item()
    assert final <= min(res.loss_curve)


def test_keyboard_interrupt_restores_the_best_lbfgs_iterate():
    # a callback that interrupts once the objective got worse than its best
    X = torch.zeros(3, 1, dtype=torch.float64)
    module = Point([3.0])
    seen = []

    def callback(epoch, loss):
        seen.append(loss)
        if epoch == 2:
            with torch.no_grad():  # push the iterate away: epoch 3 is worse than epoch 2
                module.w.add_(10.0)
        if epoch == 3:
            raise KeyboardInterrupt

    with pytest.warns(UserWarning, match="interrupted"):
        res = fit_module(module, _quad_loss, (X,), solver="lbfgs", learning_rate=0.25, max_iter=50, callback=callback)
    assert res.stop_reason == "interrupted" and res.n_iter == 4
    best = int(np.argmin(res.loss_curve))
    assert best < 3
    np.testing.assert_allclose(module.w.item() ** 2, res.loss_curve[best], rtol=1e-12)


def test_keyboard_interrupt_inside_the_loss_mid_training():
    X = torch.zeros(6, 2, dtype=torch.float64)
    calls = {"n": 0}

    def loss(m, x):
        calls["n"] += 1
        if calls["n"] == 6:  # second update of the third epoch (two minibatches per epoch)
            raise KeyboardInterrupt
        return _quad_loss(m, x)

    module = Point([1.0, -2.0])
    with pytest.warns(UserWarning, match="interrupted"):
        res = fit_module(module, loss, (X,), batch_size=3, learning_rate=0.1, max_iter=50)
    assert res.stop_reason == "interrupted"
    assert res.n_iter == 2 and res.n_updates == 5
    assert all(p.grad is None for p in module.parameters())
    # the parameters of the best (here: last) completed epoch
    reference = Point([1.0, -2.0])
    fit_module(
        reference, _quad_loss, (X,), batch_size=3, learning_rate=0.1, max_iter=2, tol=0.0, warn_not_converged=False
    )
    assert torch.equal(module.w, reference.w)


# --------------------------------------------------------------------------- hooks
class Hooked(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([2.0, -3.0], dtype=torch.float64))
        self.n_pert = 0
        self.n_bound = 0
        self.generators = set()
        self.log = []

    def forward(self, x):
        return x * self.w

    def pert_grads(self, generator):
        self.n_pert += 1
        self.generators.add(id(generator))
        self.log.append("pert")
        assert self.w.grad is not None  # after the backward pass

    def bound(self):
        self.n_bound += 1
        self.log.append("bound")
        with torch.no_grad():
            self.w.clamp_(min=-1.0)


class Container(nn.Module):
    def __init__(self, *children):
        super().__init__()
        self.items = nn.ModuleList(children)

    def forward(self, x):
        return sum(child(x) for child in self.items)


class HookedContainer(Container):
    def __init__(self, *children):
        super().__init__(*children)
        self.n_pert = 0
        self.n_bound = 0

    def pert_grads(self, generator):
        self.n_pert += 1

    def bound(self):
        self.n_bound += 1


def _hook_loss(m, x):
    return (m(x) ** 2).sum()


@pytest.mark.parametrize("batch_size", [None, 3])
def test_hooks_are_called_once_per_update(batch_size):
    module = Hooked()
    generator = torch.Generator().manual_seed(0)
    res = fit_module(
        module,
        _hook_loss,
        (torch.ones(7, 2, dtype=torch.float64),),
        batch_size=batch_size,
        learning_rate=0.01,
        max_iter=4,
        tol=0.0,
        generator=generator,
        warn_not_converged=False,
    )
    assert res.n_updates == 4 * (1 if batch_size is None else 3)
    assert module.n_pert == res.n_updates
    assert module.n_bound == res.n_updates + 1
    assert module.generators == {id(generator)}
    assert module.log[0] == "bound" and module.log[1:3] == ["pert", "bound"]
    if batch_size is None:
        # bound() ran before training: w = (2, -3) was clamped to (2, -1), objective 4 + 1
        assert res.loss_curve[0] == 5.0


def test_bound_is_called_after_every_lbfgs_step_and_before_training():
    module = Hooked()
    res = fit_module(
        module,
        _hook_loss,
        (torch.ones(7, 2, dtype=torch.float64),),
        solver="lbfgs",
        learning_rate=1.0,
        max_iter=3,
        tol=0.0,
        warn_not_converged=False,
    )
    assert module.n_bound == res.n_updates + 1 == 4
    assert module.n_pert >= res.n_updates


def test_containers_are_not_hooked_twice():
    shared = Hooked()
    plain = Container(shared, Container(shared), Hooked())  # the same hooked child listed twice
    found = hooked_modules(plain)
    assert len(found) == 2 and found[0] is shared
    inner_a, inner_b = Hooked(), Hooked()
    parent = HookedContainer(inner_a, inner_b)
    assert hooked_modules(parent) == [parent]
    assert hooked_modules(nn.Linear(2, 2)) == []

    res = fit_module(
        parent,
        _hook_loss,
        (torch.ones(4, 2, dtype=torch.float64),),
        learning_rate=0.01,
        max_iter=3,
        tol=0.0,
        warn_not_converged=False,
    )
    assert parent.n_pert == res.n_updates == 3 and parent.n_bound == 4
    assert inner_a.n_pert == inner_a.n_bound == inner_b.n_pert == inner_b.n_bound == 0

    fit_module(
        plain,
        _hook_loss,
        (torch.ones(4, 2, dtype=torch.float64),),
        learning_rate=0.01,
        max_iter=3,
        tol=0.0,
        warn_not_converged=False,
    )
    assert shared.n_pert == 3 and shared.n_bound == 4


# --------------------------------------------------------------------------- devices and dtypes
def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    if not CUDA:
        assert resolve_device("auto") == torch.device("cpu")


@pytest.mark.skipif(CUDA, reason="needs a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:3", torch.device("cuda")])
def test_unavailable_cuda_raises(device):
    with pytest.raises(ValueError, match="device"):
        resolve_device(device)


@pytest.mark.parametrize("device", ["gpu", "cpux", "", "cuda:x", "tpu:0"])
def test_bad_device_strings_raise(device):
    with pytest.raises(ValueError, match="device"):
        resolve_device(device)


@pytest.mark.parametrize("device", [0, None, 1.5])
def test_device_of_wrong_type_raises(device):
    with pytest.raises(TypeError, match="device"):
        resolve_device(device)


@pytest.mark.skipif(CUDA, reason="needs a machine without CUDA")
def test_estimator_with_unavailable_device_raises():
    X, y = make_reduced_rank_regression(50, 4, 3, 1, random_state=0)
    with pytest.raises(ValueError, match="device"):
        RRLinearRegressor(device="cuda").fit(X, y)


def test_resolve_dtype():
    assert resolve_dtype("float32") is torch.float32
    assert resolve_dtype("float64") is torch.float64
    assert resolve_dtype(np.float64) is torch.float64
    assert resolve_dtype(torch.float32) is torch.float32
    for bad in ("float16", "int64", "double", torch.int32):
        with pytest.raises(ValueError, match="dtype"):
            resolve_dtype(bad)


# --------------------------------------------------------------------------- pickling
@pytest.fixture(scope="module")
def fitted_sigmoid():
    X, y = make_reduced_rank_regression(200, 5, 4, 2, link="sigmoid", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = RRSigmoidRegressor(random_state=0, max_iter=20).fit(X, y)
    return est, X, y


def test_pickle_round_trip_is_exact(fitted_sigmoid):
    est, X, _ = fitted_sigmoid
    clone = pickle.loads(pickle.dumps(est))
    assert np.array_equal(clone.predict(X), est.predict(X))
    assert np.array_equal(clone.transform(X), est.transform(X))
    assert clone.device_ == torch.device("cpu")
    for (name, a), (_, b) in zip(est.module_.state_dict().items(), clone.module_.state_dict().items()):
        assert torch.equal(a, b), name


@pytest.mark.skipif(CUDA, reason="needs a machine without CUDA")
@pytest.mark.parametrize("fitted_on", ["cuda", "cuda:0"])
def test_state_fitted_on_cuda_unpickles_on_cpu_with_a_warning(fitted_sigmoid, monkeypatch, fitted_on):
    est, X, _ = fitted_sigmoid
    state = est.__getstate__()
    state["device_"] = fitted_on
    restored = RRSigmoidRegressor.__new__(RRSigmoidRegressor)
    with pytest.warns(UserWarning, match=f"'{fitted_on}'"):
        restored.__setstate__(state)
    assert restored.device_ == torch.device("cpu")
    assert all(p.device.type == "cpu" for p in restored.module_.parameters())
    assert np.array_equal(restored.predict(X), est.predict(X))
    # and the whole pickle stream goes the same way
    original = RRSigmoidRegressor.__getstate__

    def cuda_state(self):
        s = original(self)
        s["device_"] = fitted_on
        return s

    monkeypatch.setattr(RRSigmoidRegressor, "__getstate__", cuda_state)
    blob = pickle.dumps(est)
    monkeypatch.undo()
    with pytest.warns(UserWarning, match="mapped to 'cpu'"):
        again = pickle.loads(blob)
    assert again.device_ == torch.device("cpu")
    assert np.array_equal(again.predict(X), est.predict(X))


# --------------------------------------------------------------------------- warm start
def test_warm_start_continues_from_the_fitted_module():
    X, y = make_reduced_rank_regression(300, 5, 4, 2, link="sigmoid", random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = RRSigmoidRegressor(random_state=0, max_iter=2, dtype="float64").fit(X, y)
        before, w0_scale = est.w0_ @ est.w1_.T, np.abs(est.w0_).max()
        # the objective at the fitted parameters (no penalty): mean NLL without 2π
        objective = -(est.log_likelihood(X, y) + 0.5 * y.shape[1] * np.log(2 * np.pi))
        est.set_params(warm_start=True, solver="adam", learning_rate=1e-4, max_iter=3)
        est.fit(X, y)
    # the first Adam epoch is evaluated at the previous solution
    np.testing.assert_allclose(est.loss_curve_[0], objective, rtol=1e-12)
    assert est.n_iter_ == 3
    after = est.w0_ @ est.w1_.T
    # three Adam steps of 1e-4 move each entry of w0, w1 by at most 3e-4 (k = 2 columns)
    assert 0 < np.abs(after - before).max() < 2 * 3e-4 * (1 + w0_scale) + 1e-6


def test_keyboard_interrupt_in_the_first_epoch_restores_the_start():
    module = Point([1.0, -2.0])

    def loss(m, x):
        if not torch.equal(m.w.detach(), torch.tensor([1.0, -2.0], dtype=torch.float64)):
            raise KeyboardInterrupt  # the first line-search trial point
        return _quad_loss(m, x)

    with pytest.warns(UserWarning, match="interrupted"):
        res = fit_module(module, loss, (torch.zeros(4, 2, dtype=torch.float64),), solver="lbfgs", max_iter=5)
    assert res.stop_reason == "interrupted" and res.n_iter == 0
    np.testing.assert_array_equal(module.w.detach().numpy(), [1.0, -2.0])


# --------------------------------------------------------------------------- grouped data
def test_grouped_data_batches_and_the_epoch_objective_is_the_mean_of_its_updates():
    from skneuro._engine import GroupedData

    module = Point([0.5, -1.0])
    groups = GroupedData(
        [
            (torch.arange(10, dtype=torch.float64)[:, None],),
            (torch.arange(25, dtype=torch.float64)[:, None],),
        ]
    )
    seen = []

    def loss(m, group, x):
        value = ((m.w.sum() - x) ** 2).sum()
        seen.append((group, x.shape[0], value.item()))
        return value

    res = fit_module(module, loss, groups, batch_size=10, learning_rate=1e-12, max_iter=1, warn_not_converged=False)
    # ceil(25 / 10) = 3 updates; each group's rows split into near-equal batches, none dropped
    assert res.n_updates == 3
    assert sorted(n for g, n, _ in seen if g == 0) == [3, 3, 4] and sorted(n for g, n, _ in seen if g == 1) == [8, 8, 9]
    # update u's objective is sum_g (n_g / |B_g|) * (batch loss) / N; the epoch reports their mean
    sizes = {0: 10, 1: 25}
    updates = [sum(sizes[g] / n * v for g, n, v in seen[2 * u : 2 * u + 2]) / 35 for u in range(3)]
    assert [g for g, _, _ in seen] == [0, 1] * 3
    assert res.loss_curve[0] == pytest.approx(sum(updates) / 3, rel=1e-9)


def test_gradients_are_clipped_per_parameter(monkeypatch):
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Parameter(torch.tensor([10.0, -10.0], dtype=torch.float64))
            self.b = nn.Parameter(torch.tensor([0.01], dtype=torch.float64))

    norms = []
    original = torch.optim.Adam.step

    def recording_step(self, *args, **kwargs):
        norms.append([p.grad.norm().item() for p in self.param_groups[0]["params"]])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recording_step)
    module = Two()
    fit_module(
        module,
        lambda m, x: ((m.a**2).sum() + (m.b**2).sum()) * x.sum(),
        (torch.ones(2, 1, dtype=torch.float64),),
        max_iter=2,
        clip_grad_norm=0.5,
        warn_not_converged=False,
    )
    # a's gradient (norm ~28) is scaled to 0.5; b's (0.02) is left alone: clipping is per parameter
    assert norms[0][0] == pytest.approx(0.5) and norms[0][1] == pytest.approx(0.02)


# --------------------------------------------------------------------------- finite explosions
def test_a_tiny_first_minibatch_is_not_mistaken_for_a_better_start():
    """Minibatch Adam whose first batch happens to fit the start well: training, not divergence.

    60 of 64 rows have x ~ 1e-4 (w = 0 fits them to 4e-8), 4 rows carry the signal y = 2x ± 0.5
    (so no w fits every row: the best epoch stays far above 4e-8); the first minibatch (one
    row) is almost surely a tiny one. Comparing epochs with that single batch would call the
    start better and throw the fit away.
    """
    x = torch.full((64, 1), 1e-4, dtype=torch.float64)
    x[::16] = 1.0
    y = 2.0 * x
    y[::16, 0] += torch.tensor([0.5, -0.5, 0.5, -0.5], dtype=torch.float64)
    lin = nn.Linear(1, 1, bias=False, dtype=torch.float64)
    with torch.no_grad():
        lin.weight.fill_(0.0)

    def loss(m, xb, yb):
        return ((m(xb) - yb) ** 2).sum()

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        res = fit_module(
            lin,
            loss,
            (x, y),
            batch_size=1,
            learning_rate=0.05,
            max_iter=10,
            tol=0.0,
            warn_not_converged=False,
            generator=torch.Generator().manual_seed(1),
        )
    assert res.stop_reason != "diverged"
    assert lin.weight.item() > 1.0  # it learned (the start was w = 0)


def test_a_fit_starting_at_the_optimum_is_not_called_divergent():
    """Adam wiggling around 1e-16 → 1e-9 is noise at the optimum, not an explosion (tol sets the floor)."""
    X = torch.zeros(8, 2, dtype=torch.float64)
    module = Point([1e-8, -1e-8])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        res = fit_module(module, _quad_loss, (X,), learning_rate=1e-3, max_iter=30, tol=1e-6, warn_not_converged=False)
    assert res.stop_reason != "diverged"


# --------------------------------------------------------------------------- structure (issue 17)
def test_parameters_outside_params_are_held_fixed_and_restored_even_after_an_error():
    from skneuro._engine import InitialObjectiveNotFinite

    module = _mlp()
    X = torch.randn(20, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    Y = torch.randn(20, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    first, last = module[0], module[2]
    before = [p.detach().clone() for p in first.parameters()]
    fit_module(module, _sq_loss, (X, Y), params=list(last.parameters()), max_iter=5, warn_not_converged=False)
    for p, b in zip(first.parameters(), before):
        assert torch.equal(p, b) and p.requires_grad and p.grad is None
    assert not torch.equal(last.weight, _mlp()[2].weight)  # the chosen ones did train
    with pytest.raises(InitialObjectiveNotFinite, match="not finite at the initial parameters"):
        fit_module(module, _sq_loss, (X, Y * np.inf), params=list(last.parameters()), max_iter=2)
    assert all(p.requires_grad for p in module.parameters())
    assert issubclass(InitialObjectiveNotFinite, ValueError)


def test_training_hooks_is_a_protocol_the_bump_modules_implement():
    from skneuro._engine import TrainingHooks
    from skneuro.bumps import SumOfBumpFcns

    bumps = SumOfBumpFcns([[0.0]], [[1.0]], [2.0])
    assert isinstance(bumps, TrainingHooks) and not isinstance(nn.Linear(1, 1), TrainingHooks)
    assert hooked_modules(nn.Sequential(nn.Linear(1, 1), bumps)) == [bumps]


def test_both_solvers_report_through_one_runner_interface():
    from skneuro._engine._steps import EpochOutcome, GroupedData, Objective, make_runner  # noqa: F401
    from skneuro._engine.hooks import Hooks

    for solver in ("adam", "lbfgs"):
        module = _mlp()
        X = torch.randn(16, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        params = list(module.parameters())
        objective = Objective(module, lambda m, x: (m(x) ** 2).sum(), None, (X,), None, X.device)
        runner = make_runner(
            solver,
            params,
            objective,
            Hooks(module, torch.Generator()),
            learning_rate=0.01 if solver == "adam" else 1.0,
            batch_size=None,
            generator=torch.Generator(),
            clip_grad_norm=None,
        )
        outcome = runner.run()
        assert isinstance(outcome, EpochOutcome) and math.isfinite(outcome.loss) and runner.n_updates == 1
        assert runner.evaluates_before_update == (solver == "adam")
        assert (outcome.evaluated is not None) == (solver == "adam")


def test_one_random_state_converter_everywhere_and_no_global_state():
    """make_generators, the simulators, the tasks and the initializers share utils._random."""
    from skneuro.datasets import make_reduced_rank_regression
    from skneuro.datasets.tasks import PerceptualDiscrimination
    from skneuro.rnn import WeightInitializer
    from skneuro.utils._random import as_generator, random_seed

    np.random.seed(123)
    torch.manual_seed(123)
    global_np, global_torch = np.random.get_state()[1].copy(), torch.get_rng_state().clone()
    for bad in (-1, True, 1.5, "0", np.random):
        for call, kwargs in (
            (make_generators, {}),
            (lambda random_state: make_reduced_rank_regression(10, 2, 2, 1, random_state=random_state), {}),
            (lambda random_state: PerceptualDiscrimination().generate(2, random_state=random_state), {}),
            (lambda random_state: WeightInitializer(1, 3, 1, random_state=random_state), {}),
        ):
            with pytest.raises(ValueError, match="random_state"):
                call(bad, **kwargs)
    rs = np.random.RandomState(5)
    assert random_seed(np.random.RandomState(5)) == np.random.RandomState(5).randint(0, 2**31 - 1)
    assert random_seed(rs) != random_seed(rs)  # a RandomState passed in is advanced
    gen = np.random.default_rng(1)
    assert as_generator(gen) is gen
    _, numpy_gen = make_generators(7)
    assert numpy_gen.random() == np.random.default_rng(7).random()
    make_generators(None), as_generator(None), PerceptualDiscrimination().generate(2)
    assert np.array_equal(np.random.get_state()[1], global_np) and torch.equal(torch.get_rng_state(), global_torch)


def test_epochs_above_the_starting_objective_do_not_count_against_patience():
    """A large learning rate's first steps overshoot; the fit waits until it comes back below its start."""
    from skneuro._engine.fit import FitResult, _Monitor

    param = nn.Parameter(torch.zeros(1))
    monitor = _Monitor(nn.Linear(1, 1), [param], FitResult(), tol=1e-3, max_iter=100, verbose=0, log_terms=None)
    counts = []
    for epoch, loss in enumerate([10.0, 500.0, 400.0, 300.0, 50.0, 11.0, 9.0, 9.0, 9.0]):
        monitor.record(epoch, loss)
        counts.append(monitor.no_improve)
    # above the start (10): not counted; 9 improves; then two epochs without improvement
    assert counts == [0, 0, 0, 0, 0, 0, 0, 1, 2]
    # before this rule the overshoot itself used up the patience: 1, 2, 3, 4, 5 after epoch 0

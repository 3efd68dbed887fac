"""The three bump modules: hand-computed values, support, gradients, bounds, validation (spec §3-§5)."""

import math

import numpy as np
import pytest
import torch
from torch.func import functional_call

from skneuro.bumps import BumpFcn, SlowSumOfBumpFcns, SumOfBumpFcns, WanderingModule
from skneuro.bumps._modules import BumpSumWithIntercept, _SumOfBumpsFunction

F64 = torch.float64
SUMS = [SumOfBumpFcns, SlowSumOfBumpFcns]
KAPPA_001 = 2.1459660  # sqrt(-ln 0.01)


def _t(value):
    return torch.tensor(value, dtype=F64)


def _two_bumps(cls, m=(2.0, -1.0), **kwargs):
    """Bump 1: c = (0, 0), w = (1, 2); bump 2: c = (1, 0), w = (1, 1) (spec §5)."""
    return cls(_t([[0.0, 0.0], [1.0, 0.0]]), _t([[1.0, 2.0], [1.0, 1.0]]), _t(m), **kwargs)


def _value(out):
    return out.detach().numpy()


# ------------------------------------------------------------------ formula
def test_single_bump_hand_computed():
    bump = BumpFcn(_t([0.0, 0.0]), _t([1.0, 2.0]), 2.0)
    out = bump(_t([[1.0, 2.0], [0.0, 0.0]]))
    assert out.shape == (2,) and out.dtype == F64
    np.testing.assert_allclose(_value(out), [2 * math.exp(-2), 2.0], rtol=1e-12)
    assert round(out[0].item(), 7) == 0.2706706


@pytest.mark.parametrize("cls", SUMS)
def test_sum_of_two_bumps_hand_computed(cls):
    f = _two_bumps(cls)
    out = f(_t([[1.0, 2.0]]))
    expected = 2 * math.exp(-2) - math.exp(-4)
    np.testing.assert_allclose(_value(out), [expected], rtol=1e-12)
    assert expected == pytest.approx(0.2523550, abs=1e-7)  # spec §5, 7 digits


@pytest.mark.parametrize("cls", SUMS)
def test_two_outputs_are_separate_columns(cls):
    m = [[2.0, 0.5], [-1.0, 3.0]]
    f = _two_bumps(cls, m=m)
    x = _t([[1.0, 2.0], [0.3, -0.7], [1.0, 0.0]])
    out = f(x)
    assert out.shape == (3, 2) and f.n_outputs == 2
    for k in range(2):
        column = _two_bumps(cls, m=[m[0][k], m[1][k]])(x)
        np.testing.assert_allclose(_value(out[:, k]), _value(column), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        _value(out[0]), [2 * math.exp(-2) - math.exp(-4), 0.5 * math.exp(-2) + 3 * math.exp(-4)], rtol=1e-12
    )


def test_single_bump_vector_magnitude():
    bump = BumpFcn(_t([0.0, 0.0]), _t([1.0, 2.0]), _t([2.0, -1.0]))
    out = bump(_t([[1.0, 2.0]]))
    assert out.shape == (1, 2) and bump.n_outputs == 2
    np.testing.assert_allclose(_value(out[0]), [2 * math.exp(-2), -math.exp(-2)], rtol=1e-12)


def test_width_is_not_a_standard_deviation():
    """Half maximum at |x - c| = w·sqrt(ln 2)."""
    bump = BumpFcn(_t([0.0]), _t([0.5]), 1.0)
    np.testing.assert_allclose(bump(_t([[0.5 * math.sqrt(math.log(2))]])).item(), 0.5, rtol=1e-12)


# ------------------------------------------------------------------ support
def test_support_hand_computed():
    bump = BumpFcn(_t([0.0]), _t([1.0]), 1.0, support_p=0.01)
    assert bump.kappa == pytest.approx(KAPPA_001, abs=1e-7)
    out = bump(_t([[2.0], [2.2], [-2.2], [0.0]]))
    np.testing.assert_allclose(_value(out), [math.exp(-4), 0.0, 0.0, 1.0], rtol=1e-12)
    assert round(out[0].item(), 7) == 0.0183156


@pytest.mark.parametrize("cls", SUMS)
def test_support_error_bounded_by_p_times_total_magnitude(cls):
    gen = torch.Generator().manual_seed(0)
    c = torch.rand(6, 2, generator=gen, dtype=F64)
    w = 0.05 + 0.3 * torch.rand(6, 2, generator=gen, dtype=F64)
    m = torch.randn(6, generator=gen, dtype=F64)
    x = torch.rand(5000, 2, generator=gen, dtype=F64) * 1.4 - 0.2
    exact = cls(c, w, m)(x).detach()
    for p in (0.01, 0.1, 0.5):
        truncated = cls(c, w, m, support_p=p)(x)
        error = (exact - truncated).detach().abs()
        assert float(error.max()) <= p * float(m.abs().sum()) + 1e-15
        assert float(error.max()) > 0  # the cut happened somewhere


def test_small_output_indices_and_values():
    bump = BumpFcn(_t([0.0]), _t([1.0]), _t([1.0, -2.0]), support_p=0.01)
    x = _t([[5.0], [2.0], [-3.0], [0.5], [2.2]])
    idx, values = bump(x, small_output=True)
    assert isinstance(idx, torch.Tensor) and idx.dtype == torch.int64
    assert idx.tolist() == [1, 3]
    assert values.shape == (2, 2)
    np.testing.assert_allclose(_value(values), _value(bump(x)[idx]), rtol=0, atol=0)
    # without truncation every row is returned
    exact = BumpFcn(_t([0.0]), _t([1.0]), 1.0)
    idx, values = exact(x, small_output=True)
    assert idx.tolist() == [0, 1, 2, 3, 4] and values.shape == (5,)


def test_small_output_empty_support_is_empty():
    """The original returned a list and forced row 0 in; here the support only."""
    bump = BumpFcn(_t([0.0]), _t([1.0]), 1.0, support_p=0.01)
    idx, values = bump(_t([[10.0], [20.0]]), small_output=True)
    assert isinstance((idx, values), tuple)
    assert idx.shape == (0,) and values.shape == (0,)
    idx, values = bump(torch.zeros(0, 1, dtype=F64), small_output=True)
    assert idx.shape == (0,) and values.shape == (0,)


@pytest.mark.parametrize("cls", [BumpFcn, *SUMS])
def test_support_p_derived_at_use(cls):
    """κ is computed when used: setting support_p after construction takes effect."""
    if cls is BumpFcn:
        f = cls(_t([0.0]), _t([1.0]), 1.0)
    else:
        f = cls(_t([[0.0]]), _t([[1.0]]), _t([1.0]))
    x = _t([[2.2]])
    assert f(x).item() > 0
    f.support_p = 0.01
    assert f(x).item() == 0.0
    f.support_p = None
    assert f(x).item() > 0


# ---------------------------------------------------------------- gradients
def _gradcheck_inputs(seed=0, B=3, D=2, n=7, K=None):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, D, generator=gen, dtype=F64)
    c = 0.5 * torch.randn(B, D, generator=gen, dtype=F64)
    w = 0.7 + torch.rand(B, D, generator=gen, dtype=F64)
    m = torch.randn(B, generator=gen, dtype=F64) if K is None else torch.randn(B, K, generator=gen, dtype=F64)
    return [t.requires_grad_() for t in (x, c, w, m)]


@pytest.mark.parametrize("K", [None, 2])
def test_gradcheck_bump_fcn(K):
    x, c, w, m = _gradcheck_inputs(B=1, K=K)
    module = BumpFcn(c[0].detach(), w[0].detach(), m[0].detach())

    def f(x, c, w, m):
        return functional_call(module, {"c": c, "w": w, "m": m.reshape(-1)}, (x,))

    assert torch.autograd.gradcheck(
        f, (x, c[0].detach().requires_grad_(), w[0].detach().requires_grad_(), m[0].detach().requires_grad_())
    )


@pytest.mark.parametrize("K", [None, 2])
def test_gradcheck_sum_of_bump_fcns(K):
    x, c, w, m = _gradcheck_inputs(K=K)
    module = SumOfBumpFcns(c.detach(), w.detach(), m.detach())

    def f(x, c, w, m):
        return functional_call(module, {"c": c, "w": w, "m": m}, (x,))

    assert torch.autograd.gradcheck(f, (x, c, w, m))


def test_gradcheck_activations_with_support():
    """The custom backward, including the input gradient, away from the box edges."""
    x, c, w, _ = _gradcheck_inputs(seed=1, n=20)
    for kappa in (None, 1.5):
        assert torch.autograd.gradcheck(lambda x, c, w, k=kappa: _SumOfBumpsFunction.apply(x, c, w, k), (x, c, w))


@pytest.mark.parametrize("K", [None, 2])
def test_gradcheck_slow_sum_of_bump_fcns(K):
    x, c, w, m = _gradcheck_inputs(K=K)
    module = SlowSumOfBumpFcns(c.detach(), w.detach(), m.detach())
    B = c.shape[0]

    def f(x, c, w, m):
        params = {}
        for b in range(B):
            params[f"bump_fcns.{b}.c"] = c[b]
            params[f"bump_fcns.{b}.w"] = w[b]
            params[f"bump_fcns.{b}.m"] = m[b].reshape(-1)
        return functional_call(module, params, (x,))

    assert torch.autograd.gradcheck(f, (x, c, w, m))


def test_analytic_center_and_width_derivatives():
    """∂φ/∂c = φ·2(x−c)/w², ∂φ/∂w = φ·2(x−c)²/w³ (spec §2), one dimension at a time."""
    f = SumOfBumpFcns(_t([[0.3, -0.2]]), _t([[0.8, 1.5]]), _t([1.0]))
    x = _t([[1.1, 0.4]])
    f(x).sum().backward()
    phi = math.exp(-(((1.1 - 0.3) / 0.8) ** 2 + ((0.4 + 0.2) / 1.5) ** 2))
    np.testing.assert_allclose(_value(f.c.grad[0]), [phi * 2 * 0.8 / 0.8**2, phi * 2 * 0.6 / 1.5**2], rtol=1e-12)
    np.testing.assert_allclose(_value(f.w.grad[0]), [phi * 2 * 0.8**2 / 0.8**3, phi * 2 * 0.6**2 / 1.5**3], rtol=1e-12)


def test_float32_differences_do_not_cancel():
    """x − c formed directly: far from the origin a narrow bump is still exact in float32."""
    f = SumOfBumpFcns(torch.tensor([[1000.0]]), torch.tensor([[0.01]]), torch.tensor([1.0]))
    x = torch.tensor([[1000.0], [1000.0 + 0.0078125]])
    np.testing.assert_allclose(_value(f(x)), [1.0, math.exp(-(0.78125**2))], rtol=1e-6)


# ------------------------------------------------------------------- bounds
def test_one_bounds_tensor_clamps_identically_in_all_three():
    bounds = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    c = torch.tensor([5.0, -5.0, 0.5])
    w = torch.tensor([5.0, 1e-6, 0.5])
    w_bounds = torch.tensor([[0.1, 0.1, 0.1], [1.0, 1.0, 1.0]])
    modules = [
        BumpFcn(c, w, 1.0, c_bounds=bounds, w_bounds=w_bounds),
        SumOfBumpFcns(c[None], w[None], torch.tensor([1.0]), c_bounds=bounds, w_bounds=w_bounds),
        SlowSumOfBumpFcns(c[None], w[None], torch.tensor([1.0]), c_bounds=bounds, w_bounds=w_bounds),
    ]
    for module in modules:
        module.bound()
        assert module.c.reshape(-1).tolist() == [1.0, 0.0, 0.5]
        np.testing.assert_allclose(_value(module.w.reshape(-1)), [1.0, 0.1, 0.5], rtol=1e-7)
    assert c.tolist() == [5.0, -5.0, 0.5]  # the caller's tensors are untouched


@pytest.mark.parametrize("cls", SUMS)
def test_bound_applies_to_every_bump_and_allows_inf(cls):
    bounds = torch.tensor([[-math.inf, 0.0], [0.0, math.inf]])
    f = cls(torch.tensor([[1.0, -1.0], [-3.0, 4.0]]), torch.ones(2, 2), torch.ones(2), c_bounds=bounds)
    f.bound()
    assert f.c.tolist() == [[0.0, 0.0], [-3.0, 4.0]]


@pytest.mark.parametrize("cls", SUMS)
def test_bounds_are_optional(cls):
    """The original slow module raised AttributeError with c_bounds=None."""
    f = cls(torch.zeros(2, 1), torch.ones(2, 1), torch.ones(2))
    f.bound()
    assert f.c_bounds is None and f.w_bounds is None


def test_bounds_are_buffers():
    f = SumOfBumpFcns(
        torch.zeros(2, 1), torch.ones(2, 1), torch.ones(2), c_bounds=[[0.0], [1.0]], w_bounds=[[0.5], [2.0]]
    )
    buffers = dict(f.named_buffers())
    assert buffers["c_bounds"].shape == (2, 1) and buffers["w_bounds"].shape == (2, 1)
    assert set(dict(f.named_parameters())) == {"c", "w", "m"}
    f64 = f.to(F64)
    assert f64.c_bounds.dtype == F64


# ------------------------------------------------------------ dtype, copies
@pytest.mark.parametrize("cls", [BumpFcn, *SUMS])
def test_float64_forward_and_backward(cls):
    """The original BumpFcn/slow forward raised RuntimeError in float64."""
    if cls is BumpFcn:
        f = cls(_t([0.0, 0.0]), _t([1.0, 1.0]), 2.0, support_p=0.01)
    else:
        f = cls(_t([[0.0, 0.0]]), _t([[1.0, 1.0]]), _t([2.0]), support_p=0.01)
    x = torch.tensor([[0.1, 0.2], [9.0, 9.0]], dtype=torch.float32)  # cast to the parameters' dtype
    out = f(x)
    assert out.dtype == F64 and f.m.dtype == F64
    out.sum().backward()
    for p in f.parameters():
        assert p.grad is not None and p.grad.dtype == F64


@pytest.mark.parametrize("cls", [BumpFcn, *SUMS])
def test_inputs_are_copied_and_never_modified(cls):
    single = cls is BumpFcn
    c = torch.tensor([3.0, -3.0]) if single else torch.tensor([[3.0, -3.0]])
    w = torch.tensor([0.5, 0.5]) if single else torch.tensor([[0.5, 0.5]])
    m = torch.tensor(2.0) if single else torch.tensor([2.0])
    bounds = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    originals = [t.clone() for t in (c, w, m, bounds)]
    f = cls(c, w, m, c_bounds=bounds, w_bounds=bounds + 0.1, c_grad_std=1.0, m_grad_gain=1.0)
    params = list(f.parameters())
    assert not any(p.data_ptr() == t.data_ptr() for p in params for t in (c, w, m))
    optimizer = torch.optim.SGD(params, lr=0.1)
    x = torch.tensor([[0.5, 0.5]])
    x_before = x.clone()
    f(x).sum().backward()
    f.pert_grads(torch.Generator().manual_seed(0))
    optimizer.step()
    f.bound()
    for t, original in zip((c, w, m, bounds), originals):
        assert torch.equal(t, original)
    assert torch.equal(x, x_before)


@pytest.mark.parametrize("cls", [BumpFcn, *SUMS])
def test_empty_input_gives_empty_output(cls):
    """The original BumpFcn raised IndexError on zero rows."""
    single = cls is BumpFcn
    f = cls(
        torch.zeros(2) if single else torch.zeros(3, 2),
        torch.ones(2) if single else torch.ones(3, 2),
        1.0 if single else torch.ones(3),
        support_p=0.01,
    )
    assert f(torch.zeros(0, 2)).shape == (0,)
    g = cls(
        torch.zeros(2) if single else torch.zeros(3, 2),
        torch.ones(2) if single else torch.ones(3, 2),
        torch.ones(2) if single else torch.ones(3, 2),
    )
    assert g(torch.zeros(0, 2)).shape == (0, 2)


@pytest.mark.parametrize("cls", [BumpFcn, *SUMS])
@pytest.mark.parametrize("support_p", [None, 0.01])
def test_negative_width_gives_the_output_of_its_absolute_value(cls, support_p):
    """The original inverted the support box for w < 0 (output 0 even at the center)."""
    single = cls is BumpFcn
    f = cls(
        torch.zeros(1) if single else torch.zeros(1, 1),
        torch.ones(1) if single else torch.ones(1, 1),
        1.0 if single else torch.ones(1),
        support_p=support_p,
    )
    x = torch.linspace(-3, 3, 61)[:, None]
    positive = f(x).detach().clone()
    widths = [f.w] if not isinstance(f, SlowSumOfBumpFcns) else [b.w for b in f.bump_fcns]
    for w in widths:
        w.data.neg_()
    assert float(f.w.detach().reshape(-1)[0]) == -1.0
    negative = f(x).detach()
    assert negative[30].item() == 1.0
    assert torch.equal(positive, negative)


def test_module_properties_and_repr():
    f = SumOfBumpFcns(torch.zeros(4, 3), torch.ones(4, 3), torch.ones(4, 2), support_p=0.1)
    assert (f.n_bumps, f.n_dims, f.n_outputs) == (4, 3, 2)
    assert "n_bumps=4" in repr(f) and "n_dims=3" in repr(f) and "support_p=0.1" in repr(f)
    s = f.to_slow()
    assert isinstance(s, SlowSumOfBumpFcns) and (s.n_bumps, s.n_dims, s.n_outputs) == (4, 3, 2)
    assert isinstance(s.to_fast(), SumOfBumpFcns)
    b = BumpFcn(torch.zeros(3), torch.ones(3), 1.0)
    assert (b.n_bumps, b.n_dims, b.n_outputs) == (1, 3, 1)
    assert all(isinstance(m, WanderingModule) for m in (f, s, b))


@pytest.mark.parametrize("support_p", [None, 0.05])
def test_conversions_preserve_the_function(support_p):
    gen = torch.Generator().manual_seed(3)
    c, w, m = (
        torch.randn(5, 2, generator=gen, dtype=F64),
        0.5 + torch.rand(5, 2, generator=gen, dtype=F64),
        torch.randn(5, 2, generator=gen, dtype=F64),
    )
    fast = SumOfBumpFcns(c, w, m, c_bounds=[[-1.0, -1.0], [1.0, 1.0]], c_grad_std=0.3, support_p=support_p)
    slow = fast.to_slow()
    assert slow.c_grad_std == 0.3 and slow.support_p == support_p and torch.equal(slow.c_bounds, fast.c_bounds)
    x = torch.randn(200, 2, generator=gen, dtype=F64)
    np.testing.assert_allclose(_value(slow(x)), _value(fast(x)), rtol=0, atol=1e-13)
    np.testing.assert_allclose(_value(slow.to_fast()(x)), _value(fast(x)), rtol=0, atol=1e-13)


def test_bump_activations_and_intercept_container():
    f = _two_bumps(SumOfBumpFcns)
    x = _t([[1.0, 2.0]])
    phi = f.bump_activations(x)
    np.testing.assert_allclose(_value(phi), [[math.exp(-2), math.exp(-4)]], rtol=1e-12)
    np.testing.assert_allclose(_value(_two_bumps(SlowSumOfBumpFcns).bump_activations(x)), _value(phi), rtol=1e-12)
    wrapped = BumpSumWithIntercept(f, [0.5])
    np.testing.assert_allclose(wrapped(x).item(), f(x).item() + 0.5, rtol=1e-12)
    fixed = BumpSumWithIntercept(f, [0.5], fit_intercept=False)
    assert "intercept" in dict(fixed.named_buffers())


# --------------------------------------------------------------- validation
def _sum(**kwargs):
    args = {"c": torch.zeros(2, 2), "w": torch.ones(2, 2), "m": torch.ones(2)}
    args.update(kwargs)
    return SumOfBumpFcns(**args)


@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"c": torch.zeros(2)}, "c"),
        ({"w": torch.ones(2, 3)}, "w"),
        ({"m": torch.ones(3)}, "m"),
        ({"m": torch.ones(2, 2, 2)}, "m"),
        ({"c": torch.tensor([[0.0, math.nan], [0.0, 0.0]])}, "c"),
        ({"w": torch.tensor([[1.0, math.inf], [1.0, 1.0]])}, "w"),
        ({"m": torch.tensor([1.0, math.nan])}, "m"),
        ({"w": torch.tensor([[1.0, 0.0], [1.0, 1.0]])}, "w"),
        ({"w": torch.tensor([[1.0, -1.0], [1.0, 1.0]])}, "w"),
        ({"c_bounds": torch.zeros(2, 3)}, "c_bounds"),
        ({"c_bounds": torch.tensor([[1.0, 0.0], [0.0, 1.0]])}, "c_bounds"),
        ({"w_bounds": torch.tensor([[2.0, 0.1], [1.0, 1.0]])}, "w_bounds"),
        ({"w_bounds": torch.tensor([[0.0, 0.1], [1.0, 1.0]])}, "w_bounds"),
        ({"c_grad_std": -1.0}, "c_grad_std"),
        ({"w_grad_std": -0.1}, "w_grad_std"),
        ({"m_grad_gain": math.nan}, "m_grad_gain"),
    ],
)
@pytest.mark.parametrize("cls", SUMS)
def test_constructor_errors_name_the_argument(cls, kwargs, name):
    args = {"c": torch.zeros(2, 2), "w": torch.ones(2, 2), "m": torch.ones(2)}
    args.update(kwargs)
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        cls(**args)


@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"c": torch.zeros(2, 2)}, "c"),
        ({"w": torch.ones(3)}, "w"),
        ({"m": torch.ones(2, 2)}, "m"),
        ({"w": torch.tensor([0.0, 1.0])}, "w"),
        ({"c_bounds": torch.zeros(2, 3)}, "c_bounds"),
        ({"w_bounds": torch.tensor([[-1.0, 0.1], [1.0, 1.0]])}, "w_bounds"),
    ],
)
def test_bump_fcn_constructor_errors(kwargs, name):
    args = {"c": torch.zeros(2), "w": torch.ones(2), "m": 1.0}
    args.update(kwargs)
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        BumpFcn(**args)


@pytest.mark.parametrize("p", [0, 0.0, 1, 1.0, 1.5, -0.1, math.nan])
@pytest.mark.parametrize("cls", [BumpFcn, *SUMS])
def test_support_p_outside_open_unit_interval_is_rejected(cls, p):
    """The original: 0 gave a divide warning, 1 / >1 / <0 a silent all-zero output."""
    single = cls is BumpFcn
    with pytest.raises(ValueError, match="support_p"):
        cls(
            torch.zeros(1) if single else torch.zeros(1, 1),
            torch.ones(1) if single else torch.ones(1, 1),
            1.0 if single else torch.ones(1),
            support_p=p,
        )


@pytest.mark.parametrize("cls", [BumpFcn, *SUMS])
def test_forward_rejects_wrong_width(cls):
    single = cls is BumpFcn
    f = cls(
        torch.zeros(2) if single else torch.zeros(1, 2),
        torch.ones(2) if single else torch.ones(1, 2),
        1.0 if single else torch.ones(1),
    )
    with pytest.raises(ValueError, match=r"\bx\b"):
        f(torch.zeros(4, 3))


def test_one_dimensional_input_for_one_dimensional_bumps():
    f = _sum(c=torch.zeros(2, 1), w=torch.ones(2, 1))
    np.testing.assert_allclose(_value(f(torch.tensor([0.0, 1.0]))), [2.0, 2 * math.exp(-1)], rtol=1e-6)

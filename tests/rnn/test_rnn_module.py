"""LeakyRNN: the update equation by hand, masks and signs, noise, and the hand-written BPTT."""

import math

import numpy as np
import pytest
import torch

from skneuro.rnn._modules import LeakyRNN, _activate, _LeakyRecurrence

F64 = torch.float64


def _net(**kw):
    return LeakyRNN(1, 2, 1, dt=10.0, tau=100.0, dtype=F64, **kw)


def test_one_step_by_hand():
    net = _net()
    with torch.no_grad():
        net.W_rec.copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
        net.W_in.copy_(torch.tensor([[1.0], [0.0]]))
        net.W_out.copy_(torch.tensor([[1.0, -1.0]]))
        net.b_out.fill_(0.5)
        net.init_state.copy_(torch.tensor([1.0, 2.0]))
    with torch.no_grad():
        y, x, r = net(torch.ones(1, 1, 1, dtype=F64))
    # x_1 = 0.9 [1, 2] + 0.1 ([2, 1] + [1, 0]) = [1.2, 1.9]; y_0 = W_out relu(x_1) + 0.5 = -0.2
    np.testing.assert_allclose(x[0, 0].numpy(), [1.2, 1.9], rtol=1e-12)
    np.testing.assert_allclose(y.item(), -0.2, rtol=1e-12)
    np.testing.assert_allclose(r.numpy(), x.numpy())


def test_zero_weights_decay_geometrically():
    net = _net(weights={"W_rec": np.zeros((2, 2)), "W_in": np.zeros((2, 1)), "init_state": [1.0, 2.0]})
    with torch.no_grad():
        _, x, _ = net(torch.zeros(1, 30, 1, dtype=F64))
    np.testing.assert_allclose(x[0, -1].numpy(), 0.9**30 * np.array([1.0, 2.0]), rtol=1e-12)


def test_recurrent_noise_has_the_stationary_variance():
    net = LeakyRNN(1, 1, 1, dt=10.0, tau=100.0, rec_noise=0.1, dtype=F64, weights={"W_rec": [[0.0]]})
    gen = torch.Generator().manual_seed(0)
    _, x, _ = net(torch.zeros(20000, 200, 1, dtype=F64), noise=True, generator=gen)
    expected = 2 * 0.1**2 / (2 - 0.1)  # 0.010526
    assert abs(x[:, -1, 0].var().item() - expected) < 0.03 * expected


def test_noise_is_reproducible_and_leaves_the_global_rng_alone():
    net = LeakyRNN(1, 3, 1, rec_noise=0.1, input_noise=0.1)
    state = torch.get_rng_state()
    a = net(torch.zeros(2, 5, 1), noise=True, generator=torch.Generator().manual_seed(3))[1]
    b = net(torch.zeros(2, 5, 1), noise=True, generator=torch.Generator().manual_seed(3))[1]
    assert torch.equal(a, b) and torch.equal(torch.get_rng_state(), state)


def test_dale_effective_weights_by_hand():
    net = LeakyRNN(1, 2, 1, rec_signs=[1.0, -1.0], input_signs=[1.0], output_signs=[1.0, 0.0], dtype=F64)
    with torch.no_grad():
        net.W_rec.copy_(torch.tensor([[-1.0, 2.0], [3.0, -4.0]]))
        net.W_out.copy_(torch.tensor([[-0.5, 0.7]]))
        net.W_in.copy_(torch.tensor([[-2.0], [3.0]]))
    W_in, W_rec, W_out = net.effective_weights()
    np.testing.assert_array_equal(W_rec.detach().numpy(), [[1.0, -2.0], [3.0, -4.0]])
    np.testing.assert_array_equal(W_out.detach().numpy(), [[0.5, 0.0]])
    np.testing.assert_array_equal(W_in.detach().numpy(), [[2.0], [3.0]])


def test_nan_signs_leave_a_source_unconstrained_and_masks_apply():
    net = LeakyRNN(1, 2, 1, rec_signs=[1.0, float("nan")], rec_mask=[[0.0, 1.0], [1.0, 1.0]], dtype=F64)
    with torch.no_grad():
        net.W_rec.copy_(torch.tensor([[-1.0, -2.0], [-3.0, -4.0]]))
    _, W_rec, _ = net.effective_weights()
    np.testing.assert_array_equal(W_rec.detach().numpy(), [[0.0, -2.0], [3.0, -4.0]])


def test_bias_gate_blocks_the_gradient_of_fixed_biases():
    net = LeakyRNN(1, 3, 1, dtype=F64)
    net.bias_trainable.copy_(torch.tensor([1.0, 0.0, 1.0]))
    with torch.no_grad():
        net.W_out.fill_(1.0)
        net.init_state.fill_(0.5)
    net(torch.ones(2, 4, 1, dtype=F64))[0].sum().backward()
    assert net.b_rec.grad[1] == 0 and net.b_rec.grad[0] != 0


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "softplus", "linear"])
def test_hand_written_bptt_passes_gradcheck(activation):
    torch.manual_seed(0)
    D = torch.randn(3, 6, 4, dtype=F64, requires_grad=True)
    x0 = torch.randn(4, dtype=F64, requires_grad=True)
    A = (0.3 * torch.randn(4, 4, dtype=F64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda D, x0, A: _LeakyRecurrence.apply(D, x0, A, 0.9, activation), (D, x0, A))
    x0b = torch.randn(3, 4, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda D, x0, A: _LeakyRecurrence.apply(D, x0, A, 0.9, activation), (D, x0b, A))


def test_module_gradients_equal_autograd_through_a_python_loop():
    torch.manual_seed(1)
    net = LeakyRNN(2, 5, 3, activation="tanh", train_init_state=True, dtype=F64)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.4)
    u = torch.randn(4, 9, 2, dtype=F64)
    net(u)[0].pow(2).sum().backward()
    fast = {k: p.grad.clone() for k, p in net.named_parameters()}
    net.zero_grad()
    # the same model through the per-step autograd loop (a per-step multiplier of ones)
    net(u, rec_multiplier=torch.ones(9, 5, 5, dtype=F64))[0].pow(2).sum().backward()
    for k, p in net.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), fast[k].numpy(), rtol=1e-10, atol=1e-12)


def test_any_batch_and_length_and_prefix_consistency():
    net = LeakyRNN(2, 6, 1)
    with torch.no_grad():
        net.W_rec.normal_(0, 0.3, generator=torch.Generator().manual_seed(0))
        net.W_in.fill_(0.5)
        net.W_out.fill_(0.2)
    u = torch.randn(3, 40, 2, generator=torch.Generator().manual_seed(1))
    full = net(u)[0]
    assert torch.allclose(net(u[:, :10])[0], full[:, :10])
    assert net(u[:1, :1])[0].shape == (1, 1, 1)


def test_stim_and_constant_multiplier():
    net = _net()
    with torch.no_grad():
        net.W_rec.fill_(1.0)
        net.init_state.fill_(1.0)
    u = torch.zeros(1, 1, 1, dtype=F64)
    with torch.no_grad():
        x_stim = net(u, stim=torch.ones(1, 1, 2, dtype=F64))[1]
        x_half = net(u, rec_multiplier=torch.full((2, 2), 0.5, dtype=F64))[1]
    np.testing.assert_allclose(x_stim[0, 0].numpy(), 0.9 + 0.1 * 2 + 0.1)
    np.testing.assert_allclose(x_half[0, 0].numpy(), 0.9 + 0.1 * 1.0)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"activation": "elu"}, "activation"),
        ({"dt": 200.0}, "dt/tau"),
        ({"rec_mask": np.ones((3, 3))}, "rec_mask"),
        ({"rec_mask": -np.ones((2, 2))}, "rec_mask"),
        ({"rec_signs": [1.0, 2.0]}, "rec_signs"),
        ({"rec_noise": -1.0}, "rec_noise"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        LeakyRNN(1, 2, 1, **kwargs)


def test_wrong_input_shape_names_u():
    with pytest.raises(ValueError, match="u must have shape"):
        LeakyRNN(2, 3, 1)(torch.zeros(4, 2))


def test_activation_helper_values():
    x = torch.tensor([-1.0, 0.0, 2.0])
    assert _activate("relu", x).tolist() == [0.0, 0.0, 2.0]
    assert math.isclose(_activate("softplus", torch.tensor(0.0)).item(), math.log(2), rel_tol=1e-6)


def test_modules_own_reset_parameters_defaults_and_given_weights():
    """Defaults as torch.nn.RNN (uniform ±1/√fan_in from a local generator, zero biases); given values copied."""
    torch.manual_seed(0)
    global_state = torch.get_rng_state().clone()
    a, b = LeakyRNN(2, 4, 3, dtype=F64), LeakyRNN(2, 4, 3, dtype=F64)
    assert torch.equal(torch.get_rng_state(), global_state)  # the global RNG is not used
    for name in ("W_in", "W_rec", "W_out"):
        assert torch.equal(getattr(a, name), getattr(b, name))  # same local default stream
    assert float(a.W_in.detach().abs().max()) <= 2**-0.5 and float(a.W_rec.detach().abs().max()) <= 0.5
    assert float(a.W_rec.detach().abs().max()) > 0.25  # actually drawn, not zero
    assert torch.count_nonzero(a.b_rec) == torch.count_nonzero(a.b_out) == torch.count_nonzero(a.init_state) == 0
    c = LeakyRNN(2, 4, 3, dtype=F64, generator=torch.Generator().manual_seed(5))
    assert not torch.equal(a.W_rec, c.W_rec)
    c.reset_parameters({"b_out": [1.0, 2.0, 3.0], "bias_trainable": [0.0, 1.0, 1.0, 0.0]})
    assert c.b_out.tolist() == [1.0, 2.0, 3.0] and c.bias_trainable.tolist() == [0.0, 1.0, 1.0, 0.0]
    assert torch.equal(c.W_rec, a.W_rec)  # unnamed weights back to the defaults (generator seeded 0)
    with pytest.raises(ValueError, match="unknown names"):
        c.reset_parameters({"W_hid": [0.0]})
    with pytest.raises(ValueError, match=r"weights\['b_out'\] must have"):
        c.reset_parameters({"b_out": [1.0]})

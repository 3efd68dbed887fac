"""Modules of the latent regression: hand-computed values, parameter sharing, subject keys (spec §2-§5)."""

import copy
import math
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from skneuro.bumps import SumOfBumpFcns
from skneuro.latent_regression import (
    IdentityMapping,
    LinearMapping,
    ModePredictorMLP,
    MultiSubjectLatentRegModule,
    SubjectModel,
)
from skneuro.latent_regression._modules import _softplus_inverse, subject_key

F64 = torch.float64


def _t(value):
    return torch.tensor(value, dtype=F64)


def _set(parameter, value):
    with torch.no_grad():
        parameter.copy_(torch.as_tensor(value, dtype=F64))


def _subject_model(n_inputs=(2,), n_outputs=(2,), n_components=1, subject_params=("scales", "offsets"), **kwargs):
    return SubjectModel(n_inputs, n_outputs, n_components, subject_params, dtype=F64, **kwargs)


# ------------------------------------------------------------------ forward values (spec §5)
def test_forward_hand_computed():
    s = _subject_model()
    x, P, U = [_t([[1.0, 2.0]])], [_t([[1.0], [1.0]])], [_t([[2.0], [3.0]])]
    np.testing.assert_array_equal(s(x, P, U, IdentityMapping())[0].detach().numpy(), [[6.0, 9.0]])
    _set(s.scales[0], [1.0, 0.5])
    _set(s.offsets[0], [1.0, 1.0])
    np.testing.assert_array_equal(s(x, P, U, IdentityMapping())[0].detach().numpy(), [[7.0, 5.5]])


def test_forward_through_the_shared_module_with_fixed_modes():
    net = MultiSubjectLatentRegModule([None], [None], IdentityMapping(), 1)
    net.add_subject("m1", _subject_model(input_modes=[_t([[1.0], [1.0]])], output_modes=[_t([[2.0], [3.0]])]))
    means = net("m1", [_t([[1.0, 2.0]])], [None], [None])
    np.testing.assert_array_equal(means[0].detach().numpy(), [[6.0, 9.0]])
    P, U = net.modes("m1", [None], [None])
    np.testing.assert_array_equal(P[0].numpy(), [[1.0], [1.0]])
    np.testing.assert_array_equal(U[0].numpy(), [[2.0], [3.0]])
    # fixed modes are buffers: in the state_dict, never trained
    assert "subjects.s_m1.input_modes_0" in net.state_dict()
    assert all("modes" not in name for name, _ in net.named_parameters())


def test_linear_mapping_with_unit_weights_sums_group_latents():
    mapping = LinearMapping(2, 1, 1, dtype=F64)
    np.testing.assert_array_equal(mapping.weight.detach().numpy(), [[1.0], [1.0]])
    s = _subject_model(n_inputs=(2, 1))
    x = [_t([[1.0, 2.0]]), _t([[3.0]])]
    P = [_t([[1.0], [1.0]]), _t([[2.0]])]  # latents 3 and 6
    U = [_t([[2.0], [3.0]])]
    np.testing.assert_array_equal(s(x, P, U, mapping)[0].detach().numpy(), [[18.0, 27.0]])


def test_linear_mapping_default_sums_latents_per_component():
    g = torch.Generator().manual_seed(0)
    latents = [torch.randn(5, 3, generator=g, dtype=F64) for _ in range(2)]
    out = LinearMapping(2, 2, 3, dtype=F64)(latents)
    assert len(out) == 2
    for t in out:
        torch.testing.assert_close(t, latents[0] + latents[1], rtol=0, atol=1e-15)
    mapping = LinearMapping(2, 1, 3, dtype=F64)
    _set(mapping.weight, torch.randn(6, 3, generator=g, dtype=F64))
    torch.testing.assert_close(mapping(latents)[0], torch.cat(latents, 1) @ mapping.weight)
    with pytest.raises(ValueError, match="mapping expects 2 input groups; got 1"):
        mapping(latents[:1])


def test_identity_mapping_with_unequal_group_counts_raises_naming_mapping():
    s = _subject_model(n_inputs=(2, 2), n_outputs=(2,))
    x, P, U = [_t([[1.0, 2.0]])] * 2, [_t([[1.0], [1.0]])] * 2, [_t([[2.0], [3.0]])]
    with pytest.raises(ValueError, match="mapping returned 2 groups; the subject has 1 output groups"):
        s(x, P, U, IdentityMapping())


# ------------------------------------------------------------------ likelihood
def test_negative_log_likelihood_value():
    min_var = 1e-3
    s = _subject_model(n_inputs=(1,), n_outputs=(1,), var_floor=min_var)
    _set(s.rho[0], [_softplus_inverse(1.0 - min_var)])
    torch.testing.assert_close(s.psi(0), _t([1.0]), rtol=0, atol=1e-15)
    nll = s.neg_log_likelihood([_t([[1.0], [-1.0]])], [torch.zeros(2, 1, dtype=F64)])
    assert nll.shape == (2,)
    expected = 0.5 * math.log(2 * math.pi) + 0.5
    np.testing.assert_allclose(nll.detach().numpy(), [expected, expected], rtol=1e-14)
    assert round(nll.mean().item(), 7) == 1.4189385


def test_negative_log_likelihood_sums_groups_and_neurons():
    s = _subject_model(n_inputs=(1,), n_outputs=(2, 1), var_floor=0.5)
    _set(s.rho[0], [0.0, 1.0])
    _set(s.rho[1], [-2.0])
    y = [_t([[1.0, 2.0]]), _t([[3.0]])]
    means = [_t([[0.0, 1.0]]), _t([[1.0]])]
    psi = 0.5 + np.log1p(np.exp([0.0, 1.0, -2.0]))
    resid = np.array([1.0, 1.0, 2.0])
    expected = (0.5 * np.log(2 * np.pi * psi) + resid**2 / (2 * psi)).sum()
    np.testing.assert_allclose(s.neg_log_likelihood(y, means).item(), expected, rtol=1e-14)


def test_psi_never_below_min_var():
    s = _subject_model(var_floor=1e-3)
    _set(s.rho[0], [-1e4, 0.0])
    psi = s.psi(0).detach().numpy()
    assert np.all(psi >= 1e-3) and psi[0] == 1e-3
    np.testing.assert_allclose(psi[1], 1e-3 + math.log(2.0), rtol=1e-15)


def test_per_neuron_floors_are_buffers_that_move_with_the_module():
    s = _subject_model(var_floor=1e-3)
    s.set_var_floor(0, [0.25, 2.0])
    _set(s.rho[0], [-1e4, 0.0])
    np.testing.assert_allclose(s.psi(0).detach().numpy(), [0.25, 2.0 + math.log(2.0)], rtol=1e-15)
    assert "var_floor_0" in s.state_dict() and "var_floor_0" not in dict(s.named_parameters())


# ------------------------------------------------------------------ subject parameters
def test_direct_pairs_two_pairs_one_output_group():
    """The original sized the direct maps by output groups: IndexError with 2 pairs and 1 group."""
    s = _subject_model(n_inputs=(2, 2), n_outputs=(2,), direct_pairs=[(0, 0), (1, 0)])
    assert len(s.direct) == 2 and all(d.requires_grad for d in s.direct)
    _set(s.direct[0], [1.0, 2.0])
    _set(s.direct[1], [-1.0, 0.5])
    x = [_t([[1.0, 2.0]]), _t([[3.0, 4.0]])]
    P = [_t([[1.0], [1.0]]), _t([[0.0], [0.0]])]
    U = [_t([[2.0], [3.0]])]
    mapping = LinearMapping(2, 1, 1, dtype=F64)
    # latent 3 -> [[6, 9]]; direct: [1, 4] + [-3, 2]
    np.testing.assert_array_equal(s(x, P, U, mapping)[0].detach().numpy(), [[4.0, 15.0]])


@pytest.mark.parametrize(
    "pairs,message",
    [([(2, 0)], r"direct_pairs entry \(2, 0\) names a group"), ([(0, 0)], "of equal size")],
)
def test_direct_pairs_invalid(pairs, message):
    with pytest.raises(ValueError, match=message):
        _subject_model(n_inputs=(3,), n_outputs=(2,), direct_pairs=pairs)


def test_latent_affine_uses_absolute_scale():
    s = _subject_model(subject_params=("latent_affine",))
    x, P, U = [_t([[1.0, 2.0]])], [_t([[1.0], [1.0]])], [_t([[2.0], [3.0]])]
    _set(s.latent_offsets[0], [0.5])
    out = {}
    for a in (-2.0, 2.0):
        _set(s.latent_scales[0], [a])
        out[a] = s(x, P, U, IdentityMapping())[0].detach().numpy()
    np.testing.assert_array_equal(out[-2.0], [[13.0, 19.5]])  # (3·|−2| + 0.5)·[2, 3]
    np.testing.assert_array_equal(out[-2.0], out[2.0])


@pytest.mark.parametrize(
    "subject_params", [(), ("scales",), ("offsets",), ("scales", "offsets"), ("scales", "offsets", "latent_affine")]
)
def test_fixed_subject_parameters_do_not_require_grad(subject_params):
    s = _subject_model(n_inputs=(2, 3), n_outputs=(2, 4), n_components=2, subject_params=subject_params)
    learned = {
        "scales": "scales" in subject_params,
        "offsets": "offsets" in subject_params,
        "latent_scales": "latent_affine" in subject_params,
        "latent_offsets": "latent_affine" in subject_params,
        "rho": True,
    }
    for name, requires_grad in learned.items():
        plist = getattr(s, name)
        assert len(plist) == 2
        assert all(p.requires_grad is requires_grad for p in plist), name
    for p in s.scales:
        np.testing.assert_array_equal(p.detach().numpy(), 1.0)
    for p in (*s.offsets, *s.latent_offsets):
        np.testing.assert_array_equal(p.detach().numpy(), 0.0)
    for p in s.latent_scales:
        np.testing.assert_array_equal(p.detach().numpy(), 1.0)


def test_fixed_mode_shape_checked():
    with pytest.raises(ValueError, match=r"output_modes\[0\] must have shape \(2, n_components=1\)"):
        _subject_model(output_modes=[torch.ones(2, 2, dtype=F64)])


def test_empty_data_gives_empty_means():
    s = _subject_model()
    means = s([torch.zeros(0, 2, dtype=F64)], [_t([[1.0], [1.0]])], [_t([[2.0], [3.0]])], IdentityMapping())
    assert means[0].shape == (0, 2)
    assert s.neg_log_likelihood([torch.zeros(0, 2, dtype=F64)], means).shape == (0,)


# ------------------------------------------------------------------ predictors
def test_mode_predictors_map_properties_to_modes():
    torch.manual_seed(0)
    mlp = ModePredictorMLP(3, 2, hidden_layer_sizes=(8, 4), dtype=F64)
    assert mlp(torch.zeros(5, 3, dtype=F64)).shape == (5, 2)
    assert sum(isinstance(layer, nn.Tanh) for layer in mlp.net) == 2
    assert [layer.out_features for layer in mlp.net if isinstance(layer, nn.Linear)] == [8, 4, 2]
    bumps = SumOfBumpFcns(torch.rand(6, 3, dtype=F64), torch.ones(6, 3, dtype=F64), torch.ones(6, 2, dtype=F64))
    assert bumps(torch.rand(5, 3, dtype=F64)).shape == (5, 2)


# ------------------------------------------------------------------ sharing (spec §4, first bullet)
def _shared_net():
    g = torch.Generator().manual_seed(0)

    def bumps():
        return SumOfBumpFcns(
            torch.rand(5, 3, generator=g, dtype=F64),
            0.3 + torch.rand(5, 3, generator=g, dtype=F64),
            torch.randn(5, 2, generator=g, dtype=F64),
        )

    net = MultiSubjectLatentRegModule([bumps()], [bumps()], LinearMapping(1, 1, 2, dtype=F64), 2)
    data = {}
    for i, (d, e) in enumerate([(4, 6), (5, 3), (3, 7)]):
        net.add_subject(f"m{i}", _subject_model(n_inputs=(d,), n_outputs=(e,), n_components=2))
        data[f"m{i}"] = (
            [torch.randn(8, d, generator=g, dtype=F64)],
            [torch.rand(d, 3, generator=g, dtype=F64)],
            [torch.rand(e, 3, generator=g, dtype=F64)],
        )
    return net, data


def _predict(net, data):
    with torch.no_grad():
        return {key: net(key, *args)[0].clone() for key, args in data.items()}


def test_state_dict_holds_each_shared_parameter_once():
    net, _ = _shared_net()
    state = net.state_dict()
    shared = {name for name in state if not name.startswith("subjects.")}
    assert shared == {
        "input_predictors.0.c",
        "input_predictors.0.w",
        "input_predictors.0.m",
        "output_predictors.0.c",
        "output_predictors.0.w",
        "output_predictors.0.m",
        "mapping.weight",
        "p_mix_0",
        "u_mix_0",
    }
    for name in state:
        if name.startswith("subjects."):
            assert "predictors" not in name and "mapping" not in name
    params = list(net.parameters())
    assert len({id(p) for p in params}) == len(params) == len(dict(net.named_parameters()))


@pytest.mark.parametrize(
    "duplicate", [copy.deepcopy, lambda net: pickle.loads(pickle.dumps(net))], ids=["deepcopy", "pickle"]
)
def test_shared_parts_stay_shared_after_copying(duplicate):
    net, data = _shared_net()
    before = _predict(net, data)
    twin = duplicate(net)
    for key, value in _predict(twin, data).items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    for changed, original in (
        (twin.input_predictors[0].m, net.input_predictors[0].m),
        (twin.output_predictors[0].c, net.output_predictors[0].c),
        (twin.mapping.weight, net.mapping.weight),
    ):
        with torch.no_grad():
            changed.add_(0.1)
        after = _predict(twin, data)
        for key in data:  # every subject sees the change
            assert not torch.allclose(after[key], before[key])
        with torch.no_grad():
            original.add_(0.1)
        for key, value in _predict(net, data).items():  # and sees exactly the same change
            torch.testing.assert_close(after[key], value, rtol=0, atol=0)
        before = after


def test_mix_buffers_start_as_identity_and_rotate_predicted_modes():
    net, data = _shared_net()
    R, Q = data["m0"][1], data["m0"][2]
    P, U = net.modes("m0", R, Q)
    torch.testing.assert_close(P[0], net.input_predictors[0](R[0]), rtol=0, atol=0)
    A = _t([[0.0, 2.0], [1.0, 0.0]])
    net.u_mix_0.copy_(A)
    torch.testing.assert_close(net.modes("m0", R, Q)[1][0], U[0] @ A, rtol=0, atol=1e-15)


def test_group_without_predictor_or_fixed_modes_raises():
    net = MultiSubjectLatentRegModule([None], [ModePredictorMLP(3, 1, (4,), dtype=F64)], IdentityMapping(), 1)
    net.add_subject("m1", _subject_model())
    with pytest.raises(ValueError, match="input group 0 has neither fixed modes nor properties and a predictor"):
        net.modes("m1", [torch.zeros(2, 3, dtype=F64)], [torch.zeros(2, 3, dtype=F64)])


# ------------------------------------------------------------------ subject keys
@pytest.mark.parametrize(
    "subject_id,key",
    [
        ("m3", "m3"),
        (7, "7"),
        ("2024.01", "2024%2E01"),
        ("a%2Eb", "a%252Eb"),
        ("50%", "50%25"),
        ("", ""),
        ("%00", "%2500"),
    ],
)
def test_subject_key_escapes_dots_and_percent(subject_id, key):
    assert subject_key(subject_id) == "s_" + key
    net = MultiSubjectLatentRegModule([None], [None], IdentityMapping(), 1)
    model = _subject_model()
    net.add_subject(subject_id, model)
    assert net.subject(subject_id) is model


def test_subject_keys_of_distinct_string_ids_are_distinct():
    ids = ["a.b", "a%2Eb", "a%252Eb", "a%2eb", "", "%00", "%", "%25", ".", "%2E", "..", "a.b.c"]
    assert len({subject_key(i) for i in ids}) == len(ids)
    assert all("." not in subject_key(i) and subject_key(i) for i in ids)


@pytest.mark.parametrize("subject_id", ["train", "keys", "forward"])
def test_subject_ids_that_are_module_dict_attributes(subject_id):
    net = MultiSubjectLatentRegModule([None], [None], IdentityMapping(), 1)
    model = _subject_model()
    net.add_subject(subject_id, model)
    assert net.subject(subject_id) is model


def test_unknown_subject_params_and_short_group_lists_are_rejected():
    with pytest.raises(ValueError, match="subject_params"):
        SubjectModel([2], [2], 1, ("scale",))
    with pytest.raises(ValueError, match="input_modes"):
        SubjectModel([2, 2], [2], 1, input_modes=[None])
    model = SubjectModel([2], [2], 1)
    with pytest.raises(ValueError, match="output group"):
        model.neg_log_likelihood([], [])
    with pytest.raises(ValueError, match="output group"):
        model([torch.ones(1, 2)], [torch.ones(2, 1)], [], IdentityMapping())


def test_fixed_modes_take_the_model_dtype():
    model = SubjectModel([2], [2], 1, input_modes=[np.ones((2, 1))])
    assert model.fixed_modes("input", 0).dtype == torch.get_default_dtype()

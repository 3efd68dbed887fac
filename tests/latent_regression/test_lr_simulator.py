"""make_multi_subject_latent_regression: the ground truth of the recovery tests (spec §5, §6)."""

import ast
import inspect

import numpy as np
import pytest
import torch

from skneuro.bumps import SumOfBumpFcns
from skneuro.datasets import _latent_regression, make_multi_subject_latent_regression
from skneuro.latent_regression import SubjectData


def _bump_sum(properties, c, w, m):
    return np.exp(-(((properties[:, None, :] - c) / w) ** 2).sum(-1)) @ m


def test_defaults_are_the_recovery_configuration():
    """3 subjects, 60-80 neurons, 1,000 samples, K = 2, q = 3, zero offsets, unit scales (spec §5)."""
    X, y, params = make_multi_subject_latent_regression(random_state=0, return_params=True)
    assert len(X) == len(y) == 3
    assert [s.subject_id for s in X] == ["s0", "s1", "s2"]
    for i, (s, ys) in enumerate(zip(X, y)):
        assert isinstance(s, SubjectData) and s.n_input_groups == s.n_output_groups == 1
        (d,), (e,) = s.n_inputs, s.n_outputs
        assert 60 <= d <= 80 and 60 <= e <= 80 and s.n_samples == 1000 and s.n_properties == 3
        assert ys.shape == (1000, e) and ys.dtype == np.float64 and s.x.dtype == np.float64
        assert params["input_modes"][i].shape == (d, 2) and params["output_modes"][i].shape == (e, 2)
        np.testing.assert_array_equal(params["scales"][i], 1.0)
        np.testing.assert_array_equal(params["offsets"][i], 0.0)
        assert params["noise_variance"][i].shape == (e,) and np.all(
            (params["noise_variance"][i] >= 0.01) & (params["noise_variance"][i] <= 0.04)
        )
        for props in (s.input_properties, s.output_properties):
            assert props.min() >= 0.0 and props.max() <= 1.0
    assert set(params) == {
        "input_bumps",
        "output_bumps",
        "input_modes",
        "output_modes",
        "scales",
        "offsets",
        "noise_variance",
    }
    for side in ("input_bumps", "output_bumps"):
        assert params[side]["c"].shape == params[side]["w"].shape == (8, 3) and params[side]["m"].shape == (8, 2)
    # every subject draws its own neurons
    assert not np.array_equal(X[0].input_properties[:60], X[1].input_properties[:60])


def test_benchmark_configuration():
    """2 training subjects + 1 unseen, 300-400 inputs, 250-350 outputs, 5,000 samples (spec §6)."""
    X, y = make_multi_subject_latent_regression(3, 5000, n_inputs=(300, 400), n_outputs=(250, 350), random_state=1)
    for s, ys in zip(X, y):
        assert 300 <= s.n_inputs[0] <= 400 and 250 <= s.n_outputs[0] <= 350
        assert s.x.shape[0] == ys.shape[0] == 5000 and ys.shape[1] == s.n_outputs[0]
        assert 0.5 < ys.var() < 5.0  # outputs of order one whatever the number of inputs


def test_sample_counts_per_subject_and_zero_samples():
    X, y = make_multi_subject_latent_regression(3, (10, 25, 0), n_inputs=4, n_outputs=(2, 3), random_state=0)
    assert [s.n_samples for s in X] == [10, 25, 0] and [ys.shape[0] for ys in y] == [10, 25, 0]
    assert all(s.n_inputs == (4,) and 2 <= s.n_outputs[0] <= 3 for s in X)


def test_modes_are_the_stated_functions_of_properties():
    X, _, params = make_multi_subject_latent_regression(n_bumps=3, random_state=2, return_params=True)
    predictors = {  # float64 tensors: numpy arrays would be cast to torch's default dtype
        side: SumOfBumpFcns(**{k: torch.from_numpy(v) for k, v in params[f"{side}_bumps"].items()})
        for side in ("input", "output")
    }
    for i, s in enumerate(X):
        for side, props in (("input", s.input_properties), ("output", s.output_properties)):
            modes = params[f"{side}_modes"][i]
            np.testing.assert_allclose(modes, _bump_sum(props, **params[f"{side}_bumps"]), rtol=1e-12, atol=1e-15)
            with torch.no_grad():
                by_torch = predictors[side](torch.from_numpy(props)).numpy()
            np.testing.assert_allclose(modes, by_torch, rtol=1e-12, atol=1e-15)
    # one function per mode: bumps k·B ... (k+1)·B - 1 feed mode k only
    for side in ("input", "output"):
        m = params[f"{side}_bumps"]["m"]
        for k in range(2):
            rows = np.zeros(6, dtype=bool)
            rows[3 * k : 3 * k + 3] = True
            assert np.all(m[rows, k] != 0) and np.all(m[~rows, k] == 0)


def test_mode_functions_are_smooth_and_normalised():
    _, _, params = make_multi_subject_latent_regression(n_inputs=(60, 80), random_state=3, return_params=True)
    rng = np.random.default_rng(0)
    cube = rng.uniform(size=(200_000, 3))
    rms_in = np.sqrt((_bump_sum(cube, **params["input_bumps"]) ** 2).mean(0))
    rms_out = np.sqrt((_bump_sum(cube, **params["output_bumps"]) ** 2).mean(0))
    np.testing.assert_allclose(rms_in, 1 / np.sqrt(70), rtol=0.02)
    np.testing.assert_allclose(rms_out, 1.0, rtol=0.02)
    assert np.all((params["output_bumps"]["w"] >= 0.3) & (params["output_bumps"]["w"] <= 0.6))
    # smooth: a step of 1e-3 in properties changes the modes by at most the gradient bound Σ|m|·2/(w·√(2e))
    step = 1e-3 * rng.standard_normal(cube[:1000].shape)
    for side in ("input", "output"):
        bumps = params[f"{side}_bumps"]
        change = np.abs(_bump_sum(cube[:1000] + step, **bumps) - _bump_sum(cube[:1000], **bumps))
        bound = np.abs(bumps["m"]).sum(0) * np.sqrt(2 / np.e) / bumps["w"].min() * np.linalg.norm(step, axis=1)[:, None]
        assert np.all(change <= bound + 1e-15)


def test_outputs_follow_the_model():
    X, y, params = make_multi_subject_latent_regression(
        2,
        20_000,
        n_inputs=5,
        n_outputs=4,
        noise_std=(0.5, 1.0),
        scale_range=(0.5, 2.0),
        offset_range=(-1.0, 1.0),
        random_state=4,
        return_params=True,
    )
    for i, (s, ys) in enumerate(zip(X, y)):
        c, o, psi = params["scales"][i], params["offsets"][i], params["noise_variance"][i]
        assert np.all((c >= 0.5) & (c <= 2.0)) and np.all((o >= -1) & (o <= 1)) and np.all((psi >= 0.25) & (psi <= 1))
        resid = ys - ((s.x @ params["input_modes"][i]) @ params["output_modes"][i].T * c + o)
        n = s.n_samples
        assert np.all(np.abs(resid.mean(0)) < 4 * np.sqrt(psi / n))
        assert np.all(np.abs(resid.var(0) / psi - 1) < 5 * np.sqrt(2 / n))
        np.testing.assert_allclose(np.cov(s.x.T), np.eye(5), atol=5 / np.sqrt(n))


def test_noise_std_zero_gives_the_noiseless_mean():
    X, y, params = make_multi_subject_latent_regression(2, 50, 6, 5, noise_std=0.0, random_state=0, return_params=True)
    for i, (s, ys) in enumerate(zip(X, y)):
        np.testing.assert_allclose(ys, (s.x @ params["input_modes"][i]) @ params["output_modes"][i].T, rtol=1e-13)
        np.testing.assert_array_equal(params["noise_variance"][i], 0.0)


def test_reproducible_and_leaves_global_rng_alone():
    np_state, torch_state = np.random.get_state(), torch.get_rng_state().clone()
    a = make_multi_subject_latent_regression(2, 50, random_state=3, return_params=True)
    b = make_multi_subject_latent_regression(2, 50, random_state=np.random.default_rng(3), return_params=True)
    c = make_multi_subject_latent_regression(2, 50, random_state=4, return_params=True)
    make_multi_subject_latent_regression(2, 50)
    make_multi_subject_latent_regression(2, 50, random_state=np.random.RandomState(0))
    for sa, sb in zip(a[0], b[0]):
        np.testing.assert_array_equal(sa.x, sb.x)
        np.testing.assert_array_equal(sa.output_properties, sb.output_properties)
    for ya, yb in zip(a[1], b[1]):
        np.testing.assert_array_equal(ya, yb)
    np.testing.assert_array_equal(a[2]["input_bumps"]["m"], b[2]["input_bumps"]["m"])
    assert not np.array_equal(a[2]["input_bumps"]["c"], c[2]["input_bumps"]["c"])
    assert np.array_equal(np_state[1], np.random.get_state()[1]) and np_state[2] == np.random.get_state()[2]
    assert torch.equal(torch_state, torch.get_rng_state())


def test_neurons_and_parameters_do_not_depend_on_n_samples():
    _, _, small = make_multi_subject_latent_regression(3, 10, random_state=5, return_params=True)
    _, _, large = make_multi_subject_latent_regression(3, (2000, 0, 30), random_state=5, return_params=True)
    for key in ("input_modes", "output_modes", "scales", "offsets", "noise_variance"):
        for a, b in zip(small[key], large[key]):
            np.testing.assert_array_equal(a, b)


def test_module_never_imports_torch():
    tree = ast.parse(inspect.getsource(_latent_regression))
    names = [a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names]
    names += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert not any("torch" in name for name in names)
    assert not any(name.endswith("_modules") for name in names)


@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"n_subjects": 0}, "n_subjects"),
        ({"n_samples": -1}, "n_samples"),
        ({"n_samples": (10, 20)}, "n_samples"),
        ({"n_samples": 2.5}, "n_samples"),
        ({"n_inputs": (80, 60)}, "n_inputs"),
        ({"n_inputs": 0}, "n_inputs"),
        ({"n_outputs": (1, 2, 3)}, "n_outputs"),
        ({"n_outputs": (1.0, 2.0)}, "n_outputs"),
        ({"n_components": 0}, "n_components"),
        ({"n_properties": True}, "n_properties"),
        ({"n_bumps": 0}, "n_bumps"),
        ({"bump_width_range": (0.0, 1.0)}, "bump_width_range"),
        ({"noise_std": -0.1}, "noise_std"),
        ({"noise_std": (0.3, 0.1)}, "noise_std"),
        ({"scale_range": (1.0, np.inf)}, "scale_range"),
        ({"offset_range": "a"}, "offset_range"),
    ],
)
def test_invalid_arguments_raise_naming_them(kwargs, name):
    with pytest.raises(ValueError, match=name):
        make_multi_subject_latent_regression(**kwargs)

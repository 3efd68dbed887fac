"""Tests of the rate-RNN weight initializers (spec rnn.md §3, §4 items 4-7 and 10, §5)."""

import zipfile

import numpy as np
import pytest

from skneuro.rnn import AlphaIdentity, GaussianSpectralRadius, WeightInitializer


def spectral_radius(matrix):
    return float(np.max(np.abs(np.linalg.eigvals(matrix))))


def test_balance_dale_ratio_by_hand():
    init = WeightInitializer(1, 10, 1, dale_ratio=0.8, W_rec=np.ones((10, 10)), random_state=0)
    init.balance_dale_ratio()
    W_rec = init.initializations["W_rec"]
    np.testing.assert_allclose(W_rec[:, :8], 1 / np.sqrt(40))
    np.testing.assert_allclose(W_rec[:, 8:], 4 / np.sqrt(40))
    np.testing.assert_allclose(W_rec[0, [0, 9]], [0.15811, 0.63246], atol=5e-6)


def test_balance_skipped_without_dale_and_at_ratio_one():
    for ratio in (None, 1.0):
        init = WeightInitializer(1, 4, 1, dale_ratio=ratio, W_rec=np.ones((4, 4)), random_state=0)
        init.balance_dale_ratio()
        np.testing.assert_array_equal(init.initializations["W_rec"], np.ones((4, 4)))


def test_glorot_gauss_std():
    init = WeightInitializer(200, 200, 1, which_rand_W_rec_init="glorot_gauss", random_state=0)
    assert init.initializations["W_rec"].std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    assert np.sqrt(2 / 400) == pytest.approx(0.0707, abs=1e-4)


def test_random_schemes_follow_fan_sums():
    mask = np.ones((300, 300))
    mask[:, 150:] = 0  # F_ij = 150 + 300 on the left half, 150 + 0 on the right
    mask[0, :] = 0
    init = WeightInitializer(300, 300, 1, which_rand_init="glorot_unif", input_connectivity=mask, random_state=1)
    W_in = init.initializations["W_in"]
    left, right = W_in[1:, :150], W_in[1:, 150:]
    assert np.abs(left).max() <= np.sqrt(6 / 449) and np.abs(left).max() > 0.95 * np.sqrt(6 / 449)
    assert np.abs(right).max() <= np.sqrt(6 / 149)
    assert left.std() == pytest.approx(np.sqrt(2 / 449), rel=0.03)  # U(±a) has std a/√3
    # an entry whose row and column are both empty has F_ij = 0 and is 0
    assert np.all(W_in[0, 150:] == 0)
    unif = WeightInitializer(
        2, 300, 1, which_rand_init="const_unif", init_minval=0.2, init_maxval=0.5, random_state=0
    ).initializations["W_rec"]
    assert unif.min() >= 0.2 and unif.max() <= 0.5 and unif.mean() == pytest.approx(0.35, abs=0.005)
    gauss = WeightInitializer(2, 300, 1, which_rand_W_rec_init="const_gauss", random_state=0)
    assert gauss.initializations["W_rec"].std() == pytest.approx(1.0, rel=0.01)


def test_spectral_radius_of_effective_W_rec_is_exact():
    rng = np.random.default_rng(3)
    mask = (rng.random((50, 50)) < 0.5).astype(float)
    init = GaussianSpectralRadius(
        2, 50, 2, spec_rad=1.1, dale_ratio=0.8, autapses=False, rec_connectivity=mask, random_state=0
    )
    W_rec = init.effective_weights()[1]
    assert abs(spectral_radius(W_rec) - 1.1) < 1e-10
    assert np.all(np.diag(W_rec) == 0) and np.all(W_rec[mask == 0] == 0)


def test_spectral_radius_raw_mode_scales_V_rec():
    init = GaussianSpectralRadius(2, 50, 2, spec_rad=1.1, radius_of="raw", dale_ratio=0.8, random_state=0)
    assert spectral_radius(init.initializations["W_rec"]) == pytest.approx(1.1, abs=1e-10)
    assert abs(spectral_radius(init.effective_weights()[1]) - 1.1) > 1e-3


def test_zero_spectral_radius_raises():
    with pytest.raises(ValueError, match="spectral radius 0"):
        GaussianSpectralRadius(1, 1, 1, autapses=False, random_state=0)
    with pytest.raises(ValueError, match="spectral radius 0"):
        GaussianSpectralRadius(1, 3, 1, rec_connectivity=np.triu(np.ones((3, 3)), 1), random_state=0)
    with pytest.raises(ValueError, match="radius_of"):
        GaussianSpectralRadius(1, 3, 1, radius_of="spectral")
    with pytest.raises(ValueError, match="spec_rad"):
        GaussianSpectralRadius(1, 3, 1, spec_rad=0.0)


def test_alpha_identity():
    init = AlphaIdentity(1, 4, 1, alpha=0.7, random_state=0)
    np.testing.assert_array_equal(init.initializations["W_rec"], 0.7 * np.eye(4))
    dale = AlphaIdentity(1, 10, 1, alpha=1.0, dale_ratio=0.8, random_state=0).initializations["W_rec"]
    np.testing.assert_allclose(np.diag(dale), [1 / np.sqrt(40)] * 8 + [4 / np.sqrt(40)] * 2)
    with pytest.raises(ValueError, match="autapses"):
        AlphaIdentity(1, 4, 1, autapses=False)
    with pytest.raises(ValueError, match="rec_connectivity"):
        AlphaIdentity(1, 2, 1, rec_connectivity=[[0.0, 1.0], [1.0, 0.0]])


@pytest.mark.parametrize("ratio", [0, 0.0, -0.1, 1.01, 2, True, "0.5", 0.05])
def test_bad_dale_ratio_names_it(ratio):
    with pytest.raises(ValueError, match="dale_ratio"):
        WeightInitializer(1, 10, 1, dale_ratio=ratio)


def test_dale_ratio_one_and_floor():
    assert np.all(WeightInitializer(1, 10, 1, dale_ratio=1, random_state=0).dale_signs == 1)
    init = WeightInitializer(1, 100, 1, dale_ratio=0.29, random_state=0)
    assert init.n_exc == 29 and (init.dale_signs > 0).sum() == 29
    np.testing.assert_array_equal(np.diag(init.initializations["Dale_out"]), (init.dale_signs > 0).astype(float))
    assert np.all(WeightInitializer(1, 5, 1, random_state=0).dale_signs == 1)
    np.testing.assert_array_equal(WeightInitializer(1, 5, 1, random_state=0).initializations["Dale_rec"], np.eye(5))


def test_dale_signs_on_effective_weights():
    init = WeightInitializer(
        1,
        2,
        1,
        dale_ratio=0.5,
        W_in=[[-2.0], [3.0]],
        W_rec=[[-1.0, 2.0], [3.0, -4.0]],
        W_out=[[-0.5, 0.7]],
        random_state=0,
    )
    np.testing.assert_array_equal(init.dale_signs, [1.0, -1.0])
    W_in, W_rec, W_out = init.effective_weights()
    np.testing.assert_array_equal(W_rec, [[1.0, -2.0], [3.0, -4.0]])
    np.testing.assert_array_equal(W_out, [[0.5, 0.0]])
    np.testing.assert_array_equal(W_in, [[2.0], [3.0]])


def test_effective_weights_without_dale_apply_masks():
    mask = np.array([[1.0, 0.0], [0.5, 1.0]])
    V = np.array([[-1.0, 2.0], [3.0, -4.0]])
    init = WeightInitializer(1, 2, 1, W_rec=V, rec_connectivity=mask, random_state=0)
    np.testing.assert_array_equal(init.effective_weights()[1], V * mask)


def test_callers_arrays_are_not_modified():
    mask = np.ones((4, 4))
    W_rec = np.full((4, 4), 2.0)
    init = WeightInitializer(1, 4, 1, rec_connectivity=mask, W_rec=W_rec, autapses=False, dale_ratio=0.5)
    init.balance_dale_ratio()
    np.testing.assert_array_equal(mask, np.ones((4, 4)))
    np.testing.assert_array_equal(W_rec, np.full((4, 4), 2.0))
    assert np.all(np.diag(init.initializations["rec_connectivity"]) == 0)
    GaussianSpectralRadius(1, 4, 1, rec_connectivity=mask, autapses=False, random_state=0)
    np.testing.assert_array_equal(mask, np.ones((4, 4)))


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"input_connectivity": np.ones((3, 3))}, "input_connectivity"),
        ({"rec_connectivity": -np.ones((4, 4))}, "rec_connectivity"),
        ({"output_connectivity": np.ones((4, 1))}, "output_connectivity"),
        ({"rec_connectivity": np.full((4, 4), np.nan)}, "rec_connectivity"),
        ({"W_rec": np.ones((3, 3))}, "W_rec"),
        ({"init_state": np.ones(5)}, "init_state"),
        ({"which_rand_init": "orthogonal"}, "which_rand_init"),
        ({"which_rand_W_rec_init": "he"}, "which_rand_W_rec_init"),
        ({"init_minval": 1.0, "init_maxval": 0.0}, "init_minval"),
        ({"random_state": -1}, "random_state"),
    ],
)
def test_invalid_arguments_name_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        WeightInitializer(2, 4, 1, **kwargs)


def test_subclasses_refuse_W_rec():
    for cls in (GaussianSpectralRadius, AlphaIdentity):
        with pytest.raises(ValueError, match="W_rec"):
            cls(1, 3, 1, W_rec=np.eye(3))


def all_arrays_equal(a, b):
    assert a.keys() == b.keys()
    for key, value in a.items():
        if isinstance(value, np.ndarray):
            assert value.dtype == b[key].dtype and np.array_equal(value, b[key]), key
        else:
            assert value == b[key], key


@pytest.mark.parametrize("dale_ratio", [None, 0.8])
def test_save_load_round_trip_without_pickle(tmp_path, dale_ratio):
    rng = np.random.default_rng(0)
    mask = (rng.random((10, 10)) < 0.7).astype(float)
    init = GaussianSpectralRadius(
        3, 10, 2, dale_ratio=dale_ratio, autapses=False, rec_connectivity=mask, random_state=0
    )
    path = tmp_path / "weights.npz"
    init.save(path)
    with np.load(path, allow_pickle=False) as data:  # every entry is a plain number array
        assert all(data[key].dtype != object for key in data.files)
        assert int(data["format_version"]) == 1
    back = WeightInitializer.load(path)
    all_arrays_equal(back.initializations, init.initializations)
    assert back.autapses is False and back.dale_ratio == dale_ratio
    for a, b in zip(back.effective_weights(), init.effective_weights()):
        np.testing.assert_array_equal(a, b)


def test_save_appends_npz_extension(tmp_path):
    WeightInitializer(1, 3, 1, random_state=0).save(tmp_path / "weights")
    assert WeightInitializer.load(tmp_path / "weights.npz").n_rec == 3


def test_load_rejects_newer_format(tmp_path):
    path = tmp_path / "weights.npz"
    WeightInitializer(1, 3, 1, random_state=0).save(path)
    with np.load(path) as data:
        entries = dict(data)
    entries["format_version"] = np.int64(99)
    np.savez(path, **entries)
    with pytest.raises(ValueError, match="format_version"):
        WeightInitializer.load(path)


def test_load_skips_pickled_entries_of_psychrnn_files(tmp_path):
    init = WeightInitializer(2, 4, 1, dale_ratio=0.5, random_state=0)
    arrays = {k: v for k, v in init.initializations.items() if k != "dale_ratio"}
    arrays["init_state"] = arrays["init_state"][None, :]  # PsychRNN's (1, n_rec)
    arrays["transfer_function"] = np.array(print, dtype=object)
    arrays["dale_ratio"] = np.array(0.5)
    path = tmp_path / "psychrnn.npz"
    np.savez(path, **arrays)
    with zipfile.ZipFile(path) as archive:
        assert "transfer_function.npy" in archive.namelist()
    with pytest.warns(UserWarning, match="transfer_function"):
        back = WeightInitializer.load(path)
    np.testing.assert_array_equal(back.initializations["init_state"], init.initializations["init_state"])
    assert back.dale_ratio == 0.5 and back.autapses is True


def test_load_rejects_dale_signs_that_disagree(tmp_path):
    init = WeightInitializer(1, 100, 1, dale_ratio=0.29, random_state=0)
    arrays = {k: v for k, v in init.initializations.items() if k != "dale_ratio"}
    arrays["Dale_rec"] = np.diag(np.where(np.arange(100) < 28, 1.0, -1.0))  # PsychRNN's int(0.29 * 100)
    arrays["dale_ratio"] = np.array(0.29)
    np.savez(tmp_path / "w.npz", **arrays)
    with pytest.raises(ValueError, match="Dale_rec"):
        WeightInitializer.load(tmp_path / "w.npz")


@pytest.mark.parametrize("cls", [WeightInitializer, GaussianSpectralRadius, AlphaIdentity])
def test_same_seed_same_arrays_and_global_rng_untouched(cls):
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a = cls(3, 20, 2, dale_ratio=0.8, random_state=7)
    b = cls(3, 20, 2, dale_ratio=0.8, random_state=7)
    c = cls(3, 20, 2, dale_ratio=0.8, random_state=np.random.default_rng(7))
    cls(3, 20, 2, random_state=None)
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    all_arrays_equal(a.initializations, b.initializations)
    all_arrays_equal(a.initializations, c.initializations)
    other = cls(3, 20, 2, dale_ratio=0.8, random_state=8)
    assert not np.array_equal(a.initializations["init_state"], other.initializations["init_state"])


def test_init_state_default_distribution():
    state = WeightInitializer(1, 2000, 1, random_state=0).initializations["init_state"]
    assert state.mean() == pytest.approx(0.1, abs=0.002) and state.std() == pytest.approx(0.01, rel=0.05)

"""Region configurations: parse_config validation (key paths), masks, signs, the mRNNTorch converter."""

import copy
import json
import warnings

import numpy as np
import pytest

from skneuro.rnn import RegionSpec, config_from_mrnntorch, parse_config


def _cfg():
    return {
        "regions": [
            {"name": "a", "n_units": 10, "sign": "excitatory", "base_firing": 0.5, "learnable_bias": True},
            {"name": "b", "n_units": 5, "sign": "inhibitory", "init": -1.0, "parent": "P"},
            {"name": "c", "n_units": 4},
            {"name": "d", "n_units": 6, "parent": "P"},
        ],
        "inputs": [{"name": "u", "n_units": 3, "sign": "excitatory"}, {"name": "v", "n_units": 2}],
        "connections": [
            {"source": "a", "target": "a", "density": 0.25},  # 2.5 -> 3 of 10
            {"source": "a", "target": "b", "density": 0.5},  # 2.5 -> 3 of 5
            {"source": "b", "target": "a"},  # dense: 10 of 10
            {"source": "c", "target": "P", "density": 0.3},  # b: 1.5 -> 2 of 5; d: 1.8 -> 2 of 6
            {"source": "u", "target": "a", "density": 0.45},  # 4.5 -> 5 of 10
            {"source": "v", "target": "c", "density": 0.5},  # 2 of 4
        ],
        "readout": ["P"],
    }


SL = {"a": slice(0, 10), "b": slice(10, 15), "c": slice(15, 19), "d": slice(19, 25)}
IN = {"u": slice(0, 3), "v": slice(3, 5)}
# (target, source) -> targets per source column; every other block is zero
REC_COUNTS = {("a", "a"): 3, ("b", "a"): 3, ("a", "b"): 10, ("b", "c"): 2, ("d", "c"): 2}
IN_COUNTS = {("a", "u"): 5, ("c", "v"): 2}


# ------------------------------------------------------------------ parsing
def test_slices_signs_vectors_and_defaults():
    spec = parse_config(_cfg(), random_state=0)
    assert isinstance(spec, RegionSpec)
    assert spec.region_slices == SL and spec.input_slices == IN
    assert spec.n_rec == 25 and spec.n_in == 5
    assert spec.parents == {"P": ["b", "d"]}
    expected_signs = np.r_[np.ones(10), -np.ones(5), np.full(10, np.nan)]
    np.testing.assert_array_equal(spec.rec_signs, expected_signs)
    np.testing.assert_array_equal(spec.input_signs, [1.0, 1.0, 1.0, np.nan, np.nan])
    np.testing.assert_array_equal(spec.bias_trainable, np.r_[np.ones(10), np.zeros(15)])
    np.testing.assert_array_equal(spec.base_firing, np.r_[np.full(10, 0.5), np.zeros(15)])
    np.testing.assert_array_equal(spec.init_state, np.r_[np.zeros(10), -np.ones(5), np.zeros(10)])
    np.testing.assert_array_equal(spec.readout_mask, np.r_[np.zeros(10), np.ones(5), np.zeros(4), np.ones(6)])
    c = spec.config["regions"][2]
    assert c == {
        "name": "c",
        "n_units": 4,
        "sign": "mixed",
        "base_firing": 0.0,
        "learnable_bias": False,
        "init": 0.0,
        "parent": None,
    }
    assert spec.config["connections"][2] == {"source": "b", "target": "a", "density": 1.0}
    assert spec.config["readout"] == ["P"]
    # parents stand for their children at their own position
    np.testing.assert_array_equal(spec.indices("c", "P", "a"), np.r_[15:19, 10:15, 19:25, 0:10])
    np.testing.assert_array_equal(spec.indices(), np.arange(25))


def test_all_mixed_and_no_inputs():
    spec = parse_config({"regions": [{"name": "a", "n_units": 3}]})
    assert spec.rec_signs is None and spec.input_signs is None
    assert spec.n_in == 0 and spec.input_mask.shape == (3, 0)
    assert (spec.rec_mask == 0).all()
    np.testing.assert_array_equal(spec.readout_mask, np.ones(3))  # default readout: all regions


def test_caller_dict_not_modified():
    cfg = _cfg()
    before = copy.deepcopy(cfg)
    spec = parse_config(cfg, random_state=0)
    assert cfg == before
    spec.config["regions"][0]["n_units"] = 99
    assert cfg == before


# -------------------------------------------------------------------- masks
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mask_counts_per_source_column(seed):
    spec = parse_config(_cfg(), random_state=seed)
    for t, rows in SL.items():
        for s, cols in SL.items():
            block = spec.rec_mask[rows, cols]
            assert set(np.unique(block)) <= {0.0, 1.0}
            np.testing.assert_array_equal(block.sum(axis=0), REC_COUNTS.get((t, s), 0), err_msg=f"{t}<-{s}")
        for s, cols in IN.items():
            block = spec.input_mask[rows, cols]
            np.testing.assert_array_equal(block.sum(axis=0), IN_COUNTS.get((t, s), 0), err_msg=f"{t}<-{s}")
    assert spec.rec_mask.sum() == 10 * 3 + 10 * 3 + 5 * 10 + 4 * 2 + 4 * 2
    assert spec.input_mask.sum() == 3 * 5 + 2 * 2


@pytest.mark.parametrize(("density", "n_k", "m"), [(0.25, 10, 3), (0.5, 5, 3), (0.05, 10, 1), (0.3, 5, 2), (1.0, 7, 7)])
def test_round_half_up(density, n_k, m):
    cfg = {
        "regions": [{"name": "s", "n_units": 4}, {"name": "t", "n_units": n_k}],
        "connections": [{"source": "s", "target": "t", "density": density}],
    }
    spec = parse_config(cfg, random_state=0)
    np.testing.assert_array_equal(spec.rec_mask[4:, :4].sum(axis=0), [m] * 4)
    assert spec.rec_mask.sum() == 4 * m


def test_round_half_up_is_exact_for_decimal_densities():
    for density, n_k, m in [(0.58, 25, 15), (0.29, 50, 15)]:
        cfg = {
            "regions": [{"name": "s", "n_units": 2}, {"name": "t", "n_units": n_k}],
            "connections": [{"source": "s", "target": "t", "density": density}],
        }
        spec = parse_config(cfg, random_state=0)
        np.testing.assert_array_equal(spec.rec_mask[2:, :2].sum(axis=0), [m, m])


def test_masks_seeded():
    a, b = parse_config(_cfg(), random_state=3), parse_config(_cfg(), random_state=3)
    np.testing.assert_array_equal(a.rec_mask, b.rec_mask)
    np.testing.assert_array_equal(a.input_mask, b.input_mask)
    c = parse_config(_cfg(), random_state=4)
    assert not np.array_equal(a.rec_mask[SL["a"], SL["a"]], c.rec_mask[SL["a"], SL["a"]])
    assert not np.array_equal(a.input_mask[SL["a"], IN["u"]], c.input_mask[SL["a"], IN["u"]])
    # a sparse block is not always the same rows in every column
    block = a.rec_mask[SL["a"], SL["a"]]
    assert len({tuple(col) for col in block.T}) > 1


def test_global_rng_untouched():
    np.random.seed(5)
    state = np.random.get_state()
    parse_config(_cfg(), random_state=0)
    after = np.random.get_state()
    assert np.array_equal(after[1], state[1]) and after[2] == state[2]


# ------------------------------------------------------------------- errors
def _fails(cfg, prefix, *parts):
    with pytest.raises(ValueError) as info:
        parse_config(cfg)
    msg = str(info.value)
    assert msg.startswith(prefix), msg
    for part in parts:
        assert part in msg, msg
    return msg


def test_unknown_target_exact_message():
    cfg = _cfg()
    cfg["connections"][2]["target"] = "pfx"
    msg = _fails(cfg, 'config["connections"][2]["target"]')
    assert msg == 'config["connections"][2]["target"]: unknown region "pfx"'


def test_unknown_source():
    cfg = _cfg()
    cfg["connections"][1]["source"] = "zz"
    _fails(cfg, 'config["connections"][1]["source"]: unknown region "zz"')


def test_target_an_input():
    cfg = _cfg()
    cfg["connections"].append({"source": "a", "target": "u"})
    _fails(cfg, 'config["connections"][6]["target"]:', '"u" is an input')


def test_duplicate_region_name():
    cfg = _cfg()
    cfg["regions"][2]["name"] = "a"
    _fails(cfg, 'config["regions"][2]["name"]:', 'duplicate name "a"')
    cfg = _cfg()
    cfg["inputs"][1]["name"] = "c"
    _fails(cfg, 'config["inputs"][1]["name"]:', 'duplicate name "c"')
    cfg = _cfg()
    cfg["regions"][2]["name"] = "P"  # a parent's name
    _fails(cfg, 'config["regions"]')


def test_duplicate_connection():
    cfg = _cfg()
    cfg["connections"].append({"source": "a", "target": "b", "density": 1.0})
    _fails(cfg, 'config["connections"][6]:', "duplicate connection", '"a" -> "b"')
    cfg = _cfg()  # through a parent: c -> P already holds c -> d
    cfg["connections"].append({"source": "c", "target": "d"})
    _fails(cfg, 'config["connections"][6]:', '"c" -> "d"')


@pytest.mark.parametrize("value", [0, -2, 1.5, True, "3", None])
def test_n_units_positive_int(value):
    cfg = _cfg()
    cfg["regions"][1]["n_units"] = value
    _fails(cfg, 'config["regions"][1]["n_units"]:', "positive int")
    cfg = _cfg()
    cfg["inputs"][0]["n_units"] = value
    _fails(cfg, 'config["inputs"][0]["n_units"]:', "positive int")


def test_n_units_missing():
    cfg = _cfg()
    del cfg["regions"][3]["n_units"]
    _fails(cfg, 'config["regions"][3]["n_units"]: missing')


@pytest.mark.parametrize("sign", ["pos", "Excitatory", 1, None])
def test_sign_not_allowed(sign):
    cfg = _cfg()
    cfg["regions"][0]["sign"] = sign
    _fails(cfg, 'config["regions"][0]["sign"]:')
    cfg = _cfg()
    cfg["inputs"][1]["sign"] = sign
    _fails(cfg, 'config["inputs"][1]["sign"]:')


@pytest.mark.parametrize("density", [0, 0.0, -0.1, 1.5, float("nan"), True, "0.5"])
def test_density_outside_unit_interval(density):
    cfg = _cfg()
    cfg["connections"][0]["density"] = density
    _fails(cfg, 'config["connections"][0]["density"]:', "(0, 1]")


def test_density_rounding_to_zero():
    cfg = _cfg()
    cfg["connections"][0]["density"] = 0.04  # 0.4 of a unit of the 10 in "a"
    _fails(cfg, 'config["connections"][0]["density"]:', "rounds to no connection", '"a"')
    cfg = _cfg()
    cfg["connections"][3]["density"] = 0.09  # c -> P: 0.45 of b's 5 units -> 0
    _fails(cfg, 'config["connections"][3]["density"]:', '"b"')
    cfg = _cfg()
    cfg["connections"][5]["density"] = 0.1  # input v -> c: 0.4 of 4 units
    _fails(cfg, 'config["connections"][5]["density"]:')


def test_unknown_keys():
    cfg = _cfg()
    cfg["regoins"] = []
    _fails(cfg, 'config["regoins"]: unknown key')
    cfg = _cfg()
    cfg["regions"][1]["tau"] = 20.0
    _fails(cfg, 'config["regions"][1]["tau"]: unknown key')
    cfg = _cfg()
    cfg["inputs"][0]["density"] = 0.5
    _fails(cfg, 'config["inputs"][0]["density"]: unknown key')
    cfg = _cfg()
    cfg["connections"][4]["sign"] = "excitatory"  # documented by mRNNTorch, ignored by its loader
    _fails(cfg, 'config["connections"][4]["sign"]: unknown key')


@pytest.mark.parametrize("regions", [None, [], "a", {"name": "a", "n_units": 2}])
def test_no_regions(regions):
    cfg = _cfg()
    if regions is None:
        del cfg["regions"]
        cfg["connections"] = []
        cfg.pop("readout")
    else:
        cfg["regions"] = regions
    _fails(cfg, 'config["regions"]:')


def test_bad_region_entries():
    cfg = _cfg()
    cfg["regions"][1] = ["b", 5]
    _fails(cfg, 'config["regions"][1]:', "dict")
    cfg = _cfg()
    del cfg["regions"][0]["name"]
    _fails(cfg, 'config["regions"][0]["name"]:')
    cfg = _cfg()
    cfg["regions"][0]["learnable_bias"] = 1
    _fails(cfg, 'config["regions"][0]["learnable_bias"]:')
    cfg = _cfg()
    cfg["regions"][0]["base_firing"] = float("inf")
    _fails(cfg, 'config["regions"][0]["base_firing"]:')
    cfg = _cfg()
    cfg["regions"][0]["init"] = "0"
    _fails(cfg, 'config["regions"][0]["init"]:')


def test_unknown_readout():
    cfg = _cfg()
    cfg["readout"] = ["a", "pfx"]
    assert _fails(cfg, 'config["readout"][1]:') == 'config["readout"][1]: unknown region "pfx"'
    cfg["readout"] = []
    _fails(cfg, 'config["readout"]:')
    cfg["readout"] = "a"
    _fails(cfg, 'config["readout"]:')


def test_repeated_readout_names_the_key_path():
    cfg = _cfg()
    cfg["readout"] = ["b", "P"]  # b twice (directly and through P)
    _fails(cfg, 'config["readout"]')


def test_not_a_dict(tmp_path):
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="^config"):
        parse_config(path)
    with pytest.raises(TypeError, match="config"):
        parse_config(42)


# -------------------------------------------------------------------- files
def test_json_file_str_and_path(tmp_path):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(_cfg()))
    ref = parse_config(_cfg(), random_state=7)
    for arg in (str(path), path):
        spec = parse_config(arg, random_state=7)
        assert spec.config == ref.config
        np.testing.assert_array_equal(spec.rec_mask, ref.rec_mask)
        np.testing.assert_array_equal(spec.input_mask, ref.input_mask)


def test_missing_file_and_bad_json(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        parse_config(tmp_path / "nope.json")
    with pytest.raises(FileNotFoundError):
        parse_config(str(tmp_path / "nope.json"))
    bad = tmp_path / "bad.json"
    bad.write_text('{"regions": [')
    with pytest.raises(ValueError, match="^config file .*bad.json.* not valid JSON"):
        parse_config(bad)


# ---------------------------------------------------------------- converter
MRNN = {
    "recurrent_regions": [
        {"name": "ctx", "num_units": 6, "sign": "pos", "base_firing": 0.1, "init": 0.2},
        {"num_units": 10, "sign": "neg", "parent_region": "bg"},
        {"name": "d2", "num_units": 2, "sign": "neg", "parent_region": "bg", "learnable_bias": True},
    ],
    "input_regions": [{"name": "cue", "num_units": 2, "sign": "pos"}, {"num_units": 1, "sign": "neg"}],
    "recurrent_connections": [
        {"src_region": "ctx", "dst_region": "region_1", "sparsity": 0.9},
        {"src_region": "region_1", "dst_region": "ctx", "sparsity": None},
        {"src_region": "d2", "dst_region": "ctx"},
    ],
    "input_connections": [{"src_region": "cue", "dst_region": "ctx", "sparsity": 0.5}],
}


def test_converter_maps_everything():
    src = copy.deepcopy(MRNN)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg = config_from_mrnntorch(src)
    assert src == MRNN
    assert cfg == {
        "regions": [
            {
                "name": "ctx",
                "n_units": 6,
                "sign": "excitatory",
                "base_firing": 0.1,
                "learnable_bias": False,
                "init": 0.2,
            },
            {
                "name": "region_1",
                "n_units": 10,
                "sign": "inhibitory",
                "base_firing": 0.0,
                "learnable_bias": False,
                "init": 0.0,
                "parent": "bg",
            },
            {
                "name": "d2",
                "n_units": 2,
                "sign": "inhibitory",
                "base_firing": 0.0,
                "learnable_bias": True,
                "init": 0.0,
                "parent": "bg",
            },
        ],
        "inputs": [
            {"name": "cue", "n_units": 2, "sign": "excitatory"},
            {"name": "input_1", "n_units": 1, "sign": "inhibitory"},
        ],
        "connections": [
            {"source": "ctx", "target": "region_1", "density": 0.1},
            {"source": "region_1", "target": "ctx", "density": 1.0},
            {"source": "d2", "target": "ctx", "density": 1.0},
            {"source": "cue", "target": "ctx", "density": 0.5},
        ],
    }
    spec = parse_config(cfg, random_state=0)
    assert spec.parents == {"bg": ["region_1", "d2"]}
    # sparsity 0.9 keeps 10 %: each ctx unit reaches 1 of the 10 units of region_1
    np.testing.assert_array_equal(spec.rec_mask[6:16, :6].sum(axis=0), np.ones(6))
    np.testing.assert_array_equal(spec.input_mask[:6, :2].sum(axis=0), [3, 3])


def test_converter_sparsity_is_the_zeroed_fraction():
    src = {
        "recurrent_regions": [
            {"name": "a", "num_units": 4, "sign": "pos"},
            {"name": "b", "num_units": 20, "sign": "pos"},
        ],
        "recurrent_connections": [{"src_region": "a", "dst_region": "b", "sparsity": 0.9}],
    }
    cfg = config_from_mrnntorch(src)
    assert cfg["connections"][0]["density"] == 0.1
    spec = parse_config(cfg, random_state=0)
    np.testing.assert_array_equal(spec.rec_mask[4:, :4].sum(axis=0), [2, 2, 2, 2])  # 10 % of 20


def test_converter_unconstrained():
    cfg = config_from_mrnntorch(MRNN, rec_constrained=False, inp_constrained=False)
    assert [r["sign"] for r in cfg["regions"]] == ["mixed"] * 3
    assert [r["sign"] for r in cfg["inputs"]] == ["mixed"] * 2
    spec = parse_config(cfg)
    assert spec.rec_signs is None and spec.input_signs is None
    # default sign is "pos" (mRNNTorch's), constrained -> excitatory
    cfg = config_from_mrnntorch(
        {"recurrent_regions": [{"name": "a", "num_units": 2}], "input_regions": [{"num_units": 1}]}
    )
    assert cfg["regions"][0]["sign"] == "excitatory" and cfg["inputs"][0]["sign"] == "excitatory"
    with pytest.raises(ValueError, match="recurrent_regions"):
        config_from_mrnntorch({"recurrent_regions": [{"name": "a", "num_units": 2, "sign": "excitatory"}]})


def test_converter_drops_connection_sign_with_warning():
    src = copy.deepcopy(MRNN)
    src["recurrent_connections"][1]["sign"] = "neg"
    with pytest.warns(UserWarning, match=r"recurrent_connections\[1\]\.sign"):
        cfg = config_from_mrnntorch(src)
    assert cfg["connections"][1] == {"source": "region_1", "target": "ctx", "density": 1.0}
    assert "sign" in src["recurrent_connections"][1]  # the caller's dict is not modified
    parse_config(cfg)  # the result is valid


def test_converter_from_file(tmp_path):
    path = tmp_path / "mrnn.json"
    path.write_text(json.dumps(MRNN))
    assert config_from_mrnntorch(path) == config_from_mrnntorch(MRNN)
    assert config_from_mrnntorch(str(path)) == config_from_mrnntorch(MRNN)

"""Region configurations of multi-region networks: parsing, validation, masks and signs.

A configuration is a dict (or the path of a JSON file holding one)::

    {"regions": [{"name": "ctx", "n_units": 80, "sign": "excitatory"}, ...],
     "inputs": [{"name": "cue", "n_units": 2}],
     "connections": [{"source": "cue", "target": "ctx", "density": 0.5}, ...],
     "readout": ["ctx"]}

Regions own consecutive unit slices in config order (inputs likewise own columns of the
input). Every error names the key path of the offending value, e.g.
``config["connections"][2]["target"]: unknown region "pfx"``.
"""

from __future__ import annotations

import copy
import json
import math
import os
import warnings
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

__all__ = ["RegionSpec", "config_from_mrnntorch", "parse_config", "region_indices"]

SIGNS = {"excitatory": 1.0, "inhibitory": -1.0, "mixed": math.nan}
_REGION_KEYS = {"name", "n_units", "sign", "base_firing", "learnable_bias", "init", "parent"}
_INPUT_KEYS = {"name", "n_units", "sign"}
_CONNECTION_KEYS = {"source", "target", "density"}
_TOP_KEYS = {"regions", "inputs", "connections", "readout"}


def _path(*keys):
    return "config" + "".join(f"[{k!r}]".replace("'", '"') for k in keys)


def _fail(keys, message):
    raise ValueError(f"{_path(*keys)}: {message}")


def _check_keys(entry, allowed, keys):
    if not isinstance(entry, dict):
        _fail(keys, f"expected a dict; got {type(entry).__name__}")
    for key in entry:
        if key not in allowed:
            _fail((*keys, key), f"unknown key (allowed: {sorted(allowed)})")


def _positive_int(value, keys):
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        _fail(keys, f"must be a positive int; got {value!r}")
    return int(value)


_FLOAT32_MAX = 3.4028234663852886e38


def _number(value, keys):
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        _fail(keys, f"must be a finite number; got {value!r}")
    if abs(value) > _FLOAT32_MAX:
        _fail(keys, f"must lie within float32's range (±3.4e38); got {value!r}")
    return float(value)


def _round_half_up(value):
    # round(…, 9) first: 0.58 * 25 is 14.499999999999998 in floating point, meant as 14.5
    return int(math.floor(round(value, 9) + 0.5))


def _load(config):
    if isinstance(config, (str, os.PathLike)):
        path = os.fspath(config)
        if not os.path.exists(path):
            raise FileNotFoundError(f"config file {path!r} does not exist.")
        if not os.path.isfile(path):
            raise ValueError(f"config {path!r} is not a file (a directory?); give the path of a JSON file.")
        with open(path, encoding="utf-8") as fh:
            try:
                return json.load(fh)
            except json.JSONDecodeError as exc:
                raise ValueError(f"config file {path!r} is not valid JSON: {exc}") from exc
    if isinstance(config, dict):
        return copy.deepcopy(config)
    raise TypeError(f"config must be a dict or the path of a JSON file; got {type(config).__name__}.")


def expand_regions(names, region_slices, parents, *, what="region"):
    """Region names for ``names``, each parent replaced in place by its children.

    Raises ``ValueError`` naming an unknown name, or a region asked for twice (directly
    or through a parent).
    """
    out = []
    for name in names:
        if name in region_slices:
            out.append(name)
        elif name in parents:
            out.extend(parents[name])
        else:
            known = list(region_slices) + list(parents)
            raise ValueError(f"unknown {what} {name!r}; known regions and parents: {known}.")
    seen = set()
    for name in out:
        if name in seen:
            raise ValueError(f"region {name!r} is asked for more than once (directly or through a parent).")
        seen.add(name)
    return out


def region_indices(names, region_slices, parents, n_rec, *, what="region"):
    """Unit indices of the named regions (or parents) in the order given; none: all units.

    Examples
    --------
    >>> from skneuro.rnn._regions import region_indices
    >>> slices = {"a": slice(0, 2), "b": slice(2, 3), "c": slice(3, 5)}
    >>> region_indices(["c", "p"], slices, {"p": ["a", "b"]}, 5).tolist()
    [3, 4, 0, 1, 2]
    """
    if not names:
        return np.arange(n_rec)
    regions = expand_regions(names, region_slices, parents, what=what)
    return np.concatenate([np.arange(n_rec)[region_slices[r]] for r in regions])


@dataclass
class RegionSpec:
    """A validated region configuration with its masks, signs and per-unit vectors.

    Built by :func:`parse_config`; not meant to be created by hand.

    Attributes
    ----------
    config : dict
        The normalized configuration (all defaults filled in).
    region_slices, input_slices : dict of str to slice
        Units (recurrent) and columns (input) of each region, in config order.
    parents : dict of str to list of str
        Each parent name and its children, in config order.
    rec_mask, input_mask : ndarray of shape (n_rec, n_rec), (n_rec, n_in)
        0/1 connectivity (row = target unit, column = source unit).
    rec_signs, input_signs : ndarray or None
        +1 / -1 per source unit, NaN for mixed units; None when every unit is mixed.
    bias_trainable, base_firing, init_state : ndarray of shape (n_rec,)
    readout_mask : ndarray of shape (n_rec,)
        1 on the units of the readout regions.

    Examples
    --------
    >>> from skneuro.rnn import parse_config
    >>> spec = parse_config({"regions": [{"name": "a", "n_units": 2}, {"name": "b", "n_units": 3}]})
    >>> spec.n_rec, spec.indices("b", "a").tolist()
    (5, [2, 3, 4, 0, 1])
    """

    config: dict
    region_slices: dict
    input_slices: dict
    parents: dict
    rec_mask: np.ndarray
    input_mask: np.ndarray
    rec_signs: np.ndarray | None
    input_signs: np.ndarray | None
    bias_trainable: np.ndarray
    base_firing: np.ndarray
    init_state: np.ndarray
    readout_mask: np.ndarray

    @property
    def n_rec(self) -> int:
        return int(self.rec_mask.shape[0])

    @property
    def n_in(self) -> int:
        return int(self.input_mask.shape[1])

    def expand(self, names, *, what="region"):
        """Region names for ``names`` (parents replaced by their children, in place).

        Raises ``ValueError`` for unknown names and for a unit asked for twice.
        """
        return expand_regions(names, self.region_slices, self.parents, what=what)

    def indices(self, *names):
        """Unit indices of the named regions (or parents), in the order given.

        No names: every unit in network order.
        """
        return region_indices(names, self.region_slices, self.parents, self.n_rec)


def _named_entry(entry, allowed, keys, taken):
    """``(name, n_units, sign)`` of a region or input entry; ``taken`` collects the names."""
    _check_keys(entry, allowed, keys)
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        _fail((*keys, "name"), f"must be a non-empty string; got {name!r}")
    if name in taken:
        _fail((*keys, "name"), f'duplicate name "{name}"')
    taken.add(name)
    if "n_units" not in entry:
        _fail((*keys, "n_units"), "missing")
    sign = entry.get("sign", "mixed")
    if not isinstance(sign, str) or sign not in SIGNS:
        _fail((*keys, "sign"), f"must be one of {list(SIGNS)}; got {sign!r}")
    return name, _positive_int(entry["n_units"], (*keys, "n_units")), sign


def _parse_regions(cfg):
    if "regions" not in cfg or not isinstance(cfg["regions"], list) or not cfg["regions"]:
        _fail(("regions",), "must be a non-empty list of regions")
    regions, parents, names = [], {}, set()
    for i, entry in enumerate(cfg["regions"]):
        keys = ("regions", i)
        name, n_units, sign = _named_entry(entry, _REGION_KEYS, keys, names)
        learnable = entry.get("learnable_bias", False)
        if not isinstance(learnable, bool):
            _fail((*keys, "learnable_bias"), f"must be true or false; got {learnable!r}")
        parent = entry.get("parent")
        if parent is not None and (not isinstance(parent, str) or not parent):
            _fail((*keys, "parent"), f"must be a non-empty string or null; got {parent!r}")
        regions.append(
            {
                "name": name,
                "n_units": n_units,
                "sign": sign,
                "base_firing": _number(entry.get("base_firing", 0.0), (*keys, "base_firing")),
                "learnable_bias": learnable,
                "init": _number(entry.get("init", 0.0), (*keys, "init")),
                "parent": parent,
            }
        )
        if parent is not None:
            parents.setdefault(parent, []).append(name)
    for i, region in enumerate(regions):
        if region["parent"] in names:
            _fail(("regions", i, "parent"), f'"{region["parent"]}" is a region name; a parent must be a new name')
    return regions, parents


def _parse_inputs(cfg, taken):
    inputs = []
    entries = cfg.get("inputs", [])
    if not isinstance(entries, list):
        _fail(("inputs",), f"must be a list; got {type(entries).__name__}")
    for i, entry in enumerate(entries):
        name, n_units, sign = _named_entry(entry, _INPUT_KEYS, ("inputs", i), taken)
        inputs.append({"name": name, "n_units": n_units, "sign": sign})
    return inputs


def _slices(entries):
    out, start = {}, 0
    for entry in entries:
        out[entry["name"]] = slice(start, start + entry["n_units"])
        start += entry["n_units"]
    return out, start


def _parse_connections(cfg, region_sizes, parents, input_names):
    entries = cfg.get("connections", [])
    if not isinstance(entries, list):
        _fail(("connections",), f"must be a list; got {type(entries).__name__}")
    connections, seen = [], {}
    for i, entry in enumerate(entries):
        keys = ("connections", i)
        _check_keys(entry, _CONNECTION_KEYS, keys)
        resolved = {}
        for end in ("source", "target"):
            name = entry.get(end)
            if not isinstance(name, str):
                _fail((*keys, end), f"must be a region name; got {name!r}")
            if name in region_sizes:
                resolved[end] = [name]
            elif name in parents:
                resolved[end] = list(parents[name])
            elif name in input_names and end == "source":
                resolved[end] = [name]
            elif name in input_names:
                _fail((*keys, end), f'"{name}" is an input; a connection must target a region')
            else:
                _fail((*keys, end), f'unknown region "{name}"')
        density = entry.get("density", 1.0)
        if isinstance(density, bool) or not isinstance(density, Real) or not 0 < density <= 1:
            _fail((*keys, "density"), f"must lie in (0, 1]; got {density!r}")
        for target in resolved["target"]:
            if _round_half_up(density * region_sizes[target]) == 0:
                _fail(
                    (*keys, "density"),
                    f'{density!r} of the {region_sizes[target]} units of "{target}" rounds to no connection',
                )
        for source in resolved["source"]:
            for target in resolved["target"]:
                if (source, target) in seen:
                    first = seen[source, target][0]
                    _fail(keys, f'duplicate connection "{source}" -> "{target}" (first at connections[{first}])')
                seen[source, target] = (i, float(density))
        connections.append({"source": entry["source"], "target": entry["target"], "density": float(density)})
    return connections, seen


def _block_mask(n_target, n_source, density, rng):
    """Every source column gets exactly round(density·n_target) targets, without replacement."""
    m = _round_half_up(density * n_target)
    if m >= n_target:
        return np.ones((n_target, n_source))
    keys = rng.random((n_target, n_source))
    chosen = np.argsort(keys, axis=0)[:m]
    block = np.zeros((n_target, n_source))
    np.put_along_axis(block, chosen, 1.0, axis=0)
    return block


def parse_config(config, random_state=None):
    """Validate a region configuration, fill its defaults and draw its connectivity masks.

    Parameters
    ----------
    config : dict or str or path-like
        The configuration, or the path of a JSON file with it. The caller's dict is never
        modified.
    random_state : int, numpy Generator, RandomState or None
        Seeds the draws of sparse connectivity (``density`` < 1).

    Returns
    -------
    RegionSpec

    Raises
    ------
    ValueError
        For an invalid configuration; the message starts with the key path.
    FileNotFoundError
        For a path that does not exist.

    Examples
    --------
    >>> from skneuro.rnn import parse_config
    >>> spec = parse_config({
    ...     "regions": [{"name": "ctx", "n_units": 4, "sign": "excitatory"},
    ...                 {"name": "inh", "n_units": 2, "sign": "inhibitory"}],
    ...     "inputs": [{"name": "cue", "n_units": 1}],
    ...     "connections": [{"source": "ctx", "target": "inh", "density": 0.5},
    ...                     {"source": "inh", "target": "ctx"},
    ...                     {"source": "cue", "target": "ctx"}]}, random_state=0)
    >>> spec.rec_mask[4:, :4].sum(axis=0).tolist()  # each ctx unit reaches round(0.5 * 2) = 1 inh unit
    [1.0, 1.0, 1.0, 1.0]
    >>> spec.rec_signs.tolist()
    [1.0, 1.0, 1.0, 1.0, -1.0, -1.0]
    """
    from .._engine.base import make_generators

    cfg = _load(config)
    if not isinstance(cfg, dict):
        raise ValueError(f"config must hold a JSON object (dict); got {type(cfg).__name__}.")
    for key in cfg:
        if key not in _TOP_KEYS:
            _fail((key,), f"unknown key (allowed: {sorted(_TOP_KEYS)})")
    regions, parents = _parse_regions(cfg)
    region_names = {r["name"] for r in regions}
    clash = region_names & set(parents)
    if clash:
        _fail(("regions",), f"names used both as region and parent: {sorted(clash)}")
    inputs = _parse_inputs(cfg, region_names | set(parents))
    region_slices, n_rec = _slices(regions)
    input_slices, n_in = _slices(inputs)
    sizes = {r["name"]: r["n_units"] for r in regions}
    connections, pairs = _parse_connections(cfg, sizes, parents, set(input_slices))
    readout = cfg.get("readout")
    if readout is None:
        readout = [r["name"] for r in regions]
    if not isinstance(readout, list) or not readout:
        _fail(("readout",), f"must be a non-empty list of region or parent names; got {readout!r}")
    covered = set()
    for i, name in enumerate(readout):
        if not isinstance(name, str) or (name not in region_names and name not in parents):
            _fail(("readout", i), f'unknown region "{name}"')
        children = parents.get(name, [name])
        if covered & set(children):
            _fail(("readout", i), f'"{name}" repeats a region already in the readout')
        covered |= set(children)

    _, rng = make_generators(random_state)
    rec_mask, input_mask = np.zeros((n_rec, n_rec)), np.zeros((n_rec, n_in))
    for (source, target), (_, d) in pairs.items():
        rows = region_slices[target]
        if source in region_slices:
            cols = region_slices[source]
            rec_mask[rows, cols] = _block_mask(sizes[target], sizes[source], d, rng)
        else:
            cols = input_slices[source]
            input_mask[rows, cols] = _block_mask(sizes[target], cols.stop - cols.start, d, rng)

    def unit_vector(entries, key, n):
        return np.concatenate([np.full(e["n_units"], float(e[key])) for e in entries]) if entries else np.zeros(n)

    rec_signs = np.concatenate([np.full(r["n_units"], SIGNS[r["sign"]]) for r in regions])
    input_signs = np.concatenate([np.full(e["n_units"], SIGNS[e["sign"]]) for e in inputs]) if inputs else np.zeros(0)
    normalized = {"regions": regions, "inputs": inputs, "connections": connections, "readout": list(readout)}
    spec = RegionSpec(
        config=normalized,
        region_slices=region_slices,
        input_slices=input_slices,
        parents=parents,
        rec_mask=rec_mask,
        input_mask=input_mask,
        rec_signs=None if np.isnan(rec_signs).all() else rec_signs,
        input_signs=None if input_signs.size == 0 or np.isnan(input_signs).all() else input_signs,
        bias_trainable=unit_vector(regions, "learnable_bias", n_rec),
        base_firing=unit_vector(regions, "base_firing", n_rec),
        init_state=unit_vector(regions, "init", n_rec),
        readout_mask=np.zeros(n_rec),
    )
    spec.readout_mask[spec.indices(*readout)] = 1.0
    return spec


def config_from_mrnntorch(config, rec_constrained=True, inp_constrained=True):
    """Translate an mRNNTorch JSON configuration into skneuro's format.

    ``recurrent_regions`` become ``regions`` (``num_units`` → ``n_units``; sign ``"pos"`` /
    ``"neg"`` → ``"excitatory"`` / ``"inhibitory"`` when constrained, else ``"mixed"``;
    ``parent_region`` → ``parent``; a region without name becomes ``"region_{i}"``);
    ``input_regions`` become ``inputs``; both connection lists become ``connections`` with
    ``density = 1 - sparsity`` (mRNNTorch's ``sparsity`` is the fraction of each source
    column that is zeroed; None means dense). Keys skneuro does not use (such as a
    per-connection ``sign``, which mRNNTorch ignores too) are dropped with a warning.

    Parameters
    ----------
    config : dict or str or path-like
        The mRNNTorch configuration or the path of its JSON file (not modified).
    rec_constrained, inp_constrained : bool, default=True
        mRNNTorch's flags: whether region / input signs are enforced.

    Returns
    -------
    dict
        A configuration for :func:`parse_config` and ``MultiRegionRNNRegressor``.

    Examples
    --------
    >>> from skneuro.rnn import config_from_mrnntorch
    >>> cfg = config_from_mrnntorch({
    ...     "recurrent_regions": [{"name": "str", "num_units": 10, "sign": "neg"}],
    ...     "recurrent_connections": [{"src_region": "str", "dst_region": "str", "sparsity": 0.9}]})
    >>> cfg["regions"][0]["sign"], cfg["connections"][0]["density"]
    ('inhibitory', 0.1)
    """
    src = _load(config)
    dropped = []

    def sign_of(value, constrained, where):
        if not constrained:
            return "mixed"
        if value not in ("pos", "neg"):
            raise ValueError(f"{where}: sign must be 'pos' or 'neg'; got {value!r}.")
        return "excitatory" if value == "pos" else "inhibitory"

    regions = []
    for i, r in enumerate(src.get("recurrent_regions", [])):
        known = {"name", "num_units", "sign", "base_firing", "init", "parent_region", "learnable_bias"}
        dropped += [f"recurrent_regions[{i}].{k}" for k in r if k not in known]
        out = {
            "name": r.get("name") or f"region_{i}",
            "n_units": r["num_units"],
            "sign": sign_of(r.get("sign", "pos"), rec_constrained, f"recurrent_regions[{i}]"),
            "base_firing": r.get("base_firing", 0.0),
            "learnable_bias": r.get("learnable_bias", False),
            "init": r.get("init", 0.0),
        }
        if r.get("parent_region") is not None:
            out["parent"] = r["parent_region"]
        regions.append(out)
    inputs = []
    for i, r in enumerate(src.get("input_regions", [])):
        dropped += [f"input_regions[{i}].{k}" for k in r if k not in {"name", "num_units", "sign"}]
        inputs.append(
            {
                "name": r.get("name") or f"input_{i}",
                "n_units": r["num_units"],
                "sign": sign_of(r.get("sign", "pos"), inp_constrained, f"input_regions[{i}]"),
            }
        )
    connections = []
    for key in ("recurrent_connections", "input_connections"):
        for i, c in enumerate(src.get(key, [])):
            dropped += [f"{key}[{i}].{k}" for k in c if k not in {"src_region", "dst_region", "sparsity"}]
            sparsity = c.get("sparsity")
            density = 1.0 if sparsity is None else round(1.0 - float(sparsity), 12)
            connections.append({"source": c["src_region"], "target": c["dst_region"], "density": density})
    if dropped:
        warnings.warn(f"mRNNTorch keys without meaning in skneuro were dropped: {dropped}", UserWarning, stacklevel=2)
    return {"regions": regions, "inputs": inputs, "connections": connections}

"""Saving and loading estimators without pickle: loading a file never runs code.

A file holds plain values only: numbers, strings, lists, dicts, tensors (numpy arrays are
stored as tensors) and a small set of tagged records for tuples, slices, devices, dtypes,
numpy scalars and random states. Estimators and torch modules are stored *structurally*
(class name, plain attributes, parameters, buffers, children) and rebuilt without calling
their constructors; only skneuro's own classes and torch.nn's layers and containers may be
named: each family registers its classes with :func:`register` when it is imported. The
file is read with ``torch.load(weights_only=True)``, which refuses anything else before any
object is built.
"""

from __future__ import annotations

import functools
import os

import numpy as np
import torch
from torch import nn

from ._engine.base import map_fitted_device, warn_mapped_to_cpu

__all__ = ["FORMAT_VERSION", "SaveLoadMixin", "load", "register", "registered", "save"]

FORMAT_VERSION = 1
_MAGIC = "skneuro-estimator"
_MODULE_INTERNALS = frozenset(vars(nn.Module()).keys())


_ALLOWED: dict[str, dict[str, type]] = {"estimator": {}, "module": {}, "object": {}}


def register(*, estimators=(), modules=(), objects=()) -> None:
    """Allow classes to be named in estimator files (each family calls this for its own).

    A file can only rebuild classes registered here (plus torch.nn's layers and
    containers): ``estimators`` are scikit-learn estimators, ``modules`` torch modules
    rebuilt structurally, ``objects`` plain-value objects (their attributes are numbers,
    strings, arrays and containers of them). Private classes are refused.

    Parameters
    ----------
    estimators, modules, objects : iterable of type

    Examples
    --------
    >>> from skneuro._persist import register, registered
    >>> from skneuro.reduced_rank import ReducedRankModule
    >>> register(modules=[ReducedRankModule])  # what skneuro.reduced_rank does on import
    >>> "skneuro.reduced_rank._modules.ReducedRankModule" in registered()["module"]
    True
    """
    for kind, classes in (("estimator", estimators), ("module", modules), ("object", objects)):
        for cls in classes:
            if not isinstance(cls, type) or cls.__name__.startswith("_"):
                raise TypeError(f"register takes public classes; got {cls!r} as {kind}.")
            if kind == "module" and not issubclass(cls, nn.Module):
                raise TypeError(f"{cls.__name__} is not a torch.nn.Module.")
            _ALLOWED[kind][_qualified(cls)] = cls


def registered() -> dict[str, dict[str, type]]:
    """The classes a file may name, by kind, after every skneuro family has registered its own."""
    import skneuro  # noqa: F401 - importing the package imports (and registers) every family

    modules = dict(_torch_modules())
    modules.update(_ALLOWED["module"])
    return {"estimator": dict(_ALLOWED["estimator"]), "module": modules, "object": dict(_ALLOWED["object"])}


@functools.lru_cache(maxsize=1)
def _torch_modules():
    found = {}
    for name in dir(nn):
        obj = getattr(nn, name)
        if isinstance(obj, type) and issubclass(obj, nn.Module) and obj.__module__.startswith("torch.nn.modules"):
            found[_qualified(obj)] = obj
    return found


def _qualified(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


# ------------------------------------------------------------------ encoding
def _encode(value, where, classes):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.Tensor):
        if isinstance(value, nn.Parameter):
            return {"__parameter__": value.detach(), "requires_grad": value.requires_grad}
        return {"__tensor__": value.detach()}
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            if all(isinstance(v, str) for v in value.flat):  # e.g. feature_names_in_
                return {"__strarray__": [str(v) for v in value.flat], "shape": list(value.shape)}
            raise TypeError(f"cannot save {where}: object arrays other than strings are not plain values.")
        return {"__ndarray__": torch.from_numpy(np.ascontiguousarray(value).copy()), "shape": list(value.shape)}
    if isinstance(value, np.generic):
        return {"__npscalar__": value.dtype.str, "value": value.item()}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, f"{where}[{i}]", classes) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, f"{where}[{i}]", classes) for i, v in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        return {"__set__": [_encode(v, f"{where} item", classes) for v in sorted(value, key=repr)]}
    if isinstance(value, dict):
        return {
            "__dict__": [
                [_encode(k, f"{where} key", classes), _encode(v, f"{where}[{k!r}]", classes)] for k, v in value.items()
            ]
        }
    if isinstance(value, slice):
        return {"__slice__": [value.start, value.stop, value.step]}
    if isinstance(value, torch.device):
        return {"__device__": str(value)}
    if isinstance(value, torch.dtype):
        return {"__dtype__": str(value).removeprefix("torch.")}
    if isinstance(value, np.random.RandomState):
        return {"__randomstate__": _encode(value.get_state(legacy=False), where, classes)}
    if isinstance(value, np.random.Generator):
        return {"__generator__": _encode(value.bit_generator.state, where, classes)}
    if isinstance(value, nn.Module):
        return _encode_module(value, where, classes)
    if _qualified(type(value)) in classes["object"]:
        return {"__object__": _qualified(type(value)), "attrs": _encode(dict(vars(value)), where, classes)}
    raise TypeError(
        f"cannot save {where}: a {type(value).__name__} is not a plain value (numbers, strings, "
        "arrays, containers of them, skneuro objects). Use pickle for such estimators."
    )


def _encode_module(module, where, classes):
    name = _qualified(type(module))
    if name not in classes["module"]:
        raise TypeError(f"cannot save {where}: module class {name} is not one of skneuro's or torch.nn's.")
    state = vars(module)
    for hooks in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks"):
        if state.get(hooks):
            raise TypeError(f"cannot save {where}: {name} has {hooks}, which are code.")
    return {
        "__module__": name,
        "training": module.training,
        "attrs": _encode({k: v for k, v in state.items() if k not in _MODULE_INTERNALS}, where, classes),
        "parameters": _encode(dict(module._parameters), f"{where} parameters", classes),
        "buffers": _encode(dict(module._buffers), f"{where} buffers", classes),
        "non_persistent": sorted(module._non_persistent_buffers_set),
        "children": _encode(dict(module._modules), f"{where} children", classes),
    }


# ------------------------------------------------------------------ decoding
def _decode(value, classes):
    if isinstance(value, list):
        return [_decode(v, classes) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tensor__" in value:
        return value["__tensor__"]
    if "__parameter__" in value:
        return nn.Parameter(value["__parameter__"], requires_grad=bool(value["requires_grad"]))
    if "__strarray__" in value:
        strings = value["__strarray__"]
        if not all(isinstance(v, str) for v in strings):
            raise ValueError("the file holds a string array with non-string entries.")
        array = np.empty(len(strings), dtype=object)
        array[:] = strings
        return array.reshape(value["shape"])
    if "__ndarray__" in value:
        return value["__ndarray__"].detach().cpu().numpy().reshape(value["shape"])
    if "__npscalar__" in value:
        return np.dtype(value["__npscalar__"]).type(value["value"])
    if "__tuple__" in value:
        return tuple(_decode(v, classes) for v in value["__tuple__"])
    if "__set__" in value:
        return {_decode(v, classes) for v in value["__set__"]}
    if "__dict__" in value:
        return {_decode(k, classes): _decode(v, classes) for k, v in value["__dict__"]}
    if "__slice__" in value:
        return slice(*value["__slice__"])
    if "__device__" in value:
        return torch.device(value["__device__"])
    if "__dtype__" in value:
        dtype = getattr(torch, value["__dtype__"], None)
        if not isinstance(dtype, torch.dtype):
            raise ValueError(f"unknown torch dtype {value['__dtype__']!r} in file.")
        return dtype
    if "__randomstate__" in value:
        rs = np.random.RandomState()
        rs.set_state(_decode(value["__randomstate__"], classes))
        return rs
    if "__generator__" in value:
        state = _decode(value["__generator__"], classes)
        bit_generator = getattr(np.random, str(state.get("bit_generator")), None)
        if not (isinstance(bit_generator, type) and issubclass(bit_generator, np.random.BitGenerator)):
            raise ValueError(f"unknown numpy bit generator {state.get('bit_generator')!r} in file.")
        bg = bit_generator()
        bg.state = state
        return np.random.Generator(bg)
    if "__module__" in value:
        return _decode_module(value, classes)
    if "__object__" in value:
        obj = _new(value["__object__"], classes, "object")
        obj.__dict__.update(_attributes(_decode(value["attrs"], classes)))
        return obj
    raise ValueError(f"unrecognised record in file (keys {sorted(value)}).")


def _new(name, classes, kind):
    cls = classes[kind].get(name)
    if cls is None:
        raise ValueError(f"the file names {kind} class {name!r}, which skneuro does not allow there.")
    return cls.__new__(cls)


def _attributes(attrs):
    """Attribute names from a file: plain names only (no dunders)."""
    if not isinstance(attrs, dict) or not all(isinstance(k, str) and not k.startswith("__") for k in attrs):
        raise ValueError("the file holds attribute names that are not plain names.")
    return attrs


def _decode_module(value, classes):
    module = _new(value["__module__"], classes, "module")
    nn.Module.__init__(module)
    for key, attr in _attributes(_decode(value["attrs"], classes)).items():
        object.__setattr__(module, key, attr)
    for key, param in _decode(value["parameters"], classes).items():
        if param is not None and not isinstance(param, nn.Parameter):
            raise ValueError("the file holds a module parameter that is not a tensor.")
        module._parameters[key] = param
    non_persistent = set(value["non_persistent"])
    for key, buf in _decode(value["buffers"], classes).items():
        if buf is not None and not isinstance(buf, torch.Tensor):
            raise ValueError("the file holds a module buffer that is not a tensor.")
        module._buffers[key] = buf
        if key in non_persistent:
            module._non_persistent_buffers_set.add(key)
    for key, child in _decode(value["children"], classes).items():
        if child is not None and not isinstance(child, nn.Module):
            raise ValueError("the file holds a child module that is not a module.")
        module._modules[key] = child
    module.train(bool(value["training"]))
    return module


# ------------------------------------------------------------------ public API
def save(estimator, path):
    """Write an estimator (fitted or not) to ``path`` without pickle.

    Parameters
    ----------
    estimator : skneuro estimator
    path : str or path-like

    Raises
    ------
    TypeError
        If a parameter or attribute holds something other than plain values (a callable,
        a user-defined module class...); such estimators can still be pickled.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from skneuro import load
    >>> from skneuro.reduced_rank import RRLinearRegressor
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.normal(size=(50, 4)), rng.normal(size=(50, 3))
    >>> est = RRLinearRegressor(n_components=2).fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "rr.skneuro")
    >>> est.save(path)
    >>> bool(np.array_equal(load(path).predict(X), est.predict(X)))
    True
    """
    from skneuro import __version__

    classes = registered()
    name = _qualified(type(estimator))
    if name not in classes["estimator"]:
        raise TypeError(
            f"save handles skneuro's estimators of plain values; a {type(estimator).__name__} cannot be saved "
            "without pickle (use pickle for it)."
        )
    state = dict(vars(estimator))
    if "_sklearn_version" not in state:
        import sklearn

        state["_sklearn_version"] = sklearn.__version__
    record = {
        "magic": _MAGIC,
        "format_version": FORMAT_VERSION,
        "skneuro_version": __version__,
        "class": name,
        "state": _encode(state, type(estimator).__name__, classes),
    }
    torch.save(record, os.fspath(path))


def load(path, *, map_location=None):
    """Read an estimator written by :func:`save` (``estimator.save(path)``).

    The file is read with ``torch.load(weights_only=True)``: it can only hold numbers,
    strings, containers and tensors, so loading never runs code. A model fitted on a GPU
    that is not available here is mapped to the CPU with a warning.

    Parameters
    ----------
    path : str or path-like
    map_location : str, torch.device or None
        Where to put the tensors (as in ``torch.load``); None keeps their devices when
        available.

    Returns
    -------
    estimator

    Raises
    ------
    ValueError
        If the file is not a skneuro estimator file, comes from a newer format version,
        or names a class that skneuro does not allow.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import skneuro
    >>> from skneuro.bumps import SumOfBumpsRegressor
    >>> X = np.random.default_rng(0).uniform(-1, 1, size=(60, 2))
    >>> est = SumOfBumpsRegressor(n_bumps=3, max_iter=5, random_state=0).fit(X, X[:, 0] ** 2)
    >>> path = os.path.join(tempfile.mkdtemp(), "bumps.skneuro")
    >>> skneuro.save(est, path)
    >>> again = skneuro.load(path)
    >>> bool(np.array_equal(again.predict(X), est.predict(X)))
    True
    """
    path = os.fspath(path)
    try:
        record = torch.load(path, map_location=map_location, weights_only=True)
        mapped = False
    except RuntimeError as exc:
        if "CUDA" not in str(exc) and "cuda" not in str(exc):
            raise ValueError(f"{path!r} is not a skneuro estimator file: {exc}") from exc
        record = torch.load(path, map_location="cpu", weights_only=True)
        mapped = True
    except Exception as exc:  # noqa: BLE001 - weights_only refusals, truncated files...
        raise ValueError(f"{path!r} is not a skneuro estimator file (or holds more than plain values): {exc}") from exc
    if not isinstance(record, dict) or record.get("magic") != _MAGIC:
        raise ValueError(f"{path!r} is not a skneuro estimator file.")
    version = record.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{path!r} was written in skneuro file format version {version!r} (skneuro "
            f"{record.get('skneuro_version')}); this skneuro reads versions up to {FORMAT_VERSION}. "
            "Upgrade skneuro to read it."
        )
    classes = registered()
    estimator = _new(record.get("class"), classes, "estimator")
    try:
        state = _attributes(_decode(record["state"], classes))
    except (KeyError, TypeError, AttributeError, IndexError, RuntimeError) as exc:
        raise ValueError(f"{path!r} is a malformed skneuro estimator file: {exc!r}") from exc
    device = state.get("device_")
    if device is not None and mapped:
        state["device_"], _ = map_fitted_device(device, "cpu")
        warn_mapped_to_cpu(device)
    elif device is not None and map_location is not None and not callable(map_location):
        if not isinstance(map_location, dict):
            state["device_"], _ = map_fitted_device(device, map_location)
    estimator.__dict__.update(state)
    return estimator


class SaveLoadMixin:
    """``save``/``load`` methods of skneuro's estimators (files read without pickle).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from skneuro.reduced_rank import RRLinearRegressor
    >>> X = np.random.default_rng(0).normal(size=(40, 3))
    >>> est = RRLinearRegressor(n_components=1).fit(X, X[:, :2])
    >>> path = os.path.join(tempfile.mkdtemp(), "rr.skneuro")
    >>> est.save(path)
    >>> RRLinearRegressor.load(path).n_components
    1
    """

    def save(self, path):
        """Write this estimator (fitted or not) to ``path`` without pickle.

        Read it back with :func:`skneuro.load` or ``ClassName.load(path)``; loading never
        runs code (``torch.load(weights_only=True)``). Estimators whose parameters hold
        code (callables, user-defined modules) raise ``TypeError``; pickle them instead.

        Parameters
        ----------
        path : str or path-like
        """
        save(self, path)

    @classmethod
    def load(cls, path, *, map_location=None):
        """Read an estimator of this class written by :meth:`save`.

        Parameters
        ----------
        path : str or path-like
        map_location : str, torch.device or None
            As in ``torch.load``; None keeps the saved devices when available (a missing
            GPU is mapped to the CPU with a warning).

        Returns
        -------
        estimator
        """
        est = load(path, map_location=map_location)
        if not isinstance(est, cls):
            raise TypeError(f"{os.fspath(path)!r} holds a {type(est).__name__}, not a {cls.__name__}.")
        return est

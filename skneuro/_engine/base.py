"""Device, dtype and random-state resolution, numpy/torch conversion and pickling.

Everything an estimator needs to hold a torch module lives here, in one place, so that
``device``, ``dtype`` and ``random_state`` mean the same thing in every estimator.
"""

from __future__ import annotations

import io
import math
import os
import sys
import warnings

import numpy as np
import torch

from ..utils._random import random_seed

__all__ = [
    "TorchEstimatorMixin",
    "warn_user",
    "make_generators",
    "resolve_device",
    "resolve_dtype",
    "to_numpy",
]

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


_SKIPPED_DIRS = tuple(
    os.path.dirname(os.path.dirname(os.path.abspath(path)))
    for path in (__file__,)  # the skneuro package
) + (os.path.dirname(os.path.abspath(__import__("sklearn").__file__)),)


def warn_user(message, category=UserWarning):
    """``warnings.warn`` pointing at the first frame outside skneuro and scikit-learn.

    A warning from deep inside ``fit`` is then reported at the user's ``est.fit(...)`` line.

    Examples
    --------
    >>> import warnings
    >>> from skneuro._engine.base import warn_user
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_user("heads up")
    >>> caught[0].message.args[0]
    'heads up'
    """
    frame = sys._getframe(1)
    level = 2
    while frame is not None and frame.f_code.co_filename.startswith(_SKIPPED_DIRS):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)


def to_numpy(tensor) -> np.ndarray:
    """A float64 numpy copy of a tensor on any device (detached).

    Examples
    --------
    >>> import torch
    >>> from skneuro._engine.base import to_numpy
    >>> to_numpy(torch.ones(2, requires_grad=True)).dtype
    dtype('float64')
    """
    return tensor.detach().cpu().double().numpy()


def resolve_device(device) -> torch.device:
    """Turn the ``device`` parameter into an available :class:`torch.device`.

    Parameters
    ----------
    device : str or torch.device
        ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or ``"auto"`` (CUDA when
        available, else CPU).

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        If the string is not a device or the device is not available here.

    Examples
    --------
    >>> from skneuro._engine.base import resolve_device
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if isinstance(device, torch.device):
        name = str(device)
    elif isinstance(device, str):
        name = device
    else:
        raise TypeError(f"device must be a string such as 'cpu', 'cuda', 'cuda:0' or 'auto'; got {device!r}.")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(
            f"device={device!r} is not a valid device; expected 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto'."
        ) from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} was requested but CUDA is not available on this machine.")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} was requested but only {torch.cuda.device_count()} CUDA device(s) exist."
            )
        return dev
    if dev.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ValueError(f"device={device!r} was requested but MPS is not available on this machine.")
        return dev
    raise ValueError(f"device={device!r} is not supported; expected 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto'.")


def resolve_dtype(dtype) -> torch.dtype:
    """Turn the ``dtype`` parameter (``"float32"`` or ``"float64"``) into a torch dtype.

    Examples
    --------
    >>> from skneuro._engine.base import resolve_dtype
    >>> resolve_dtype("float64")
    torch.float64
    """
    if isinstance(dtype, torch.dtype) and dtype in _DTYPES.values():
        return dtype
    key = np.dtype(dtype).name if isinstance(dtype, type) and issubclass(dtype, np.floating) else dtype
    if key not in _DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64'; got {dtype!r}.")
    return _DTYPES[key]


def make_generators(random_state) -> tuple[torch.Generator, np.random.Generator]:
    """Local torch (CPU) and numpy generators seeded from ``random_state``.

    Neither the global numpy nor the global torch random state is read or changed.

    Parameters
    ----------
    random_state : None, int, numpy.random.RandomState or numpy.random.Generator
        ``None`` draws fresh OS entropy; an int gives reproducible streams; a
        ``RandomState`` or ``Generator`` instance is advanced by one draw.

    Returns
    -------
    torch_generator : torch.Generator
    numpy_generator : numpy.random.Generator

    Examples
    --------
    >>> from skneuro._engine.base import make_generators
    >>> t1, n1 = make_generators(0)
    >>> t2, n2 = make_generators(0)
    >>> bool(n1.random() == n2.random())
    True
    """
    seed = random_seed(random_state)
    torch_gen = torch.Generator(device="cpu")
    torch_gen.manual_seed(seed)
    numpy_gen = np.random.default_rng(seed)
    return torch_gen, numpy_gen


def _dump_torch(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _load_torch(blob: bytes, map_location):
    # Unpickling an estimator already trusts the pickle; the module is our own class.
    return torch.load(io.BytesIO(blob), map_location=map_location, weights_only=False)


def map_fitted_device(device, map_location=None):
    """The ``device_`` of an estimator being unpickled or loaded, and whether it was mapped to the CPU.

    ``device`` is the saved ``device_`` (a device or name, or a list of them). With
    ``map_location`` every entry becomes that device; otherwise each entry is kept where it
    is available here, and all are mapped to the CPU if one is not.

    Returns
    -------
    device_ : torch.device or list of torch.device
        Same form (single or list) as ``device``.
    mapped : bool
        True when a missing device forced the CPU.

    Examples
    --------
    >>> from skneuro._engine.base import map_fitted_device
    >>> map_fitted_device("cpu")
    (device(type='cpu'), False)
    """
    several = isinstance(device, (list, tuple))
    names = [str(d) for d in device] if several else [str(device)]
    mapped = False
    if map_location is not None:
        resolved = [torch.device(map_location)] * len(names)
    else:
        try:
            resolved = [resolve_device(name) for name in names]
        except ValueError:
            resolved, mapped = [torch.device("cpu")] * len(names), True
    return (resolved if several else resolved[0]), mapped


def warn_mapped_to_cpu(saved_device, stacklevel=2):
    """The one warning for an estimator whose fitted device is missing here."""
    several = isinstance(saved_device, (list, tuple))
    shown = repr([str(d) for d in saved_device] if several else str(saved_device))
    warnings.warn(
        f"This estimator was fitted on device {shown}, which is not available here; its tensors are mapped to 'cpu'.",
        UserWarning,
        stacklevel=stacklevel + 1,
    )


class _TorchBlob:
    """Pickle stand-in for a torch object, serialised with ``torch.save``."""

    def __init__(self, obj):
        self.blob = _dump_torch(obj)


class TorchEstimatorMixin:
    """Mixin for estimators that hold torch modules in fitted attributes.

    Pickling stores torch modules and tensors with ``torch.save``; unpickling on a
    machine where the fitted device is missing maps them to the CPU, sets
    ``device_`` accordingly and warns.
    """

    def _engine_options(self, **overrides) -> dict:
        """The common training parameters as :func:`~skneuro._engine.fit_module` keywords."""
        options = {
            name: getattr(self, name)
            for name in (
                "solver",
                "max_iter",
                "learning_rate",
                "batch_size",
                "chunk_size",
                "tol",
                "n_iter_no_change",
                "verbose",
                "callback",
            )
        }
        options.update(overrides)
        return options

    def __sklearn_is_fitted__(self) -> bool:
        # ``module_`` is set last, together with the other fitted attributes.
        return hasattr(self, "module_")

    def _validation_split(self, n, unit="samples"):
        """``(train, validation)`` sorted index arrays of ``n`` rows, or ``(None, None)`` without early stopping.

        The split has a random stream of its own from ``random_state``: same seed, same
        split, and the training draws are those of a fit on the training rows alone.
        """
        if not getattr(self, "early_stopping", False):
            return None, None
        n_val = math.ceil(self.validation_fraction * n)
        if n_val < 1 or n - n_val < 2:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} holds out {n_val} of {n} {unit}, leaving "
                f"{n - n_val} for training; early stopping needs at least 1 held out and 2 for training."
            )
        order = make_generators(self.random_state)[1].permutation(n)
        return np.sort(order[n_val:]), np.sort(order[:n_val])

    def _store_validation(self, result=None):
        """``validation_scores_`` and ``best_validation_score_`` (None without early stopping)."""
        self.validation_scores_ = None if result is None else result.validation_scores
        self.best_validation_score_ = None if result is None else result.best_validation_score

    def _resolve_devices_dtype(self):
        """``([torch.device, ...], torch.dtype)`` of the ``device`` (one or a list) and ``dtype`` parameters.

        Nothing is stored: estimators set ``device_`` with their other fitted attributes
        once a fit has succeeded.
        """
        names = list(self.device) if isinstance(self.device, (list, tuple)) else [self.device]
        if not names:
            raise ValueError("device must not be an empty list.")
        devices = [resolve_device(name) for name in names]
        dtype = resolve_dtype(self.dtype)
        from ..utils._validation import check_param_ranges

        check_param_ranges(self, str(dtype).removeprefix("torch."))
        if dtype == torch.float64 and any(d.type == "mps" for d in devices):
            raise ValueError("dtype='float64' is not supported on device 'mps'; use dtype='float32'.")
        return devices, dtype

    def _resolve_device_dtype(self):
        """``(torch.device, torch.dtype)`` for estimators that run on one device."""
        devices, dtype = self._resolve_devices_dtype()
        return devices[0], dtype

    def __getstate__(self):
        state = super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__.copy()
        state = dict(state)
        for key, value in list(state.items()):
            if isinstance(value, (torch.nn.Module, torch.Tensor)):
                state[key] = _TorchBlob(value)
        device = state.get("device_")
        if isinstance(device, torch.device):
            state["device_"] = str(device)
        elif isinstance(device, (list, tuple)):
            state["device_"] = [str(d) for d in device]
        return state

    def __setstate__(self, state):
        state = dict(state)
        map_location = None
        saved = state.get("device_")
        if saved is not None:
            state["device_"], mapped = map_fitted_device(saved)
            if mapped:
                warn_mapped_to_cpu(saved, stacklevel=2)
                map_location = "cpu"
        for key, value in list(state.items()):
            if isinstance(value, _TorchBlob):
                if not isinstance(getattr(value, "blob", None), bytes):
                    raise TypeError(f"pickled estimator state {key!r} is malformed (its torch blob is not bytes).")
                state[key] = _load_torch(value.blob, map_location)
        if hasattr(super(), "__setstate__"):
            super().__setstate__(state)
        else:
            self.__dict__.update(state)


def early_stopping_constraints():
    """``_parameter_constraints`` of ``early_stopping`` and ``validation_fraction``."""
    from numbers import Real

    from sklearn.utils._param_validation import Interval

    return {"early_stopping": ["boolean"], "validation_fraction": [Interval(Real, 0, 1, closed="neither")]}


def engine_parameter_constraints():
    """``_parameter_constraints`` entries shared by every torch-backed estimator."""
    from numbers import Integral, Real

    from sklearn.utils._param_validation import Interval, StrOptions

    return {
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [None, Interval(Real, 0, None, closed="neither"), tuple, list],
        "batch_size": [None, Interval(Integral, 1, None, closed="left")],
        "chunk_size": [None, Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "warm_start": ["boolean"],
        "device": [str, torch.device],
        "dtype": [StrOptions({"float32", "float64"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "callback": [None, callable],
    }

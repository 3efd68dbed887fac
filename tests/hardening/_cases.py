"""Helpers of the bad-input tests: tiny valid data, estimator factories and the outcome contract.

The contract (one call of ``fit``/``predict``/``score``/``transform`` on malformed input):
success with finite outputs, or a ``ValueError``/``TypeError`` whose message names the
offending argument, parameter or field; never another exception type, never a hang, and
the caller's arrays are never modified.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import math
import re
import signal
import threading
import warnings

import numpy as np
import torch
from hypothesis import event
from hypothesis.errors import InvalidArgument

from skneuro.bumps import SumOfBumpsRegressor
from skneuro.datasets import make_multi_subject_latent_regression, make_reduced_rank_regression
from skneuro.latent_regression import MultiSubjectLatentRegressor, SubjectData
from skneuro.reduced_rank import RRExpRegressor, RRLinearRegressor, RRReluRegressor, RRSigmoidRegressor
from skneuro.rnn import MultiRegionRNNRegressor, RateRNNRegressor

HANG_SECONDS = 30  # one call on this tiny data takes milliseconds
COUNTS = collections.Counter()  # generated cases per estimator (reported at module teardown)

# ------------------------------------------------------------------------ data
N, D, P = 20, 3, 2  # 2-D: samples, features, targets
TRIALS, STEPS, N_IN, N_OUT = 4, 5, 2, 2  # 3-D trials


def data_2d():
    X, y = make_reduced_rank_regression(n_samples=N, n_features=D, n_targets=P, n_components=1, random_state=0)
    return X, y


def data_3d():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(TRIALS, STEPS, N_IN))
    y = np.cumsum(X, axis=1) * 0.1
    mask = np.ones((TRIALS, STEPS, N_OUT))
    mask[:, 0] = 0.0
    return X, y, mask


def data_subjects():
    """Two subjects: s0 (4 inputs, 4 outputs), s1 (5 inputs, 3 outputs), 15 samples, q = 2."""
    return make_multi_subject_latent_regression(
        2, 15, n_inputs=(4, 5), n_outputs=(3, 4), n_properties=2, random_state=0
    )


def region_config():
    """Two regions (E, I) and one 2-unit input: n_rec = 5, n_in = 2."""
    return {
        "regions": [
            {"name": "a", "n_units": 3, "sign": "excitatory", "base_firing": 0.1, "learnable_bias": True},
            {"name": "b", "n_units": 2, "sign": "inhibitory", "parent": "P", "init": 0.2},
        ],
        "inputs": [{"name": "u", "n_units": 2, "sign": "excitatory"}],
        "connections": [
            {"source": "u", "target": "a"},
            {"source": "a", "target": "a", "density": 0.5},
            {"source": "a", "target": "P"},
            {"source": "b", "target": "a"},
        ],
        "readout": ["a"],
    }


# ------------------------------------------------------------------ estimators
def _make(cls, defaults):
    def factory(**params):
        return cls(**{**defaults, **params})

    factory.cls = cls
    return factory


_RR = {"n_components": 1, "max_iter": 2, "random_state": 0}
_RNN = {"max_iter": 2, "batch_size": 2, "learning_rate": 1e-2, "random_state": 0}
EST_2D = {
    "RRLinearRegressor": _make(RRLinearRegressor, _RR),
    "RRSigmoidRegressor": _make(RRSigmoidRegressor, _RR),
    "RRExpRegressor": _make(RRExpRegressor, _RR),
    "RRReluRegressor": _make(RRReluRegressor, _RR),
    "SumOfBumpsRegressor": _make(SumOfBumpsRegressor, {"n_bumps": 2, "max_iter": 2, "random_state": 0}),
}
EST_3D = {
    "RateRNNRegressor": _make(RateRNNRegressor, {"n_rec": 4, **_RNN}),
    "MultiRegionRNNRegressor": _make(MultiRegionRNNRegressor, {"config": region_config(), **_RNN}),
}
EST_LR = {
    "MultiSubjectLatentRegressor": _make(MultiSubjectLatentRegressor, {"n_bumps": 2, "max_iter": 2, "random_state": 0})
}
ESTIMATORS = {**EST_2D, **EST_3D, **EST_LR}
RR_NAMES = [name for name in EST_2D if name.startswith("RR")]


# -------------------------------------------------------------------- contract
class Hang(Exception):
    """A call ran for longer than HANG_SECONDS."""


@contextlib.contextmanager
def time_limit(seconds=HANG_SECONDS):
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        yield
        return

    def on_alarm(signum, frame):
        raise Hang(f"call did not return within {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def names(message: str, name: str) -> bool:
    """Whether ``message`` names ``name`` as a whole identifier (``_`` may be a space, plural allowed)."""
    pattern = re.escape(name).replace("_", "[_ ]")
    flags = 0 if len(name) == 1 else re.IGNORECASE  # "X" and "x" are different arguments
    return re.search(rf"(?<![A-Za-z0-9_]){pattern}s?(?![A-Za-z0-9_])", message, flags) is not None


def assert_unchanged(before, after, where="input"):
    """Deep comparison of a snapshot with the object the caller still holds (NaN equals NaN)."""
    if isinstance(before, np.ndarray):
        assert isinstance(after, np.ndarray), f"{where} was replaced"
        assert after.dtype == before.dtype and after.shape == before.shape, f"{where} changed dtype or shape"
        if before.dtype == object:
            for i, (b, a) in enumerate(zip(before.ravel(), after.ravel())):
                assert_unchanged(b, a, f"{where}.flat[{i}]")
        else:
            np.testing.assert_array_equal(after, before, err_msg=f"{where} was modified")
    elif isinstance(before, SubjectData):
        for field in ("subject_id", "x", "input_properties", "output_properties", "input_modes", "output_modes"):
            assert_unchanged(getattr(before, field), getattr(after, field), f"{where}.{field}")
    elif isinstance(before, dict):
        assert list(before) == list(after), f"{where} keys changed"
        for key in before:
            assert_unchanged(before[key], after[key], f"{where}[{key!r}]")
    elif isinstance(before, (list, tuple)):
        assert type(before) is type(after) and len(before) == len(after), f"{where} changed length"
        for i, (b, a) in enumerate(zip(before, after)):
            assert_unchanged(b, a, f"{where}[{i}]")
    elif isinstance(before, float) and math.isnan(before):
        assert isinstance(after, float) and math.isnan(after), f"{where} was modified"
    elif isinstance(before, (str, bytes, int, float, complex, bool, type(None), np.generic)):
        assert before == after or (before != before and after != after), f"{where} was modified"
    # other objects (callables, modules, sentinels) compare by identity: nothing to check


def non_finite(out) -> bool:
    if out is None or isinstance(out, (str, torch.nn.Module)) or hasattr(out, "get_params"):
        return False
    if isinstance(out, (list, tuple)):
        return any(non_finite(o) for o in out)
    if isinstance(out, dict):
        return any(non_finite(o) for o in out.values())
    return not np.isfinite(np.asarray(out, dtype=np.float64)).all()


def check(call, *, estimator, expect, inputs=(), require_name=True, nan_ok_if_warned=False, extra=()):
    """Run ``call()`` under the contract; returns "ok" or "error".

    expect : names of which the error message must mention at least one.
    inputs : objects the caller holds, compared with deep copies afterwards.
    require_name : False where the message is known not to name the argument (then only
        the exception type is checked; the xfail tests pin those cases down).
    nan_ok_if_warned : a non-finite score is accepted when a warning says why (sklearn's
        R² of one sample).
    extra : further accepted exception types (FileNotFoundError for a config path).
    """
    COUNTS[estimator] += 1
    snapshots = [copy.deepcopy(obj) for obj in inputs]
    error = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with time_limit():
            try:
                out = call()
            except (ValueError, TypeError, *extra) as exc:
                error = exc
    for i, (before, obj) in enumerate(zip(snapshots, inputs)):
        assert_unchanged(before, obj, f"inputs[{i}]")
    _event(f"{estimator}: {'error' if error is not None else 'success'}")
    if error is not None:
        message = str(error)
        if require_name:
            assert any(names(message, name) for name in expect), (
                f"{type(error).__name__} does not name any of {list(expect)}: {message[:300]!r}"
            )
        return "error"
    if non_finite(out):
        warned = any(not issubclass(w.category, DeprecationWarning) for w in caught)
        assert nan_ok_if_warned and warned, f"silent non-finite output: {out!r}"[:500]
    return "ok"


def _event(label):
    """Tally an outcome in hypothesis' statistics (``--hypothesis-show-statistics``)."""
    try:
        event(label)
    except InvalidArgument:  # outside a hypothesis test
        pass

"""MultiSubjectLatentRegressor on malformed parameters and data: errors name the culprit (issue #9)."""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest
import torch

from skneuro.datasets import make_multi_subject_latent_regression
from skneuro.latent_regression import MultiSubjectLatentRegressor, SubjectData

pytestmark = pytest.mark.filterwarnings("ignore")

FAST = {"n_bumps": 2, "max_iter": 2, "random_state": 0}


@pytest.fixture(scope="module")
def data():
    return make_multi_subject_latent_regression(
        2, 15, n_inputs=(4, 5), n_outputs=(3, 4), n_properties=2, random_state=0
    )


@pytest.fixture(scope="module")
def fitted(data):
    return MultiSubjectLatentRegressor(**FAST).fit(*data)


def _names(message, name):
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", message) is not None


def _wrong_shape(q, k, generator):
    return torch.nn.Linear(q, k + 1)


def _raises(q, k, generator):
    raise ZeroDivisionError("boom")


class _RaisingMapping(torch.nn.Module):
    def forward(self, latents):
        raise KeyError("boom")


class _TensorMapping(torch.nn.Module):
    def forward(self, latents):
        return latents[0]


class _WrongWidthMapping(torch.nn.Module):
    def forward(self, latents):
        return [torch.cat([latents[0], latents[0]], dim=1)]


class _RaisingPredictorModule(torch.nn.Module):
    def forward(self, properties):
        raise IndexError("boom")


BAD_PARAMS = [
    *[("hidden_layer_sizes", v) for v in [(0,), (-1,), (1.5,), ("a",), (True,), [8, 0]]],
    *[("direct_pairs", v) for v in [[1], ("zz",), ((0,),), [(0, 0, 0)], [(0.9, 0.2)], [(True, 0)]]],
    *[("direct_pairs", v) for v in [[(-1, 0)], [(3, 0)]]],
    ("mapping", torch.nn.Linear(2, 2)),
    ("mapping", _RaisingMapping()),
    ("mapping", _TensorMapping()),
    ("mapping", _WrongWidthMapping()),
    ("mode_predictor", _wrong_shape),
    ("mode_predictor", _raises),
    ("mode_predictor", lambda q, k, generator: 3),
    ("mode_predictor", lambda q, k, generator: _RaisingPredictorModule()),
    ("n_components", True),
    ("n_bumps", True),
    ("min_var", 1e39),
    ("min_var", 1e300),
]


@pytest.mark.parametrize(("param", "value"), BAD_PARAMS, ids=[f"{p}-{i}" for i, (p, _) in enumerate(BAD_PARAMS)])
def test_bad_structure_parameters_are_rejected_by_name(data, param, value):
    extra = {"mode_predictor": "mlp"} if param == "hidden_layer_sizes" else {}
    est = MultiSubjectLatentRegressor(**{**FAST, **extra, param: value})
    with pytest.raises((ValueError, TypeError)) as info:
        est.fit(*data)
    assert type(info.value) in (ValueError, TypeError), repr(info.value)
    assert _names(str(info.value), param), str(info.value)


def test_empty_hidden_layer_sizes_and_list_pairs_are_accepted():
    X, y = make_multi_subject_latent_regression(
        2, 15, n_inputs=(4, 4), n_outputs=(4, 4), n_properties=2, random_state=0
    )
    est = MultiSubjectLatentRegressor(**FAST, mode_predictor="mlp", hidden_layer_sizes=[], direct_pairs=[[0, 0]])
    est.fit(X, y)
    assert all(np.isfinite(p).all() for p in est.predict(X))


def _huge_subject(subject, field, value=1e39, subject_id=None):
    (x,), ((R,), (Q,)) = subject.x_groups(), subject.property_groups()
    arrays = {"x": x.copy(), "input_properties": R.copy(), "output_properties": Q.copy()}
    arrays[field].flat[1] = value
    sid = subject.subject_id if subject_id is None else subject_id
    return SubjectData(sid, arrays["x"], arrays["input_properties"], arrays["output_properties"]), arrays


@pytest.mark.parametrize("field", ["x", "input_properties", "output_properties"])
@pytest.mark.parametrize("value", [1e39, -1e20])
def test_data_beyond_float32_is_rejected_at_fit(data, field, value):
    X, y = data
    bad, arrays = _huge_subject(X[0], field, value)
    before = copy.deepcopy(arrays)
    with pytest.raises(ValueError, match=rf"{field}\[0\] of subject 's0'.*float32"):
        MultiSubjectLatentRegressor(**FAST).fit([bad, X[1]], y)
    for key in arrays:
        np.testing.assert_array_equal(arrays[key], before[key])


def test_outputs_beyond_float32_are_rejected_at_fit(data):
    X, y = data
    y0 = y[0].copy()
    y0[2, 1] = -1e39
    with pytest.raises(ValueError, match=r"y\[0\] of subject 's0'.*float32"):
        MultiSubjectLatentRegressor(**FAST).fit(X, [y0, y[1]])
    with pytest.raises(ValueError, match=r"y\[0\] of subject 's0'"):
        MultiSubjectLatentRegressor(**FAST).fit(X, y).fit_subject(X[0], y0)


def test_float64_accepts_what_float32_cannot(data):
    X, y = data
    y0 = y[0].copy()
    y0[2, 1] = 1e39
    est = MultiSubjectLatentRegressor(**FAST, dtype="float64").fit(X, [y0, y[1]])
    assert all(np.isfinite(p).all() for p in est.predict(X))


@pytest.mark.parametrize("method", ["predict", "transform", "score", "predict_modes"])
@pytest.mark.parametrize("field", ["x", "input_properties", "output_properties"])
@pytest.mark.parametrize("subject_id", [None, "new"])
def test_data_beyond_float32_is_rejected_at_predict(data, fitted, method, field, subject_id):
    X, y = data
    bad, _ = _huge_subject(X[0], field, subject_id=subject_id)
    sid = "s0" if subject_id is None else subject_id
    with pytest.raises(ValueError, match=rf"{field}\[0\] of subject '{sid}'"):
        if method == "score":
            fitted.score([bad, X[1]], y)
        elif method == "predict_modes":
            fitted.predict_modes(bad)
        else:
            getattr(fitted, method)([bad])

"""save/load without pickle: exact round trips, no code run on load, clear errors."""

from __future__ import annotations

import os
import pickle
import warnings

import numpy as np
import pytest
import torch

import skneuro
from skneuro import _persist as persist
from skneuro.bumps import SumOfBumpsRegressor
from skneuro.datasets import make_multi_subject_latent_regression, make_reduced_rank_regression
from skneuro.datasets.tasks import PerceptualDiscrimination
from skneuro.latent_regression import MultiSubjectLatentRegressor
from skneuro.reduced_rank import RRExpRegressor, RRLinearRegressor, RRReluRegressor, RRSigmoidRegressor
from skneuro.rnn import MultiRegionRNNRegressor, RateRNNRegressor

CONFIG = {
    "regions": [{"name": "a", "n_units": 5, "sign": "excitatory"}, {"name": "b", "n_units": 3}],
    "inputs": [{"name": "u", "n_units": 2}],
    "connections": [{"source": "u", "target": "a"}, {"source": "a", "target": "b"}, {"source": "b", "target": "a"}],
    "readout": ["b"],
}


def _cases():
    X, y = make_reduced_rank_regression(80, 4, 3, 2, random_state=0)[:2]
    Xs, ys = make_multi_subject_latent_regression(2, n_samples=40, n_inputs=(5, 6), n_outputs=(4, 5), random_state=0)
    Xt, yt, mt, _ = PerceptualDiscrimination(T=100).generate(8, random_state=0)
    return [
        (RRLinearRegressor(n_components=2), (X, y), {}),
        (RRSigmoidRegressor(max_iter=3, random_state=0), (X, y), {}),
        (RRExpRegressor(max_iter=3, random_state=0), (X, np.abs(y)), {}),
        (RRReluRegressor(max_iter=3, random_state=np.random.RandomState(3)), (X, y), {}),
        (SumOfBumpsRegressor(max_iter=3, random_state=0), (X[:, :2], y[:, 0]), {}),
        (MultiSubjectLatentRegressor(n_bumps=3, max_iter=3, random_state=np.random.RandomState(1)), (Xs, ys), {}),
        (RateRNNRegressor(n_rec=6, max_iter=1, random_state=0), (Xt, yt), {"sample_weight": mt}),
        (MultiRegionRNNRegressor(CONFIG, max_iter=1, random_state=0), (Xt, yt), {"sample_weight": mt}),
    ]


CASES = _cases()
IDS = [type(c[0]).__name__ for c in CASES]


def _equal(a, b):
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and np.array_equal(a, b)
    return a == b


@pytest.fixture(scope="module")
def fitted():
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for est, (X, y), kw in CASES:
            out.append((est.fit(X, y, **kw), X, y, kw))
    return out


@pytest.mark.parametrize("index", range(len(CASES)), ids=IDS)
def test_round_trip_is_exact(fitted, tmp_path, index):
    est, X, y, kw = fitted[index]
    path = tmp_path / "model.skneuro"
    est.save(path)
    back = type(est).load(path)
    assert type(back) is type(est)
    assert _equal(back.predict(X), est.predict(X))
    assert back.get_params().keys() == est.get_params().keys()
    for name, value in vars(est).items():
        if name.endswith("_") and not name.startswith("_") and name != "module_":
            assert _equal(getattr(back, name), value), name
    for (n1, p1), (n2, p2) in zip(est.module_.state_dict().items(), back.module_.state_dict().items()):
        assert n1 == n2 and torch.equal(torch.nan_to_num(p1, nan=7.0), torch.nan_to_num(p2, nan=7.0))
    if hasattr(est, "transform"):
        assert np.array_equal(back.transform(X), est.transform(X))
    # the loaded estimator trains on (warm start) exactly like the original
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if "max_iter" in est.get_params() and type(est).__name__ != "RRLinearRegressor":
            a = pickle.loads(pickle.dumps(est)).set_params(warm_start=True, max_iter=1).fit(X, y, **kw)
            b = back.set_params(warm_start=True, max_iter=1).fit(X, y, **kw)
            assert _equal(a.predict(X), b.predict(X))


@pytest.mark.parametrize("index", range(len(CASES)), ids=IDS)
def test_unfitted_round_trip_keeps_params(tmp_path, index):
    est = CASES[index][0].__class__(**CASES[index][0].get_params())
    est.save(tmp_path / "unfitted")
    back = skneuro.load(tmp_path / "unfitted")
    for name, value in est.get_params().items():
        if isinstance(value, (np.random.RandomState, np.random.Generator)):
            assert type(getattr(back, name)) is type(value)
            assert back.get_params()[name].random() == value.random()  # same stream state
        else:
            assert _equal(back.get_params()[name], value), name
    assert not hasattr(back, "module_")


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned-by-pickle",))


def test_loading_never_runs_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"magic": "skneuro-estimator", "format_version": 1, "payload": _Evil()}, "evil.skneuro")
    with pytest.raises(ValueError, match="not a skneuro estimator file"):
        skneuro.load("evil.skneuro")
    assert not os.path.exists("pwned-by-pickle")


def test_a_file_naming_a_foreign_class_is_refused(fitted, tmp_path):
    est = fitted[0][0]
    est.save(tmp_path / "m")
    record = torch.load(tmp_path / "m", weights_only=True)
    record["class"] = "subprocess.Popen"
    torch.save(record, tmp_path / "m2")
    with pytest.raises(ValueError, match="subprocess.Popen"):
        skneuro.load(tmp_path / "m2")


def test_newer_format_version_is_a_clear_error(fitted, tmp_path):
    fitted[0][0].save(tmp_path / "m")
    record = torch.load(tmp_path / "m", weights_only=True)
    record["format_version"] = persist.FORMAT_VERSION + 1
    torch.save(record, tmp_path / "m")
    with pytest.raises(
        ValueError, match=rf"format version {persist.FORMAT_VERSION + 1}.*up to {persist.FORMAT_VERSION}"
    ):
        skneuro.load(tmp_path / "m")


def test_not_a_skneuro_file(tmp_path):
    (tmp_path / "junk").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="not a skneuro estimator file"):
        skneuro.load(tmp_path / "junk")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other")
    with pytest.raises(ValueError, match="not a skneuro estimator file"):
        skneuro.load(tmp_path / "other")


def test_code_in_parameters_cannot_be_saved(tmp_path):
    est = RateRNNRegressor(callback=lambda epoch, loss: None)
    with pytest.raises(TypeError, match="callback"):
        est.save(tmp_path / "m")


def test_class_load_checks_the_class(fitted, tmp_path):
    fitted[0][0].save(tmp_path / "m")
    with pytest.raises(TypeError, match="RRLinearRegressor, not a RateRNNRegressor"):
        RateRNNRegressor.load(tmp_path / "m")


def test_a_model_saved_on_cuda_loads_on_cpu_with_a_warning(fitted, tmp_path, monkeypatch):
    est = fitted[6][0]
    est.save(tmp_path / "m")
    record = torch.load(tmp_path / "m", weights_only=True)
    real_load = torch.load
    calls = []

    def fake_load(path, map_location=None, weights_only=True):
        calls.append(map_location)
        if map_location is None:  # what torch says on a CPU-only machine for CUDA tensors
            raise RuntimeError(
                "Attempting to deserialize object on a CUDA device but torch.cuda.is_available() is False."
            )
        return real_load(path, map_location=map_location, weights_only=weights_only)

    state = dict(record["state"]["__dict__"])
    record["state"]["__dict__"] = [[k, ({"__device__": "cuda:0"} if k == "device_" else v)] for k, v in state.items()]
    torch.save(record, tmp_path / "m")
    monkeypatch.setattr(torch, "load", fake_load)
    with pytest.warns(UserWarning, match="mapped to 'cpu'"):
        back = skneuro.load(tmp_path / "m")
    assert calls == [None, "cpu"]
    assert back.device_ == torch.device("cpu")
    X = PerceptualDiscrimination(T=100).generate(3, random_state=1)[0]
    assert np.array_equal(back.predict(X), est.predict(X))


def test_a_file_cannot_smuggle_in_a_pickling_helper(fitted, tmp_path):
    """Only estimators, modules and the weight initializers may be named; private helpers never."""
    est = fitted[0][0]
    est.save(tmp_path / "m")
    record = torch.load(tmp_path / "m", weights_only=True)
    pairs = record["state"]["__dict__"]
    blob = {"__ndarray__": torch.zeros(4, dtype=torch.uint8), "shape": [4]}
    pairs.append(["extra_", {"__object__": "skneuro._engine.base._TorchBlob", "attrs": {"__dict__": [["blob", blob]]}}])
    torch.save(record, tmp_path / "m2")
    with pytest.raises(ValueError, match="_TorchBlob"):
        skneuro.load(tmp_path / "m2")
    record = torch.load(tmp_path / "m", weights_only=True)
    record["state"]["__dict__"].append(["__class__", 1])
    torch.save(record, tmp_path / "m3")
    with pytest.raises(ValueError, match="plain names"):
        skneuro.load(tmp_path / "m3")
    record = torch.load(tmp_path / "m", weights_only=True)
    record["class"] = "skneuro.rnn._modules.LeakyRNN"  # a module is not an estimator
    torch.save(record, tmp_path / "m4")
    with pytest.raises(ValueError, match="estimator class"):
        skneuro.load(tmp_path / "m4")


def test_explicit_map_location_sets_the_device(fitted, tmp_path):
    est = fitted[6][0]
    est.save(tmp_path / "m")
    back = skneuro.load(tmp_path / "m", map_location="cpu")
    assert back.device_ == torch.device("cpu")
    assert all(p.device.type == "cpu" for p in back.module_.parameters())


def test_every_public_estimator_and_its_modules_are_registered_by_their_family():
    from sklearn.base import BaseEstimator

    import skneuro

    allowed = persist.registered()
    public = [getattr(skneuro, n) for n in skneuro.__all__ if isinstance(getattr(skneuro, n), type)]
    estimators = [c for c in public if issubclass(c, BaseEstimator) and c is not skneuro.TrialTransformer]
    assert len(estimators) >= 9
    for cls in estimators:
        assert f"{cls.__module__}.{cls.__qualname__}" in allowed["estimator"], cls
    assert "skneuro.rnn._modules.LeakyRNN" in allowed["module"]
    assert "torch.nn.modules.linear.Linear" in allowed["module"]
    assert "skneuro.rnn._initializers.WeightInitializer" in allowed["object"]


def test_register_refuses_private_classes_and_non_modules():
    class _Hidden(torch.nn.Module):
        pass

    with pytest.raises(TypeError, match="public classes"):
        persist.register(modules=[_Hidden])
    with pytest.raises(TypeError, match="not a torch.nn.Module"):
        persist.register(modules=[dict])


def test_the_engine_imports_no_family():
    """The engine trains "a module and a loss": it must not import any model family (or save/load)."""
    import ast
    from pathlib import Path

    families = {"reduced_rank", "bumps", "latent_regression", "rnn", "analysis", "datasets", "plotting", "_persist"}
    engine = Path(persist.__file__).parent / "_engine"
    for path in engine.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                parts = set(node.module.split("."))
                if node.level >= 2 or node.module.startswith("skneuro"):
                    assert not parts & families, f"{path.name} imports {node.module}"


def test_trial_transformer_is_refused_by_save_and_names_pickle():
    from sklearn.decomposition import PCA

    with pytest.raises(TypeError, match="pickle"):
        skneuro.save(skneuro.TrialTransformer(PCA(1)), "unused.skneuro")


def test_an_estimator_fitted_on_a_dataframe_saves_its_feature_names(tmp_path):
    pd = pytest.importorskip("pandas")
    from skneuro.reduced_rank import RRLinearRegressor

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(30, 3)), columns=["a", "b", "c"])
    est = RRLinearRegressor(n_components=1).fit(X, rng.normal(size=(30, 2)))
    est.save(tmp_path / "rr.skneuro")
    again = skneuro.load(tmp_path / "rr.skneuro")
    assert list(again.feature_names_in_) == ["a", "b", "c"] and again.feature_names_in_.dtype == object
    np.testing.assert_array_equal(again.predict(X), est.predict(X))

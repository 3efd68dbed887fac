"""Every public estimator documents every parameter, and has See Also and References sections."""

import importlib
import inspect

import pytest
from numpydoc.docscrape import NumpyDocString
from sklearn.base import BaseEstimator

PACKAGES = ("skneuro", "skneuro.bumps", "skneuro.latent_regression", "skneuro.reduced_rank", "skneuro.rnn")


def _public_estimators():
    found = {}
    for package in PACKAGES:
        module = importlib.import_module(package)
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) and issubclass(obj, BaseEstimator) and not name.startswith("_"):
                found[name] = obj
    return [found[name] for name in sorted(found)]


ESTIMATORS = _public_estimators()


def _doc(cls):
    return NumpyDocString(inspect.getdoc(cls))


def _documented_parameters(doc):
    """``{name: description}``; a combined line ``l1_in, l1_rec : float`` documents each name."""
    out = {}
    for parameter in doc["Parameters"]:
        for name in parameter.name.split(","):
            out[name.strip()] = "\n".join(parameter.desc).strip()
    return out


def test_every_family_is_found():
    names = {cls.__name__ for cls in ESTIMATORS}
    assert {
        "RRLinearRegressor",
        "RRSigmoidRegressor",
        "RRExpRegressor",
        "RRReluRegressor",
        "SumOfBumpsRegressor",
        "MultiSubjectLatentRegressor",
        "RateRNNRegressor",
        "MultiRegionRNNRegressor",
    } <= names


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_every_parameter_is_described(cls):
    documented = _documented_parameters(_doc(cls))
    signature = list(inspect.signature(cls).parameters)
    missing = [name for name in signature if name not in documented]
    empty = [name for name in signature if name in documented and not documented[name]]
    unknown = [name for name in documented if name not in signature]
    assert not missing, f"{cls.__name__}: parameters not documented: {missing}"
    assert not empty, f"{cls.__name__}: parameters without a description: {empty}"
    assert not unknown, f"{cls.__name__}: documented parameters not in the signature: {unknown}"


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_see_also_and_references(cls):
    doc = _doc(cls)
    assert doc["See Also"], f"{cls.__name__} has no See Also section"
    references = "\n".join(doc["References"]).strip()
    assert references, f"{cls.__name__} has no References section"
    for line in doc["References"]:
        if line.startswith(".. ["):
            label = line[len(".. [") : line.index("]")]
            assert f"[{label}]_" in inspect.getdoc(cls), f"{cls.__name__}: reference [{label}] is never cited"


def test_the_check_catches_an_undescribed_parameter():
    class Undocumented(BaseEstimator):
        """An estimator.

        Parameters
        ----------
        alpha, beta : float
            Described together.
        gamma : int
        """

        def __init__(self, alpha=1.0, beta=2.0, gamma=3, delta=4):
            self.alpha, self.beta, self.gamma, self.delta = alpha, beta, gamma, delta

    with pytest.raises(AssertionError, match=r"not documented: \['delta'\]"):
        test_every_parameter_is_described(Undocumented)
    Undocumented.__init__ = lambda self, alpha=1.0, beta=2.0, gamma=3: None
    with pytest.raises(AssertionError, match=r"without a description: \['gamma'\]"):
        test_every_parameter_is_described(Undocumented)

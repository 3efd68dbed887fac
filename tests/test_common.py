"""sklearn's estimator checks over every 2-D estimator of skneuro."""

import ast
import inspect
import re

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skneuro.bumps import SumOfBumpsRegressor
from skneuro.latent_regression import MultiSubjectLatentRegressor
from skneuro.reduced_rank import RRExpRegressor, RRLinearRegressor, RRReluRegressor, RRSigmoidRegressor
from skneuro.rnn import MultiRegionRNNRegressor, RateRNNRegressor
from skneuro.utils.estimator_checks import expected_failed_checks

# Defaults throughout: n_components=2 exceeds n_targets=1 in several checks, which must work.
ESTIMATORS = [
    RRLinearRegressor(),
    RRSigmoidRegressor(),
    RRExpRegressor(),
    RRReluRegressor(),
    # n_bumps=3 fits the checks' smallest data sets; fewer epochs keep the suite fast
    SumOfBumpsRegressor(n_bumps=3, max_iter=50),
]


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def _documented_defaults(doc):
    """``{name: default text}`` from numpydoc lines ``name[, name2] : type, default=value``."""
    out = {}
    for match in re.finditer(r"^\s{4}([\w, ]+) : .*?default=(.+)$", doc, flags=re.MULTILINE):
        names = [n.strip() for n in match.group(1).split(",")]
        values = [v.strip() for v in match.group(2).split(", ")] if len(names) > 1 else [match.group(2).strip()]
        if len(values) == len(names):
            out.update(zip(names, values))
    return out


@pytest.mark.parametrize(
    "cls",
    [
        RRLinearRegressor,
        RRSigmoidRegressor,
        RRExpRegressor,
        RRReluRegressor,
        SumOfBumpsRegressor,
        MultiSubjectLatentRegressor,
        RateRNNRegressor,
        MultiRegionRNNRegressor,
    ],
    ids=lambda c: c.__name__,
)
def test_documented_defaults_match_the_signature(cls):
    """Every ``default=`` in the class docstring is the constructor's default, and no brace is left over."""
    assert "{{" not in cls.__doc__ and "}}" not in cls.__doc__
    assert not re.search(r"^\s*\{\w", cls.__doc__, flags=re.MULTILINE), "unfilled or mis-indented shared block"
    documented = _documented_defaults(cls.__doc__)
    signature = inspect.signature(cls.__init__).parameters
    checked = 0
    for name, text in documented.items():
        if name not in signature or signature[name].default is inspect.Parameter.empty:
            continue
        default = signature[name].default
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            continue  # prose such as "None (0.01 for adam, 1.0 for lbfgs)"
        assert value == default, f"{cls.__name__}.{name}: docstring says {text}, signature has {default!r}"
        checked += 1
    assert checked >= 10


@pytest.mark.parametrize(
    "cls",
    [RRLinearRegressor, SumOfBumpsRegressor, MultiSubjectLatentRegressor, RateRNNRegressor],
    ids=lambda c: c.__name__,
)
def test_verbose_true_is_accepted(cls):
    """sklearn's "verbose" constraint takes booleans; our range checks must not refuse them."""
    from skneuro.utils._validation import check_param_ranges

    check_param_ranges(cls(verbose=True), "float32")
    check_param_ranges(cls(verbose=np.bool_(True)), "float32")

"""sklearn's estimator checks over every 2-D estimator of skneuro."""

import ast
import inspect
import re

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import (
    check_global_output_transform_pandas,
    check_global_set_output_transform_polars,
    check_set_output_transform,
    check_set_output_transform_pandas,
    check_set_output_transform_polars,
    parametrize_with_checks,
)

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


# parametrize_with_checks does not yield the set_output checks (scikit-learn runs them from its
# own test suite), and the pandas/polars ones skip where the library is missing: both together
# let ``transform`` ignore set_output unnoticed. They run here, for every transformer above.
SET_OUTPUT_CHECKS = [
    check_set_output_transform,
    check_set_output_transform_pandas,
    check_global_output_transform_pandas,
    check_set_output_transform_polars,
    check_global_set_output_transform_polars,
]
TRANSFORMERS = [e for e in ESTIMATORS if hasattr(e, "transform")]


@pytest.mark.filterwarnings("ignore:X (has|does not have valid) feature names:UserWarning")  # the checks mix both
@pytest.mark.parametrize("estimator", TRANSFORMERS, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("check", SET_OUTPUT_CHECKS, ids=lambda c: c.__name__)
def test_set_output_transform(estimator, check):
    # the checks compare output containers, not fits: a few epochs are enough
    check(type(estimator).__name__, clone(estimator).set_params(max_iter=20))


def test_latent_regression_transform_is_a_list_outside_set_output():
    """Its transform maps a list of subjects to one array per subject: no table, so no set_output."""
    from sklearn import config_context

    from skneuro.datasets import make_multi_subject_latent_regression

    X, y = make_multi_subject_latent_regression(2, n_samples=30, n_inputs=(4, 5), n_outputs=(3, 4), random_state=0)
    est = MultiSubjectLatentRegressor(n_bumps=2, max_iter=2, random_state=0).fit(X, y)
    assert not hasattr(est, "set_output") and not hasattr(est, "get_feature_names_out")
    latents = est.transform(X)
    assert isinstance(latents, list) and [z.shape for z in latents] == [(30, 2), (30, 2)]
    pytest.importorskip("pandas")
    with config_context(transform_output="pandas"):
        assert all(isinstance(z, np.ndarray) for z in est.transform(X))


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

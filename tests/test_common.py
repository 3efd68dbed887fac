"""sklearn's estimator checks over every 2-D estimator of skneuro."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skneuro.bumps import SumOfBumpsRegressor
from skneuro.reduced_rank import RRExpRegressor, RRLinearRegressor, RRReluRegressor, RRSigmoidRegressor
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

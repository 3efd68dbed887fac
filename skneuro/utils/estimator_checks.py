"""The one list of sklearn estimator checks that skneuro estimators are expected to fail.

``tests/test_common.py`` passes this to :func:`sklearn.utils.estimator_checks.parametrize_with_checks`
as ``expected_failed_checks``. At most two entries per estimator, each with its reason.
"""

from __future__ import annotations

__all__ = ["EXPECTED_FAILED_CHECKS", "expected_failed_checks"]

EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {}


def expected_failed_checks(estimator) -> dict[str, str]:
    """Expected failures of ``estimator``'s class (an empty dict for most).

    Examples
    --------
    >>> from skneuro.utils.estimator_checks import expected_failed_checks
    >>> from skneuro.reduced_rank import RRLinearRegressor
    >>> expected_failed_checks(RRLinearRegressor())
    {}
    """
    return dict(EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {}))

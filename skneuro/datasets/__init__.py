"""Simulators with known ground truth (numpy in, numpy out)."""

from ._reduced_rank import make_reduced_rank_regression

__all__ = ["make_reduced_rank_regression"]

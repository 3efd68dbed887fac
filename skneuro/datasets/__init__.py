"""Simulators with known ground truth and cognitive tasks (numpy in, numpy out)."""

from . import tasks
from ._latent_regression import make_multi_subject_latent_regression
from ._reduced_rank import make_reduced_rank_regression

__all__ = ["make_multi_subject_latent_regression", "make_reduced_rank_regression", "tasks"]

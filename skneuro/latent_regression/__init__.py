"""Multi-subject latent regression: shared low-dimensional structure predicted from neuron properties.

:class:`MultiSubjectLatentRegressor` fits the model; :class:`SubjectData` holds one
subject's inputs and neuron properties.
"""

from .._persist import register
from ._data import SubjectData
from ._estimators import MultiSubjectLatentRegressor
from ._modules import (
    IdentityMapping,
    LinearMapping,
    ModePredictorMLP,
    MultiSubjectLatentRegModule,
    SubjectModel,
)

register(
    estimators=[MultiSubjectLatentRegressor],
    modules=[IdentityMapping, LinearMapping, ModePredictorMLP, MultiSubjectLatentRegModule, SubjectModel],
)

__all__ = [
    "IdentityMapping",
    "LinearMapping",
    "ModePredictorMLP",
    "MultiSubjectLatentRegressor",
    "MultiSubjectLatentRegModule",
    "SubjectData",
    "SubjectModel",
]

"""Multi-subject latent regression: shared low-dimensional structure predicted from neuron properties.

This increment provides :class:`SubjectData` and the torch modules of the model; the
estimator ``MultiSubjectLatentRegressor`` is not built yet.
"""

from ._data import SubjectData
from ._modules import (
    IdentityMapping,
    LinearMapping,
    ModePredictorMLP,
    MultiSubjectLatentRegModule,
    SubjectModel,
)

__all__ = [
    "IdentityMapping",
    "LinearMapping",
    "ModePredictorMLP",
    "MultiSubjectLatentRegModule",
    "SubjectData",
    "SubjectModel",
]

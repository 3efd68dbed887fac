"""The shared fitting engine: device/dtype/seed handling and the one training loop."""

from ._steps import GroupedData
from .base import TorchEstimatorMixin, make_generators, resolve_device, resolve_dtype
from .checkpoint import Checkpointer, load_checkpoint
from .fit import FitResult, fit_module, hooked_modules
from .schedules import LearningRateSchedule

__all__ = [
    "Checkpointer",
    "FitResult",
    "GroupedData",
    "LearningRateSchedule",
    "TorchEstimatorMixin",
    "fit_module",
    "hooked_modules",
    "load_checkpoint",
    "make_generators",
    "resolve_device",
    "resolve_dtype",
]

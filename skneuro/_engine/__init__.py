"""The shared fitting engine: device/dtype/seed handling and the one training loop."""

from ._steps import GroupedData
from .base import TorchEstimatorMixin, make_generators, resolve_device, resolve_dtype
from .fit import FitResult, fit_module, hooked_modules
from .schedules import LearningRateSchedule

__all__ = [
    "FitResult",
    "GroupedData",
    "LearningRateSchedule",
    "TorchEstimatorMixin",
    "fit_module",
    "hooked_modules",
    "make_generators",
    "resolve_device",
    "resolve_dtype",
]

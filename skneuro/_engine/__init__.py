"""The shared fitting engine: device/dtype/seed handling and the one training loop."""

from ._steps import GroupedData
from .base import TorchEstimatorMixin, make_generators, resolve_device, resolve_dtype
from .checkpoint import Checkpointer, load_checkpoint
from .fit import FitResult, InitialObjectiveNotFinite, fit_module, held_fixed
from .hooks import TrainingHooks, hooked_modules
from .schedules import LearningRateSchedule

__all__ = [
    "Checkpointer",
    "FitResult",
    "GroupedData",
    "InitialObjectiveNotFinite",
    "LearningRateSchedule",
    "TorchEstimatorMixin",
    "TrainingHooks",
    "fit_module",
    "held_fixed",
    "hooked_modules",
    "load_checkpoint",
    "make_generators",
    "resolve_device",
    "resolve_dtype",
]

"""The engine's training-hook protocol: bounds and gradient perturbations owned by modules.

A module takes part by implementing :class:`TrainingHooks`: the engine calls
``pert_grads(generator)`` once per update after the backward pass and ``bound()`` once
before training and after every optimizer step. The engine knows no module class: any
``torch.nn.Module`` with these two methods is hooked (e.g. the bump modules of
``skneuro.bumps``).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

__all__ = ["Hooks", "TrainingHooks", "hooked_modules"]


@runtime_checkable
class TrainingHooks(Protocol):
    """What a module implements to be hooked by :func:`~skneuro._engine.fit_module`.

    A module may also define a boolean ``perturbs_gradients`` attribute or property:
    ``False`` tells the engine that :meth:`pert_grads` leaves gradients unchanged (then
    full-batch Adam may keep its best evaluated epoch). A module that does not say is
    assumed to perturb them.

    Examples
    --------
    >>> import torch
    >>> from skneuro._engine import TrainingHooks
    >>> class Clamped(torch.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.a = torch.nn.Parameter(torch.tensor([2.0]))
    ...     def bound(self):
    ...         with torch.no_grad():
    ...             self.a.clamp_(max=1.0)
    ...     def pert_grads(self, generator):
    ...         pass
    >>> isinstance(Clamped(), TrainingHooks), isinstance(torch.nn.Linear(1, 1), TrainingHooks)
    (True, False)
    """

    def pert_grads(self, generator: torch.Generator) -> None:
        """Perturb the gradients of the module's parameters with noise drawn from ``generator``."""

    def bound(self) -> None:
        """Clamp the module's parameters into their bounds, in place, without gradient tracking."""


def hooked_modules(module: torch.nn.Module) -> list[torch.nn.Module]:
    """Submodules implementing :class:`TrainingHooks`, without a hooked ancestor.

    Containers of hooked modules delegate to their children, so a hook is never applied
    twice, and a module shared by several parents is hooked once.

    Examples
    --------
    >>> import torch
    >>> from skneuro._engine import hooked_modules
    >>> hooked_modules(torch.nn.Linear(2, 3))
    []
    """
    found, seen = [], set()

    def visit(m):
        if id(m) in seen:
            return
        seen.add(id(m))
        if isinstance(m, TrainingHooks):
            found.append(m)
            return
        for child in m.children():
            visit(child)

    visit(module)
    return found


class Hooks:
    """Calls ``pert_grads(generator)`` and ``bound()`` on the hooked submodules of a module."""

    def __init__(self, module: torch.nn.Module, generator: torch.Generator):
        self.modules = hooked_modules(module)
        self.generator = generator

    @property
    def perturbs(self) -> bool:
        """Whether any hooked module perturbs gradients (a module that does not say is assumed to)."""
        return any(getattr(m, "perturbs_gradients", True) for m in self.modules)

    def after_backward(self):
        for m in self.modules:
            m.pert_grads(self.generator)

    def after_step(self):
        for m in self.modules:
            m.bound()

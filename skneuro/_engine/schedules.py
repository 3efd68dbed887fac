"""Learning-rate schedules: a float, or ``((epoch, lr), ...)`` pairs."""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["LearningRateSchedule"]


class LearningRateSchedule:
    """Piecewise-constant learning rate indexed by epoch.

    Parameters
    ----------
    learning_rate : float, numpy scalar or sequence of (epoch, lr) pairs
        A single positive number is used at every epoch. A sequence of pairs
        sets ``lr`` from ``epoch`` on (until the next pair); the first pair
        must start at epoch 0 and epochs must increase strictly.

    Examples
    --------
    >>> from skneuro._engine.schedules import LearningRateSchedule
    >>> schedule = LearningRateSchedule(((0, 0.1), (10, 0.01)))
    >>> schedule(0), schedule(9), schedule(10), schedule(500)
    (0.1, 0.1, 0.01, 0.01)
    """

    def __init__(self, learning_rate):
        self.pairs = self._parse(learning_rate)

    @staticmethod
    def _check_lr(lr) -> float:
        if isinstance(lr, (bool, np.bool_)) or not isinstance(lr, (numbers.Real, np.floating, np.integer)):
            raise TypeError(f"learning_rate must be a positive float or a sequence of (epoch, lr) pairs; got {lr!r}.")
        lr = float(lr)
        if not np.isfinite(lr) or lr <= 0:
            raise ValueError(f"learning_rate must be positive and finite; got {lr!r}.")
        return lr

    @classmethod
    def _parse(cls, learning_rate) -> tuple[tuple[int, float], ...]:
        if isinstance(learning_rate, (numbers.Real, np.floating, np.integer)) and not isinstance(
            learning_rate, (bool, np.bool_)
        ):
            return ((0, cls._check_lr(learning_rate)),)
        if isinstance(learning_rate, np.ndarray) and learning_rate.ndim == 0:
            return ((0, cls._check_lr(learning_rate.item())),)
        try:
            pairs = [tuple(p) for p in learning_rate]
        except TypeError:
            raise TypeError(
                f"learning_rate must be a positive float or a sequence of (epoch, lr) pairs; got {learning_rate!r}."
            ) from None
        if not pairs:
            raise ValueError("learning_rate: the schedule must contain at least one (epoch, lr) pair.")
        parsed = []
        for pair in pairs:
            if len(pair) != 2:
                raise ValueError(f"learning_rate: each schedule entry must be an (epoch, lr) pair; got {pair!r}.")
            epoch, lr = pair
            if isinstance(epoch, (bool, np.bool_)) or not isinstance(epoch, (numbers.Integral, np.integer)):
                raise TypeError(f"learning_rate: schedule epochs must be integers; got {epoch!r}.")
            parsed.append((int(epoch), cls._check_lr(lr)))
        if parsed[0][0] != 0:
            raise ValueError(f"learning_rate: the first schedule pair must start at epoch 0; got {parsed[0][0]}.")
        epochs = [e for e, _ in parsed]
        if any(b <= a for a, b in zip(epochs, epochs[1:])):
            raise ValueError(f"learning_rate: schedule epochs must increase strictly; got {epochs}.")
        return tuple(parsed)

    def __call__(self, epoch: int) -> float:
        lr = self.pairs[0][1]
        for start, value in self.pairs:
            if epoch >= start:
                lr = value
            else:
                break
        return lr

    def __repr__(self) -> str:
        return f"LearningRateSchedule({self.pairs!r})"

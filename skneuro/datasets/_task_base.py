"""Base class, batch container and choice accuracy of the cognitive tasks (numpy only)."""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Iterator
from numbers import Integral, Real
from typing import NamedTuple

import numpy as np

from ..utils._random import as_generator

__all__ = ["TaskBatch", "Task", "accuracy"]


class TaskBatch(NamedTuple):
    """A batch of trials: inputs, targets, output mask and the draws that made them.

    A named tuple, so ``X, y, mask, trial_params = task.generate(n)`` unpacks it.

    Attributes
    ----------
    X : ndarray of shape (n_trials, n_steps, n_inputs)
        Inputs, noise included.
    y : ndarray of shape (n_trials, n_steps, n_outputs)
        Targets.
    mask : ndarray of shape (n_trials, n_steps, n_outputs)
        1 where the output is trained and scored, 0 elsewhere (pass it to an RNN estimator
        as ``sample_weight``).
    trial_params : dict of str to ndarray of shape (n_trials,)
        The per-trial parameters (see each task).

    Examples
    --------
    >>> from skneuro.datasets.tasks import PerceptualDiscrimination
    >>> X, y, mask, params = PerceptualDiscrimination().generate(4, random_state=0)
    >>> X.shape, y.shape, mask.shape, sorted(params)
    ((4, 200, 2), (4, 200, 2), (4, 200, 2), ['coherence', 'direction', 'onset_time', 'stim_duration'])
    """

    X: np.ndarray
    y: np.ndarray
    mask: np.ndarray
    trial_params: dict


def check_scored_trials(y_true, y_pred, mask):
    """``(y_true, y_pred, mask)`` as float arrays, the mask 3-D (``(n_trials, n_steps, 1)`` or full).

    The shared input check of every task's ``accuracy``: ValueError naming what disagrees.
    """
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    mask = np.asarray(mask, dtype=float)
    if y_true.ndim != 3 or y_pred.shape != y_true.shape:
        raise ValueError(
            "y_true and y_pred must be arrays of the same shape (n_trials, n_steps, n_outputs); "
            f"got {y_true.shape} and {y_pred.shape}."
        )
    if mask.ndim == 2:
        mask = mask[:, :, None]
    if mask.ndim != 3 or mask.shape[:2] != y_true.shape[:2] or mask.shape[2] not in (1, y_true.shape[2]):
        raise ValueError(
            f"mask must have shape (n_trials, n_steps) or (n_trials, n_steps, n_outputs) matching y_true "
            f"{y_true.shape}; got {mask.shape}."
        )
    return y_true, y_pred, mask


def accuracy(y_true, y_pred, mask) -> float:
    """Fraction of trials whose choice matches the target's choice.

    The choice of a trial is the output with the largest time-mean of ``y·mask``
    (PsychRNN's rule). Trials whose mask is all zero hold no decision and are left out
    (PsychRNN counts them correct, both argmaxes being 0).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_trials, n_steps, n_outputs)
        Targets and network outputs.
    mask : array-like of shape (n_trials, n_steps, n_outputs) or (n_trials, n_steps)
        Output mask.

    Returns
    -------
    accuracy : float
        In [0, 1]; nan when no trial has a non-empty mask.

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.datasets.tasks import accuracy
    >>> y = np.zeros((3, 4, 2))
    >>> y[0, 2:, 0] = y[1, 2:, 1] = y[2, 2:, 0] = 1.0
    >>> mask = np.zeros((3, 4))
    >>> mask[:2, 2:] = 1.0  # the third trial has no decision window
    >>> accuracy(y, y, mask), accuracy(y, y[:, :, ::-1], mask)
    (1.0, 0.0)
    """
    y_true, y_pred, mask = check_scored_trials(y_true, y_pred, mask)
    scored = np.any(mask != 0, axis=(1, 2))
    if not scored.any():
        return float("nan")
    truth = np.argmax(np.mean(y_true * mask, axis=1), axis=1)
    chosen = np.argmax(np.mean(y_pred * mask, axis=1), axis=1)
    return float(np.mean(truth[scored] == chosen[scored]))


def _check_positive(name, value):
    if isinstance(value, bool) or not isinstance(value, Real) or not value > 0 or not np.isfinite(value):
        raise ValueError(f"{name} must be a positive finite number; got {value!r}.")


def _check_duration(name, value):
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 <= value < np.inf:
        raise ValueError(f"{name} must be None or a non-negative number of ms; got {value!r}.")


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}.")


class Task:
    """Base class of the tasks: a time grid, a trial sampler and a trial builder.

    A subclass sets ``n_inputs`` and ``n_outputs`` and implements two vectorised methods,
    :meth:`sample_trial_params` and :meth:`build_trials`; :meth:`generate`,
    :meth:`iter_batches` and :meth:`accuracy` come from here.

    Parameters
    ----------
    dt : float, default=10
        Time step in ms.
    tau : float, default=100
        Time constant of the network in ms (the network uses ``alpha = dt/tau``).
    T : float, default=2000
        Trial length in ms; trials have ``n_steps = ⌈T/dt⌉`` steps.

    Attributes
    ----------
    n_inputs, n_outputs : int
        Sizes of the input and output of a network that performs the task.

    Examples
    --------
    A custom task: the output follows the sign of a constant input, scored after 500 ms.

    >>> import numpy as np
    >>> from skneuro.datasets.tasks import Task
    >>> class Sign(Task):
    ...     n_inputs, n_outputs = 1, 2
    ...     def sample_trial_params(self, n_trials, rng):
    ...         return {"sign": rng.choice([-1.0, 1.0], size=n_trials)}
    ...     def build_trials(self, t, params, rng):
    ...         X = np.broadcast_to(params["sign"][:, None, None], (len(params["sign"]), len(t), 1))
    ...         y = np.stack([X[..., 0] > 0, X[..., 0] < 0], axis=-1).astype(float)
    ...         return X.copy(), y, np.broadcast_to(t[:, None] >= 500, y.shape).astype(float)
    >>> task = Sign(dt=20, T=1000)
    >>> X, y, mask, params = task.generate(8, random_state=0)
    >>> X.shape, task.accuracy(y, y, mask)
    ((8, 50, 1), 1.0)
    """

    n_inputs: int
    n_outputs: int

    def __init__(self, *, dt: float = 10, tau: float = 100, T: float = 2000):
        self.dt = dt
        self.tau = tau
        self.T = T

    def __repr__(self):
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return f"{type(self).__name__}({', '.join(f'{n}={getattr(self, n)!r}' for n in names)})"

    @property
    def n_steps(self) -> int:
        """Number of time steps of a trial, ``⌈T/dt⌉``."""
        return int(np.ceil(self.T / self.dt))

    @property
    def alpha(self) -> float:
        """``dt/tau``, the leak of the network that performs the task."""
        return self.dt / self.tau

    @property
    def times(self) -> np.ndarray:
        """The time grid in ms, ``k·dt`` for ``k = 0 .. n_steps − 1``."""
        return np.arange(self.n_steps) * float(self.dt)

    def _validate(self):
        """Check the parameters; subclasses extend it."""
        _check_positive("dt", self.dt)
        _check_positive("tau", self.tau)
        _check_positive("T", self.T)

    def sample_trial_params(self, n_trials: int, rng: np.random.Generator) -> dict:
        """Draw the parameters of ``n_trials`` trials.

        Parameters
        ----------
        n_trials : int
        rng : numpy.random.Generator

        Returns
        -------
        trial_params : dict of str to ndarray of shape (n_trials,)
        """
        raise NotImplementedError(f"{type(self).__name__} must implement sample_trial_params.")

    def build_trials(self, t: np.ndarray, params: dict, rng: np.random.Generator):
        """Build the inputs, targets and mask of the trials ``params`` describes.

        Parameters
        ----------
        t : ndarray of shape (n_steps,)
            The time grid in ms.
        params : dict of str to ndarray of shape (n_trials,)
            As :meth:`sample_trial_params` returns them.
        rng : numpy.random.Generator
            Source of the input noise.

        Returns
        -------
        X : ndarray of shape (n_trials, n_steps, n_inputs)
        y, mask : ndarray of shape (n_trials, n_steps, n_outputs)
        """
        raise NotImplementedError(f"{type(self).__name__} must implement build_trials.")

    @classmethod
    def from_trial_function(cls, n_inputs, n_outputs, trial_params_fn, trial_fn, *, dt=10, tau=100, T=2000) -> Task:
        """A task from PsychRNN-style per-trial and per-time-step functions.

        Meant for porting existing PsychRNN tasks: it calls Python functions once per trial
        and once per (trial, step), so it is far slower than a vectorised subclass.

        Parameters
        ----------
        n_inputs, n_outputs : int
        trial_params_fn : callable
            ``trial_params_fn(trial_index, rng) -> dict`` of scalars for one trial (PsychRNN's
            ``generate_trial_params``; draw randomness from ``rng`` to stay seeded).
        trial_fn : callable
            ``trial_fn(time_ms, params) -> (x_t, y_t, mask_t)`` with arrays of
            ``n_inputs``, ``n_outputs`` and ``n_outputs`` entries (PsychRNN's
            ``trial_function``).
        dt, tau, T : float
            As for :class:`Task`.

        Returns
        -------
        Task

        Examples
        --------
        >>> import numpy as np
        >>> from skneuro.datasets.tasks import Task
        >>> task = Task.from_trial_function(
        ...     1, 1, lambda i, rng: {"level": rng.uniform()},
        ...     lambda t, p: (np.array([p["level"]]), np.array([p["level"]]), np.ones(1)),
        ...     dt=10, T=100)
        >>> batch = task.generate(3, random_state=0)
        >>> batch.X.shape, bool(np.array_equal(batch.X, batch.y))
        ((3, 10, 1), True)
        """
        return _TrialFunctionTask(n_inputs, n_outputs, trial_params_fn, trial_fn, dt=dt, tau=tau, T=T)

    def generate(self, n_trials: int, random_state=None) -> TaskBatch:
        """Generate a batch of trials.

        Parameters
        ----------
        n_trials : int
            Number of trials.
        random_state : int, numpy Generator, RandomState or None, default=None
            Seeds the draws; the global numpy random state is neither read nor changed.

        Returns
        -------
        batch : TaskBatch
            ``X``, ``y``, ``mask`` and ``trial_params``.

        Examples
        --------
        >>> from skneuro.datasets.tasks import DelayedDiscrimination
        >>> batch = DelayedDiscrimination().generate(16, random_state=0)
        >>> batch.X.shape, batch.mask.shape
        ((16, 200, 2), (16, 200, 2))
        """
        _check_int("n_trials", n_trials, 1)
        self._validate()
        return self._generate(n_trials, as_generator(random_state))

    def iter_batches(self, batch_size: int, random_state=None) -> Iterator[TaskBatch]:
        """An endless stream of batches of fresh trials.

        Parameters
        ----------
        batch_size : int
            Trials per batch.
        random_state : int, numpy Generator, RandomState or None, default=None
            Seeds the whole stream.

        Yields
        ------
        batch : TaskBatch

        Examples
        --------
        >>> from itertools import islice
        >>> from skneuro.datasets.tasks import PerceptualDiscrimination
        >>> batches = PerceptualDiscrimination().iter_batches(32, random_state=0)
        >>> [batch.X.shape for batch in islice(batches, 2)]
        [(32, 200, 2), (32, 200, 2)]
        """
        _check_int("batch_size", batch_size, 1)
        self._validate()
        rng = as_generator(random_state)
        return (self._generate(batch_size, rng) for _ in itertools.repeat(None))

    def accuracy(self, y_true, y_pred, mask) -> float:
        """Fraction of correct choices; see :func:`skneuro.datasets.tasks.accuracy`.

        Parameters
        ----------
        y_true, y_pred : array-like of shape (n_trials, n_steps, n_outputs)
        mask : array-like of shape (n_trials, n_steps, n_outputs) or (n_trials, n_steps)

        Returns
        -------
        accuracy : float

        Examples
        --------
        >>> from skneuro.datasets.tasks import PerceptualDiscrimination
        >>> task = PerceptualDiscrimination()
        >>> X, y, mask, _ = task.generate(8, random_state=0)
        >>> task.accuracy(y, y, mask)
        1.0
        """
        return accuracy(y_true, y_pred, mask)

    def _generate(self, n_trials, rng):
        params = self.sample_trial_params(n_trials, rng)
        X, y, mask = self.build_trials(self.times, params, rng)
        return TaskBatch(X, y, mask, params)


class _TrialFunctionTask(Task):
    """A :class:`Task` whose trials come from per-trial and per-step Python functions."""

    def __init__(self, n_inputs, n_outputs, trial_params_fn, trial_fn, *, dt=10, tau=100, T=2000):
        super().__init__(dt=dt, tau=tau, T=T)
        _check_int("n_inputs", n_inputs, 1)
        _check_int("n_outputs", n_outputs, 1)
        if not callable(trial_params_fn) or not callable(trial_fn):
            raise TypeError("trial_params_fn and trial_fn must be callables.")
        self.n_inputs, self.n_outputs = int(n_inputs), int(n_outputs)
        self.trial_params_fn, self.trial_fn = trial_params_fn, trial_fn

    def __repr__(self):
        return f"Task.from_trial_function(n_inputs={self.n_inputs}, n_outputs={self.n_outputs}, T={self.T})"

    def sample_trial_params(self, n_trials, rng):
        trials = [dict(self.trial_params_fn(i, rng)) for i in range(n_trials)]
        return {key: np.array([trial[key] for trial in trials]) for key in trials[0]}

    def build_trials(self, t, params, rng):
        n_trials = len(next(iter(params.values()))) if params else 0
        X = np.zeros((n_trials, len(t), self.n_inputs))
        y = np.zeros((n_trials, len(t), self.n_outputs))
        mask = np.zeros((n_trials, len(t), self.n_outputs))
        for i in range(n_trials):
            trial = {key: value[i] for key, value in params.items()}
            for k, time in enumerate(t):
                x_t, y_t, m_t = self.trial_fn(float(time), trial)
                X[i, k], y[i, k], mask[i, k] = x_t, y_t, m_t
        return X, y, mask

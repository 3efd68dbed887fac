"""Several tasks in one batch, told apart by rule inputs (numpy only)."""

from __future__ import annotations

from numbers import Real

import numpy as np

from ._task_base import Task, TaskBatch

__all__ = ["MultiTask"]


class MultiTask(Task):
    """Trials of several tasks mixed in one batch, each flagged by a rule input.

    The multi-task training of Yang et al. (2019): one network, many tasks, a one-hot rule
    input telling it which task a trial belongs to. Task ``k`` writes its inputs to the first
    ``tasks[k].n_inputs`` input channels and its outputs to the first ``tasks[k].n_outputs``
    output channels, so the tasks share channels by index: ``X`` has
    ``max_k n_inputs_k + n_tasks`` channels, the last ``n_tasks`` being the rule channels
    (channel ``max_k n_inputs_k + k`` is 1 at every step of task k's trials, 0 otherwise),
    and ``y`` and ``mask`` have ``max_k n_outputs_k`` channels. Output channels a task does
    not use have target 0 and mask 0 in its trials. Trials are padded at the end with zeros
    (mask 0) to the longest one.

    Parameters
    ----------
    tasks : sequence of Task
        The tasks (the project's tasks, :class:`NeuroGymTask`, custom subclasses). They must
        share ``dt`` and ``T``.
    weights : sequence of float or None, default=None
        Share of each task's trials (normalised to sum 1); None gives equal shares. A batch
        of n trials holds ``⌊n·w_k⌋`` trials of task k, the remaining few drawn at random
        with probabilities ``w``, in shuffled order.

    Attributes
    ----------
    n_inputs : int
        ``max_k n_inputs_k + n_tasks``.
    n_outputs : int
        ``max_k n_outputs_k``.
    dt, tau, T : float
        Those of the first task.

    See Also
    --------
    NeuroGymTask

    Notes
    -----
    ``trial_params["task"]`` holds each trial's task index. The other entries are the union of
    the tasks' trial parameters: a key that several tasks draw holds each trial's value from
    its own task; trials of a task without the key hold nan (None for non-numeric entries).

    References
    ----------
    Yang, G. R., Joglekar, M. R., Song, H. F., Newsome, W. T. and Wang, X.-J. (2019). Task
    representations in neural networks trained to perform many cognitive tasks. Nature
    Neuroscience 22(2), 297-306.

    Examples
    --------
    >>> from skneuro.datasets.tasks import DelayedDiscrimination, MultiTask, PerceptualDiscrimination
    >>> task = MultiTask([PerceptualDiscrimination(T=1000), DelayedDiscrimination(T=1000)])
    >>> X, y, mask, params = task.generate(10, random_state=0)
    >>> X.shape, y.shape, sorted(params["task"].tolist())
    ((10, 100, 4), (10, 100, 2), [0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    >>> task.accuracy(y, y, mask, params["task"]).tolist()
    [1.0, 1.0]
    """

    def __init__(self, tasks, weights=None):
        self.tasks = tasks
        self.weights = weights

    def __repr__(self):
        return f"MultiTask(tasks={list(self.tasks)!r}, weights={self.weights!r})"

    @property
    def n_inputs(self) -> int:
        return max(task.n_inputs for task in self.tasks) + len(self.tasks)

    @property
    def n_outputs(self) -> int:
        return max(task.n_outputs for task in self.tasks)

    @property
    def dt(self):
        return self.tasks[0].dt

    @property
    def tau(self):
        return self.tasks[0].tau

    @property
    def T(self):
        return self.tasks[0].T

    @property
    def n_steps(self):
        return self.tasks[0].n_steps

    def _validate(self):
        tasks = self.tasks
        if isinstance(tasks, Task) or not isinstance(tasks, list | tuple) or not tasks:
            raise ValueError(f"tasks must be a non-empty list of Task instances; got {tasks!r}.")
        for k, task in enumerate(tasks):
            if not isinstance(task, Task):
                raise TypeError(f"tasks[{k}] must be a Task (skneuro.datasets.tasks); got {type(task).__name__}.")
            task._validate()
        first = tasks[0]
        for name in ("dt", "T"):
            for task in tasks[1:]:
                if getattr(task, name) != getattr(first, name):
                    raise ValueError(
                        f"tasks must share {name}: {first!r} has {name}={getattr(first, name)!r} but {task!r} has "
                        f"{name}={getattr(task, name)!r}."
                    )
        self._shares()

    def _shares(self):
        n_tasks = len(self.tasks)
        if self.weights is None:
            return np.full(n_tasks, 1.0 / n_tasks)
        weights = self.weights
        if (
            isinstance(weights, str)
            or np.ndim(weights) != 1
            or len(weights) != n_tasks
            or not all(isinstance(w, Real) and not isinstance(w, bool) for w in weights)
        ):
            raise ValueError(f"weights must be None or {n_tasks} numbers, one per task; got {weights!r}.")
        weights = np.asarray(weights, dtype=float)
        if not (np.all(np.isfinite(weights)) and np.all(weights >= 0) and weights.sum() > 0):
            raise ValueError(f"weights must be finite, non-negative and not all zero; got {self.weights!r}.")
        return weights / weights.sum()

    def _task_of_trials(self, n_trials, rng):
        """Each trial's task index: exact shares ``⌊n·w_k⌋``, the rest drawn, in shuffled order."""
        shares = self._shares()
        counts = np.floor(n_trials * shares).astype(int)
        rest = n_trials - counts.sum()
        if rest:  # fewer than the tasks with a non-zero share, as each leaves a fraction < 1
            counts[rng.choice(len(shares), size=rest, replace=False, p=shares)] += 1
        return rng.permutation(np.repeat(np.arange(len(shares)), counts))

    def _generate(self, n_trials, rng):
        task_of = self._task_of_trials(n_trials, rng)
        counts = np.bincount(task_of, minlength=len(self.tasks))
        batches = {k: task.generate(int(counts[k]), rng) for k, task in enumerate(self.tasks) if counts[k]}
        n_steps = max(batch.X.shape[1] for batch in batches.values())
        n_shared = self.n_inputs - len(self.tasks)
        X = np.zeros((n_trials, n_steps, self.n_inputs))
        y = np.zeros((n_trials, n_steps, self.n_outputs))
        mask = np.zeros_like(y)
        for k, batch in batches.items():
            rows = np.flatnonzero(task_of == k)
            steps, n_in, n_out = batch.X.shape[1], batch.X.shape[2], batch.y.shape[2]
            X[rows, :steps, :n_in] = batch.X
            X[rows, :, n_shared + k] = 1.0
            y[rows, :steps, :n_out] = batch.y
            mask[rows, :steps, :n_out] = batch.mask if batch.mask.ndim == 3 else batch.mask[:, :, None]
        return TaskBatch(X, y, mask, self._merge_params(task_of, batches))

    @staticmethod
    def _merge_params(task_of, batches):
        params = {"task": task_of}
        keys = dict.fromkeys(key for batch in batches.values() for key in batch.trial_params if key != "task")
        for key in keys:
            parts = {k: np.asarray(b.trial_params[key]) for k, b in batches.items() if key in b.trial_params}
            numeric = all(part.dtype.kind in "biuf" and part.ndim == 1 for part in parts.values())
            merged = np.full(len(task_of), np.nan) if numeric else np.full(len(task_of), None, dtype=object)
            for k, part in parts.items():
                if numeric:
                    merged[task_of == k] = part
                else:
                    merged[np.flatnonzero(task_of == k)] = list(part)
            params[key] = merged
        return params

    def accuracy(self, y_true, y_pred, mask, task) -> np.ndarray:
        """Accuracy of each task on its own trials, by that task's own rule.

        Parameters
        ----------
        y_true, y_pred : array-like of shape (n_trials, n_steps, n_outputs)
        mask : array-like of shape (n_trials, n_steps, n_outputs) or (n_trials, n_steps)
        task : array-like of int of shape (n_trials,)
            Each trial's task index, ``trial_params["task"]``.

        Returns
        -------
        accuracy : ndarray of shape (n_tasks,)
            Task k's accuracy on its trials, restricted to its own outputs; nan for a task
            with no trial.

        Examples
        --------
        >>> from skneuro.datasets.tasks import DelayedDiscrimination, MultiTask, PerceptualDiscrimination
        >>> multi = MultiTask([PerceptualDiscrimination(T=1000), DelayedDiscrimination(T=1000)])
        >>> X, y, mask, params = multi.generate(20, random_state=0)
        >>> multi.accuracy(y, y[:, :, ::-1], mask, params["task"]).tolist()
        [0.0, 0.0]
        """
        y_true, y_pred, mask = np.asarray(y_true), np.asarray(y_pred), np.asarray(mask)
        task = np.asarray(task)
        if task.shape != y_true.shape[:1]:
            raise ValueError(f"task must hold one task index per trial, shape {y_true.shape[:1]}; got {task.shape}.")
        scores = np.full(len(self.tasks), np.nan)
        for k, sub in enumerate(self.tasks):
            rows = task == k
            if rows.any():
                n_out = sub.n_outputs
                sub_mask = mask[rows][..., :n_out] if mask.ndim == 3 else mask[rows]
                scores[k] = sub.accuracy(y_true[rows][..., :n_out], y_pred[rows][..., :n_out], sub_mask)
        return scores

"""Pieces of one training update: objective evaluation, an Adam epoch, an L-BFGS iteration.

The objective of one update is ``sum(loss(module, *chunk)) / n_batch + penalty(module)``;
``loss`` returns the *sum* of per-sample losses of a chunk, so accumulating chunks gives
exactly the gradient of the unchunked batch.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

__all__ = [
    "AdamEpoch",
    "EpochOutcome",
    "GroupedData",
    "LBFGSStepper",
    "NonFinite",
    "Objective",
    "Validation",
    "all_finite",
    "batch_plan",
    "is_full_batch",
    "make_runner",
    "restore",
    "snapshot",
]


class NonFinite(Exception):
    """Raised inside an update when the objective or a parameter stops being finite."""


class EpochOutcome(NamedTuple):
    """What one call of a runner's ``run()`` (an Adam epoch, an L-BFGS iteration) reports.

    ``loss``: the epoch's objective; ``stalled``: the parameters did not move (L-BFGS found
    no decrease at the working precision); ``evaluated``: the parameters ``loss`` was
    measured at when they are not the current ones (full-batch Adam evaluates before its
    update), else None.
    """

    loss: float
    stalled: bool = False
    evaluated: list | None = None


def make_runner(solver, params, objective, hooks, *, learning_rate, batch_size, generator, clip_grad_norm):
    """The runner of ``solver``: an object whose ``run()`` returns an :class:`EpochOutcome`.

    Every runner has ``optimizer``, ``n_updates``, ``full_batch``, ``first_value`` (the
    objective of the first minibatch at the starting parameters, None where not measured)
    and ``evaluates_before_update`` (its reported objective belongs to the parameters
    before the epoch's update: the last update is then never evaluated).
    """
    if solver == "adam":
        optimizer = torch.optim.Adam(params, lr=learning_rate)
        return AdamEpoch(optimizer, objective, params, hooks, batch_size, generator, clip_grad_norm)
    optimizer = torch.optim.LBFGS(
        params,
        lr=learning_rate,
        max_iter=1,
        max_eval=26,  # with max_iter=1, torch's default max_eval would allow no line search at all
        history_size=20,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-12,
        tolerance_change=1e-14,
    )
    return LBFGSStepper(optimizer, objective, params, hooks)


def snapshot(params):
    return [p.detach().clone() for p in params]


def restore(params, saved):
    with torch.no_grad():
        for p, s in zip(params, saved):
            p.copy_(s)


def all_finite(params) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in params)


class GroupedData:
    """Tensors in groups (e.g. one group per subject), each group with its own sample count.

    The objective of an update is ``Σ_g (n_g / |B_g|) Σ_{t ∈ B_g} loss_t / N``, N = Σ_g n_g: an
    unbiased estimate of the mean per-sample loss over all groups. ``loss`` is called as
    ``loss(module, group_index, *chunk)``.

    Parameters
    ----------
    groups : sequence of sequence of torch.Tensor
        Per group, tensors sharing their first dimension.
    n_total : int or None
        N, the number of samples the losses sum over; default: all rows. Set it when a
        row stands for many samples (e.g. the moments of a whole data set).
    devices : sequence of torch.device or None
        Where each group lives (e.g. subjects spread over GPUs); None: the module's device.

    Examples
    --------
    >>> import torch
    >>> from skneuro._engine import GroupedData
    >>> data = GroupedData([(torch.zeros(10, 2),), (torch.zeros(25, 2),)])
    >>> data.sizes, data.n_total
    ([10, 25], 35)
    """

    def __init__(self, groups, n_total=None, devices=None):
        self.groups = [tuple(g) for g in groups]
        self.devices = None if devices is None else list(devices)
        self.sizes = [int(g[0].shape[0]) for g in self.groups]
        self.n_total = sum(self.sizes) if n_total is None else n_total
        if self.n_total <= 0:
            raise ValueError("GroupedData needs at least one sample.")

    def device_of(self, group, default):
        """The device of a group (``default`` when no devices were given)."""
        return default if self.devices is None else self.devices[group]

    def to(self, device):
        """Groups moved to their devices (all to ``device`` when no devices were given)."""
        groups = [tuple(t.to(self.device_of(g, device)) for t in tensors) for g, tensors in enumerate(self.groups)]
        return GroupedData(groups, n_total=self.n_total, devices=self.devices)


def is_full_batch(data, batch_size) -> bool:
    """Whether every update sees all rows (of every group)."""
    largest = max(data.sizes) if isinstance(data, GroupedData) else int(data[0].shape[0])
    return batch_size is None or batch_size >= largest


def batch_plan(data, batch_size, generator):
    """``(index, weight)`` of each update of one epoch.

    Plain data: ``index`` is a row-index tensor (None: all rows) and ``weight`` its share
    of the rows. Grouped data: an epoch has ``ceil(max_g n_g / batch_size)`` updates, each
    group's shuffled rows split into that many near-equal batches (no row dropped);
    ``index`` is a list of per-group row tensors and ``weight`` is 1 / updates.
    """
    if is_full_batch(data, batch_size):
        return [(None, 1.0)]
    if isinstance(data, GroupedData):
        n_updates = math.ceil(max(data.sizes) / batch_size)
        splits = [torch.tensor_split(torch.randperm(n, generator=generator), n_updates) for n in data.sizes]
        return [([parts[u] for parts in splits], 1.0 / n_updates) for u in range(n_updates)]
    n = int(data[0].shape[0])
    perm = torch.randperm(n, generator=generator)
    return [(perm[i : i + batch_size], min(batch_size, n - i) / n) for i in range(0, n, batch_size)]


class Objective:
    """Evaluates objective and gradient of one batch, chunk by chunk."""

    def __init__(self, module, loss, penalty, data, chunk_size, device):
        self.module = module
        self.loss = loss
        self.penalty = penalty
        self.data = data
        self.chunk_size = chunk_size
        self.device = device
        self.n_finite = 0  # evaluations that returned a finite value

    def __call__(self, index=None) -> float:
        """Accumulate gradients of the batch ``index`` (None = all rows); return its value."""
        if isinstance(self.data, GroupedData):
            value = 0.0
            for g, (tensors, n_g) in enumerate(zip(self.data.groups, self.data.sizes)):
                rows = None if index is None else index[g]
                n_batch = n_g if rows is None else int(rows.shape[0])
                if n_batch:
                    scale = (n_g / n_batch) / self.data.n_total
                    value += self._accumulate(tensors, rows, scale, (g,), self.data.device_of(g, self.device))
        else:
            n_batch = int(self.data[0].shape[0]) if index is None else int(index.shape[0])
            value = self._accumulate(self.data, index, 1.0 / n_batch, (), self.device)
        if self.penalty is not None:
            pen = self.penalty(self.module)
            if torch.is_tensor(pen) and pen.requires_grad:
                if not torch.isfinite(pen):
                    raise NonFinite
                pen.backward()
            value += float(pen.detach()) if torch.is_tensor(pen) else float(pen)
        if not math.isfinite(value):
            raise NonFinite
        self.n_finite += 1
        return value

    def _accumulate(self, tensors, rows, scale, prefix, device) -> float:
        """Backpropagate ``scale * Σ loss`` over the rows (None: all), chunk by chunk."""
        n_batch = int(tensors[0].shape[0]) if rows is None else int(rows.shape[0])
        step = n_batch if self.chunk_size is None else int(self.chunk_size)
        value = 0.0
        for start in range(0, n_batch, max(step, 1)):
            stop = min(start + step, n_batch)
            if rows is None:
                chunk = [t[start:stop] if step < n_batch or not torch.is_tensor(t) else t for t in tensors]
            else:
                part_rows = rows[start:stop]
                chunk = [t[part_rows.to(t.device)] for t in tensors]
            if self.chunk_size is not None:
                chunk = [t.to(device, non_blocking=True) for t in chunk]
            part = self.loss(self.module, *prefix, *chunk) * scale
            if not torch.isfinite(part):
                raise NonFinite
            part.backward()
            value += float(part.detach())
        return value


class Validation:
    """The mean per-sample loss of held-out data at the current parameters (no gradient, chunked).

    A non-finite value scores as ``-inf`` (never the best epoch) instead of stopping the fit.
    """

    def __init__(self, module, loss, data, chunk_size, device):
        self.module, self.loss, self.data = module, loss, data
        self.chunk_size, self.device = chunk_size, device

    def __call__(self) -> float:
        with torch.no_grad():
            if isinstance(self.data, GroupedData):
                total = sum(
                    self._sum(tensors, (g,), self.data.device_of(g, self.device))
                    for g, tensors in enumerate(self.data.groups)
                )
                n = self.data.n_total
            else:
                total, n = self._sum(self.data, (), self.device), int(self.data[0].shape[0])
        value = total / n
        return value if math.isfinite(value) else math.inf

    def _sum(self, tensors, prefix, device) -> float:
        n = int(tensors[0].shape[0])
        step = n if self.chunk_size is None else max(int(self.chunk_size), 1)
        total = 0.0
        for start in range(0, n, max(step, 1)):
            chunk = [t[start : start + step] if step < n or not torch.is_tensor(t) else t for t in tensors]
            if self.chunk_size is not None:
                chunk = [t.to(device, non_blocking=True) for t in chunk]
            total += float(self.loss(self.module, *prefix, *chunk))
        return total


class LBFGSStepper:
    """Runs one L-BFGS iteration per call, re-using the last evaluation when possible.

    torch's L-BFGS evaluates the closure at the start of every ``step``; the line
    search of the previous step has usually evaluated that very point already, so the
    value and gradient are cached by parameter values.
    """

    full_batch = True
    first_value = None
    evaluates_before_update = False

    def __init__(self, optimizer, objective, params, hooks):
        self.optimizer = optimizer
        self.objective = objective
        self.params = params
        self.hooks = hooks
        self._key = None
        self._value = None
        self._grads = None
        self.smallest_move = math.inf
        self.finite_trials = 0
        self.n_updates = 0
        self._start = None
        self._started = False

    def _matches(self) -> bool:
        return self._key is not None and all(torch.equal(p, k) for p, k in zip(self.params, self._key))

    def closure(self):
        if self._matches():
            self._started = True
            for p, g in zip(self.params, self._grads):
                p.grad = None if g is None else g.clone()
            return torch.tensor(self._value, dtype=torch.float64)
        if self._started:
            move = max(float((p.detach() - s).abs().max()) for p, s in zip(self.params, self._start))
            scale = max(float(s.abs().max()) for s in self._start) + 1.0
            self.smallest_move = min(self.smallest_move, move / scale)
        self.optimizer.zero_grad(set_to_none=False)
        try:
            value = self.objective()
            if self._value is not None and value > self._ceiling():
                raise NonFinite  # so far uphill that float32 dot products may overflow
            if not all_finite([p.grad for p in self.params if p.grad is not None]):
                raise NonFinite
        except NonFinite:
            if self._value is None:
                raise
            # A line-search trial point overflowed (value or gradient): report a large finite
            # value with a zero gradient so that the strong-Wolfe search backtracks.
            for p in self.params:
                if p.grad is not None:
                    p.grad.zero_()
            return torch.tensor(self._ceiling(), dtype=torch.float64)
        self.hooks.after_backward()
        self.finite_trials += self._started
        self._started = True
        self._key = snapshot(self.params)
        self._value = value
        self._grads = [None if p.grad is None else p.grad.detach().clone() for p in self.params]
        return torch.tensor(value, dtype=torch.float64)

    def run(self) -> EpochOutcome:
        """One iteration: the objective after it, and whether the parameters stayed put.

        Raises :class:`NonFinite` (parameters restored) when the iteration produced
        non-finite parameters or its line search failed (see :meth:`failed`).
        """
        before = snapshot(self.params)
        try:
            self.step()
            self.hooks.after_step()
            if not all_finite(self.params):
                raise NonFinite
            value = self.value()
        except NonFinite:
            restore(self.params, before)
            raise
        stalled = all(torch.equal(p, b) for p, b in zip(self.params, before))
        if stalled and self.failed():
            raise NonFinite
        self.n_updates += 1
        return EpochOutcome(value, stalled)

    def step(self):
        self.smallest_move = math.inf  # relative size of the smallest line-search trial step
        self.finite_trials = 0  # line-search trials with a finite objective
        self._start = snapshot(self.params)
        self._started = False  # the first closure call of a step evaluates its start point
        self.optimizer.step(self.closure)

    def _ceiling(self) -> float:
        return 1e10 * (abs(self._value) + 1.0)

    def failed(self) -> bool:
        """Whether a step that left the parameters unchanged is a failure, not convergence.

        No trial at all means the gradient vanished, and tiny finite trials without a
        decrease mean none exists at the working precision: both are convergence. Only
        non-finite trials (a loss that became NaN), or trials that never came near the
        start (a huge ``learning_rate``), are failures.
        """
        tried = self.smallest_move < math.inf
        return tried and (self.finite_trials == 0 or self.smallest_move > 1e-4)

    def value(self) -> float:
        """Objective at the current parameters (not counted as a line-search trial)."""
        self._started = False
        with torch.enable_grad():
            return float(self.closure())


class AdamEpoch:
    """One pass of Adam over the data in minibatches.

    Every update snapshots the parameters first: a non-finite objective or parameter
    restores them and raises :class:`NonFinite`.
    """

    def __init__(self, optimizer, objective, params, hooks, batch_size, generator, clip_grad_norm=None):
        self.clip_grad_norm = clip_grad_norm
        self.optimizer = optimizer
        self.objective = objective
        self.params = params
        self.hooks = hooks
        self.batch_size = batch_size
        self.generator = generator
        self.full_batch = is_full_batch(objective.data, batch_size)
        # full batch: an epoch's objective is measured before its single update
        self.evaluates_before_update = self.full_batch
        self.evaluated = None  # parameters at which the last update's objective was evaluated
        self.first_value = None  # objective of the first minibatch at the starting parameters
        self.n_updates = 0

    def run(self) -> EpochOutcome:
        """The epoch's objective: the weighted mean of its updates' objectives.

        Full batch: the one update's objective was evaluated before the update, at the
        parameters reported as ``evaluated``.
        """
        total = 0.0
        for index, weight in batch_plan(self.objective.data, self.batch_size, self.generator):
            before = snapshot(self.params)
            try:
                self.optimizer.zero_grad(set_to_none=True)
                try:
                    value = self.objective(index)
                except NonFinite:
                    # ``before`` is where the objective failed: go back to the last point
                    # whose objective was finite (None: the start, itself non-finite).
                    before = self.evaluated if self.evaluated is not None else before
                    raise
                self.evaluated = before
                if self.first_value is None:
                    self.first_value = value
                self.hooks.after_backward()
                if self.clip_grad_norm is not None:
                    for p in self.params:
                        if p.grad is not None:
                            torch.nn.utils.clip_grad_norm_([p], self.clip_grad_norm)
                self.optimizer.step()
                self.hooks.after_step()
                if not all_finite(self.params):
                    raise NonFinite
            except NonFinite:
                restore(self.params, before)
                raise
            self.n_updates += 1
            total += value * weight
        return EpochOutcome(total, False, self.evaluated if self.full_batch else None)

"""Pieces of one training update: objective evaluation, an Adam epoch, an L-BFGS iteration.

The objective of one update is ``sum(loss(module, *chunk)) / n_batch + penalty(module)``;
``loss`` returns the *sum* of per-sample losses of a chunk, so accumulating chunks gives
exactly the gradient of the unchunked batch.
"""

from __future__ import annotations

import math

import torch

__all__ = ["AdamEpoch", "LBFGSStepper", "NonFinite", "Objective", "all_finite", "restore", "snapshot"]


class NonFinite(Exception):
    """Raised inside an update when the objective or a parameter stops being finite."""


def snapshot(params):
    return [p.detach().clone() for p in params]


def restore(params, saved):
    with torch.no_grad():
        for p, s in zip(params, saved):
            p.copy_(s)


def all_finite(params) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in params)


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

    def __call__(self, index=None, n_batch=None) -> float:
        """Accumulate gradients of the batch ``index`` (None = all rows); return its value."""
        n_total = self.data[0].shape[0]
        n_batch = n_total if index is None else int(index.shape[0])
        step = n_batch if self.chunk_size is None else int(self.chunk_size)
        value = 0.0
        for start in range(0, n_batch, max(step, 1)):
            stop = min(start + step, n_batch)
            if index is None:
                chunk = [t[start:stop] for t in self.data] if step < n_batch else list(self.data)
            else:
                rows = index[start:stop]
                chunk = [t[rows.to(t.device)] for t in self.data]
            if self.chunk_size is not None:
                chunk = [t.to(self.device, non_blocking=True) for t in chunk]
            part = self.loss(self.module, *chunk) / n_batch
            if not torch.isfinite(part):
                raise NonFinite
            part.backward()
            value += float(part.detach())
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


class LBFGSStepper:
    """Runs one L-BFGS iteration per call, re-using the last evaluation when possible.

    torch's L-BFGS evaluates the closure at the start of every ``step``; the line
    search of the previous step has usually evaluated that very point already, so the
    value and gradient are cached by parameter values.
    """

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

    def run(self):
        """One iteration. Returns ``(objective after it, whether the parameters stayed put)``.

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
        return value, stalled

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


def _batches(n, batch_size, generator):
    """Row indices of each minibatch in a fresh random order (None: the full batch)."""
    if batch_size is None or batch_size >= n:
        yield None
        return
    perm = torch.randperm(n, generator=generator)
    for start in range(0, n, batch_size):
        yield perm[start : start + batch_size]


class AdamEpoch:
    """One pass of Adam over the data in minibatches.

    Every update snapshots the parameters first: a non-finite objective or parameter
    restores them and raises :class:`NonFinite`.
    """

    def __init__(self, optimizer, objective, params, hooks, batch_size, generator):
        self.optimizer = optimizer
        self.objective = objective
        self.params = params
        self.hooks = hooks
        self.batch_size = batch_size
        self.generator = generator
        self.n = int(objective.data[0].shape[0])
        self.full_batch = batch_size is None or batch_size >= self.n
        self.evaluated = None  # parameters at which the last update's objective was evaluated
        self.n_updates = 0

    def run(self):
        """Returns the mean objective over the epoch's updates."""
        total = 0.0
        for index in _batches(self.n, self.batch_size, self.generator):
            n_batch = self.n if index is None else int(index.shape[0])
            before = self.evaluated = snapshot(self.params)
            try:
                self.optimizer.zero_grad(set_to_none=True)
                value = self.objective(index)
                self.hooks.after_backward()
                self.optimizer.step()
                self.hooks.after_step()
                if not all_finite(self.params):
                    raise NonFinite
            except NonFinite:
                restore(self.params, before)
                raise
            self.n_updates += 1
            total += value * n_batch
        return total / self.n

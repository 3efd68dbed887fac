"""The one training loop of skneuro.

:func:`fit_module` trains "a module and a loss": it knows nothing about any model family.
The objective of one update is ``sum(loss(module, *chunk)) / n_batch + penalty(module)``,
where ``loss`` returns the *sum* of per-sample losses of a chunk, so accumulating chunks
gives exactly the gradient of the unchunked batch.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import torch
from sklearn.exceptions import ConvergenceWarning

from .schedules import LearningRateSchedule

__all__ = ["FitResult", "fit_module", "hooked_modules"]


@dataclass
class FitResult:
    """What :func:`fit_module` reports about a training run.

    Attributes
    ----------
    loss_curve : list of float
        Training objective per epoch (Adam: mean over the epoch's updates; L-BFGS:
        objective after each iteration).
    n_iter : int
        Epochs (Adam) or iterations (L-BFGS) completed.
    n_updates : int
        Optimizer steps taken.
    stop_reason : str
        ``"converged"``, ``"max_iter"``, ``"diverged"`` or ``"interrupted"``.
    """

    loss_curve: list = field(default_factory=list)
    n_iter: int = 0
    n_updates: int = 0
    stop_reason: str = "max_iter"

    @property
    def converged(self) -> bool:
        return self.stop_reason == "converged"


class _NonFinite(Exception):
    """Raised inside an update when the objective or a parameter stops being finite."""


def hooked_modules(module: torch.nn.Module) -> list[torch.nn.Module]:
    """Submodules that ask for training hooks, without a hooked ancestor.

    A module asks for hooks by defining callable ``pert_grads(generator)`` (called
    after each backward pass) and ``bound()`` (called after each optimizer step and
    once before training). Containers of hooked modules delegate to their children,
    so a hook is never applied twice.

    Examples
    --------
    >>> import torch
    >>> from skneuro._engine.fit import hooked_modules
    >>> hooked_modules(torch.nn.Linear(2, 3))
    []
    """

    def asks(m):
        return callable(getattr(m, "pert_grads", None)) and callable(getattr(m, "bound", None))

    found, seen = [], set()

    def visit(m):
        if id(m) in seen:  # a module shared by several parents is hooked once
            return
        seen.add(id(m))
        if asks(m):
            found.append(m)
            return
        for child in m.children():
            visit(child)

    visit(module)
    return found


def _snapshot(params):
    return [p.detach().clone() for p in params]


def _restore(params, snapshot):
    with torch.no_grad():
        for p, s in zip(params, snapshot):
            p.copy_(s)


def _all_finite(params) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in params)


class _Objective:
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
                raise _NonFinite
            part.backward()
            value += float(part.detach())
        if self.penalty is not None:
            pen = self.penalty(self.module)
            if torch.is_tensor(pen) and pen.requires_grad:
                if not torch.isfinite(pen):
                    raise _NonFinite
                pen.backward()
            value += float(pen.detach()) if torch.is_tensor(pen) else float(pen)
        if not math.isfinite(value):
            raise _NonFinite
        self.n_finite += 1
        return value


def _batches(n, batch_size, generator):
    if batch_size is None or batch_size >= n:
        yield None
        return
    perm = torch.randperm(n, generator=generator)
    for start in range(0, n, batch_size):
        yield perm[start : start + batch_size]


def fit_module(
    module: torch.nn.Module,
    loss,
    data,
    *,
    penalty=None,
    params=None,
    solver: str = "adam",
    max_iter: int = 200,
    learning_rate=0.01,
    batch_size: int | None = None,
    chunk_size: int | None = None,
    tol: float = 1e-4,
    n_iter_no_change: int = 10,
    generator: torch.Generator | None = None,
    verbose: int = 0,
    callback=None,
    log_terms=None,
    warn_not_converged: bool = True,
) -> FitResult:
    """Train ``module`` in place by minimising a per-sample loss plus a penalty.

    Parameters
    ----------
    module : torch.nn.Module
        Holds the parameters. Submodules with ``pert_grads``/``bound`` get the hooks
        described in :func:`hooked_modules`.
    loss : callable
        ``loss(module, *chunk) -> scalar tensor``, the **sum** of per-sample losses.
    data : sequence of torch.Tensor
        Tensors sharing their first dimension (samples). With ``chunk_size=None``
        they are moved to the module's device once; otherwise they stay where they
        are and each chunk is moved when used.
    penalty : callable or None
        ``penalty(module) -> scalar``, added once per update.
    params : list of torch.nn.Parameter or None
        Parameters to optimise; default: every parameter with ``requires_grad``.
    solver : {"adam", "lbfgs"}
        Minibatch Adam, or full-batch L-BFGS with strong-Wolfe line search.
    max_iter : int
        Epochs (Adam) or iterations (L-BFGS).
    learning_rate : float or sequence of (epoch, lr) pairs
        See :class:`~skneuro._engine.schedules.LearningRateSchedule`.
    batch_size : int or None
        Samples per Adam update; None = full batch. Ignored by L-BFGS.
    chunk_size : int or None
        Samples sent to the device at a time; gradients accumulate over chunks and
        equal the unchunked gradient.
    tol, n_iter_no_change : float, int
        Stop when the objective has not improved by at least ``tol`` for
        ``n_iter_no_change`` consecutive epochs.
    generator : torch.Generator or None
        CPU generator for minibatch order and gradient noise.
    verbose : int
        0 silent, 1 progress bar, 2 one log line per epoch.
    callback : callable or None
        ``callback(epoch, loss)`` after each epoch; may raise ``KeyboardInterrupt``.
    log_terms : callable or None
        ``log_terms(module) -> dict`` of extra values printed with ``verbose=2``.
    warn_not_converged : bool
        Emit a :class:`~sklearn.exceptions.ConvergenceWarning` when ``max_iter`` is
        reached before the stopping rule fires.

    Returns
    -------
    FitResult

    Notes
    -----
    A non-finite objective or parameter stops training: the parameters from before
    the failing update are restored and a ``ConvergenceWarning`` is emitted. If the
    very first evaluation is non-finite, a ``ValueError`` is raised. ``KeyboardInterrupt``
    stops training, restores the parameters of the best epoch so far and warns. Full-batch
    Adam evaluates an epoch's objective before its update; it keeps the parameters of the
    best evaluated epoch unless the final ones are better.

    Examples
    --------
    >>> import torch
    >>> from skneuro._engine.fit import fit_module
    >>> lin = torch.nn.Linear(1, 1)
    >>> x = torch.linspace(-1, 1, 50).unsqueeze(1)
    >>> y = 3 * x + 1
    >>> res = fit_module(lin, lambda m, x, y: ((m(x) - y) ** 2).sum(), (x, y),
    ...                  solver="lbfgs", learning_rate=1.0, max_iter=50, tol=1e-12)
    >>> round(lin.weight.item(), 4), round(lin.bias.item(), 4)
    (3.0, 1.0)
    """
    if solver not in ("adam", "lbfgs"):
        raise ValueError(f"solver must be 'adam' or 'lbfgs'; got {solver!r}.")
    if params is None:
        params = [p for p in module.parameters() if p.requires_grad]
    params = list(params)
    schedule = LearningRateSchedule(learning_rate)
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    try:
        device = next(module.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    data = tuple(data)
    if chunk_size is None:
        data = tuple(t.to(device) for t in data)
    n = int(data[0].shape[0])
    hooked = hooked_modules(module)
    for m in hooked:
        m.bound()
    objective = _Objective(module, loss, penalty, data, chunk_size, device)
    result = FitResult()
    if not params:
        return result

    def after_backward():
        for m in hooked:
            m.pert_grads(generator)

    def after_step():
        for m in hooked:
            m.bound()

    if solver == "adam":
        optimizer = torch.optim.Adam(params, lr=schedule(0))
    else:
        optimizer = torch.optim.LBFGS(
            params, lr=schedule(0), max_iter=1, max_eval=26, history_size=20, line_search_fn="strong_wolfe",
            tolerance_grad=1e-12, tolerance_change=1e-14,
        )
    best_loss, best_state, no_improve = math.inf, _snapshot(params), 0
    # full-batch Adam evaluates each epoch's objective at the parameters *before* its update
    full_batch_adam = solver == "adam" and (batch_size is None or batch_size >= n)
    progress = None
    if verbose == 1:
        from tqdm.auto import tqdm

        progress = tqdm(total=max_iter, desc=type(module).__name__, leave=False)

    stalled = False
    step_lbfgs = _LBFGSStepper(optimizer, objective, params, after_backward) if solver == "lbfgs" else None
    try:
        for epoch in range(max_iter):
            for group in optimizer.param_groups:
                group["lr"] = schedule(epoch)
            if solver == "adam":
                total = 0.0
                for index in _batches(n, batch_size, generator):
                    n_batch = n if index is None else int(index.shape[0])
                    before = evaluated = _snapshot(params)
                    try:
                        optimizer.zero_grad(set_to_none=True)
                        value = objective(index)
                        after_backward()
                        optimizer.step()
                        after_step()
                        if not _all_finite(params):
                            raise _NonFinite
                    except _NonFinite:
                        _restore(params, before)
                        raise
                    result.n_updates += 1
                    total += value * n_batch
                epoch_loss = total / n
            else:
                before = _snapshot(params)
                try:
                    step_lbfgs.step()
                    after_step()
                    if not _all_finite(params):
                        raise _NonFinite
                    epoch_loss = step_lbfgs.value()
                except _NonFinite:
                    _restore(params, before)
                    raise
                stalled = all(torch.equal(p, b) for p, b in zip(params, before))
                if stalled and step_lbfgs.failed():
                    raise _NonFinite
                result.n_updates += 1
            result.loss_curve.append(epoch_loss)
            result.n_iter = epoch + 1
            if epoch_loss < best_loss:
                best_state = evaluated if full_batch_adam else _snapshot(params)
            if epoch_loss > best_loss - tol:
                no_improve += 1
            else:
                no_improve = 0
            best_loss = min(best_loss, epoch_loss)
            if progress is not None:
                progress.update(1)
                progress.set_postfix(loss=f"{epoch_loss:.6g}")
            elif verbose >= 2:
                extra = ""
                if log_terms is not None:
                    with torch.no_grad():
                        terms = log_terms(module)
                    extra = "".join(f", {k} {float(v):.6g}" for k, v in terms.items())
                print(f"epoch {epoch + 1}: objective {epoch_loss:.6g}{extra}")
            if callback is not None:
                callback(epoch, epoch_loss)
            if no_improve >= n_iter_no_change or (solver == "lbfgs" and stalled):
                # L-BFGS leaves the parameters unchanged when its line search finds no
                # decrease at the working precision: nothing more can be gained.
                result.stop_reason = "converged"
                break
        if full_batch_adam and result.loss_curve:
            # the last update was never evaluated: keep it only if it beats the best epoch
            try:
                final = objective()
            except _NonFinite:
                final = math.inf
            if final > best_loss:
                _restore(params, best_state)
    except _NonFinite:
        result.stop_reason = "diverged"
        if objective.n_finite == 0:
            raise ValueError(
                "The training objective is not finite at the initial parameters; check the input "
                "data and the initialisation."
            ) from None
        warnings.warn(
            f"Training diverged (non-finite objective or parameters) during epoch {result.n_iter + 1}; "
            "the last finite parameters were restored. Lower learning_rate or check the data.",
            ConvergenceWarning,
            stacklevel=2,
        )
    except KeyboardInterrupt:
        result.stop_reason = "interrupted"
        if result.loss_curve:
            _restore(params, best_state)
        warnings.warn(
            f"Training interrupted after {result.n_iter} epoch(s); the parameters of the best epoch "
            "so far were kept.",
            UserWarning,
            stacklevel=2,
        )
    finally:
        if progress is not None:
            progress.close()
        for p in params:
            p.grad = None
    if result.stop_reason == "max_iter" and warn_not_converged:
        warnings.warn(
            f"Stopped at max_iter={max_iter} before the objective stopped improving by tol={tol}; "
            "increase max_iter or tol.",
            ConvergenceWarning,
            stacklevel=2,
        )
    return result


class _LBFGSStepper:
    """Runs one L-BFGS iteration per call, re-using the last evaluation when possible.

    torch's L-BFGS evaluates the closure at the start of every ``step``; the line
    search of the previous step has usually evaluated that very point already, so the
    value and gradient are cached by parameter values.
    """

    def __init__(self, optimizer, objective, params, after_backward):
        self.optimizer = optimizer
        self.objective = objective
        self.params = params
        self.after_backward = after_backward
        self._key = None
        self._value = None
        self._grads = None
        self.smallest_move = math.inf
        self.finite_trials = 0
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
                raise _NonFinite  # so far uphill that float32 dot products may overflow
            if not _all_finite([p.grad for p in self.params if p.grad is not None]):
                raise _NonFinite
        except _NonFinite:
            if self._value is None:
                raise
            # A line-search trial point overflowed (value or gradient): report a large finite
            # value with a zero gradient so that the strong-Wolfe search backtracks.
            for p in self.params:
                if p.grad is not None:
                    p.grad.zero_()
            return torch.tensor(self._ceiling(), dtype=torch.float64)
        self.after_backward()
        self.finite_trials += self._started
        self._started = True
        self._key = _snapshot(self.params)
        self._value = value
        self._grads = [None if p.grad is None else p.grad.detach().clone() for p in self.params]
        return torch.tensor(value, dtype=torch.float64)

    def step(self):
        self.smallest_move = math.inf  # relative size of the smallest line-search trial step
        self.finite_trials = 0  # line-search trials with a finite objective
        self._start = _snapshot(self.params)
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

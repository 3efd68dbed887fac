"""The one training loop of skneuro.

:func:`fit_module` trains "a module and a loss": it knows nothing about any model family.
The objective of one update is ``sum(loss(module, *chunk)) / n_batch + penalty(module)``,
where ``loss`` returns the *sum* of per-sample losses of a chunk, so accumulating chunks
gives exactly the gradient of the unchunked batch.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field

import torch
from sklearn.exceptions import ConvergenceWarning

from ._steps import GroupedData, LBFGSStepper, NonFinite, Objective, Validation, make_runner, restore, snapshot
from .base import warn_user
from .hooks import Hooks, hooked_modules
from .schedules import LearningRateSchedule

__all__ = ["FitResult", "InitialObjectiveNotFinite", "fit_module", "held_fixed", "hooked_modules"]


class InitialObjectiveNotFinite(ValueError):
    """The training objective is not finite at the starting parameters: nothing can be trained.

    Estimators catch this class (not its message) to say which of their parameters or
    inputs to change.
    """


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
    validation_scores : list of float or None
        With validation data: per epoch, the negative mean per-sample validation loss
        (higher is better, no penalty); None without.
    best_validation_score : float or None
        The best of ``validation_scores``; its epoch's parameters are the ones kept.
    """

    loss_curve: list = field(default_factory=list)
    n_iter: int = 0
    n_updates: int = 0
    stop_reason: str = "max_iter"
    validation_scores: list | None = None
    best_validation_score: float | None = None

    @property
    def converged(self) -> bool:
        return self.stop_reason == "converged"


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
    checkpoint=None,
    resume=None,
    clip_grad_norm: float | None = None,
    validation_data=None,
    validation_loss=None,
) -> FitResult:
    """Train ``module`` in place by minimising a per-sample loss plus a penalty.

    Parameters
    ----------
    module : torch.nn.Module
        Holds the parameters. Submodules implementing
        :class:`~skneuro._engine.hooks.TrainingHooks` get the hooks (see
        :func:`~skneuro._engine.hooks.hooked_modules`).
    loss : callable
        ``loss(module, *chunk) -> scalar tensor``, the **sum** of per-sample losses.
    data : sequence of torch.Tensor or GroupedData
        Tensors sharing their first dimension (samples), or groups of such tensors with
        their own sample counts (:class:`GroupedData`; ``loss`` then also receives the
        group index). With ``chunk_size=None`` they are moved to the module's device
        once; otherwise they stay where they are and each chunk is moved when used.
    penalty : callable or None
        ``penalty(module) -> scalar``, added once per update.
    params : list of torch.nn.Parameter or None
        Parameters to optimise; default: every parameter with ``requires_grad``. The
        module's other parameters are held fixed: they get no gradient during the fit
        (``requires_grad`` is switched off and restored afterwards, also after an error).
        This is skneuro's one mechanism for ``fixed_params``.
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
    clip_grad_norm : float or None
        Adam only: after the gradients of an update are accumulated (and perturbed), each
        parameter's gradient is scaled down separately to at most this norm (PsychRNN's
        per-variable clipping). Ignored by L-BFGS, whose line search needs true gradients.
    checkpoint : Checkpointer or None
        Writes the training state after every ``checkpoint.every``-th epoch.
    resume : dict or None
        A state read by :func:`~skneuro._engine.checkpoint.load_checkpoint`: the module,
        optimizer, generator, history and early-stopping state are restored and training
        continues at the stored epoch, exactly as if it had not stopped.
    validation_data : sequence of torch.Tensor, GroupedData or None
        Held-out data of the same form as ``data``. When given, the validation objective
        (the mean per-sample ``validation_loss``, no penalty, no gradient) is evaluated after
        every epoch; ``n_iter_no_change`` and ``tol`` then count epochs without an
        improvement of the validation score (its negative), and the parameters of the
        best-validation epoch are the ones kept at the end (also after divergence or
        Ctrl-C). The wait grows with the fit: training stops once the epochs without an
        improvement number ``n_iter_no_change`` plus the epochs up to the last
        improvement (``_Monitor.patience_spent``).
    validation_loss : callable or None
        Same signature as ``loss``; default ``loss`` (pass a noise-free version for a
        model whose training loss draws noise).

    Returns
    -------
    FitResult

    Notes
    -----
    A non-finite objective or parameter stops training: the parameters of the best epoch
    so far are restored and a ``ConvergenceWarning`` is emitted; so does an objective that
    ends far above its best (a finite explosion, which the early-stopping rule would
    otherwise report as convergence). If the
    very first evaluation is non-finite, :class:`InitialObjectiveNotFinite` (a
    ``ValueError``) is raised. ``KeyboardInterrupt``
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
    params, fixed = _split_parameters(module, params)
    schedule = LearningRateSchedule(learning_rate)
    generator = torch.Generator().manual_seed(0) if generator is None else generator
    device = next(module.parameters(), torch.empty(0)).device
    data = _place(data, chunk_size, device)
    hooks = Hooks(module, generator)
    hooks.after_step()
    result = FitResult()
    if not params:
        return result
    objective = Objective(module, loss, penalty, data, chunk_size, device)
    runner = make_runner(
        solver,
        params,
        objective,
        hooks,
        learning_rate=schedule(0),
        batch_size=batch_size,
        generator=generator,
        clip_grad_norm=clip_grad_norm,
    )
    validation = None
    if validation_data is not None:
        validation = Validation(
            module,
            loss if validation_loss is None else validation_loss,
            _place(validation_data, chunk_size, device),
            chunk_size,
            device,
        )
    monitor = _Monitor(module, params, result, tol, max_iter, verbose, log_terms, validation)
    start = 0
    if resume is not None:
        start = _resume(resume, module, runner.optimizer, generator, result, monitor, runner)
        monitor.initial_state = snapshot(params)  # "the start" of a resumed run is the checkpoint
    with held_fixed(fixed):
        try:
            _run_epochs(
                runner, schedule, monitor, result, range(start, max_iter), n_iter_no_change, checkpoint, callback
            )
            _settle(runner, monitor, objective, result, hooks)
        except NonFinite:
            _stop_non_finite(objective, monitor, result)
        except KeyboardInterrupt:
            result.stop_reason = "interrupted"
            monitor.restore_best()
            warn_user(
                f"Training interrupted after {result.n_iter} epoch(s); the parameters of the best epoch so far "
                "were kept.",
                UserWarning,
            )
        finally:
            result.n_updates = runner.n_updates
            monitor.close()
            for p in params:
                p.grad = None
    if result.stop_reason == "max_iter" and warn_not_converged:
        warn_user(
            f"Stopped at max_iter={max_iter} before the objective stopped improving by tol={tol}; "
            "increase max_iter or tol.",
            ConvergenceWarning,
        )
    return result


def _split_parameters(module, params):
    """``(trained, held fixed)``: ``params`` (default: all with ``requires_grad``) and the module's other ones."""
    trained = [p for p in module.parameters() if p.requires_grad] if params is None else list(params)
    chosen = {id(p) for p in trained}
    fixed = [p for p in module.parameters() if p.requires_grad and id(p) not in chosen]
    return trained, fixed


@contextlib.contextmanager
def held_fixed(parameters):
    """Hold parameters fixed (no gradient) inside the block; ``requires_grad`` is restored after.

    :func:`fit_module` applies it to the module's parameters outside ``params``; use it
    directly only for parameters that live outside the trained module (e.g. shared parts
    read by a loss).

    Examples
    --------
    >>> import torch
    >>> from skneuro._engine import held_fixed
    >>> w = torch.nn.Parameter(torch.ones(2))
    >>> with held_fixed([w]):
    ...     inside = w.requires_grad
    >>> inside, w.requires_grad
    (False, True)
    """
    fixed = [p for p in parameters if p.requires_grad]
    for p in fixed:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in fixed:
            p.requires_grad_(True)


def _place(data, chunk_size, device):
    """All data on the module's device at once, or (chunked) left where it is for chunk-wise moves."""
    if isinstance(data, GroupedData):
        return data if chunk_size is not None else data.to(device)
    return tuple(data) if chunk_size is not None else tuple(t.to(device) for t in data)


def _run_epochs(runner, schedule, monitor, result, epochs, n_iter_no_change, checkpoint, callback):
    """The loop: one runner call per epoch, history, checkpoints, callback, early stopping.

    L-BFGS is deterministic: an iteration that improves the training objective by less
    than ``tol`` ends the fit (as scipy's ``ftol``); there is no noise to wait out.
    Patience (``n_iter_no_change``) applies to Adam epochs and to validation scores.
    """
    if isinstance(runner, LBFGSStepper) and monitor.validation is None:
        n_iter_no_change = 1
    for epoch in epochs:
        for group in runner.optimizer.param_groups:
            group["lr"] = schedule(epoch)
        outcome = runner.run()
        result.n_updates = runner.n_updates
        monitor.record(epoch, outcome.loss, outcome.evaluated)
        if checkpoint is not None and checkpoint.due(epoch):
            checkpoint.save(_state(epoch, monitor.module, runner.optimizer, runner.hooks.generator, result, monitor))
        if callback is not None:
            callback(epoch, outcome.loss)
        # L-BFGS leaves the parameters unchanged when its line search finds no decrease at
        # the working precision: nothing more can be gained.
        if monitor.patience_spent(n_iter_no_change) or outcome.stalled:
            result.stop_reason = "converged"
            return


def _settle(runner, monitor, objective, result, hooks):
    """After the loop: restore the better parameters of a finite explosion, or keep the best of full-batch Adam."""
    blown = monitor.diverged_from(runner.first_value, objective)
    if blown is not None:
        # rising losses also end a fit through n_iter_no_change: that is divergence, not convergence
        result.stop_reason = "diverged"
        warn_user(
            f"Training diverged: the objective ended at {result.loss_curve[-1]:.6g}, far above "
            f"{'its starting value' if blown == 'start' else 'its best epoch'}; those parameters were "
            "restored. Lower learning_rate.",
            ConvergenceWarning,
        )
    elif monitor.validation is not None:
        monitor.restore_best()  # the best-validation epoch
    elif runner.evaluates_before_update and result.loss_curve and not hooks.perturbs:
        # (under gradient noise the random walk is the point: keep where it ended)
        monitor.keep_final_if_better(objective)


def _stop_non_finite(objective, monitor, result):
    """A non-finite objective or parameter: raise at the start, else restore the best epoch and warn."""
    result.stop_reason = "diverged"
    if objective.n_finite == 0:
        raise InitialObjectiveNotFinite(
            "The training objective is not finite at the initial parameters; check the input data and the "
            "initialisation."
        ) from None
    if result.loss_curve:
        monitor.restore_best()  # the last finite parameters can still be useless (huge objective)
    warn_user(
        f"Training diverged (non-finite objective or parameters) during epoch {result.n_iter + 1}; "
        "the parameters of the best epoch so far were restored. Lower learning_rate or check the data.",
        ConvergenceWarning,
    )


def _state(epoch, module, optimizer, generator, result, monitor) -> dict:
    """Everything needed to continue training after ``epoch`` exactly."""
    return {
        "epoch": epoch + 1,
        "module": module.state_dict(),
        "optimizer": optimizer.state_dict(),
        "generator": generator.get_state(),
        "loss_curve": list(result.loss_curve),
        "n_updates": result.n_updates,
        "best_loss": monitor.best_loss,
        "no_improve": monitor.no_improve,
        "best_state": [t.detach().cpu() for t in monitor.best_state],
        "validation_scores": None if result.validation_scores is None else list(result.validation_scores),
        "best_validation_score": result.best_validation_score,
    }


def _resume(state, module, optimizer, generator, result, monitor, epoch_runner) -> int:
    """Restore a :func:`_state`; returns the epoch to continue from."""
    module.load_state_dict(state["module"])
    optimizer.load_state_dict(state["optimizer"])
    generator.set_state(state["generator"])
    result.loss_curve = list(state["loss_curve"])
    result.n_iter = int(state["epoch"])
    result.n_updates = epoch_runner.n_updates = int(state["n_updates"])
    monitor.best_loss, monitor.no_improve = float(state["best_loss"]), int(state["no_improve"])
    monitor.best_state = [t.to(p.device, p.dtype) for t, p in zip(state["best_state"], monitor.params)]
    if monitor.validation is not None:
        if state.get("validation_scores") is None:
            raise ValueError("the checkpoint was written without validation data; it cannot resume with it.")
        result.validation_scores = list(state["validation_scores"])
        result.best_validation_score = state["best_validation_score"]
    return int(state["epoch"])


class _Monitor:
    """Loss history, early stopping, the best parameters so far and progress output."""

    def __init__(self, module, params, result, tol, max_iter, verbose, log_terms, validation=None):
        self.module, self.params, self.result = module, params, result
        self.tol, self.verbose, self.log_terms = tol, verbose, log_terms
        self.validation = validation
        if validation is not None:
            result.validation_scores = []
        self.best_loss, self.best_state, self.no_improve = math.inf, snapshot(params), 0
        self.initial_state = self.best_state
        self.progress = None
        if verbose == 1:
            from tqdm.auto import tqdm

            self.progress = tqdm(total=max_iter, desc=type(module).__name__, leave=False)

    def record(self, epoch, loss, evaluated=None):
        """Log one epoch; ``evaluated`` are the parameters its loss was measured at (None: current)."""
        self.result.loss_curve.append(loss)
        self.result.n_iter = epoch + 1
        if self.validation is None:
            if loss < self.best_loss:
                self.best_state = evaluated if evaluated is not None else snapshot(self.params)
            # Epochs whose objective is above the first epoch's (a large learning rate's
            # first steps overshoot) do not count against the patience: the fit has not yet
            # come back to where it started. Divergence that never comes back runs to
            # max_iter and is then caught (the better parameters restored).
            above_start = len(self.result.loss_curve) > 1 and loss > self.result.loss_curve[0] + self.tol
            if not above_start:
                self.no_improve = self.no_improve + 1 if loss > self.best_loss - self.tol else 0
        else:
            self._record_validation()
        self.best_loss = min(self.best_loss, loss)
        if self.progress is not None:
            self.progress.update(1)
            self.progress.set_postfix(loss=f"{loss:.6g}")
        elif self.verbose >= 2:
            extra = ""
            if self.log_terms is not None:
                with torch.no_grad():
                    terms = self.log_terms(self.module)
                extra = "".join(f", {k} {float(v):.6g}" for k, v in terms.items())
            print(f"epoch {epoch + 1}: objective {loss:.6g}{extra}")

    def _record_validation(self):
        """Score the current parameters on the validation data; keep them if they are the best."""
        score = -self.validation()
        result = self.result
        best = result.best_validation_score
        result.validation_scores.append(score)
        improved = best is None or score > best
        self.no_improve = 0 if best is None or score > best + self.tol else self.no_improve + 1
        if improved:
            result.best_validation_score = score
            self.best_state = snapshot(self.params)

    def patience_spent(self, n_iter_no_change) -> bool:
        """Whether the early-stopping rule fires after the epoch just recorded.

        On the training objective: ``n_iter_no_change`` epochs without an improvement by
        ``tol``. On a validation score: ``n_iter_no_change`` epochs plus as many again as
        it took to reach the last improvement (``2 * no_improve >= n_iter_no_change +
        n_iter``). The score of a small validation set moves in excursions (Adam's
        oscillations, a few held-out trials) that outlast ten one-update epochs; a wait
        that grows with the fit (the Deep Learning Tutorials' ``patience_increase = 2``)
        needs no time scale of its own. The best-validation parameters are kept, so waiting
        costs time only.
        """
        if self.validation is None:
            return self.no_improve >= n_iter_no_change
        return 2 * self.no_improve >= n_iter_no_change + self.result.n_iter

    def keep_final_if_better(self, objective):
        """Full-batch Adam: the last update was never evaluated; keep it only if it beats the best."""
        try:
            final = objective()
        except NonFinite:
            final = math.inf
        if final > self.best_loss:
            restore(self.params, self.best_state)

    def diverged_from(self, first_value, objective):
        """Detect a finite explosion and restore the better parameters.

        Returns "start" when the starting parameters are far better than every epoch (they
        are restored), "best" when the last epoch ended far above the best one (the best
        epoch is restored), None otherwise. "Far" is 100 times the scale of the objective's
        own progress (and of ``tol``), so minibatch noise does not trigger it. The starting
        objective is measured in full only when the first epoch looks far worse than the
        first minibatch did (``first_value``), which normal training never does.
        """
        curve = self.result.loss_curve
        if not curve:
            return None
        floor = max(self.tol, 1e-12)
        if first_value is not None and curve[0] - first_value > 100 * max(abs(first_value), floor):
            current = snapshot(self.params)
            restore(self.params, self.initial_state)
            try:
                start = objective()
            except NonFinite:
                start = math.inf
            if self.best_loss - start > 100 * max(abs(start), floor):
                return "start"
            restore(self.params, current)
        first, last, ref = curve[0], curve[-1], self.best_loss
        if len(curve) >= 2 and last - ref > 100 * max(abs(first - ref), abs(ref), floor):
            self.restore_best()
            return "best"
        return None

    def restore_best(self):
        """Back to the best epoch so far (the starting parameters before the first epoch ends)."""
        restore(self.params, self.best_state)

    def close(self):
        if self.progress is not None:
            self.progress.close()
        if self.verbose >= 1:
            last = f"{self.result.loss_curve[-1]:.6g}" if self.result.loss_curve else "n/a"
            print(
                f"{type(self.module).__name__}: {self.result.n_iter} epoch(s), {self.result.n_updates} update(s), "
                f"final objective {last}, stopped: {self.result.stop_reason}"
            )

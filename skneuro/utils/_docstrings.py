"""Parameter descriptions shared by many docstrings, written once."""

from __future__ import annotations

import textwrap

__all__ = ["fill_doc"]

_SNIPPETS = {
    "engine_parameters": """
max_iter : int, default={max_iter}
    Training epochs (Adam) or iterations (L-BFGS).
learning_rate : float or tuple of (epoch, lr) pairs, default={learning_rate}
    Step size, or a piecewise-constant schedule ``((0, 1e-2), (100, 1e-3))``.
batch_size : int or None, default={batch_size}
    Samples per Adam update; None uses the full batch.
chunk_size : int or None, default=None
    Samples sent to the device at a time; gradients are accumulated over chunks and
    equal the unchunked gradient, so only memory use changes.
tol : float, default={tol}
    The fit stops when the training objective has not improved by at least ``tol``
    for ``n_iter_no_change`` consecutive epochs.
n_iter_no_change : int, default={n_iter_no_change}
    See ``tol``. Epochs whose objective is above the first epoch's do not count (a
    large learning rate's first steps overshoot). L-BFGS, which is deterministic, stops
    at its first iteration that improves by less than ``tol``. With ``early_stopping``,
    the wait on the validation score is ``n_iter_no_change`` epochs plus as many as it
    took to reach the last improvement.
warm_start : bool, default=False
    Continue from the fitted ``module_`` instead of initialising afresh.
device : str, default="cpu"
    ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or ``"auto"`` (CUDA if available).
    An unavailable device raises ``ValueError`` at ``fit``.
dtype : {{"float32", "float64"}}, default="float32"
    Precision of training. Fitted attributes and outputs are float64 either way.
random_state : int, RandomState instance or None, default=None
    Seeds local generators for initialisation, minibatch order and noise; the global
    numpy and torch random states are never touched.
verbose : int, default=0
    0 silent, 1 progress bar, 2 one log line per epoch.
callback : callable or None, default=None
    Called as ``callback(epoch, loss)`` after every epoch (iteration for L-BFGS). Raising
    ``KeyboardInterrupt`` in it stops the fit like Ctrl-C: the estimator is left fitted
    with the parameters of the best epoch so far, and ``n_iter_`` says how far it got.""",
    "early_stopping_parameters": """
early_stopping : bool, default=False
    Hold out ``validation_fraction`` of the {held_out} (drawn from ``random_state``: same
    seed, same split), score them after every epoch and stop when that score has not
    improved by ``tol`` for ``n_iter_no_change`` epochs plus as many epochs as it took
    to reach its last improvement (a wait that grows with the fit, so that a small,
    noisy validation set does not end it early); the parameters of the best epoch are
    kept. The score is the negative mean per-sample loss of the held-out
    {held_out} (no penalty), recorded in ``validation_scores_``.
validation_fraction : float, default=0.1
    Share of the {held_out} held out when ``early_stopping`` is True (at least one held
    out and two left for training).""",
    "solver_parameter": """
solver : {{"adam", "lbfgs"}}, default="adam"
    Optimizer: minibatch Adam, or full-batch L-BFGS with a strong-Wolfe line search
    (``batch_size`` is then ignored and ``max_iter`` counts L-BFGS iterations).""",
    "rate_rnn_parameters": """
dt, tau : float, default=10.0, 100.0
    Time step and time constant of the units, in the same unit (e.g. ms). The update
    uses ``α = dt / tau``, which must lie in (0, 1].
rec_noise : float, default=0.0
    σ_rec, the standard deviation of the recurrent noise ``sqrt(2α)·σ_rec·ξ_t`` added to
    the states in training and in :meth:`simulate`; :meth:`predict` is noise-free.
activation : {{"relu", "tanh", "sigmoid", "softplus", "linear"}}, default="relu"
    The transfer function f that turns states x into rates ``r = f(x)``.
train_init_state : bool, default=False
    Train the initial state ``x_0`` (shared by all trials, fitted as ``init_state_``);
    otherwise it stays at its initial value.
output_bias_init : {{"targets", "zero"}}, default="targets"
    Initial output bias ``b_out``, set from the training targets: their masked mean
    ``Σ m y / Σ m`` per output (the best constant output), so that training spends its
    updates on what varies rather than moving ``b_out`` by about one learning rate per
    update; with a non-negative readout (Dale's law) the smallest target on a kept step
    instead, since non-negative rates only add to ``b_out``. ``"zero"``: 0, PsychRNN's
    choice. A :class:`WeightInitializer` passed as ``init`` keeps its own ``b_out``.
fixed_params : tuple of str, default=()
    Parameters among W_in, W_rec, W_out, b_rec, b_out that are not trained (held at
    their initial values).
l1_in, l1_rec, l1_out, l2_in, l2_rec, l2_out : float, default=0.0
    Weight penalties ``l1·Σ|W| + l2·ΣW²`` over the entries of the effective
    matrices ``W_in``, ``W_rec``, ``W_out`` (sums, as every weight penalty in skneuro).
l2_firing_rate : float, default=0.0
    Penalty on the squared rate, averaged over trials, steps and units.
clip_grad_norm : float or None, default=1.0
    Clip each parameter's gradient to this norm separately (PsychRNN's per-variable
    ``clip_by_norm``), after accumulation over chunks; None: no clipping.""",
    "engine_attributes": """
module_ : torch.nn.Module
    The trained torch module, on ``device_``.
device_ : torch.device
    The device the module lives on.
n_iter_ : int
    Epochs or iterations run.
n_updates_ : int
    Optimizer steps taken.
loss_curve_ : list of float
    Training objective per epoch.
validation_scores_ : list of float or None
    With ``early_stopping``: the validation score after each epoch (higher is better);
    None otherwise.
best_validation_score_ : float or None
    The best validation score; its epoch's parameters are the fitted ones.
n_features_in_ : int
    Number of features seen during fit.
feature_names_in_ : ndarray of shape (`n_features_in_`,)
    Names of features seen during fit, when X has string column names.""",
}


def fill_doc(**defaults):
    """Decorator replacing ``{engine_parameters}``-style fields in a docstring.

    Keyword arguments fill the defaults quoted in the shared text.

    Examples
    --------
    >>> from skneuro.utils._docstrings import fill_doc
    >>> @fill_doc(max_iter=10, learning_rate=0.1, tol=1e-4, n_iter_no_change=5)
    ... def f():
    ...     '''Doc.
    ...
    ...     Parameters
    ...     ----------
    ...     {engine_parameters}
    ...     '''
    >>> "default=10" in f.__doc__
    True
    """

    def decorate(obj):
        doc = obj.__doc__ or ""
        for key, text in _SNIPPETS.items():
            marker = "{" + key + "}"
            while marker in doc:
                line_start = doc.rfind("\n", 0, doc.index(marker)) + 1
                indent = doc[line_start : doc.index(marker)]
                body = (
                    text.strip("\n").format(**{"batch_size": None, "held_out": "samples", **defaults})
                    if defaults
                    else text.strip("\n")
                )
                body = textwrap.indent(body, indent)[len(indent) :]
                doc = doc.replace(marker, body, 1)
        obj.__doc__ = doc
        return obj

    return decorate

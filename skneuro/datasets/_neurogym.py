"""NeuroGym environments as seeded, masked, padded batches of trials (numpy only).

``neurogym`` (and ``gymnasium``) are imported only when an environment is named by its id,
so ``import skneuro`` works without them.
"""

from __future__ import annotations

import copy
import difflib
import itertools
import warnings
from collections.abc import Iterator
from numbers import Integral, Real

import numpy as np

from ..utils._random import as_generator
from ._task_base import Task, TaskBatch, _check_int, _check_positive, check_scored_trials

__all__ = ["NeuroGymTask"]

_INSTALL_HINT = 'NeuroGymTask needs neurogym 2.3; install it with pip install "skneuro[neurogym]".'


def _import_neurogym():
    try:
        import gymnasium
        import neurogym  # noqa: F401  (registers the NeuroGym environments with gymnasium)
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc
    return gymnasium


def _make_env(env_id, env_kwargs):
    """``neurogym.make(env_id, **env_kwargs)``; an unknown id raises ValueError listing close names."""
    gymnasium = _import_neurogym()
    known = sorted(gymnasium.envs.registry)
    if env_id not in gymnasium.envs.registry:
        close = difflib.get_close_matches(env_id, known, n=5, cutoff=0.5)
        hint = f" Close names: {', '.join(close)}." if close else ""
        raise ValueError(f"env {env_id!r} is not a registered NeuroGym/gymnasium environment id.{hint}")
    # as neurogym.make: gymnasium's checker would warn about observations off the space; and
    # every NeuroGym environment lacks the render_modes gymnasium warns about at each make
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*metadata doesn't include `render_modes`")
        return gymnasium.make(env_id, disable_env_checker=True, **env_kwargs)


def _defines(obj, name):
    return any(name in vars(klass) for klass in type(obj).__mro__)


def _trial_source(env):
    """The outermost layer of the wrapper stack whose own class defines ``new_trial``.

    Trial wrappers (block, side-bias) define it and call the layers below; gymnasium's generic
    wrappers (``OrderEnforcing`` from ``gymnasium.make``) only forward attributes.
    """
    layer = env
    while not _defines(layer, "new_trial"):
        inner = getattr(layer, "env", None)
        if inner is None or inner is layer:
            return None
        layer = inner
    return layer


def _stack_params(trials):
    """Trial dicts -> dict of arrays with one entry per trial (object arrays for ragged values)."""
    keys = list(dict.fromkeys(key for trial in trials for key in trial))
    params = {}
    for key in keys:
        values = [trial.get(key) for trial in trials]
        try:
            array = np.array(values)
            if array.dtype == object and array.shape != (len(trials),):
                raise ValueError
        except ValueError:  # ragged or mixed entries: keep one object per trial
            array = np.empty(len(trials), dtype=object)
            array[:] = values
        params[key] = array
    return params


class NeuroGymTask(Task):
    """A NeuroGym environment as a task: padded trials, one-hot targets and a mask.

    Each trial is one call of the environment's ``new_trial()``; its observations
    ``env.ob`` (steps × observations) make ``X`` and its ground truth ``env.gt`` (one action
    index per step) makes ``y``, one-hot over the actions. Trials of a batch are padded
    with zeros at the end to the longest one (or to ``T``); ``mask`` is non-zero on each
    trial's own steps (or only on the steps of ``mask_periods``) and 0 on the padding: 1 by
    default, or with ``class_weight="balanced"`` a weight per ground-truth action that
    gives every action the same share of the loss (see Notes). Unlike
    ``neurogym.Dataset``, which runs trials back to back in fixed-length windows, every
    trial starts at step 0, and ``random_state`` seeds the environment's own generator
    (``env.seed``), so the same seed gives the same trials. The environment passed in is
    never touched: each :meth:`generate` works on a fresh copy.

    Parameters
    ----------
    env : str or NeuroGym environment
        An environment id (``"PerceptualDecisionMaking-v0"``, ``"yang19.go-v0"``; made with
        ``neurogym.make``) or an instance, wrappers included. It must follow NeuroGym's
        trial API (``new_trial()``, ``ob``, ``gt``, ``seed``) and have a discrete action
        space. Wrappers that act in ``new_trial`` (block and side-bias wrappers) shape the
        trials; wrappers that change observations only in ``step`` (``Noise``,
        ``PassReward``, ``PassAction``) do not, as with ``neurogym.Dataset``.
    T : float or None, default=None
        Trial length in ms: every batch then has ``⌈T/dt⌉`` steps and a longer trial raises
        ValueError. None pads each batch to its longest trial. :class:`MultiTask` needs the
        same ``T`` for all its tasks.
    mask_periods : tuple of str or None, default=None
        Names of the environment's periods (e.g. ``("decision",)``) whose steps the mask
        keeps; None keeps every step of the trial.
    class_weight : {"balanced"} or None, default=None
        Mask value of a kept step. ``"balanced"``: ``n_kept / (n_actions · n_a)`` for a
        step whose ground truth is action ``a``, with ``n_a`` the kept steps of the batch
        that have it, ``n_kept`` all kept steps and ``n_actions`` the actions that occur
        among them (scikit-learn's ``class_weight="balanced"``), so each action counts
        equally and the mask averages 1 over the kept steps. None: 1 on every kept step.
    tau : float, default=100
        Time constant in ms of the network meant to perform the task (for :attr:`alpha`).
    **env_kwargs
        Passed to ``neurogym.make`` with an id (``dt``, ``timing``, ``sigma``, ...).

    Attributes
    ----------
    n_inputs : int
        Number of observations.
    n_outputs : int
        Number of actions.
    dt : float
        The environment's time step in ms.
    env_ : gymnasium.Env
        The environment the trials come from (a copy when an instance was passed).

    See Also
    --------
    MultiTask : several tasks in one network, told apart by rule inputs.

    Notes
    -----
    :meth:`accuracy` scores, as NeuroGym's tutorials do, the choice at each trial's last
    step: the argmax of the network's output there against the ground-truth action.

    Balanced weights. NeuroGym's ground truth is an action label per step
    and most steps are "fixate" (PerceptualDecisionMaking at dt 20: 105 of 110 steps;
    NeuroGym trains it with cross-entropy). With a squared error on one-hot targets and
    equal weights, the fixation steps ask the choice outputs to stay at exactly 0 while the
    evidence comes in, so the network must learn to gate the evidence it integrates away
    from them until the stimulus ends; the 5 decision steps, which teach the integration,
    carry 1/22 of the loss. With ``RateRNNRegressor(n_rec=64, dt=20, tau=100,
    max_iter=30)`` on 2,000 trials, decision accuracy on 500 fresh trials is 0.864-0.906
    over seeds 0-5 with the 0/1 mask (the ideal observer gets about 0.90, as coherence 0 is
    a coin flip; ``benchmarks/tasks.py``), 0.864-0.910 with balanced weights, every step
    still scored. (Before the RNN's output bias started at the targets' mean,
    ``output_bias_init="targets"``, the 0/1 mask gave 0.80-0.89: with the bias starting at
    0, most of the fit's 960 updates went into raising the fixation output.) The balanced
    network answered early in that measurement (bias starting at 0), its choice output
    passing the fixation output in the last ~200 ms of the (fixed-length) stimulus in
    99.6 % of trials, which the 0/1 mask's network never did. So the default is the 0/1
    mask (every step counts the same, as in NeuroGym's own training); ``"balanced"`` is for
    users who score only the decision.

    References
    ----------
    Molano-Mazón, M. et al. (2022). NeuroGym: An open resource for developing and sharing
    neuroscience tasks. PsyArXiv. https://github.com/neurogym/neurogym

    Examples
    --------
    >>> import pytest
    >>> _ = pytest.importorskip("neurogym")
    >>> from skneuro.datasets.tasks import NeuroGymTask
    >>> task = NeuroGymTask("PerceptualDecisionMaking-v0", dt=20)
    >>> X, y, mask, params = task.generate(8, random_state=0)
    >>> X.shape, y.shape, sorted(params)
    ((8, 110, 3), (8, 110, 3), ['coh', 'ground_truth'])
    >>> task.accuracy(y, y, mask)
    1.0
    """

    def __init__(self, env, *, T=None, mask_periods=None, class_weight=None, tau=100, **env_kwargs):
        if isinstance(env, str):
            made = _make_env(env, env_kwargs)
        elif env_kwargs:
            raise TypeError(
                f"env_kwargs ({', '.join(sorted(env_kwargs))}) configure an environment made from an id; "
                "pass them to the environment's constructor instead."
            )
        else:
            made = copy.deepcopy(env)
        _check_trial_api(made)
        self.env = env
        self.env_kwargs = env_kwargs
        self.env_ = made
        self.T = T
        self.mask_periods = mask_periods
        self.class_weight = class_weight
        self.tau = tau
        space = made.action_space
        self.n_outputs = int(space.n)
        self.n_inputs = int(made.observation_space.shape[0])

    def __repr__(self):
        name = self.env if isinstance(self.env, str) else type(self.env).__name__
        extra = "".join(f", {key}={value!r}" for key, value in self.env_kwargs.items())
        return (
            f"NeuroGymTask({name!r}, T={self.T!r}, mask_periods={self.mask_periods!r}, "
            f"class_weight={self.class_weight!r}{extra})"
        )

    @property
    def dt(self) -> float:
        """The environment's time step in ms."""
        return self.env_.unwrapped.dt

    @property
    def n_steps(self):
        """``⌈T/dt⌉``, or None when ``T`` is None (each batch is as long as its longest trial)."""
        return None if self.T is None else int(np.ceil(self.T / self.dt))

    @property
    def times(self):
        """The time grid in ms, ``k·dt`` for ``k = 0 .. n_steps − 1``; None when ``T`` is None."""
        return None if self.T is None else super().times

    def _validate(self):
        _check_positive("tau", self.tau)
        if self.T is not None and (isinstance(self.T, bool) or not isinstance(self.T, Real) or not self.T > 0):
            raise ValueError(f"T must be None or a positive number of ms; got {self.T!r}.")
        periods = self.mask_periods
        names = isinstance(periods, tuple | list) and all(isinstance(p, str) for p in periods)
        if periods is not None and not names:
            raise ValueError(
                f"mask_periods must be None or a tuple of period names, e.g. ('decision',); got {periods!r}."
            )
        if not (self.class_weight is None or (isinstance(self.class_weight, str) and self.class_weight == "balanced")):
            raise ValueError(f"class_weight must be 'balanced' or None; got {self.class_weight!r}.")

    def generate(self, n_trials: int, random_state=None) -> TaskBatch:
        """Generate a batch of trials from a fresh, seeded copy of the environment.

        Parameters
        ----------
        n_trials : int
            Number of trials.
        random_state : int, numpy Generator, RandomState or None, default=None
            Seeds the environment's generator; the same seed gives the same trials.

        Returns
        -------
        batch : TaskBatch
            ``X`` (n_trials, n_steps, n_inputs), ``y`` and ``mask``
            (n_trials, n_steps, n_outputs) and ``trial_params`` (each trial dict's entries,
            one per trial).

        Examples
        --------
        >>> import numpy as np, pytest
        >>> _ = pytest.importorskip("neurogym")
        >>> from skneuro.datasets.tasks import NeuroGymTask
        >>> task = NeuroGymTask("GoNogo-v0", dt=20, mask_periods=("decision",))
        >>> a, b = task.generate(4, random_state=1), task.generate(4, random_state=1)
        >>> bool(np.array_equal(a.X, b.X)), a.mask[0].sum(axis=0).tolist()
        (True, [25.0, 25.0])
        """
        _check_int("n_trials", n_trials, 1)
        self._validate()
        return self._generate(n_trials, as_generator(random_state))

    def iter_batches(self, batch_size: int, random_state=None) -> Iterator[TaskBatch]:
        """An endless stream of batches; one seeded environment runs through the whole stream.

        Trial-history wrappers (blocks) therefore carry their state from batch to batch.

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
        >>> import pytest
        >>> _ = pytest.importorskip("neurogym")
        >>> from itertools import islice
        >>> from skneuro.datasets.tasks import NeuroGymTask
        >>> task = NeuroGymTask("DelayComparison-v0", dt=20)
        >>> [batch.X.shape for batch in islice(task.iter_batches(16, random_state=0), 2)]
        [(16, 130, 2), (16, 130, 2)]
        """
        _check_int("batch_size", batch_size, 1)
        self._validate()
        env = self._seeded_copy(as_generator(random_state))
        return (self._draw(env, batch_size) for _ in itertools.repeat(None))

    def accuracy(self, y_true, y_pred, mask) -> float:
        """Fraction of trials whose output at their last step picks the ground-truth action.

        A trial's last step is its last step with a non-zero target row (every step of a
        trial has a one-hot target; padding has none). Trials whose mask is all zero are
        left out.

        Parameters
        ----------
        y_true, y_pred : array-like of shape (n_trials, n_steps, n_outputs)
        mask : array-like of shape (n_trials, n_steps, n_outputs) or (n_trials, n_steps)

        Returns
        -------
        accuracy : float
            In [0, 1]; nan when no trial is scored.

        Examples
        --------
        >>> import numpy as np, pytest
        >>> _ = pytest.importorskip("neurogym")
        >>> from skneuro.datasets.tasks import NeuroGymTask
        >>> task = NeuroGymTask("PerceptualDecisionMaking-v0", dt=20)
        >>> X, y, mask, params = task.generate(50, random_state=0)
        >>> task.accuracy(y, np.roll(y, 1, axis=2), mask)
        0.0
        """
        return _last_step_accuracy(y_true, y_pred, mask)

    def _seeded_copy(self, rng):
        env = copy.deepcopy(self.env_)
        env.unwrapped.seed(int(rng.integers(2**31)))
        return env

    def _generate(self, n_trials, rng):
        return self._draw(self._seeded_copy(rng), n_trials)

    def _draw(self, env, n_trials):
        source, inner = _trial_source(env), env.unwrapped
        observations, actions, kept, trials = [], [], [], []
        for _ in range(n_trials):
            trial = source.new_trial()
            ob, gt = np.asarray(inner.ob), np.asarray(inner.gt)
            if gt.shape != ob.shape[:1]:
                raise ValueError(
                    f"the environment's gt has shape {gt.shape} for observations of shape {ob.shape}; "
                    "NeuroGymTask needs one action index per step."
                )
            observations.append(ob)
            actions.append(gt)
            kept.append(self._kept_steps(inner, len(gt)))
            trials.append(dict(trial) if trial is not None else {})
        lengths = np.array([len(gt) for gt in actions])
        n_steps = self._padded_length(lengths.max())
        X = np.zeros((n_trials, n_steps, self.n_inputs))
        action = np.full((n_trials, n_steps), -1)
        keep = np.zeros((n_trials, n_steps))
        for i, (ob, gt, steps) in enumerate(zip(observations, actions, kept)):
            X[i, : len(gt)] = ob
            action[i, : len(gt)] = gt
            keep[i, : len(gt)] = steps
        if action.max() >= self.n_outputs or action[action != -1].min(initial=0) < 0:
            raise ValueError(f"the environment's gt holds actions outside 0..{self.n_outputs - 1}.")
        y = (action[:, :, None] == np.arange(self.n_outputs)).astype(float)
        if self.class_weight == "balanced":
            keep = keep * _balanced_weights(action, keep > 0, self.n_outputs)
        mask = np.repeat(keep[:, :, None], self.n_outputs, axis=2)
        return TaskBatch(X, y, mask, _stack_params(trials))

    def _kept_steps(self, env, n_steps):
        if self.mask_periods is None:
            return 1.0
        steps = np.zeros(n_steps)
        for period in self.mask_periods:
            if period not in env.start_ind:
                raise ValueError(
                    f"mask_periods names {period!r}, which is not a period of this environment; "
                    f"its periods are {list(env.start_ind)}."
                )
            steps[env.start_ind[period] : env.end_ind[period]] = 1.0
        return steps

    def _padded_length(self, longest):
        if self.T is None:
            return int(longest)
        if longest > self.n_steps:
            raise ValueError(
                f"a trial has {longest} steps ({longest * self.dt:g} ms), longer than T = {self.T} ms "
                f"({self.n_steps} steps); raise T or shorten the environment's timing."
            )
        return self.n_steps


def _check_trial_api(env):
    """TypeError unless ``env`` follows NeuroGym's trial API; ValueError for unusable spaces."""
    if not hasattr(env, "action_space"):
        raise TypeError(f"env must be an environment id (str) or a NeuroGym environment; got {type(env).__name__}.")
    inner = getattr(env, "unwrapped", env)
    missing = [name for name in ("new_trial", "seed") if not callable(getattr(inner, name, None))]
    if missing:
        raise TypeError(
            f"env {inner!r} has no {' or '.join(missing)} method: NeuroGymTask needs NeuroGym's trial API "
            "(new_trial(), ob, gt, seed())."
        )
    n_actions = getattr(env.action_space, "n", None)
    if not isinstance(n_actions, Integral):
        raise ValueError(
            f"env has the action space {env.action_space}; NeuroGymTask needs a discrete action space "
            "(one-hot targets and choice accuracy)."
        )
    shape = getattr(env.observation_space, "shape", None)
    if shape is None or len(shape) != 1:
        raise ValueError(f"env's observations must be vectors; its observation space has shape {shape}.")
    probe = copy.deepcopy(env)
    probe.unwrapped.seed(0)
    source = _trial_source(probe)
    if source is None:
        raise TypeError(f"env {inner!r} has no new_trial method: NeuroGymTask needs NeuroGym's trial API.")
    source.new_trial()
    missing = [name for name in ("ob", "gt") if getattr(probe.unwrapped, name, None) is None]
    if missing:
        raise TypeError(
            f"env {inner!r} sets no {' or '.join(missing)} in new_trial: NeuroGymTask needs the ground truth "
            "of every step (NeuroGym's set_groundtruth)."
        )


def _balanced_weights(action, kept, n_actions):
    """Per-step weight ``n_kept / (n_present · n_a)`` of each step's action ``a`` (0 off ``kept``)."""
    counts = np.bincount(action[kept], minlength=n_actions)
    present = counts > 0
    per_action = np.zeros(n_actions)
    per_action[present] = kept.sum() / (present.sum() * counts[present])
    return np.where(kept, per_action[np.where(kept, action, 0)], 0.0)


def _last_step_accuracy(y_true, y_pred, mask) -> float:
    """Fraction of scored trials whose argmax output at their last target step is the target's."""
    y_true, y_pred, mask = check_scored_trials(y_true, y_pred, mask)
    mask = mask.any(axis=2)
    has_target = np.any(y_true != 0, axis=2)
    scored = mask.any(axis=1) & has_target.any(axis=1)
    if not scored.any():
        return float("nan")
    last = y_true.shape[1] - 1 - np.argmax(has_target[:, ::-1], axis=1)
    rows = np.arange(len(y_true))
    truth = np.argmax(y_true[rows, last], axis=1)
    chosen = np.argmax(y_pred[rows, last], axis=1)
    return float(np.mean(truth[scored] == chosen[scored]))

"""Cognitive tasks for rate RNNs: trials of inputs, targets and output masks (numpy only).

The trial structure and the defaults are those of PsychRNN's tasks; the draws are not
(every task draws from a local ``numpy.random.Generator`` seeded from ``random_state``).
A task lays its time grid ``t_k = k·dt``, ``k = 0 .. n_steps − 1`` with
``n_steps = ⌈T/dt⌉``, along the second axis, and builds all trials of a batch at once
by comparing the ``(n_steps,)`` grid with ``(n_trials, 1)`` epoch bounds.
"""

from __future__ import annotations

from numbers import Real

import numpy as np

from ._flip_flop import FlipFlop
from ._multitask import MultiTask
from ._neurogym import NeuroGymTask
from ._task_base import Task, TaskBatch, _check_duration, _check_int, accuracy

__all__ = [
    "TaskBatch",
    "Task",
    "PerceptualDiscrimination",
    "DelayedDiscrimination",
    "MatchToCategory",
    "FlipFlop",
    "NeuroGymTask",
    "MultiTask",
    "accuracy",
]

_HIGH, _LOW = 1.0, 0.2  # PsychRNN's one-hot target values of the discrimination tasks
_FREQUENCY_PAIRS = np.array([(18, 10), (22, 14), (26, 18), (30, 22), (34, 26)], dtype=float)


def _one_hot(index, n_outputs, high, low):
    """``(n_trials, n_outputs)`` rows with ``high`` at ``index`` and ``low`` elsewhere."""
    return np.where(np.arange(n_outputs) == np.asarray(index)[:, None], high, low)


def _steps_in(t, start, stop):
    """The slice of the increasing grid ``t`` with ``start <= t < stop``."""
    return slice(int(np.searchsorted(t, start, side="left")), int(np.searchsorted(t, stop, side="left")))


def _discrimination_noise_std(dt):
    """PsychRNN's input noise of PD and DD: ``0.1·√(0.02·√(10·dt))`` (0.0447 at dt 10)."""
    return 0.1 * np.sqrt(0.02 * np.sqrt(10.0 * dt))


class PerceptualDiscrimination(Task):
    """Two-alternative forced choice: which of two noisy channels has the higher mean.

    PsychRNN's ``PerceptualDiscrimination``. Per trial: coherence ``coh`` uniform on
    {0.1, 0.3, 0.5, 0.7}, direction ``d`` uniform on {0, 1}, ``onset ~ U(0, T/2)``,
    ``duration ~ U(T/8, 3T/8)`` and ``off = onset + duration``. Every input gets noise of
    std ``0.1·√(0.02·√(10·dt))`` at every step. For ``onset < t < off``: ``X[d] += 1 + coh``
    and ``X[1−d] += 1``. For ``t > off + 20``: ``y[d] = 1``, ``y[1−d] = 0.2``, else 0. The
    mask is 1 for ``t >= off``: the network is trained to hold 0 for 20 ms, then to choose.

    Parameters
    ----------
    coherence : float or None, default=None
        Fixed coherence; None draws it per trial.
    direction : {0, 1} or None, default=None
        Fixed channel with the higher mean (PsychRNN ignores it); None draws it per trial.
    dt, tau, T : float, default=10, 100, 2000
        Time step, network time constant and trial length, in ms.

    Attributes
    ----------
    n_inputs, n_outputs : int
        2 and 2.

    See Also
    --------
    DelayedDiscrimination, MatchToCategory

    References
    ----------
    Britten, K. H., Shadlen, M. N., Newsome, W. T. and Movshon, J. A. (1992). The analysis
    of visual motion: a comparison of neuronal and psychophysical performance. Journal of
    Neuroscience 12(12), 4745-4765.

    Examples
    --------
    >>> from skneuro.datasets.tasks import PerceptualDiscrimination
    >>> task = PerceptualDiscrimination(direction=1, dt=20, T=1000)
    >>> X, y, mask, params = task.generate(64, random_state=0)
    >>> X.shape, params["direction"].tolist() == [1] * 64
    ((64, 50, 2), True)
    """

    n_inputs = 2
    n_outputs = 2

    def __init__(self, *, coherence=None, direction=None, dt=10, tau=100, T=2000):
        super().__init__(dt=dt, tau=tau, T=T)
        self.coherence = coherence
        self.direction = direction

    def _validate(self):
        super()._validate()
        if self.coherence is not None and (isinstance(self.coherence, bool) or not isinstance(self.coherence, Real)):
            raise ValueError(f"coherence must be None or a number; got {self.coherence!r}.")
        if self.direction is not None and (isinstance(self.direction, bool) or self.direction not in (0, 1)):
            raise ValueError(f"direction must be None, 0 or 1; got {self.direction!r}.")

    def sample_trial_params(self, n_trials, rng):
        """Draw coherence, direction, onset_time and stim_duration of each trial.

        Parameters
        ----------
        n_trials : int
        rng : numpy.random.Generator

        Returns
        -------
        trial_params : dict of str to ndarray of shape (n_trials,)
            ``coherence``, ``direction``, ``onset_time`` and ``stim_duration`` (ms).
        """
        if self.coherence is None:
            coherence = rng.choice([0.1, 0.3, 0.5, 0.7], size=n_trials)
        else:
            coherence = np.full(n_trials, float(self.coherence))
        if self.direction is None:
            direction = rng.integers(0, 2, size=n_trials)
        else:
            direction = np.full(n_trials, int(self.direction))
        return {
            "coherence": coherence,
            "direction": direction,
            "onset_time": rng.random(n_trials) * self.T / 2.0,
            "stim_duration": rng.random(n_trials) * self.T / 4.0 + self.T / 8.0,
        }

    def build_trials(self, t, params, rng):
        """Inputs, targets and mask of the trials (see :meth:`Task.build_trials`)."""
        onset = params["onset_time"][:, None]
        off = onset + params["stim_duration"][:, None]
        direction = params["direction"]
        n_trials, n_steps = len(direction), len(t)
        stimulus = _one_hot(direction, 2, 1.0 + params["coherence"][:, None], 1.0)
        X = _discrimination_noise_std(self.dt) * rng.standard_normal((n_trials, n_steps, 2))
        X += ((onset < t) & (t < off))[:, :, None] * stimulus[:, None, :]
        y = (t > off + 20)[:, :, None] * _one_hot(direction, 2, _HIGH, _LOW)[:, None, :]
        mask = np.repeat((t >= off)[:, :, None].astype(float), 2, axis=2)
        return X, y, mask


class DelayedDiscrimination(Task):
    """Delayed discrimination: is the first of two vibration frequencies the higher one?

    PsychRNN's ``DelayedDiscrimination`` (after Romo et al. 1999). Half-open epochs follow
    each other from ``onset_time``: stimulus 1, delay, stimulus 2, decision. A pair ``(a, b)``
    is drawn uniformly from (18, 10), (22, 14), (26, 18), (30, 22), (34, 26); with
    probability 1/2, ``(f1, f2) = (a, b)`` and ``choice = 0``, else ``(b, a)`` and
    ``choice = 1`` (choice 0 iff ``f1 > f2``). During stimulus k, with ``f = f_k``:
    ``X[0] += 0.4 + 0.8(f − 10)/24`` and ``X[1] += 0.4 + 0.8(34 − f)/24`` (10 Hz gives
    (0.4, 1.2), 34 Hz (1.2, 0.4)); every input gets noise of std ``0.1·√(0.02·√(10·dt))``
    at every step. During the decision: ``y[choice] = 1``, ``y[other] = 0.2`` and mask 1;
    elsewhere 0.

    A decision window shorter than ``dt`` may hold no step (about 2% of trials at dt 10,
    T 2000); such a trial has an empty mask, and :func:`accuracy` leaves it out.

    Parameters
    ----------
    onset_time, stim_duration_1, delay_duration, stim_duration_2, decision_duration : \
float or None, default=None
        Fixed epoch lengths in ms (PsychRNN documents them as fractions of T but uses them
        as ms). None draws them per trial as ``U(0, 1)`` times T/8, T/4, T/4, T/4 and T/8.
    dt, tau, T : float, default=10, 100, 2000
        Time step, network time constant and trial length, in ms.

    Attributes
    ----------
    n_inputs, n_outputs : int
        2 and 2.

    See Also
    --------
    PerceptualDiscrimination, MatchToCategory

    References
    ----------
    Romo, R., Brody, C. D., Hernández, A. and Lemus, L. (1999). Neuronal correlates of
    parametric working memory in the prefrontal cortex. Nature 399(6735), 470-473.

    Examples
    --------
    >>> from skneuro.datasets.tasks import DelayedDiscrimination
    >>> X, y, mask, params = DelayedDiscrimination().generate(100, random_state=0)
    >>> bool(((params["f1"] > params["f2"]) == (params["choice"] == 0)).all())
    True
    """

    n_inputs = 2
    n_outputs = 2
    _EPOCHS = (
        ("onset_time", 8.0),
        ("stim_duration_1", 4.0),
        ("delay_duration", 4.0),
        ("stim_duration_2", 4.0),
        ("decision_duration", 8.0),
    )

    def __init__(
        self,
        *,
        onset_time=None,
        stim_duration_1=None,
        delay_duration=None,
        stim_duration_2=None,
        decision_duration=None,
        dt=10,
        tau=100,
        T=2000,
    ):
        super().__init__(dt=dt, tau=tau, T=T)
        self.onset_time = onset_time
        self.stim_duration_1 = stim_duration_1
        self.delay_duration = delay_duration
        self.stim_duration_2 = stim_duration_2
        self.decision_duration = decision_duration

    def _validate(self):
        super()._validate()
        for name, _ in self._EPOCHS:
            _check_duration(name, getattr(self, name))

    def sample_trial_params(self, n_trials, rng):
        """Draw the epoch lengths, the frequencies and the correct choice of each trial.

        Parameters
        ----------
        n_trials : int
        rng : numpy.random.Generator

        Returns
        -------
        trial_params : dict of str to ndarray of shape (n_trials,)
            ``onset_time``, ``stim_duration_1``, ``delay_duration``, ``stim_duration_2``,
            ``decision_duration`` (ms), ``f1``, ``f2`` (Hz) and ``choice`` (0 iff f1 > f2).
        """
        params = {}
        for name, fraction_of_T in self._EPOCHS:
            fixed = getattr(self, name)
            params[name] = rng.random(n_trials) * self.T / fraction_of_T if fixed is None else np.full(n_trials, fixed)
        pair = _FREQUENCY_PAIRS[rng.integers(0, len(_FREQUENCY_PAIRS), size=n_trials)]
        choice = rng.integers(0, 2, size=n_trials)
        params["f1"] = np.where(choice == 0, pair[:, 0], pair[:, 1])
        params["f2"] = np.where(choice == 0, pair[:, 1], pair[:, 0])
        params["choice"] = choice
        return params

    def build_trials(self, t, params, rng):
        """Inputs, targets and mask of the trials (see :meth:`Task.build_trials`)."""
        # the epoch starts summed in PsychRNN's order, so that the bounds match its bounds
        bounds = [params["onset_time"][:, None]]
        for name, _ in self._EPOCHS[1:]:
            bounds.append(bounds[-1] + params[name][:, None])
        stim_1, delay, stim_2, decision, end = bounds
        choice = params["choice"]
        n_trials, n_steps = len(choice), len(t)
        X = _discrimination_noise_std(self.dt) * rng.standard_normal((n_trials, n_steps, 2))
        for start, stop, f in ((stim_1, delay, params["f1"]), (stim_2, decision, params["f2"])):
            drive = np.stack([0.4 + 0.8 * (f - 10) / 24, 0.4 + 0.8 * (34 - f) / 24], axis=1)
            X += ((start <= t) & (t < stop))[:, :, None] * drive[:, None, :]
        in_decision = ((decision <= t) & (t < end))[:, :, None]
        y = in_decision * _one_hot(choice, 2, _HIGH, _LOW)[:, None, :]
        mask = np.repeat(in_decision.astype(float), 2, axis=2)
        return X, y, mask


class MatchToCategory(Task):
    """Match to category: report which slice of a ring holds a stimulus angle.

    PsychRNN's ``MatchToCategory`` (after Freedman and Assad 2006). Per trial
    ``angle ~ U(0, 2π)`` and ``category = ⌊angle·n_outputs/2π⌋``. Input channel i sits at
    ``θ_i = 2πi/n_inputs`` (PsychRNN's ``linspace(0, 2π, n_inputs)`` puts the first and last
    channels at the same angle). On ``[onset_time, onset_time + input_duration)``:
    ``X_i += exp(−δ_i²/2)/√(2π)`` with ``δ_i = θ_i − angle`` wrapped to [−π, π] (peak
    0.39894). For the next ``output_duration`` ms: ``y[category] = 1`` and mask 1;
    elsewhere 0. Every input gets noise of std ``0.1/(2·dt)`` at every step.

    Parameters
    ----------
    n_inputs : int, default=16
        Input channels around the ring.
    n_outputs : int, default=2
        Categories (equal slices of the ring).
    onset_time, input_duration, output_duration : float, default=200, 1000, 800
        Epochs in ms; their sum must not exceed T.
    dt, tau, T : float, default=10, 100, 2000
        Time step, network time constant and trial length, in ms.

    See Also
    --------
    PerceptualDiscrimination, DelayedDiscrimination

    References
    ----------
    Freedman, D. J. and Assad, J. A. (2006). Experience-dependent representation of visual
    categories in parietal cortex. Nature 443(7107), 85-88.

    Examples
    --------
    >>> from skneuro.datasets.tasks import MatchToCategory
    >>> X, y, mask, params = MatchToCategory(n_outputs=4).generate(32, random_state=0)
    >>> X.shape, y.shape, int(params["category"].max()) <= 3
    ((32, 200, 16), (32, 200, 4), True)
    """

    def __init__(
        self,
        *,
        n_inputs=16,
        n_outputs=2,
        onset_time=200,
        input_duration=1000,
        output_duration=800,
        dt=10,
        tau=100,
        T=2000,
    ):
        super().__init__(dt=dt, tau=tau, T=T)
        self.n_inputs = n_inputs
        self.n_outputs = n_outputs
        self.onset_time = onset_time
        self.input_duration = input_duration
        self.output_duration = output_duration

    def _validate(self):
        super()._validate()
        _check_int("n_inputs", self.n_inputs, 1)
        _check_int("n_outputs", self.n_outputs, 1)
        for name in ("onset_time", "input_duration", "output_duration"):
            if getattr(self, name) is None:
                raise ValueError(f"{name} must be a non-negative number of ms; got None.")
            _check_duration(name, getattr(self, name))
        end = self.onset_time + self.input_duration + self.output_duration
        if end > self.T:
            raise ValueError(
                f"onset_time + input_duration + output_duration = {end} ms runs past the trial length "
                f"T = {self.T} ms; shorten the epochs or lengthen T."
            )

    def sample_trial_params(self, n_trials, rng):
        """Draw the stimulus angle of each trial and its category.

        Parameters
        ----------
        n_trials : int
        rng : numpy.random.Generator

        Returns
        -------
        trial_params : dict of str to ndarray of shape (n_trials,)
            ``angle`` (radians, in [0, 2π)) and ``category``.
        """
        angle = 2 * np.pi * rng.random(n_trials)
        category = np.minimum((angle * self.n_outputs / (2 * np.pi)).astype(int), self.n_outputs - 1)
        return {"angle": angle, "category": category}

    def build_trials(self, t, params, rng):
        """Inputs, targets and mask of the trials (see :meth:`Task.build_trials`)."""
        angle, category = params["angle"], params["category"]
        n_trials, n_steps = len(angle), len(t)
        delta = 2 * np.pi * np.arange(self.n_inputs) / self.n_inputs - angle[:, None]
        delta = np.where(delta > np.pi, delta - 2 * np.pi, np.where(delta < -np.pi, delta + 2 * np.pi, delta))
        bump = np.exp(-(delta**2) / 2) / np.sqrt(2 * np.pi)
        stim_end = self.onset_time + self.input_duration
        # the epochs are the same in every trial: contiguous runs of steps, written as slices
        stimulus = _steps_in(t, self.onset_time, stim_end)
        output = _steps_in(t, stim_end, stim_end + self.output_duration)
        X = 0.1 / (2 * self.dt) * rng.standard_normal((n_trials, n_steps, self.n_inputs))
        X[:, stimulus, :] += bump[:, None, :]
        y = np.zeros((n_trials, n_steps, self.n_outputs))
        y[:, output, :] = _one_hot(category, self.n_outputs, 1.0, 0.0)[:, None, :]
        mask = np.zeros_like(y)
        mask[:, output, :] = 1.0
        return X, y, mask

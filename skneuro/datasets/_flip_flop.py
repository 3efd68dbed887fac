"""The n-bit flip-flop task (Sussillo and Barak 2013), numpy only."""

from __future__ import annotations

from numbers import Real

import numpy as np

from ._task_base import Task, _check_int, check_scored_trials

__all__ = ["FlipFlop"]


class FlipFlop(Task):
    """n-bit flip-flop: each output holds the sign of its channel's last pulse.

    At every step each of the ``n_bits`` input channels receives, with probability
    ``pulse_probability``, a one-step pulse of +1 or −1 (equally likely); it is 0 otherwise.
    Output ``i`` at step ``k`` is the sign of the most recent pulse of channel ``i`` at a step
    ``<= k`` (the step of the pulse included), and 0 before the channel's first pulse. The
    mask is 1 from the step of a channel's first pulse on and 0 before it, so the network is
    free until it has a bit to hold. A trained network stores the ``2**n_bits`` sign
    patterns as stable fixed points, with saddles between them (Sussillo and Barak 2013).

    Parameters
    ----------
    n_bits : int, default=3
        Input channels and outputs.
    pulse_probability : float, default=0.05
        Probability of a pulse per channel and step, in (0, 1].
    dt, tau, T : float, default=10, 100, 1000
        Time step, network time constant and trial length, in ms (100 steps by default).

    Attributes
    ----------
    n_inputs, n_outputs : int
        Both ``n_bits``.

    See Also
    --------
    skneuro.analysis.find_fixed_points : the memories of a trained network.

    References
    ----------
    Sussillo, D. and Barak, O. (2013). Opening the black box: low-dimensional dynamics in
    high-dimensional recurrent neural networks. Neural Computation 25(3), 626-649.

    Golub, M. D. and Sussillo, D. (2018). FixedPointFinder: a Tensorflow toolbox for
    identifying and characterizing fixed points in recurrent neural networks. Journal of
    Open Source Software 3(31), 1003.

    Examples
    --------
    >>> from skneuro.datasets.tasks import FlipFlop
    >>> task = FlipFlop(n_bits=2, pulse_probability=0.2, T=100)
    >>> X, y, mask, params = task.generate(1, random_state=2)
    >>> X[0].T.tolist()
    [[0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0]]
    >>> y[0].T.tolist()
    [[0.0, 0.0, 0.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0], [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, -1.0]]
    >>> mask[0, :4].T.tolist()
    [[0.0, 0.0, 0.0, 1.0], [0.0, 1.0, 1.0, 1.0]]
    >>> task.accuracy(y, -y, mask), task.accuracy(y, y, mask)
    (0.0, 1.0)
    """

    def __init__(self, *, n_bits=3, pulse_probability=0.05, dt=10, tau=100, T=1000):
        super().__init__(dt=dt, tau=tau, T=T)
        self.n_bits = n_bits
        self.pulse_probability = pulse_probability

    @property
    def n_inputs(self) -> int:
        """``n_bits``."""
        return self.n_bits

    @property
    def n_outputs(self) -> int:
        """``n_bits``."""
        return self.n_bits

    def _validate(self):
        super()._validate()
        _check_int("n_bits", self.n_bits, 1)
        p = self.pulse_probability
        if isinstance(p, bool) or not isinstance(p, Real) or not 0 < p <= 1:
            raise ValueError(f"pulse_probability must be a number in (0, 1]; got {p!r}.")

    def sample_trial_params(self, n_trials, rng):
        """Draw the pulses of each trial.

        Parameters
        ----------
        n_trials : int
        rng : numpy.random.Generator

        Returns
        -------
        trial_params : dict of str to ndarray
            ``pulses`` of shape (n_trials, n_steps, n_bits), entries in {−1, 0, +1}, and
            ``n_pulses`` of shape (n_trials,).
        """
        shape = (n_trials, self.n_steps, self.n_bits)
        present = rng.random(shape) < self.pulse_probability
        signs = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
        pulses = np.where(present, signs, 0.0)
        return {"pulses": pulses, "n_pulses": present.sum(axis=(1, 2))}

    def build_trials(self, t, params, rng):
        """Inputs, targets and mask of the trials (see :meth:`Task.build_trials`)."""
        pulses = params["pulses"]
        steps = np.arange(pulses.shape[1])[None, :, None]
        # index of the latest pulse at or before each step, -1 before the first one
        last = np.maximum.accumulate(np.where(pulses != 0, steps, -1), axis=1)
        held = last >= 0
        y = np.where(held, np.take_along_axis(pulses, np.maximum(last, 0), axis=1), 0.0)
        return pulses.astype(float), y, held.astype(float)

    def accuracy(self, y_true, y_pred, mask) -> float:
        """Fraction of held bits whose output has the target's sign.

        Every (trial, step, output) entry with a non-zero mask counts once: with the
        task's own mask, every step from a channel's first pulse on, the steps of later
        pulses included (the output must flip within the step it is told to).

        Parameters
        ----------
        y_true, y_pred : array-like of shape (n_trials, n_steps, n_outputs)
        mask : array-like of shape (n_trials, n_steps, n_outputs) or (n_trials, n_steps)

        Returns
        -------
        accuracy : float
            In [0, 1]; nan when the mask is all zero.

        Examples
        --------
        >>> import numpy as np
        >>> from skneuro.datasets.tasks import FlipFlop
        >>> y = np.array([[[0.0], [1.0], [1.0], [-1.0]]])
        >>> FlipFlop(n_bits=1).accuracy(y, [[[5.0], [0.3], [-0.1], [-2.0]]], y != 0)
        0.6666666666666666
        """
        y_true, y_pred, mask = check_scored_trials(y_true, y_pred, mask)
        counted = np.broadcast_to(mask != 0, y_true.shape)
        if not counted.any():
            return float("nan")
        return float(np.mean(np.sign(y_pred[counted]) == np.sign(y_true[counted])))

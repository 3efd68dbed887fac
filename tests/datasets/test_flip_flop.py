"""FlipFlop: pulses, held bits, mask, seeding, sign accuracy (issue 15)."""

import numpy as np
import pytest

from skneuro.datasets import tasks
from skneuro.datasets.tasks import FlipFlop, Task


def _held_bits(pulses):
    """A per-trial, per-step loop: the sign of the last pulse so far, 0 before the first."""
    y, mask = np.zeros_like(pulses), np.zeros_like(pulses)
    for i in range(pulses.shape[0]):
        for b in range(pulses.shape[2]):
            last = 0.0
            for k in range(pulses.shape[1]):
                if pulses[i, k, b] != 0:
                    last = pulses[i, k, b]
                y[i, k, b], mask[i, k, b] = last, float(last != 0)
    return y, mask


def test_shapes_and_sizes():
    task = FlipFlop(n_bits=4, T=500, dt=20)
    X, y, mask, params = task.generate(7, random_state=0)
    assert X.shape == y.shape == mask.shape == (7, 25, 4)
    assert task.n_inputs == task.n_outputs == 4 and isinstance(task, Task)
    assert params["pulses"].shape == (7, 25, 4) and params["n_pulses"].shape == (7,)
    assert "FlipFlop" in tasks.__all__
    assert repr(FlipFlop()) == "FlipFlop(n_bits=3, pulse_probability=0.05, dt=10, tau=100, T=1000)"


def test_targets_hold_the_last_pulse():
    X, y, mask, params = FlipFlop(pulse_probability=0.1).generate(20, random_state=1)
    y_ref, mask_ref = _held_bits(X)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(mask, mask_ref)
    np.testing.assert_array_equal(params["pulses"], X)
    np.testing.assert_array_equal(params["n_pulses"], (X != 0).sum(axis=(1, 2)))
    assert set(np.unique(X)) == {-1.0, 0.0, 1.0} and set(np.unique(y)) == {-1.0, 0.0, 1.0}


def test_by_hand():
    pulses = np.zeros((1, 6, 2))
    pulses[0, 1, 0], pulses[0, 4, 0], pulses[0, 3, 1] = 1.0, -1.0, -1.0
    X, y, mask = FlipFlop(n_bits=2).build_trials(np.arange(6) * 10.0, {"pulses": pulses}, None)
    np.testing.assert_array_equal(y[0].T, [[0, 1, 1, 1, -1, -1], [0, 0, 0, -1, -1, -1]])
    np.testing.assert_array_equal(mask[0].T, [[0, 1, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1]])
    np.testing.assert_array_equal(X, pulses)


def test_pulse_statistics():
    X, *_ = FlipFlop(pulse_probability=0.05).generate(2000, random_state=2)
    rate = np.mean(X != 0)  # 600,000 draws: standard error 2.8e-4
    assert abs(rate - 0.05) < 0.0015
    assert abs(np.mean(X[X != 0] > 0) - 0.5) < 0.01


def test_seeded():
    task = FlipFlop()
    a, b, c = (task.generate(8, random_state=s).X for s in (3, 3, 4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    rng_state = np.random.get_state()[1].copy()
    task.generate(8, random_state=5)
    np.testing.assert_array_equal(np.random.get_state()[1], rng_state)


def test_accuracy_counts_held_bits():
    y = np.zeros((1, 5, 2))
    y[0, 1:, 0] = [1, 1, -1, -1]
    y[0, 3:, 1] = [1, 1]
    mask = (y != 0).astype(float)  # 6 held bits
    pred = np.zeros_like(y)
    pred[0, :, 0] = [9.0, 0.5, -0.1, -0.2, -3.0]  # right at steps 1, 3, 4 (step 0 is not held)
    pred[0, :, 1] = [0.0, 0.0, 0.0, 0.2, 0.0]  # right at step 3; an output of exactly 0 has no sign
    task = FlipFlop(n_bits=2)
    assert task.accuracy(y, pred, mask) == pytest.approx(4 / 6)
    assert task.accuracy(y, y, mask) == 1.0 and task.accuracy(y, -y, mask) == 0.0
    assert task.accuracy(y, pred, mask[..., 0]) == pytest.approx(3 / 4)  # 2-D mask: both outputs at steps 1-4
    assert np.isnan(task.accuracy(y, pred, np.zeros_like(mask)))
    with pytest.raises(ValueError, match="y_pred"):
        task.accuracy(y, pred[:, :3], mask)
    with pytest.raises(ValueError, match="mask"):
        task.accuracy(y, pred, mask[:, :3])


@pytest.mark.parametrize(
    "kw, name",
    [
        ({"n_bits": 0}, "n_bits"),
        ({"n_bits": 2.5}, "n_bits"),
        ({"pulse_probability": 0.0}, "pulse_probability"),
        ({"pulse_probability": 1.5}, "pulse_probability"),
        ({"pulse_probability": True}, "pulse_probability"),
        ({"T": -1}, "T"),
    ],
)
def test_bad_parameters(kw, name):
    with pytest.raises(ValueError, match=name):
        FlipFlop(**kw).generate(2, random_state=0)

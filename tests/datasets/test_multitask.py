"""MultiTask: channel layout, rule inputs, shares, merged trial parameters, per-task accuracy."""

from importlib.util import find_spec

import numpy as np
import pytest

from skneuro.datasets.tasks import DelayedDiscrimination, MultiTask, PerceptualDiscrimination, Task
from skneuro.rnn import RateRNNRegressor


class Level(Task):
    """``n_inputs`` copies of a level in [1, 2); one output, the level, scored from step 5."""

    n_outputs = 1

    def __init__(self, n_inputs=1, *, dt=10, tau=100, T=100):
        super().__init__(dt=dt, tau=tau, T=T)
        self.n_inputs = n_inputs

    def sample_trial_params(self, n_trials, rng):
        return {"level": 1.0 + rng.random(n_trials)}

    def build_trials(self, t, params, rng):
        level = params["level"][:, None, None]
        X = np.broadcast_to(level, (len(level), len(t), self.n_inputs)).copy()
        y = np.broadcast_to(level, (len(level), len(t), 1)).copy()
        mask = np.broadcast_to((t >= 50)[None, :, None], y.shape).astype(float)
        return X, y, mask


class Sign(Task):
    """Output 0 when the input is positive, output 1 when negative (``flip`` swaps them)."""

    n_inputs, n_outputs = 1, 2

    def __init__(self, flip=False, *, dt=10, tau=100, T=100):
        super().__init__(dt=dt, tau=tau, T=T)
        self.flip = flip

    def sample_trial_params(self, n_trials, rng):
        return {"sign": rng.choice([-1.0, 1.0], size=n_trials)}

    def build_trials(self, t, params, rng):
        sign = params["sign"]
        X = np.broadcast_to(sign[:, None, None], (len(sign), len(t), 1)) * (t >= 20)[None, :, None]
        choice = (sign < 0) != self.flip
        y = np.zeros((len(sign), len(t), 2))
        y[np.arange(len(sign)), :, choice.astype(int)] = 1.0
        mask = np.broadcast_to((t >= 60)[None, :, None], y.shape).astype(float)
        return X.astype(float), y, mask


def test_layout_by_hand():
    task = MultiTask([Level(1), Level(3), Sign()])
    X, y, mask, params = task.generate(9, random_state=0)
    assert (task.n_inputs, task.n_outputs) == (3 + 3, 2)
    assert X.shape == (9, 10, 6) and y.shape == mask.shape == (9, 10, 2)
    np.testing.assert_array_equal(np.bincount(params["task"]), [3, 3, 3])
    for i, k in enumerate(params["task"]):
        rule = np.zeros(3)
        rule[k] = 1.0
        np.testing.assert_array_equal(X[i, :, 3:], np.tile(rule, (10, 1)))
        if k < 2:
            level = params["level"][i]
            n_in = 1 if k == 0 else 3
            np.testing.assert_array_equal(X[i, :, :n_in], level)
            np.testing.assert_array_equal(X[i, :, n_in:3], 0.0)
            np.testing.assert_array_equal(y[i, :, 0], level)
            np.testing.assert_array_equal(y[i, :, 1], 0.0)  # an output the task does not use
            np.testing.assert_array_equal(mask[i, :, 0], [0] * 5 + [1] * 5)
            np.testing.assert_array_equal(mask[i, :, 1], 0.0)
            assert np.isnan(params["sign"][i])
        else:
            assert np.isnan(params["level"][i]) and params["sign"][i] in (-1.0, 1.0)
            np.testing.assert_array_equal(mask[i], np.repeat([[0.0]] * 6 + [[1.0]] * 4, 2, axis=1))


def test_shares_and_seeding():
    a, b = Level(), Sign()
    assert np.bincount(MultiTask([a, b], weights=[3, 1]).generate(8, 0).trial_params["task"]).tolist() == [6, 2]
    only_a = MultiTask([a, b], weights=(1, 0)).generate(5, 0).trial_params["task"]
    np.testing.assert_array_equal(only_a, 0)
    counts = np.bincount(MultiTask([a, b]).generate(7, 0).trial_params["task"])
    assert sorted(counts.tolist()) == [3, 4]
    one, two = MultiTask([a, b]).generate(20, 5), MultiTask([a, b]).generate(20, 5)
    np.testing.assert_array_equal(one.X, two.X)
    np.testing.assert_array_equal(one.trial_params["task"], two.trial_params["task"])
    assert not np.array_equal(one.X, MultiTask([a, b]).generate(20, 6).X)
    batches = MultiTask([a, b]).iter_batches(4, random_state=0)
    assert [next(batches).X.shape for _ in range(2)] == [(4, 10, 3), (4, 10, 3)]


def test_merged_params_and_per_task_accuracy():
    task = MultiTask([PerceptualDiscrimination(T=1000), DelayedDiscrimination(T=1000)])
    X, y, mask, params = task.generate(40, random_state=1)
    is_pd = params["task"] == 0
    assert np.isnan(params["coherence"][~is_pd]).all() and not np.isnan(params["coherence"][is_pd]).any()
    assert not np.isnan(params["onset_time"]).any()  # both tasks draw an onset_time
    pred = y.copy()
    pred[~is_pd] = y[~is_pd][:, :, ::-1]  # DD trials answered the other way
    np.testing.assert_array_equal(task.accuracy(y, pred, mask, params["task"]), [1.0, 0.0])
    only_pd = np.zeros(40, dtype=int)
    scores = task.accuracy(y, y, mask, only_pd)
    assert scores[0] == 1.0 and np.isnan(scores[1])
    with pytest.raises(ValueError, match="task"):
        task.accuracy(y, y, mask, params["task"][:5])


def test_rule_input_is_used():
    # the two tasks see the same stimulus and want opposite answers: only the rule tells them apart
    task = MultiTask([Sign(), Sign(flip=True)])
    X, y, mask, params = task.generate(256, random_state=0)
    est = RateRNNRegressor(n_rec=16, max_iter=60, learning_rate=1e-2, batch_size=32, random_state=0)
    est.fit(X, y, sample_weight=mask)
    Xt, yt, mt, pt = task.generate(200, random_state=1)
    scores = task.accuracy(yt, est.predict(Xt), mt, pt["task"])
    assert scores.min() >= 0.95
    # without the rule channels the two tasks cannot both be solved
    blind = Xt.copy()
    blind[:, :, 1:] = 0.0
    assert task.accuracy(yt, est.predict(blind), mt, pt["task"]).min() < 0.9


def test_bad_input():
    with pytest.raises(ValueError, match=r"Level\(.*dt=10.*Level\(.*dt=20"):
        MultiTask([Level(), Level(dt=20)]).generate(4)
    with pytest.raises(ValueError, match=r"T=100.*T=200"):
        MultiTask([Level(), Sign(T=200)]).generate(4)
    with pytest.raises(TypeError, match=r"tasks\[1\]"):
        MultiTask([Level(), "PerceptualDiscrimination"]).generate(4)
    for tasks in ([], Level()):
        with pytest.raises(ValueError, match="tasks"):
            MultiTask(tasks).generate(4)
    for weights in ([1.0], [1.0, -1.0], [0, 0], "ab", [1.0, np.nan]):
        with pytest.raises(ValueError, match="weights"):
            MultiTask([Level(), Sign()], weights=weights).generate(4)
    with pytest.raises(ValueError, match="n_trials"):
        MultiTask([Level(), Sign()]).generate(0)


@pytest.mark.skipif(find_spec("neurogym") is None, reason="needs neurogym (skneuro[neurogym])")
def test_with_neurogym_task():
    from skneuro.datasets.tasks import NeuroGymTask

    with pytest.raises(ValueError, match=r"T=1500.*T=None"):
        MultiTask([PerceptualDiscrimination(dt=20, T=1500), NeuroGymTask("GoNogo-v0", dt=20)]).generate(4)
    task = MultiTask([PerceptualDiscrimination(dt=20, T=1500), NeuroGymTask("GoNogo-v0", dt=20, T=1500)])
    X, y, mask, params = task.generate(6, random_state=0)
    # GoNogo: 3 observations and 2 actions over 1500 ms; PD: 2 inputs and 2 outputs
    assert X.shape == (6, 75, 3 + 2) and y.shape == (6, 75, 2)
    gonogo = params["task"] == 1
    np.testing.assert_array_equal(y[gonogo].sum(axis=2), 1.0)  # one-hot at every step
    np.testing.assert_array_equal(X[gonogo][:, :, 4], 1.0)
    np.testing.assert_array_equal(X[~gonogo][:, :, 2], 0.0)  # PD has no third input
    np.testing.assert_array_equal(params["ground_truth"][gonogo] >= 0, True)
    assert np.isnan(params["ground_truth"][~gonogo]).all()
    np.testing.assert_array_equal(task.accuracy(y, y, mask, params["task"]), [1.0, 1.0])

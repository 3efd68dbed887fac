"""Tests of the cognitive tasks (spec rnn.md §3 Tasks, §4 items 11-13, §5 Tasks)."""

import ast
import inspect
import math

import numpy as np
import pytest

from skneuro.datasets import _task_base, tasks
from skneuro.datasets.tasks import (
    DelayedDiscrimination,
    MatchToCategory,
    PerceptualDiscrimination,
    Task,
    TaskBatch,
    accuracy,
)

PD_NOISE_STD = 0.1 * math.sqrt(0.02 * math.sqrt(10 * 10))  # 0.0447 at dt 10
FIXED_DD_EPOCHS = dict(
    onset_time=100, stim_duration_1=500, delay_duration=400, stim_duration_2=500, decision_duration=300
)


def _pd_reference(task, params):
    """PsychRNN's per-step trial_function of PerceptualDiscrimination, noise left out."""
    n, T = len(params["direction"]), task.n_steps
    X, y, mask = np.zeros((n, T, 2)), np.zeros((n, T, 2)), np.zeros((n, T, 2))
    for i in range(n):
        d, coh = params["direction"][i], params["coherence"][i]
        onset, off = params["onset_time"][i], params["onset_time"][i] + params["stim_duration"][i]
        for k in range(T):
            t = k * task.dt
            if onset < t < off:
                X[i, k, d] += 1 + coh
                X[i, k, 1 - d] += 1
            if t > off + 20:
                y[i, k, d], y[i, k, 1 - d] = 1.0, 0.2
            mask[i, k] = 0.0 if t < off else 1.0
    return X, y, mask


def _dd_reference(task, params):
    """PsychRNN's per-step trial_function of DelayedDiscrimination, noise left out."""
    n, T = len(params["choice"]), task.n_steps
    X, y, mask = np.zeros((n, T, 2)), np.zeros((n, T, 2)), np.zeros((n, T, 2))
    for i in range(n):
        s1 = params["onset_time"][i]
        delay = s1 + params["stim_duration_1"][i]
        s2 = delay + params["delay_duration"][i]
        decision = s2 + params["stim_duration_2"][i]
        end = decision + params["decision_duration"][i]
        c = params["choice"][i]
        for k in range(T):
            t = k * task.dt
            for start, stop, f in ((s1, delay, params["f1"][i]), (s2, decision, params["f2"][i])):
                if start <= t < stop:
                    X[i, k] += (0.4 + 0.8 * (f - 10) / 24, 0.4 + 0.8 * (34 - f) / 24)
            if decision <= t < end:
                y[i, k, c], y[i, k, 1 - c] = 1.0, 0.2
                mask[i, k] = 1.0
    return X, y, mask


# ----------------------------------------------------------------------------- PD


def test_pd_shapes_and_trial_params():
    batch = PerceptualDiscrimination().generate(7, random_state=0)
    assert isinstance(batch, TaskBatch)
    assert batch.X.shape == batch.y.shape == batch.mask.shape == (7, 200, 2)
    assert sorted(batch.trial_params) == ["coherence", "direction", "onset_time", "stim_duration"]
    assert all(v.shape == (7,) for v in batch.trial_params.values())
    assert PerceptualDiscrimination(dt=20, T=1000).generate(3, 0).X.shape == (3, 50, 2)
    assert PerceptualDiscrimination(dt=30, T=1000).n_steps == 34  # ceil


def test_pd_distributions():
    p = PerceptualDiscrimination().generate(4000, random_state=1).trial_params
    assert set(np.unique(p["coherence"])) == {0.1, 0.3, 0.5, 0.7}
    assert set(np.unique(p["direction"])) == {0, 1}
    assert abs(p["direction"].mean() - 0.5) < 0.05
    assert 0 <= p["onset_time"].min() and p["onset_time"].max() < 1000
    assert 250 <= p["stim_duration"].min() and p["stim_duration"].max() < 750


def test_pd_epochs_match_psychrnn_structure():
    task = PerceptualDiscrimination()
    X, y, mask, params = task.generate(40, random_state=2)
    X_ref, y_ref, mask_ref = _pd_reference(task, params)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(mask, mask_ref)
    noise = X - X_ref
    assert abs(noise.mean()) < 3e-3
    assert noise.std() == pytest.approx(PD_NOISE_STD, rel=0.03)


def test_pd_baseline_noise_and_stimulus_means():
    task = PerceptualDiscrimination(coherence=0.5)
    X, _, _, p = task.generate(2000, random_state=3)
    t = task.times
    onset = p["onset_time"][:, None]
    off = onset + p["stim_duration"][:, None]
    stim = (onset < t) & (t < off)
    assert PD_NOISE_STD == pytest.approx(0.0447, abs=1e-4)
    assert X[~stim].std() == pytest.approx(PD_NOISE_STD, rel=0.02)
    assert abs(X[~stim].mean()) < 1e-3
    d = p["direction"][:, None]
    high = np.where(d == 0, X[..., 0], X[..., 1])[stim]
    low = np.where(d == 0, X[..., 1], X[..., 0])[stim]
    assert high.mean() == pytest.approx(1.5, abs=2e-3)
    assert low.mean() == pytest.approx(1.0, abs=2e-3)


@pytest.mark.parametrize("direction", [0, 1])
def test_pd_direction_is_honoured(direction):
    # PsychRNN ignores `direction` and always draws it (spec §4 item 11)
    task = PerceptualDiscrimination(direction=direction)
    X, y, mask, p = task.generate(200, random_state=4)
    assert (p["direction"] == direction).all()
    scored = mask[..., 0] > 0
    assert (y[..., direction][scored] >= y[..., 1 - direction][scored]).all()
    assert X[..., direction].sum() > X[..., 1 - direction].sum()


def test_pd_accuracy_of_targets_and_swapped_outputs():
    task = PerceptualDiscrimination()
    _, y, mask, _ = task.generate(100, random_state=5)
    assert accuracy(y, y, mask) == 1.0
    assert accuracy(y, y[..., ::-1], mask) == 0.0
    assert task.accuracy(y, y, mask) == 1.0


# ----------------------------------------------------------------------------- DD


def test_dd_epochs_match_psychrnn_structure():
    task = DelayedDiscrimination()
    X, y, mask, params = task.generate(40, random_state=6)
    assert X.shape == (40, 200, 2)
    X_ref, y_ref, mask_ref = _dd_reference(task, params)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(mask, mask_ref)
    assert (X - X_ref).std() == pytest.approx(PD_NOISE_STD, rel=0.03)


def test_dd_default_durations_are_fractions_of_T():
    p = DelayedDiscrimination(T=1600).generate(4000, random_state=7).trial_params
    for name, high in [("onset_time", 200), ("stim_duration_1", 400), ("delay_duration", 400)]:
        assert 0 <= p[name].min() and p[name].max() < high and p[name].max() > 0.95 * high
    assert p["decision_duration"].max() < 200
    fixed = DelayedDiscrimination(**FIXED_DD_EPOCHS).generate(5, 0).trial_params
    for name, value in FIXED_DD_EPOCHS.items():
        assert (fixed[name] == value).all()  # ms, not fractions of T (kept from PsychRNN)


def test_dd_frequencies_and_choice():
    p = DelayedDiscrimination().generate(3000, random_state=8).trial_params
    pairs = {(18, 10), (22, 14), (26, 18), (30, 22), (34, 26)}
    drawn = {(max(a, b), min(a, b)) for a, b in zip(p["f1"], p["f2"])}
    assert drawn == pairs
    np.testing.assert_array_equal(p["choice"] == 0, p["f1"] > p["f2"])
    assert abs(p["choice"].mean() - 0.5) < 0.05


def test_dd_frequency_scaling():
    task = DelayedDiscrimination(**FIXED_DD_EPOCHS)
    X, _, _, p = task.generate(1000, random_state=9)
    t = task.times
    stim_1 = (100 <= t) & (t < 600)
    stim_2 = (1000 <= t) & (t < 1500)
    for f, expected in [(10, (0.4, 1.2)), (34, (1.2, 0.4))]:
        first = X[p["f1"] == f][:, stim_1].mean(axis=(0, 1))
        second = X[p["f2"] == f][:, stim_2].mean(axis=(0, 1))
        np.testing.assert_allclose(first, expected, atol=3e-3)
        np.testing.assert_allclose(second, expected, atol=3e-3)
    delay = (600 <= t) & (t < 1000)
    assert abs(X[:, delay].mean()) < 2e-3


def test_dd_decision_windows_shorter_than_dt_are_skipped():
    # PsychRNN counts a trial whose decision window holds no step as correct (both argmaxes
    # are 0); such trials are ~2% at dt 10, T 2000 (spec §4 item 12)
    task = DelayedDiscrimination()
    _, y, mask, p = task.generate(5000, random_state=10)
    decision = p["onset_time"] + p["stim_duration_1"] + p["delay_duration"] + p["stim_duration_2"]
    end = decision + p["decision_duration"]
    t = task.times
    holds_a_step = ((decision[:, None] <= t) & (t < end[:, None])).any(axis=1)
    empty = ~mask.any(axis=(1, 2))
    np.testing.assert_array_equal(empty, ~holds_a_step)
    assert 0.005 < empty.mean() < 0.05
    assert accuracy(y, y[..., ::-1], mask) == 0.0  # PsychRNN: the share of empty trials
    assert accuracy(y, y, mask) == 1.0
    # every window shorter than dt, with no step inside: nothing to score
    short = DelayedDiscrimination(
        onset_time=0, stim_duration_1=100, delay_duration=100, stim_duration_2=103, decision_duration=5
    )
    _, y, mask, _ = short.generate(10, random_state=0)
    assert not mask.any()
    assert math.isnan(accuracy(y, y, mask))


def test_accuracy_on_a_hand_made_mask():
    y_true = np.zeros((3, 4, 2))
    y_true[0, 2:, 0] = y_true[1, 2:, 1] = y_true[2, 2:, 1] = 1.0
    y_pred = np.zeros((3, 4, 2))
    y_pred[0, 2:, 0] = 1.0  # right
    y_pred[1, 2:, 0] = 1.0  # wrong
    y_pred[2, :, 1] = 5.0  # would be right, but its mask is empty
    mask = np.zeros((3, 4, 2))
    mask[:2, 2:] = 1.0
    assert accuracy(y_true, y_pred, mask) == 0.5  # PsychRNN: 2/3 (the empty trial counts)
    assert accuracy(y_true, y_pred, mask[..., 0]) == 0.5  # (n_trials, n_steps) masks too
    # the choice reads the masked outputs only: outside the mask, y_pred is ignored
    y_pred[1, :2, 1] = 100.0
    assert accuracy(y_true, y_pred, mask) == 0.5
    assert math.isnan(accuracy(y_true, y_pred, np.zeros_like(mask)))


def test_accuracy_rejects_bad_shapes():
    y = np.zeros((2, 3, 2))
    with pytest.raises(ValueError, match="y_true and y_pred"):
        accuracy(y, y[:, :2], np.ones((2, 3)))
    with pytest.raises(ValueError, match="mask"):
        accuracy(y, y, np.ones((2, 4)))


# ----------------------------------------------------------------------------- MTC


def _mean_stimulus(task, angles, n_trials=1):
    angle = np.repeat(np.asarray(angles, dtype=float), n_trials)
    category = (angle * task.n_outputs / (2 * np.pi)).astype(int)
    X, y, mask = task.build_trials(task.times, {"angle": angle, "category": category}, np.random.default_rng(0))
    stim = (task.onset_time <= task.times) & (task.times < task.onset_time + task.input_duration)
    return X[:, stim].reshape(len(angles), -1, task.n_inputs).mean(axis=1), y, mask


def test_mtc_shapes_params_and_epochs():
    task = MatchToCategory(n_outputs=4)
    X, y, mask, p = task.generate(300, random_state=11)
    assert X.shape == (300, 200, 16) and y.shape == mask.shape == (300, 200, 4)
    assert (0 <= p["angle"]).all() and (p["angle"] < 2 * np.pi).all()
    np.testing.assert_array_equal(p["category"], np.floor(p["angle"] * 4 / (2 * np.pi)))
    t = task.times
    output = (1200 <= t) & (t < 2000)
    assert (mask[:, output] == 1).all() and (mask[:, ~output] == 0).all()
    np.testing.assert_array_equal(y[:, output].argmax(axis=-1), np.repeat(p["category"][:, None], output.sum(), 1))
    assert (y[:, output].sum(axis=-1) == 1).all() and (y[:, ~output] == 0).all()
    before = t < 200
    assert X[:, before].std() == pytest.approx(0.1 / 20, rel=0.03)
    assert accuracy(y, y, mask) == 1.0


def test_mtc_peak():
    task = MatchToCategory()
    mean, _, _ = _mean_stimulus(task, [2 * np.pi * 3 / 16], n_trials=50)
    assert mean[0, 3] == pytest.approx(0.39894, abs=5e-4)
    assert mean[0, 3] == pytest.approx(1 / math.sqrt(2 * math.pi), abs=5e-4)
    X = task.generate(500, random_state=12).X
    assert X[:, 20:120].mean(axis=1).max() < 0.39894 + 2e-3


def test_mtc_channel_angles_are_distinct():
    # PsychRNN's linspace(0, 2π, N_in) puts channels 0 and N_in−1 at the same angle
    # (spec §4 item 13): at angle 0 both would peak
    task = MatchToCategory()
    mean, _, _ = _mean_stimulus(task, [0.0], n_trials=50)
    assert mean[0, 0] == pytest.approx(0.39894, abs=5e-4)
    expected_last = math.exp(-((np.pi / 8) ** 2) / 2) / math.sqrt(2 * math.pi)
    assert mean[0, 15] == pytest.approx(expected_last, abs=5e-4)
    # the stimulus peaks at the channel nearest the angle, around the whole ring
    width = 2 * np.pi / 16
    angles = np.arange(64) * 2 * np.pi / 64 + 0.1 * width
    mean, _, _ = _mean_stimulus(task, angles, n_trials=20)
    np.testing.assert_array_equal(mean.argmax(axis=1), np.round(angles / width).astype(int) % 16)


def test_mtc_epochs_past_T_raise():
    with pytest.raises(ValueError, match="T = 1500"):
        MatchToCategory(T=1500).generate(2)
    assert MatchToCategory(T=1500, output_duration=300).generate(2, 0).X.shape == (2, 150, 16)


# ----------------------------------------------------------------------------- base


ALL_TASKS = [PerceptualDiscrimination, DelayedDiscrimination, MatchToCategory]


@pytest.mark.parametrize("cls", ALL_TASKS)
def test_same_seed_same_batch(cls):
    a, b = cls().generate(16, random_state=3), cls().generate(16, random_state=3)
    for left, right in [(a.X, b.X), (a.y, b.y), (a.mask, b.mask)]:
        np.testing.assert_array_equal(left, right)
    assert a.trial_params.keys() == b.trial_params.keys()
    for key in a.trial_params:
        np.testing.assert_array_equal(a.trial_params[key], b.trial_params[key])
    assert not np.array_equal(a.X, cls().generate(16, random_state=4).X)
    # a Generator is advanced, a RandomState too
    rng = np.random.default_rng(0)
    assert not np.array_equal(cls().generate(4, rng).X, cls().generate(4, rng).X)
    np.testing.assert_array_equal(
        cls().generate(4, np.random.RandomState(1)).X, cls().generate(4, np.random.RandomState(1)).X
    )


@pytest.mark.parametrize("cls", ALL_TASKS)
def test_global_numpy_rng_untouched(cls):
    np.random.seed(123)
    state = np.random.get_state()
    cls().generate(8, random_state=0)
    cls().generate(8)
    next(cls().iter_batches(4, random_state=0))
    after = np.random.get_state()
    assert state[0] == after[0] and np.array_equal(state[1], after[1]) and state[2:] == after[2:]


def test_iter_batches_is_seeded_and_fresh():
    first = PerceptualDiscrimination().iter_batches(8, random_state=0)
    second = PerceptualDiscrimination().iter_batches(8, random_state=0)
    a1, a2 = next(first), next(first)
    b1, b2 = next(second), next(second)
    np.testing.assert_array_equal(a1.X, b1.X)
    np.testing.assert_array_equal(a2.X, b2.X)
    assert not np.array_equal(a1.X, a2.X)
    with pytest.raises(ValueError, match="batch_size"):
        PerceptualDiscrimination().iter_batches(0)


class _CountingGenerator:
    """A numpy Generator that counts the draws it is asked for."""

    def __init__(self, seed):
        self._rng = np.random.default_rng(seed)
        self.calls = 0

    def __getattr__(self, name):
        method = getattr(self._rng, name)

        def counted(*args, **kwargs):
            self.calls += 1
            return method(*args, **kwargs)

        return counted


@pytest.mark.parametrize("cls", ALL_TASKS)
def test_generation_is_vectorised(cls):
    # a Python loop over trials would ask the generator once per trial
    calls = []
    for n_trials in (1, 64):
        rng = _CountingGenerator(0)
        task = cls()
        batch = task._generate(n_trials, rng)
        assert batch.X.shape[0] == n_trials
        calls.append(rng.calls)
    assert calls[0] == calls[1]


@pytest.mark.parametrize("module", [tasks, _task_base])
def test_task_modules_do_not_import_torch(module):
    tree = ast.parse(inspect.getsource(module))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.add(node.module.partition(".")[0])
    assert "torch" not in imported
    assert imported <= {"__future__", "inspect", "itertools", "collections", "numbers", "typing", "numpy"}


def test_custom_task_from_the_base_class():
    class Sign(Task):
        n_inputs, n_outputs = 1, 2

        def sample_trial_params(self, n_trials, rng):
            return {"sign": rng.choice([-1.0, 1.0], size=n_trials)}

        def build_trials(self, t, params, rng):
            X = np.broadcast_to(params["sign"][:, None, None], (len(params["sign"]), len(t), 1)).copy()
            y = np.concatenate([X > 0, X < 0], axis=-1).astype(float)
            return X, y, np.ones_like(y)

    task = Sign(dt=20, T=200)
    X, y, mask, _ = task.generate(6, random_state=0)
    assert X.shape == (6, 10, 1) and task.accuracy(y, y, mask) == 1.0
    assert task.alpha == 0.2 and repr(task) == "Sign(dt=20, tau=100, T=200)"
    with pytest.raises(NotImplementedError):
        Task().generate(2)


@pytest.mark.parametrize(
    "task, match",
    [
        (PerceptualDiscrimination(direction=2), "direction"),
        (PerceptualDiscrimination(coherence="high"), "coherence"),
        (PerceptualDiscrimination(dt=0), "dt"),
        (PerceptualDiscrimination(tau=-1), "tau"),
        (PerceptualDiscrimination(T=float("nan")), "T"),
        (DelayedDiscrimination(delay_duration=-5), "delay_duration"),
        (MatchToCategory(n_inputs=0), "n_inputs"),
        (MatchToCategory(onset_time=None), "onset_time"),
    ],
)
def test_invalid_parameters_raise(task, match):
    with pytest.raises(ValueError, match=match):
        task.generate(2)


def test_invalid_n_trials_raises():
    with pytest.raises(ValueError, match="n_trials"):
        PerceptualDiscrimination().generate(0)
    with pytest.raises(ValueError, match="n_trials"):
        PerceptualDiscrimination().generate(2.5)


def test_repr_and_keyword_only_parameters():
    assert repr(PerceptualDiscrimination(direction=1)) == (
        "PerceptualDiscrimination(coherence=None, direction=1, dt=10, tau=100, T=2000)"
    )
    with pytest.raises(TypeError):
        PerceptualDiscrimination(10, 100, 2000, 64)  # PsychRNN's positional (dt, tau, T, N_batch)


def test_the_trial_function_wrapper_reproduces_perceptual_discrimination():
    from skneuro.datasets.tasks import PerceptualDiscrimination, Task

    fixed = {"coherence": 0.3, "direction": 1, "onset_time": 400.0, "stim_duration": 500.0}

    def trial_params(i, rng):
        return dict(fixed)

    def trial_fn(time, p):
        d, off = int(p["direction"]), p["onset_time"] + p["stim_duration"]
        x, y = np.zeros(2), np.zeros(2)
        if p["onset_time"] < time < off:
            x[d] += 1 + p["coherence"]
            x[1 - d] += 1
        if time > off + 20:
            y[d], y[1 - d] = 1.0, 0.2
        return x, y, np.full(2, float(time >= off))

    wrapped = Task.from_trial_function(2, 2, trial_params, trial_fn, dt=10, T=2000)
    X_w, y_w, mask_w, params = wrapped.generate(3, random_state=0)
    task = PerceptualDiscrimination(coherence=0.3, direction=1)
    X_v, y_v, mask_v = task.build_trials(task.times, params, np.random.default_rng(0))
    np.testing.assert_array_equal(y_w, y_v)
    np.testing.assert_array_equal(mask_w, mask_v)
    # the vectorised task adds input noise (sd 0.0447); the structure is the same
    assert np.abs(X_v - X_w).max() < 0.3 and abs((X_v - X_w).mean()) < 0.01


def test_a_custom_task_generates_trains_and_scores():
    import warnings

    from skneuro.datasets.tasks import Task
    from skneuro.rnn import RateRNNRegressor

    class Sign(Task):
        n_inputs, n_outputs = 1, 2

        def sample_trial_params(self, n_trials, rng):
            return {"sign": rng.choice([-1.0, 1.0], size=n_trials)}

        def build_trials(self, t, params, rng):
            X = np.broadcast_to(params["sign"][:, None, None], (len(params["sign"]), len(t), 1)).copy()
            y = np.stack([X[..., 0] > 0, X[..., 0] < 0], axis=-1).astype(float)
            return X, y, np.broadcast_to(t[:, None] >= 200, y.shape).astype(float)

    task = Sign(dt=20, T=400)
    X, y, mask, _ = task.generate(256, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rnn = RateRNNRegressor(n_rec=10, batch_size=32, max_iter=10, learning_rate=0.01, random_state=0)
        rnn.fit(X, y, sample_weight=mask)
    X_t, y_t, m_t, _ = task.generate(100, random_state=1)
    assert task.accuracy(y_t, rnn.predict(X_t), m_t) >= 0.95

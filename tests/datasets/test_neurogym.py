"""NeuroGymTask: padding, one-hot targets, masks and their action weights, seeding, last-step accuracy, bad input."""

import copy
import subprocess
import sys
from importlib.util import find_spec

import numpy as np
import pytest

from skneuro.datasets.tasks import NeuroGymTask

needs_neurogym = pytest.mark.skipif(find_spec("neurogym") is None, reason="needs neurogym (skneuro[neurogym])")


@pytest.fixture(scope="module")
def toy_env():
    """A two-period trial env: stimulus of 2 or 4 steps on channel 0, then a 1-step decision."""
    gymnasium = pytest.importorskip("gymnasium")
    ngym_core = pytest.importorskip("neurogym.core")

    class Toy(ngym_core.TrialEnv):
        def __init__(self, dt=10):
            super().__init__(dt=dt)
            self.timing = {"stimulus": [20, 40], "decision": 10}
            self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32)
            self.action_space = gymnasium.spaces.Discrete(3)

        def _new_trial(self, **kwargs):
            trial = {"ground_truth": int(self.rng.choice([1, 2])), "level": float(self.rng.uniform())}
            self.add_period(["stimulus", "decision"])
            self.add_ob(1.0, period="stimulus", where=0)
            self.add_ob(trial["level"], period="stimulus", where=1)
            self.set_groundtruth(trial["ground_truth"], period="decision")
            return trial

    return Toy()


@needs_neurogym
def test_toy_batch_by_hand(toy_env):
    X, y, mask, params = NeuroGymTask(toy_env, class_weight=None).generate(12, random_state=0)
    lengths = np.array([int(X[i, :, 0].sum()) + 1 for i in range(12)])
    assert set(lengths) == {3, 5}  # 2 or 4 stimulus steps, 1 decision step
    assert X.shape == (12, 5, 2) and y.shape == mask.shape == (12, 5, 3)
    for i, n in enumerate(lengths):
        np.testing.assert_array_equal(X[i, :, 0], [1.0] * (n - 1) + [0.0] * (6 - n))
        np.testing.assert_allclose(X[i, : n - 1, 1], params["level"][i])
        gt = params["ground_truth"][i]
        expected = np.zeros((5, 3))
        expected[: n - 1, 0] = 1.0  # action 0 before the decision
        expected[n - 1, gt] = 1.0
        np.testing.assert_array_equal(y[i], expected)
        np.testing.assert_array_equal(mask[i, :, 0], [1.0] * n + [0.0] * (5 - n))
    assert params["ground_truth"].dtype.kind == "i" and params["level"].shape == (12,)


@needs_neurogym
def test_mask_periods_and_fixed_T(toy_env):
    task = NeuroGymTask(toy_env, T=80, mask_periods=("decision",), class_weight=None)
    X, y, mask, params = task.generate(6, random_state=3)
    assert X.shape == (6, 8, 2) and task.n_steps == 8 and NeuroGymTask(toy_env).n_steps is None
    np.testing.assert_array_equal(task.times, np.arange(8) * 10.0)
    for i in range(6):
        n = int(X[i, :, 0].sum()) + 1
        expected = np.zeros(8)
        expected[n - 1] = 1.0
        np.testing.assert_array_equal(mask[i], np.repeat(expected[:, None], 3, axis=1))


@needs_neurogym
def test_balanced_class_weight_by_hand(toy_env):
    X, y, mask, params = NeuroGymTask(toy_env, class_weight="balanced").generate(12, random_state=0)
    plain = NeuroGymTask(toy_env).generate(12, random_state=0)
    np.testing.assert_array_equal(y, plain.y)
    np.testing.assert_array_equal(mask > 0, plain.mask > 0)  # the same steps count
    own = plain.mask[:, :, 0] > 0
    action = y.argmax(axis=2)
    n_kept = own.sum()
    counts = {a: (own & (action == a)).sum() for a in range(3)}
    assert counts[0] == n_kept - 12 and counts[1] + counts[2] == 12 and counts[1] > 0 and counts[2] > 0
    for a, n_a in counts.items():  # n_kept / (3 actions present · n_a)
        np.testing.assert_allclose(mask[own & (action == a)], n_kept / (3 * n_a))
    np.testing.assert_allclose(mask[own].mean(), 1.0)
    # only the kept steps count: one decision step per trial, actions 1 and 2
    decision = NeuroGymTask(toy_env, mask_periods=("decision",), class_weight="balanced").generate(12, random_state=0)
    decision = decision.mask
    gt = params["ground_truth"]
    np.testing.assert_allclose(decision.sum(axis=(1, 2)), 3 * 12 / (2 * np.where(gt == 1, counts[1], counts[2])))
    with pytest.raises(ValueError, match="class_weight"):
        NeuroGymTask(toy_env, class_weight="equal").generate(2)
    assert "class_weight=None" in repr(NeuroGymTask(toy_env))
    assert "class_weight='balanced'" in repr(NeuroGymTask(toy_env, class_weight="balanced"))


@needs_neurogym
def test_same_seed_same_trials_and_env_untouched(toy_env):
    state = copy.deepcopy(toy_env.rng.get_state())
    n_trials_before = toy_env.num_tr
    task = NeuroGymTask(toy_env)
    a, b, c = (task.generate(20, random_state=s) for s in (7, 7, 8))
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.trial_params["level"], b.trial_params["level"])
    assert not np.array_equal(a.trial_params["level"], c.trial_params["level"])
    assert toy_env.num_tr == n_trials_before
    np.testing.assert_array_equal(toy_env.rng.get_state()[1], state[1])
    # the first batch of a stream seeded like generate is generate's batch; the next is fresh
    stream = task.iter_batches(20, random_state=7)
    first, second = next(stream), next(stream)
    np.testing.assert_array_equal(first.X, a.X)
    assert not np.array_equal(second.trial_params["level"], a.trial_params["level"])


@needs_neurogym
def test_perceptual_decision_making():
    task = NeuroGymTask("PerceptualDecisionMaking-v0", dt=20, mask_periods=("decision",), class_weight=None)
    X, y, mask, params = task.generate(16, random_state=0)
    # fixation 100 ms, stimulus 2000 ms, decision 100 ms at dt 20: 5 + 100 + 5 steps
    assert X.shape == (16, 110, 3) and y.shape == (16, 110, 3)
    assert (task.n_inputs, task.n_outputs, task.dt) == (3, 3, 20)
    np.testing.assert_array_equal(X[:, :5, 0], 1.0)
    np.testing.assert_array_equal(X[:, 5:, 0], 0.0)
    np.testing.assert_array_equal(y[:, :105, 0], 1.0)  # fixate
    np.testing.assert_array_equal(y[:, 105:].argmax(axis=2), np.repeat(params["ground_truth"][:, None] + 1, 5, axis=1))
    np.testing.assert_array_equal(mask.sum(axis=(1, 2)), 15.0)
    assert set(params) == {"ground_truth", "coh"}
    assert set(params["coh"]) <= {0, 6.4, 12.8, 25.6, 51.2}
    # the default mask: 1 on every step of the trial
    _, _, mask, _ = NeuroGymTask("PerceptualDecisionMaking-v0", dt=20).generate(16, random_state=0)
    np.testing.assert_array_equal(mask, 1.0)
    # balanced: every step, each action the same share (fixate 105 steps, a choice 5)
    _, _, mask, _ = NeuroGymTask("PerceptualDecisionMaking-v0", dt=20, class_weight="balanced").generate(
        16, random_state=0
    )
    assert (mask > 0).all()
    action = y.argmax(axis=2)
    shares = [mask[:, :, 0][action == a].sum() for a in range(3)]
    np.testing.assert_allclose(shares, 16 * 110 / 3)
    np.testing.assert_allclose(mask[:, :5, 0], 16 * 110 / (3 * 16 * 105))


@needs_neurogym
@pytest.mark.slow
def test_perceptual_decision_making_target_with_the_defaults():
    """Issue #16's target with NeuroGymTask's defaults (every step, mask 1): measured 0.906 (seed 0).

    Before the output bias started from the targets (``output_bias_init="zero"``): 0.798.
    """
    import warnings

    from skneuro.rnn import RateRNNRegressor

    task = NeuroGymTask("PerceptualDecisionMaking-v0", dt=20)
    X, y, mask, _ = task.generate(2_000, random_state=0)
    Xt, yt, mt, _ = task.generate(500, random_state=10_000)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Stopped at max_iter")
        est = RateRNNRegressor(n_rec=64, dt=20, tau=100, max_iter=30, random_state=0).fit(X, y, sample_weight=mask)
    assert task.accuracy(yt, est.predict(Xt), mt) >= 0.85


@needs_neurogym
def test_wrapper_shapes_the_trials():
    from neurogym.wrappers import SideBias

    from skneuro.datasets._neurogym import _make_env

    base = _make_env("PerceptualDecisionMaking-v0", {"dt": 100}).unwrapped
    env = SideBias(base, probs=[[1.0, 0.0]], block_dur=1000)
    params = NeuroGymTask(env).generate(30, random_state=0).trial_params
    np.testing.assert_array_equal(params["ground_truth"], 0)  # the wrapper's only choice
    plain = NeuroGymTask("PerceptualDecisionMaking-v0", dt=100).generate(30, random_state=0).trial_params
    assert set(plain["ground_truth"]) == {0, 1}


def test_last_step_accuracy_by_hand():
    from skneuro.datasets._neurogym import _last_step_accuracy

    y = np.zeros((3, 4, 2))
    y[0, :4] = [1, 0]  # last step 3, action 0
    y[1, :2] = [0, 1]  # last step 1, action 1 (then padding)
    y[2, :3] = [1, 0]
    pred = y.copy()
    pred[1, 1] = [0.9, 0.1]  # wrong at trial 1's last step
    pred[0, 0] = [0.0, 1.0]  # wrong before trial 0's last step: not scored
    mask = np.ones((3, 4))
    assert _last_step_accuracy(y, pred, mask) == pytest.approx(2 / 3)
    mask[2] = 0.0  # trial 2 left out
    assert _last_step_accuracy(y, pred, mask) == 0.5
    assert np.isnan(_last_step_accuracy(y, pred, np.zeros((3, 4))))


@needs_neurogym
def test_bad_input(toy_env):
    import gymnasium

    with pytest.raises(ValueError, match="PerceptualDecisionMaking-v0"):
        NeuroGymTask("PerceptualDecisionMakin-v0")
    with pytest.raises(TypeError, match="new_trial"):
        NeuroGymTask(gymnasium.make("CartPole-v1"))
    with pytest.raises(TypeError, match="gt"):
        NeuroGymTask("EconomicDecisionMaking-v0")
    with pytest.raises(ValueError, match="discrete"):
        NeuroGymTask("ReachingDelayResponse-v0")
    with pytest.raises(TypeError, match="env must be"):
        NeuroGymTask(3)
    with pytest.raises(TypeError, match="dt"):
        NeuroGymTask(toy_env, dt=20)
    task = NeuroGymTask(toy_env)
    for n_trials in (0, -1, 2.0):
        with pytest.raises(ValueError, match="n_trials"):
            task.generate(n_trials)
    with pytest.raises(ValueError, match=r"'stimulus', 'decision'"):
        NeuroGymTask(toy_env, mask_periods=("delay",)).generate(2)
    with pytest.raises(ValueError, match="mask_periods"):
        NeuroGymTask(toy_env, mask_periods="decision").generate(2)
    with pytest.raises(ValueError, match="tau"):
        NeuroGymTask(toy_env, tau=0).generate(2)
    with pytest.raises(ValueError, match="T must be"):
        NeuroGymTask(toy_env, T=-5).generate(2)
    with pytest.raises(ValueError, match="T = 30"):
        NeuroGymTask(toy_env, T=30).generate(20, random_state=0)


def test_import_without_neurogym():
    code = (
        "import sys\n"
        "sys.modules['neurogym'] = None\n"
        "sys.modules['gymnasium'] = None\n"
        "import skneuro, skneuro.datasets.tasks as tasks\n"
        "try:\n"
        "    tasks.NeuroGymTask('PerceptualDecisionMaking-v0')\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert 'pip install "skneuro[neurogym]"' in out

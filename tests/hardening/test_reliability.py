"""Reliability contract of issue #9, for every torch-backed estimator.

Divergence, interruption (``callback`` raising ``KeyboardInterrupt``), exact pickling,
determinism, the global random state and training checkpoints. Each estimator gets a tiny
setup (a few dozen samples or trials, a few epochs) so that the whole file runs in seconds.

``RRLinearRegressor`` defaults to its closed form, which has no iterations: every test
here that needs training epochs runs it (like the other reduced-rank links) with
``solver="adam"`` (or ``"lbfgs"`` where named).

Epoch counting (``FitResult.n_iter``): the engine records an epoch (``n_iter = epoch + 1``,
its loss appended to ``loss_curve_``) *before* calling ``callback(epoch, loss)``; a
``KeyboardInterrupt`` raised by the callback after the k-th epoch therefore leaves
``n_iter_ == len(loss_curve_) == k``. Full-batch Adam measures an epoch's loss before that
epoch's update and keeps the parameters of the best measured epoch; L-BFGS measures after
each iteration; minibatch Adam's epoch loss is the mean over its updates and the kept
parameters are those at the end of the best epoch.
"""

from __future__ import annotations

import functools
import math
import pickle
import random
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from skneuro._engine.checkpoint import CHECKPOINT_VERSION, load_checkpoint
from skneuro.bumps import SumOfBumpsRegressor
from skneuro.datasets import make_multi_subject_latent_regression, make_reduced_rank_regression
from skneuro.datasets.tasks import PerceptualDiscrimination
from skneuro.latent_regression import MultiSubjectLatentRegressor
from skneuro.reduced_rank import RRExpRegressor, RRLinearRegressor, RRReluRegressor, RRSigmoidRegressor
from skneuro.rnn import MultiRegionRNNRegressor, RateRNNRegressor


# ============================================================================ data and set-ups
@functools.cache
def _rr_data(link):
    return make_reduced_rank_regression(
        n_samples=100, n_features=5, n_targets=4, n_components=2, link=link, random_state=0
    )


@functools.cache
def _bump_data():
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(80, 2))
    y = np.exp(-(((X - [0.3, 0.6]) / 0.2) ** 2).sum(1)) + 0.05 * rng.normal(size=80)
    return X, y


@functools.cache
def _latent_data():
    return make_multi_subject_latent_regression(2, 60, n_inputs=(6, 8), n_outputs=(5, 7), random_state=0)


@functools.cache
def _trials():
    X, y, mask, _ = PerceptualDiscrimination(T=100).generate(16, random_state=0)  # 16 trials, 10 steps
    return X, y, mask


def _region_config():
    """Two regions (E and I), a half-dense E->E block, one input group; like tests/rnn/test_multi_region.py."""
    return {
        "regions": [
            {"name": "a", "n_units": 4, "sign": "excitatory", "learnable_bias": True},
            {"name": "b", "n_units": 3, "sign": "inhibitory"},
        ],
        "inputs": [{"name": "u", "n_units": 2}],
        "connections": [
            {"source": "u", "target": "a"},
            {"source": "a", "target": "a", "density": 0.5},
            {"source": "a", "target": "b"},
            {"source": "b", "target": "a"},
        ],
        "readout": ["a"],
    }


@dataclass
class Case:
    """A tiny set-up: ``make(**overrides)`` builds the estimator, ``fit(est)`` fits it."""

    name: str
    make: object
    data: object  # () -> (fit args, fit kwargs)
    objective: object  # (est) -> training objective at the fitted parameters, full batch; None: not computed
    transform: bool = False
    simulate: bool = False

    def fit(self, est):
        args, kwargs = self.data()
        return est.fit(*args, **kwargs)

    def X(self):
        return self.data()[0][0]


def _rr_case(name, cls, link):
    def make(**kw):
        return cls(**{"n_components": 2, "solver": "adam", "max_iter": 10, "random_state": 0, **kw})

    def objective(est):
        # mean over samples of Σ_j ½ log v_j + (y_j − mean_j)² / (2 v_j)  (the module's NLL, no 2π)
        X, y = _rr_data(link)
        return -est.log_likelihood(X, y) - 0.5 * y.shape[1] * math.log(2 * math.pi)

    return Case(name, make, lambda: (_rr_data(link), {}), objective, transform=True)


def _bumps_objective(est):
    X, y = _bump_data()
    resid = (y - est.predict(X)) / est.y_scale_[0]  # standardised units, unit weights
    return float(np.mean(resid**2))


def _latent_objective(est):
    """Σ_subjects Σ_samples Σ_j [½ log(2π ψ_j) + (y_j − μ_j)² / (2 ψ_j)] / N."""
    X, y = _latent_data()
    total, n = 0.0, 0
    for s, y_s, pred in zip(X, y, est.predict(X)):
        psi = est.noise_variance_[s.subject_id]
        total += np.sum(0.5 * np.log(2 * np.pi * psi) + 0.5 * (y_s - pred) ** 2 / psi)
        n += s.n_samples
    return total / n


def _rnn_objective(est):
    """Mean over trials of Σ mask (ŷ − y)² / (n_steps · n_outputs) (no noise, no penalty)."""
    X, y, mask = _trials()
    return float(np.mean(np.sum(mask * (est.predict(X) - y) ** 2, axis=(1, 2)) / (y.shape[1] * y.shape[2])))


CASES = {
    c.name: c
    for c in [
        _rr_case("RRLinear", RRLinearRegressor, "linear"),
        _rr_case("RRSigmoid", RRSigmoidRegressor, "sigmoid"),
        _rr_case("RRExp", RRExpRegressor, "exp"),
        _rr_case("RRRelu", RRReluRegressor, "relu"),
        Case(
            "SumOfBumps",
            lambda **kw: SumOfBumpsRegressor(**{"n_bumps": 4, "max_iter": 10, "random_state": 0, **kw}),
            lambda: (_bump_data(), {}),
            _bumps_objective,
        ),
        Case(
            "MultiSubjectLatent",
            # the engine's behaviours are checked on the trained parameters, without the smoothing after training
            lambda **kw: MultiSubjectLatentRegressor(
                **{"n_bumps": 6, "max_iter": 10, "random_state": 0, "smooth_modes": False, **kw}
            ),
            lambda: (_latent_data(), {}),
            _latent_objective,
            transform=True,
        ),
        Case(
            "RateRNN",
            lambda **kw: RateRNNRegressor(
                **{"n_rec": 8, "max_iter": 10, "batch_size": None, "learning_rate": 1e-2, "random_state": 0, **kw}
            ),
            lambda: (_trials()[:2], {"sample_weight": _trials()[2]}),
            _rnn_objective,
            simulate=True,
        ),
        Case(
            "MultiRegionRNN",
            lambda **kw: MultiRegionRNNRegressor(
                **{
                    "config": _region_config(),
                    "max_iter": 10,
                    "batch_size": None,
                    "learning_rate": 1e-2,
                    "random_state": 0,
                    **kw,
                }
            ),
            lambda: (_trials()[:2], {"sample_weight": _trials()[2]}),
            _rnn_objective,
            simulate=True,
        ),
    ]
}
NAMES = list(CASES)
# minibatch sizes that split each training set into several updates per epoch
MINIBATCH = {"SumOfBumps": 30, "MultiSubjectLatent": 20, "RateRNN": 6, "MultiRegionRNN": 6}


def _quiet_fit(case, est):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return case.fit(est)


# ============================================================================ helpers
def _flat(value):
    """Predictions of any estimator (an array, or a list of per-subject arrays) as one float array."""
    if isinstance(value, (list, tuple)):
        return np.concatenate([_flat(v) for v in value]) if value else np.zeros(0)
    return np.asarray(value, dtype=np.float64).ravel()


def _fitted_arrays(est):
    """Every fitted float attribute (trailing underscore) as name -> float64 array; dicts and lists flattened."""
    out = {}

    def add(name, value):
        if isinstance(value, dict):
            for key, v in value.items():
                add(f"{name}[{key!r}]", v)
        elif isinstance(value, (list, tuple)):
            if all(isinstance(v, (int, float, np.floating)) and not isinstance(v, bool) for v in value):
                out[name] = np.asarray(value, dtype=np.float64)
            else:
                for i, v in enumerate(value):
                    add(f"{name}[{i}]", v)
        elif isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
            out[name] = value.astype(np.float64)
        elif isinstance(value, (float, np.floating)):
            out[name] = np.asarray([value], dtype=np.float64)

    for name, value in vars(est).items():
        if name.endswith("_") and not name.startswith("_") and name != "module_":
            add(name, value)
    return out


def _module_state(est):
    return {k: v.detach().cpu().clone() for k, v in est.module_.state_dict().items()}


def _outputs(case, est):
    """Everything the fitted estimator computes from the training inputs, name -> float array."""
    X = case.X()
    out = {"predict": _flat(est.predict(X))}
    if case.transform:
        out["transform"] = _flat(est.transform(X))
    if case.simulate:
        sim = est.simulate(X, random_state=0)
        out.update(simulate_outputs=_flat(sim.outputs), simulate_rates=_flat(sim.rates))
    return out


def _assert_finite_model(case, est):
    for name, tensor in est.module_.named_parameters():
        assert torch.isfinite(tensor).all(), f"module_ parameter {name} is not finite"
    for name, value in _fitted_arrays(est).items():
        assert np.isfinite(value).all(), f"fitted attribute {name} is not finite"
    for name, value in _outputs(case, est).items():
        assert np.isfinite(value).all(), f"{name} returned NaN or infinity"


def _assert_identical(a, b, what):
    assert a.keys() == b.keys(), what
    for name in a:
        x, y = a[name], b[name]
        if torch.is_tensor(x):
            assert torch.equal(x, y), f"{what}: {name} differs"
        else:
            np.testing.assert_array_equal(x, y, err_msg=f"{what}: {name} differs")


class StopAfter:
    """``callback`` that records ``(epoch, loss)`` and raises ``KeyboardInterrupt`` after ``k`` epochs."""

    def __init__(self, k=None):
        self.k, self.seen = k, []

    def __call__(self, epoch, loss):
        self.seen.append((epoch, loss))
        if self.k is not None and epoch + 1 == self.k:
            raise KeyboardInterrupt


# ============================================================================ 1. divergence
DIVERGENT = [("adam", 1e3), ("adam", 1e6), ("lbfgs", 1e30)]


@pytest.mark.parametrize(
    "name, solver, learning_rate",
    [(n, s, lr) for n in NAMES for s, lr in DIVERGENT],
)
def test_a_far_too_large_learning_rate_ends_finite_and_warns(name, solver, learning_rate):
    """Finite parameters, finite fitted attributes and outputs, and a ConvergenceWarning (or a ValueError).

    (max_iter=10 <= n_iter_no_change=10: the stopping rule cannot fire, see the next test.)
    """
    case = CASES[name]
    est = case.make(solver=solver, learning_rate=learning_rate)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            case.fit(est)
        except ValueError as exc:  # the contract's alternative: a clear error, and no half-fitted state
            assert "learning_rate" in str(exc) or "not finite" in str(exc)
            assert not hasattr(est, "module_")
            return
    assert any(issubclass(w.category, ConvergenceWarning) for w in caught), [str(w.message) for w in caught]
    check_is_fitted(est)
    _assert_finite_model(case, est)


@pytest.mark.parametrize(
    "name, learning_rate",
    [
        ("RRExp", 1e3),
        ("RRExp", 1e6),
        ("RateRNN", 1e3),
        ("RateRNN", 1e6),
        ("MultiRegionRNN", 1e6),
    ],
)
def test_a_diverged_fit_keeps_its_best_epoch(name, learning_rate):
    """Full-batch Adam set-ups whose objective becomes non-finite (the "diverged" path of the engine)."""
    case = CASES[name]
    est = case.make(learning_rate=learning_rate)
    with pytest.warns(ConvergenceWarning, match="diverged"):
        case.fit(est)
    assert est.n_iter_ >= 1
    np.testing.assert_allclose(case.objective(est), min(est.loss_curve_), rtol=2e-5)


# Adam at lr=1e6 with enough epochs for the stopping rule (n_iter_no_change) to fire: the objective
# explodes but stays finite, the "no improvement" counter reaches n_iter_no_change and the engine
# reports convergence, without any warning (before the fix; now a ConvergenceWarning).


@pytest.mark.parametrize("name", NAMES)
def test_an_exploding_objective_is_never_reported_as_convergence(name):
    case = CASES[name]
    est = case.make(learning_rate=1e6, max_iter=60)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        case.fit(est)
    _assert_finite_model(case, est)  # (full-batch Adam restores its best epoch: the model itself is fine)
    assert any(issubclass(w.category, ConvergenceWarning) for w in caught), (
        f"silent 'convergence' after the objective went from {est.loss_curve_[0]:.3g} to {est.loss_curve_[-1]:.3g}"
    )


def test_minibatch_adam_with_an_exploding_objective_warns_and_does_not_keep_a_useless_model():
    X, y = _rr_data("linear")
    start = RRLinearRegressor(n_components=2).fit(X, y).score(X, y)  # the closed-form start of the Adam fit
    est = RRLinearRegressor(n_components=2, solver="adam", batch_size=30, learning_rate=1e6, max_iter=60)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.set_params(random_state=0).fit(X, y)
    assert np.isfinite(est.predict(X)).all()
    warned = any(issubclass(w.category, ConvergenceWarning) for w in caught)
    assert warned, f"no warning; stopped after {est.n_iter_} of 60 epochs with score {est.score(X, y):.3g}"
    assert est.score(X, y) > start - 1.0


# ============================================================================ 2. interruption
def _interrupted_fit(case, k, **overrides):
    stopper = StopAfter(k)
    est = case.make(callback=stopper, **overrides)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        case.fit(est)
    interrupted = [w for w in caught if issubclass(w.category, UserWarning) and "interrupted" in str(w.message)]
    assert len(interrupted) == 1, [str(w.message) for w in caught]
    assert f"after {k} epoch" in str(interrupted[0].message)
    # an interrupted fit is not a fit stopped at max_iter: no "increase max_iter" advice
    assert not any("max_iter" in str(w.message) for w in caught)
    assert [e for e, _ in stopper.seen] == list(range(k))
    return est, stopper


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
@pytest.mark.parametrize("name", NAMES)
def test_keyboard_interrupt_in_callback_keeps_the_best_epoch(name, solver):
    """Full batch: the training objective at the kept parameters equals min(loss_curve_)."""
    case, k = CASES[name], 2
    # (RR: a random start; from the closed form L-BFGS converges before epoch 2)
    est, stopper = _interrupted_fit(case, k, solver=solver, **_random_init(name))
    check_is_fitted(est)
    assert est.n_iter_ == len(est.loss_curve_) == k  # epochs completed, the interrupted one included
    assert est.loss_curve_ == [loss for _, loss in stopper.seen]
    _assert_finite_model(case, est)
    np.testing.assert_allclose(case.objective(est), min(est.loss_curve_), rtol=2e-5)


@pytest.mark.parametrize("name", NAMES)
def test_keyboard_interrupt_after_k_minibatch_epochs_equals_a_fit_of_k_epochs(name):
    """Minibatch Adam: when the last completed epoch is the best, interrupted after k == max_iter=k."""
    case, k = CASES[name], 2
    extra = {"batch_size": MINIBATCH.get(name, 30), "solver": "adam"}
    if name.startswith("RR"):
        extra["init"] = "random"  # from the closed form there is nothing left to improve
    est, _ = _interrupted_fit(case, k, max_iter=10, **extra)
    assert est.n_iter_ == len(est.loss_curve_) == k
    assert int(np.argmin(est.loss_curve_)) == k - 1, est.loss_curve_  # set-up: the objective still decreases
    reference = _quiet_fit(case, case.make(max_iter=k, **extra))
    assert est.loss_curve_ == reference.loss_curve_
    _assert_identical(_module_state(est), _module_state(reference), "module_")
    _assert_identical(_fitted_arrays(est), _fitted_arrays(reference), "fitted attributes")
    _assert_identical(_outputs(case, est), _outputs(case, reference), "outputs")


# ============================================================================ 3. pickle
@pytest.mark.parametrize("name", NAMES)
def test_pickle_round_trip_is_exact(name):
    case = CASES[name]
    est = _quiet_fit(case, case.make())
    back = pickle.loads(pickle.dumps(est))
    _assert_identical(_outputs(case, est), _outputs(case, back), "outputs after pickling")
    _assert_identical(_fitted_arrays(est), _fitted_arrays(back), "fitted attributes after pickling")
    _assert_identical(_module_state(est), _module_state(back), "module_ after pickling")
    assert back.n_iter_ == est.n_iter_ and back.get_params().keys() == est.get_params().keys()


# ============================================================================ 4. determinism
def _random_init(name):
    """Overrides under which random_state matters (RR: random start; the closed-form start is deterministic)."""
    return {"init": "random"} if name.startswith("RR") else {}


@pytest.mark.parametrize("name", NAMES)
def test_same_random_state_gives_bit_identical_fits(name):
    case = CASES[name]
    a = _quiet_fit(case, case.make(random_state=3, **_random_init(name)))
    b = _quiet_fit(case, case.make(random_state=3, **_random_init(name)))
    assert a.loss_curve_ == b.loss_curve_
    _assert_identical(_module_state(a), _module_state(b), "module_")
    _assert_identical(_fitted_arrays(a), _fitted_arrays(b), "fitted attributes")
    _assert_identical(_outputs(case, a), _outputs(case, b), "outputs")


@pytest.mark.parametrize("name", NAMES)
def test_another_random_state_gives_another_fit(name):
    case = CASES[name]
    a = _quiet_fit(case, case.make(random_state=3, **_random_init(name)))
    b = _quiet_fit(case, case.make(random_state=4, **_random_init(name)))
    assert not np.array_equal(_flat(a.predict(case.X())), _flat(b.predict(case.X())))


# ============================================================================ 5. global random state
def _global_states():
    return np.random.get_state(), torch.get_rng_state().clone(), random.getstate()


def _assert_same_global_states(before, after):
    (np_a, torch_a, py_a), (np_b, torch_b, py_b) = before, after
    assert np_a[0] == np_b[0] and np.array_equal(np_a[1], np_b[1]) and np_a[2:] == np_b[2:], "numpy global RNG"
    assert torch.equal(torch_a, torch_b), "torch global RNG"
    assert py_a == py_b, "python random"


RNG_VARIANTS = [(n, {}) for n in NAMES] + [
    ("RRSigmoid", {"init": "random", "batch_size": 30}),
    ("MultiSubjectLatent", {"mode_predictor": "mlp", "hidden_layer_sizes": (4,)}),
    ("RateRNN", {"rec_noise": 0.05, "batch_size": 6}),
    ("MultiRegionRNN", {"rec_noise": 0.05, "input_noise": 0.05}),
]


@pytest.mark.parametrize("random_state", [0, None])
@pytest.mark.parametrize("name, extra", RNG_VARIANTS, ids=["-".join([n, *e]) for n, e in RNG_VARIANTS])
def test_fit_and_predict_leave_the_global_random_state_alone(name, extra, random_state):
    case = CASES[name]
    np.random.seed(12345)
    torch.manual_seed(12345)
    random.seed(12345)
    before = _global_states()
    est = _quiet_fit(case, case.make(random_state=random_state, **extra))
    _outputs(case, est)  # predict, transform, simulate(random_state=0)
    if case.simulate:
        est.simulate(case.X())  # random_state=None: fresh entropy, still not the global generators
    _assert_same_global_states(before, _global_states())


# ============================================================================ 6. checkpoints
def _latent(**kw):
    return MultiSubjectLatentRegressor(**{"n_bumps": 6, "random_state": 0, "dtype": "float64", **kw})


RESUME_SETUPS = {"adam-minibatch": {"batch_size": 20}, "adam-full-batch": {}, "lbfgs": {"solver": "lbfgs"}}


@pytest.mark.parametrize("setup", list(RESUME_SETUPS))
def test_fit_interrupted_after_a_checkpoint_and_resumed_equals_the_uninterrupted_fit(setup, tmp_path):
    """tests/latent_regression covers resume after a fit that *ended* at max_iter=3 (float64, minibatch);
    here the run is stopped by Ctrl-C (a callback) two epochs after its last checkpoint."""
    X, y = _latent_data()
    extra = {**RESUME_SETUPS[setup], "tol": 0.0}  # never stop early: every run goes the full 8 epochs
    path = tmp_path / "run.pt"
    callback = StopAfter(5)  # the fingerprint of a checkpoint includes repr(callback): reuse the object
    with pytest.warns(UserWarning, match="interrupted after 5"):
        _latent(max_iter=8, checkpoint_path=path, checkpoint_every=3, callback=callback, **extra).fit(X, y)
    state = load_checkpoint(path)
    assert state["epoch"] == 3 and state["format_version"] == CHECKPOINT_VERSION
    callback.k, callback.seen = None, []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resumed = _latent(
            max_iter=8, checkpoint_path=path, checkpoint_every=3, callback=callback, warm_start=True, **extra
        ).fit(X, y)
    assert not any("other data or parameters" in str(w.message) for w in caught)
    assert [e for e, _ in callback.seen] == [3, 4, 5, 6, 7]  # continued at the stored epoch
    full = _quiet_fit(CASES["MultiSubjectLatent"], _latent(max_iter=8, **extra))
    assert resumed.n_iter_ == full.n_iter_ == 8 and resumed.n_updates_ == full.n_updates_
    assert resumed.loss_curve_ == full.loss_curve_
    _assert_identical(_module_state(resumed), _module_state(full), "module_")
    _assert_identical(_fitted_arrays(resumed), _fitted_arrays(full), "fitted attributes")
    _assert_identical({"predict": _flat(resumed.predict(X))}, {"predict": _flat(full.predict(X))}, "predictions")


def test_a_checkpoint_is_resumed_whatever_the_callback(tmp_path):
    X, y = _latent_data()
    path = tmp_path / "run.pt"
    kwargs = {"max_iter": 8, "tol": 0.0, "checkpoint_path": path, "checkpoint_every": 3}
    with pytest.warns(UserWarning, match="interrupted"):
        _latent(callback=StopAfter(5), **kwargs).fit(X, y)
    recorder = StopAfter()  # e.g. the same logging callback, re-created in a new session
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _latent(callback=recorder, warm_start=True, **kwargs).fit(X, y)
    assert not any("other data or parameters" in str(w.message) for w in caught), [str(w.message) for w in caught]
    assert [e for e, _ in recorder.seen] == [3, 4, 5, 6, 7]


def _bump_version(path):
    state = torch.load(path, map_location="cpu", weights_only=True)
    state["format_version"] = CHECKPOINT_VERSION + 1
    torch.save(state, path)


def test_a_checkpoint_from_a_newer_format_is_refused_with_its_version(tmp_path):
    X, y = _latent_data()
    path = tmp_path / "run.pt"
    kwargs = {"max_iter": 2, "checkpoint_path": path, "checkpoint_every": 2}
    fitted = _quiet_fit(CASES["MultiSubjectLatent"], _latent(**kwargs))
    _bump_version(path)
    newer = f"format version {CHECKPOINT_VERSION + 1}"
    with pytest.raises(ValueError, match=newer):
        load_checkpoint(path)
    with pytest.raises(ValueError, match=newer):
        _latent(**kwargs, warm_start=True).fit(X, y)
    # a fitted estimator asked to resume from it keeps its fitted state
    before = _module_state(fitted)
    with pytest.raises(ValueError, match=newer):
        fitted.set_params(warm_start=True, max_iter=4).fit(X, y)
    _assert_identical(_module_state(fitted), before, "module_ after a refused resume")

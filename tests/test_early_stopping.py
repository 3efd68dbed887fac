"""Validation-based early stopping (issue 14, item 1): the engine and the estimators that offer it."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from skneuro._engine import fit_module
from skneuro.bumps import SumOfBumpsRegressor
from skneuro.datasets import make_reduced_rank_regression
from skneuro.latent_regression import MultiSubjectLatentRegressor
from skneuro.reduced_rank import RRLinearRegressor, RRSigmoidRegressor
from skneuro.rnn import MultiRegionRNNRegressor, RateRNNRegressor


def _sq(m, x, y):
    return ((m(x) - y) ** 2).sum()


def _overfitting_problem(seed=0):
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(40, 1, generator=gen, dtype=torch.float64)
    X = torch.randn(230, 40, generator=gen, dtype=torch.float64)
    y = X @ w + 3.0 * torch.randn(230, 1, generator=gen, dtype=torch.float64)
    return (X[:30], y[:30]), (X[30:], y[30:])


def test_engine_keeps_the_best_validation_epoch_and_stops_on_it():
    train, valid = _overfitting_problem()
    module = torch.nn.Linear(40, 1).double()
    with torch.no_grad():
        module.weight.zero_(), module.bias.zero_()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit_module(
            module,
            _sq,
            train,
            learning_rate=0.05,
            max_iter=2000,
            tol=1e-6,
            n_iter_no_change=25,
            validation_data=valid,
        )
    scores = result.validation_scores
    assert len(scores) == result.n_iter == len(result.loss_curve) and result.n_iter < 2000
    assert result.best_validation_score == max(scores)
    best = int(np.argmax(scores))
    assert best < result.n_iter - 1 and scores[-1] < scores[best]  # it overfits after the best epoch
    assert result.loss_curve[-1] < result.loss_curve[best]  # while the training loss still falls
    with torch.no_grad():  # the kept parameters are those of the best epoch
        kept = -float(_sq(module, *valid)) / len(valid[0])
    assert kept == pytest.approx(result.best_validation_score, rel=1e-12)
    assert result.n_iter == _validation_stop(scores, tol=1e-6, n_iter_no_change=25)


def _validation_stop(scores, tol, n_iter_no_change):
    """The epoch the validation rule fires at: no improvement for n_iter_no_change + the epochs up to the last one."""
    best, last = -math.inf, 0
    for epoch, score in enumerate(scores, start=1):
        if score > best + tol:
            last = epoch
        best = max(best, score)
        if epoch - last >= n_iter_no_change + last:
            return epoch
    return None


def _zero(m, x, y):
    return x.sum() * 0


def test_validation_stop_waits_as_long_again_as_the_best_epoch_took():
    """A score that improves for 30 epochs and then dips stops at 30 + 10 + 30, not after 10 epochs."""
    train, valid = _overfitting_problem()
    scripted = [1.0 - 0.01 * e for e in range(30)] + [0.9] * 200  # validation losses, epoch by epoch

    def validation_loss(m, x, y):
        return torch.tensor(scripted.pop(0) * x.shape[0], dtype=torch.float64)

    result = _validated_fit(
        _fresh(), train, valid, max_iter=200, n_iter_no_change=10, validation_loss=validation_loss, tol=1e-4
    )
    assert result.stop_reason == "converged" and result.n_iter == 70
    assert int(np.argmax(result.validation_scores)) == 29
    assert result.best_validation_score == pytest.approx(-0.71)
    flat = _validated_fit(_fresh(), train, valid, max_iter=200, n_iter_no_change=10, validation_loss=_zero)
    assert flat.n_iter == 12  # best at epoch 1: then 10 + 1 epochs without improvement
    without = _validated_fit(_fresh(), train, None, max_iter=200, n_iter_no_change=10, tol=1e9)
    assert without.n_iter == 11  # the training rule is unchanged: n_iter_no_change epochs after the first


def test_engine_without_validation_reports_none():
    train, _ = _overfitting_problem()
    result = fit_module(torch.nn.Linear(40, 1).double(), _sq, train, max_iter=3, warn_not_converged=False)
    assert result.validation_scores is None and result.best_validation_score is None


def _rr_data(n=300):
    X, y = make_reduced_rank_regression(n, 6, 8, 2, link="sigmoid", random_state=0)
    return X, y


def _trials(n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8, 2))
    y = np.cumsum(X, axis=1) * 0.1 + 0.05 * rng.normal(size=(n, 8, 2))
    return X, y


REGION_CONFIG = {
    "regions": [{"name": "a", "n_units": 4}, {"name": "b", "n_units": 3}],
    "inputs": [{"name": "u", "n_units": 2}],
    "connections": [{"source": "u", "target": "a"}, {"source": "a", "target": "b"}, {"source": "b", "target": "a"}],
}

CASES = [
    (lambda **kw: RRSigmoidRegressor(n_components=2, max_iter=20, **kw), _rr_data, 300),
    (lambda **kw: RRLinearRegressor(n_components=2, solver="adam", max_iter=20, **kw), _rr_data, 300),
    (lambda **kw: SumOfBumpsRegressor(n_bumps=5, max_iter=20, **kw), lambda: (_rr_data()[0], _rr_data()[1][:, 0]), 300),
    (lambda **kw: RateRNNRegressor(n_rec=6, max_iter=4, batch_size=8, **kw), _trials, 40),
    (lambda **kw: MultiRegionRNNRegressor(REGION_CONFIG, max_iter=4, batch_size=8, **kw), _trials, 40),
]
IDS = ["rr_sigmoid", "rr_linear_adam", "bumps", "rate_rnn", "multi_region"]


@pytest.mark.parametrize(("make", "data", "n"), CASES, ids=IDS)
def test_same_seed_same_split_and_attributes(make, data, n):
    X, y = data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = make(random_state=0).fit(X, y)
        a = make(early_stopping=True, random_state=0).fit(X, y)
        b = make(early_stopping=True, random_state=0).fit(X, y)
        c = make(early_stopping=True, validation_fraction=0.3, random_state=0).fit(X, y)
    assert plain.validation_scores_ is None and plain.best_validation_score_ is None
    assert all(math.isfinite(v) for v in a.validation_scores_)
    if hasattr(a, "w0_"):  # reduced rank: trained again on all samples, at most to the best iteration
        assert 1 <= a.n_iter_ <= int(np.argmax(a.validation_scores_)) + 1
    else:
        assert len(a.validation_scores_) == a.n_iter_
    assert a.validation_scores_ == b.validation_scores_  # same seed, same split, same fit
    assert a.best_validation_score_ == max(a.validation_scores_)
    assert c.validation_scores_ != a.validation_scores_  # another held-out share, another score
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


@pytest.mark.parametrize(("make", "data", "n"), CASES, ids=IDS)
def test_validation_fraction_is_checked_by_name(make, data, n):
    X, y = data()
    for bad in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="validation_fraction"):
            make(early_stopping=True, validation_fraction=bad).fit(X, y)
    X2, y2 = X[:2], y[:2]
    with pytest.raises(ValueError, match=r"validation_fraction=0.1 holds out 1 of 2 .* leaving 1 for training"):
        make(early_stopping=True).fit(X2, y2)


def test_closed_form_has_nothing_to_stop_and_auto_goes_iterative():
    X, y = _rr_data()
    with pytest.raises(ValueError, match="closed_form.*early_stopping"):
        RRLinearRegressor(solver="closed_form", early_stopping=True).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = RRLinearRegressor(early_stopping=True, random_state=0).fit(X, y)
    assert est.solver_ == "lbfgs" and est.n_iter_ <= int(np.argmax(est.validation_scores_)) + 1


def test_over_parameterised_bumps_predict_held_out_data_better_with_early_stopping():
    """40 bumps on 200 noisy points (issue 14's example): stopping on validation beats training to the end."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(1200, 2))
    f = np.sin(3 * X[:, 0]) * np.cos(2 * X[:, 1])
    y = f + 0.3 * rng.normal(size=1200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = SumOfBumpsRegressor(n_bumps=40, random_state=0).fit(X[:200], y[:200])
        stopped = SumOfBumpsRegressor(n_bumps=40, early_stopping=True, random_state=0).fit(X[:200], y[:200])
    assert stopped.score(X[200:], f[200:]) > plain.score(X[200:], f[200:]) + 0.2
    assert stopped.n_iter_ < plain.n_iter_


def test_over_parameterised_reduced_rank_loses_nothing_to_early_stopping():
    """Rank 8 on rank-2 sigmoid data, 300 samples: the held-out share comes back in the final fit.

    The validation run picks the number of L-BFGS iterations; the final model is the fit on
    all 300 samples stopped there, so it equals the plain fit when that stops earlier.
    """
    scores = []
    for seed in (0, 1):
        X, y = make_reduced_rank_regression(2300, 20, 30, 2, link="sigmoid", random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            plain = RRSigmoidRegressor(n_components=8, random_state=0).fit(X[:300], y[:300])
            stopped = RRSigmoidRegressor(n_components=8, early_stopping=True, random_state=0).fit(X[:300], y[:300])
        scores.append((plain.score(X[300:], y[300:]), stopped.score(X[300:], y[300:])))
        best = int(np.argmax(stopped.validation_scores_)) + 1
        assert stopped.n_iter_ == min(best, plain.n_iter_)
        if best >= plain.n_iter_:
            np.testing.assert_array_equal(stopped.predict(X), plain.predict(X))
    assert scores[0][1] >= scores[0][0] and scores[1][1] == scores[1][0]
    assert scores[0][0] == pytest.approx(0.7009, abs=1e-4) and scores[1][0] == pytest.approx(0.6308, abs=1e-4)


def test_reduced_rank_warm_start_with_early_stopping_trains_again_from_the_previous_fit():
    X, y = _rr_data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = RRSigmoidRegressor(n_components=2, max_iter=5, random_state=0).fit(X, y)
        previous = est.predict(X)
        est.set_params(warm_start=True, early_stopping=True).fit(X, y)
    assert est.n_iter_ <= len(est.validation_scores_) and np.isfinite(est.predict(X)).all()
    assert not np.array_equal(est.predict(X), previous)


@pytest.fixture(scope="module")
def subjects():
    from skneuro.datasets import make_multi_subject_latent_regression

    return make_multi_subject_latent_regression(n_subjects=3, n_samples=300, random_state=0)


def _latent(**kw):
    return MultiSubjectLatentRegressor(**{"n_bumps": 8, "max_iter": 30, "dtype": "float64", "random_state": 0, **kw})


def test_latent_model_holds_out_neurons_and_gets_them_back(subjects):
    X, y = subjects
    a = _latent(early_stopping=True).fit(X[:2], y[:2])
    b = _latent(early_stopping=True).fit(X[:2], y[:2])
    c = _latent(early_stopping=True, validation_fraction=0.3).fit(X[:2], y[:2])
    assert len(a.validation_scores_) == a.n_iter_ and a.validation_scores_ == b.validation_scores_
    assert c.validation_scores_ != a.validation_scores_
    assert a.best_validation_score_ == max(a.validation_scores_)
    assert a.validation_scores_[-1] > a.validation_scores_[0]  # the held-out neurons are predicted better
    for y_s, pred in zip(y, a.predict(X)):  # every neuron of every subject, seen and unseen
        assert pred.shape == y_s.shape and np.isfinite(pred).all()
    assert a.scales_["s0"].shape == (y[0].shape[1],) and a.noise_variance_["s1"].shape == (y[1].shape[1],)
    plain = _latent().fit(X[:2], y[:2])
    assert plain.validation_scores_ is None and plain.best_validation_score_ is None
    assert abs(a.score(X[2:], y[2:]) - plain.score(X[2:], y[2:])) < 0.05


def test_held_out_score_equals_the_closed_form_fit_of_those_neurons(subjects):
    """The validation score is the mean log-likelihood fit_subject's closed form gives the held-out neurons."""
    from skneuro.latent_regression._held_out import HeldOutNeurons

    X, y = subjects
    # the validation score is of the trained predictor, before the smoothing that follows training
    est = _latent(early_stopping=True, max_iter=5, smooth_modes=False).fit(X[:2], y[:2])
    assert int(np.argmax(est.validation_scores_)) == est.n_iter_ - 1  # kept = last epoch here
    _, _, (_, held) = HeldOutNeurons._hold_out_neurons(est, X[:2], [(a,) for a in y[:2]])
    total = 0.0
    for s, (val, _, y_val) in zip(X[:2], held):
        assert len(val) == math.ceil(0.1 * s.output_properties.shape[0])
        P, U = est.predict_modes(s)  # standard form: per-neuron lines are unchanged by it
        z = s.x @ P @ U[val].T
        for j in range(len(val)):
            line = np.polyfit(z[:, j], y_val[:, j], 1)
            rss = ((np.polyval(line, z[:, j]) - y_val[:, j]) ** 2).sum()
            psi = max(rss / len(z), est.min_var * y_val[:, j].var())
            total += 0.5 * len(z) * np.log(2 * np.pi * psi) + rss / (2 * psi)
    n_total = sum(s.x.shape[0] for s in X[:2])
    assert -total / n_total == pytest.approx(est.best_validation_score_, rel=1e-8)


def test_latent_early_stopping_bad_settings_are_named(subjects):
    X, y = subjects
    with pytest.raises(ValueError, match=r"validation_fraction=0.99 holds out 75 of the 75 output neurons .* 's0'"):
        _latent(early_stopping=True, validation_fraction=0.99).fit(X[:2], y[:2])
    with pytest.raises(ValueError, match="subject_params"):
        _latent(early_stopping=True, subject_params=("scales", "latent_affine")).fit(X[:2], y[:2])
    est = _latent(early_stopping=True, warm_start=True).fit(X[:2], y[:2])
    with pytest.raises(ValueError, match="warm_start=True with early_stopping=True"):
        est.fit(X[:2], y[:2])


def _validated_fit(module, train, valid, **kw):
    options = dict(learning_rate=0.05, max_iter=60, tol=1e-6, n_iter_no_change=1000, validation_data=valid)
    options.update(kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_module(module, _sq, train, **options)


def _fresh():
    module = torch.nn.Linear(40, 1).double()
    with torch.no_grad():
        module.weight.zero_(), module.bias.zero_()
    return module


def test_validation_with_chunks_and_minibatches_equals_the_unchunked_scores():
    train, valid = _overfitting_problem()
    a = _validated_fit(_fresh(), train, valid, batch_size=7)
    b = _validated_fit(_fresh(), train, valid, batch_size=7, chunk_size=3)
    np.testing.assert_allclose(b.validation_scores, a.validation_scores, rtol=1e-10)


def test_ctrl_c_keeps_the_best_validation_epoch_so_far():
    train, valid = _overfitting_problem()

    def stop(epoch, loss):
        if epoch == 40:
            raise KeyboardInterrupt

    module = _fresh()
    result = _validated_fit(module, train, valid, callback=stop)
    assert result.stop_reason == "interrupted" and len(result.validation_scores) == 41
    with torch.no_grad():
        kept = -float(_sq(module, *valid)) / len(valid[0])
    assert kept == pytest.approx(max(result.validation_scores), rel=1e-12)


def test_checkpoint_resume_with_validation_equals_the_uninterrupted_fit(tmp_path):
    from skneuro._engine import Checkpointer, load_checkpoint

    train, valid = _overfitting_problem()
    whole = _fresh()
    expected = _validated_fit(whole, train, valid)
    first = _fresh()
    _validated_fit(first, train, valid, max_iter=25, checkpoint=Checkpointer(tmp_path / "ck.pt", every=25))
    resumed = _fresh()
    state = load_checkpoint(tmp_path / "ck.pt")
    result = _validated_fit(resumed, train, valid, resume=state)
    assert result.validation_scores == expected.validation_scores
    assert result.best_validation_score == expected.best_validation_score
    assert torch.equal(resumed.weight, whole.weight)
    with pytest.raises(ValueError, match="without validation data"):
        no_valid = _fresh()
        _validated_fit(no_valid, train, None, max_iter=25, checkpoint=Checkpointer(tmp_path / "plain.pt", every=25))
        _validated_fit(_fresh(), train, valid, resume=load_checkpoint(tmp_path / "plain.pt"))


def test_warm_start_keeps_early_stopping_working():
    X, y = _trials()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = RateRNNRegressor(n_rec=6, max_iter=3, batch_size=8, early_stopping=True, warm_start=True, random_state=0)
        est.fit(X, y)
        first = list(est.validation_scores_)
        est.fit(X, y)
    assert len(est.validation_scores_) == 3 and est.validation_scores_[0] > first[0]  # continued, not restarted


def test_rnn_with_one_update_epochs_waits_for_the_growing_patience():
    """36 training trials in one batch: one Adam update per epoch; the stop follows the validation rule."""
    X, y = _trials()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = RateRNNRegressor(n_rec=6, max_iter=400, learning_rate=1e-2, early_stopping=True, random_state=0)
        est.fit(X, y)
    scores = est.validation_scores_
    assert est.n_updates_ == est.n_iter_ == len(scores)
    stop = _validation_stop(scores, tol=1e-4, n_iter_no_change=10)
    assert est.n_iter_ == (400 if stop is None else stop)
    last = max(e + 1 for e in range(1, len(scores)) if scores[e] > max(scores[:e]) + 1e-4)
    assert est.n_iter_ == 2 * last + 10 > last + 10  # not 10 updates after the last improvement

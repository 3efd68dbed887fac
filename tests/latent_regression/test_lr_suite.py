"""The generators of issue #14's suite (benchmarks/_latent_suite.py) and their ceilings."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import r2_score

from skneuro.latent_regression import SubjectData

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "_latent_suite.py"


def _load_suite():
    spec = importlib.util.spec_from_file_location("_latent_suite", _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("_latent_suite", module)  # dataclasses look their module up by name
    spec.loader.exec_module(sys.modules["_latent_suite"])
    return sys.modules["_latent_suite"]


suite = _load_suite()
CASES = {case.name: case for case in suite.SUITE}


@pytest.fixture(scope="module")
def drawn():
    return {name: suite.make_case(case) for name, case in CASES.items()}


def test_suite_spans_what_the_issue_asks():
    cases = suite.SUITE
    assert len(cases) >= 8
    assert {c.kind for c in cases} == {"bumps", "waves"}
    assert {c.n_modes for c in cases} == {1, 2, 3, 4}
    assert {c.n_subjects for c in cases} == {2, 3, 4}
    assert min(c.n_samples for c in cases) == 1000 and max(c.n_samples for c in cases) == 5000
    assert all(0.05 <= c.mode_noise <= 0.10 for c in cases)
    assert all(0.1 <= w <= 0.4 for c in cases if c.kind == "bumps" for w in c.widths)  # before stretching
    stretched = [c for c in cases if c.stretch != (1.0, 1.0, 1.0)]
    assert {c.kind for c in stretched} == {"bumps", "waves"}  # anisotropic: layers, an ignored property
    issue = {(c.kind, c.n_modes, c.n_subjects, c.n_samples) for c in cases}
    assert {("bumps", 2, 2, 5000), ("waves", 3, 3, 3000), ("bumps", 2, 2, 1000), ("bumps", 4, 4, 2000)} <= issue
    assert next(c for c in cases if c.n_samples == 5000 and c.kind == "bumps").widths == (0.2, 0.2)
    assert sorted(suite.TUNING + suite.HELD_OUT) == list(range(len(cases)))
    assert len({c.seed for c in cases}) == len(cases)


@pytest.mark.parametrize("name", list(CASES))
def test_shapes(drawn, name):
    case, data = CASES[name], drawn[name]
    subjects = [*data["X_train"], data["X_test"]]
    ys = [*data["y_train"], data["y_test"]]
    assert len(data["X_train"]) == len(data["y_train"]) == case.n_subjects
    for s, y in zip(subjects, ys):
        assert isinstance(s, SubjectData) and s.n_properties == 3 and s.n_samples == case.n_samples
        (d,), (e,) = s.n_inputs, s.n_outputs
        assert case.n_inputs[0] <= d <= case.n_inputs[1] and case.n_outputs[0] <= e <= case.n_outputs[1]
        assert y.shape == (case.n_samples, e) and np.isfinite(y).all()
    assert len({s.n_outputs for s in subjects}) > 1  # neuron counts differ between subjects
    assert data["true_prediction"].shape == data["y_test"].shape


def test_seeded():
    case = suite.SUITE[2]
    a, b = suite.make_case(case), suite.make_case(case)
    for sa, sb in zip([*a["X_train"], a["X_test"]], [*b["X_train"], b["X_test"]]):
        np.testing.assert_array_equal(sa.x, sb.x)
        np.testing.assert_array_equal(sa.output_properties, sb.output_properties)
    for ya, yb in zip([*a["y_train"], a["y_test"]], [*b["y_train"], b["y_test"]]):
        np.testing.assert_array_equal(ya, yb)
    assert a["ceiling"] == b["ceiling"]
    other = suite.make_case(suite.SUITE[0])
    assert other["y_test"].shape != a["y_test"].shape or not np.array_equal(other["y_test"], a["y_test"])


@pytest.mark.parametrize("name", list(CASES))
def test_ceiling_comes_from_the_true_functions(drawn, name):
    data = drawn[name]
    s, y = data["X_test"], data["y_test"]
    f_in, f_out = data["functions"]["in"], data["functions"]["out"]
    expected = (s.x @ suite.mode_function(f_in, s.input_properties)) @ suite.mode_function(f_out, s.output_properties).T
    np.testing.assert_allclose(data["true_prediction"], expected, rtol=1e-12)
    assert data["ceiling"] == pytest.approx(r2_score(y, expected, multioutput="variance_weighted"), abs=1e-12)
    assert 0.9 < data["ceiling"] < data["oracle_ceiling"] < 1.0
    # the functions carry the information: neurons given other neurons' positions predict far worse
    shuffled = suite.mode_function(f_out, np.random.default_rng(0).permutation(s.output_properties))
    latents = s.x @ suite.mode_function(f_in, s.input_properties)
    worse = r2_score(y, latents @ shuffled.T, multioutput="variance_weighted")
    assert worse < data["ceiling"] - 0.2


@pytest.mark.parametrize("name", list(CASES))
def test_modes_deviate_from_the_functions_by_the_mode_noise(drawn, name):
    case, data = CASES[name], drawn[name]
    for s, (_, U) in zip(data["X_train"], data["modes"]):
        truth = suite.mode_function(data["functions"]["out"], s.output_properties)
        assert np.sqrt(((U - truth) ** 2).mean()) == pytest.approx(case.mode_noise, rel=0.3)


# ============================== issue #14: what the defaults do on data unlike the simulator
def test_mode_smoothing_predicts_an_unseen_subject_near_the_ceiling():
    """Smoothing of the modes (the default) against the likelihood fit alone (suite case 5: waves, 10 % deviations).

    Measured: unseen R² 0.9502 with smoothing (gap to the ceiling 0.0122; issue #14's target 0.015), 0.8952
    without (ceiling 0.9624).
    """
    from skneuro.latent_regression import MultiSubjectLatentRegressor

    case = suite.SUITE[5]
    data = suite.make_case(case)
    scores = {}
    for smooth in (False, True):
        est = MultiSubjectLatentRegressor(case.n_modes, smooth_modes=smooth, random_state=0)
        est.fit(data["X_train"], data["y_train"])
        scores[smooth] = est.score([data["X_test"]], [data["y_test"]])
    assert scores[True] >= data["ceiling"] - 0.015, (scores, data["ceiling"])
    assert scores[True] >= scores[False] + 0.03, (scores, data["ceiling"])


def test_smoothing_learns_a_length_per_property():
    """Suite case 8 (layers: bump functions 8x sharper in depth than laterally).

    Measured: unseen R² 0.9637 (gap 0.0057) with a length per property, 0.9265 without smoothing,
    0.8990 (gap 0.0704) when one length served every property (ceiling 0.9694). The output
    predictor is the process's 845 bumps (one set of widths, the layers') weighed with 12 free
    bumps (weight 0.08), which have widths of their own.
    """
    from skneuro.latent_regression import MultiSubjectLatentRegressor

    case = suite.SUITE[8]
    assert case.stretch == (4.0, 4.0, 0.5)
    data = suite.make_case(case)
    est = MultiSubjectLatentRegressor(case.n_modes, random_state=0).fit(data["X_train"], data["y_train"])
    score = est.score([data["X_test"]], [data["y_test"]])
    assert score >= data["ceiling"] - 0.015, (score, data["ceiling"])
    for side, predictor in (("in", est.module_.input_predictors[0]), ("out", est.module_.output_predictors[0])):
        widths = predictor.w.detach().numpy()
        assert np.all(widths <= predictor.w_bounds[1].numpy())  # further training starts from them
        # the process's bumps share a set of widths per mode (hundreds of bumps each); free bumps
        # beside them have their own: at most 32 K on the output side, 10 K on the input side
        rows, counts = np.unique(widths, axis=0, return_counts=True)
        shared = counts >= 100
        assert len(widths) - counts[shared].sum() <= (32 if side == "out" else 10) * case.n_modes
        widths = rows[shared]
        assert np.all(widths[:, 2] < 0.5 * widths[:, :2].min(axis=1))  # both sides found the layers


def test_a_neuron_predicted_near_zero_does_not_set_the_population_scale():
    """Suite case 4 redrawn (seed 1052): one training neuron's predicted loading is ~1e-4 of the
    others', so its own least-squares scale is arbitrary (measured -918). As the plain mean of the
    scales, the population scale of a new subject was -0.002 and the unseen R² -0.14 (gap 1.09);
    weighted by each neuron's latent-prediction variance: gap 0.0128 (ceiling 0.9548)."""
    import dataclasses

    from skneuro.latent_regression import MultiSubjectLatentRegressor

    case = dataclasses.replace(suite.SUITE[4], seed=1052)
    data = suite.make_case(case)
    est = MultiSubjectLatentRegressor(case.n_modes, random_state=0).fit(data["X_train"], data["y_train"])
    assert 0.5 < est.default_subject_params_["scales"][0] < 2.0
    assert est.score([data["X_test"]], [data["y_test"]]) >= data["ceiling"] - 0.015

"""skneuro.plotting: what each function draws, checked on the artists' data."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from skneuro.datasets import make_multi_subject_latent_regression  # noqa: E402
from skneuro.latent_regression import MultiSubjectLatentRegressor  # noqa: E402
from skneuro.plotting import plot_eigenvalues, plot_loss_curve, plot_modes, plot_psychometric  # noqa: E402


class _Fitted:
    def __init__(self, curve):
        self.loss_curve_ = curve


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_loss_curves_one_line_each_with_epochs_from_one():
    ax = plot_loss_curve(_Fitted([3.0, 2.0, 1.0]), _Fitted([5.0, 4.0]), labels=["a", "b"])
    assert [line.get_xdata().tolist() for line in ax.lines] == [[1, 2, 3], [1, 2]]
    assert ax.lines[1].get_ydata().tolist() == [5.0, 4.0]
    assert ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]


def test_loss_curve_draws_the_validation_objective_and_the_best_epoch():
    est = _Fitted([3.0, 2.0, 1.5, 1.2])
    est.validation_scores_ = [-3.5, -2.5, -2.8, -3.0]
    ax = plot_loss_curve(est, labels=["rr"])
    train, validation, best = ax.lines
    assert list(validation.get_ydata()) == [3.5, 2.5, 2.8, 3.0] and validation.get_linestyle() == "--"
    assert list(best.get_xdata()) == [2, 2]  # the best-validation epoch (1-based)
    assert validation.get_color() == train.get_color()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["rr", "rr (validation)"]


def test_loss_curve_with_non_positive_values_stays_linear():
    assert plot_loss_curve(_Fitted([1.0, -2.0])).get_yscale() == "linear"


def test_loss_curve_errors_name_the_problem():
    with pytest.raises(ValueError, match="at least one"):
        plot_loss_curve()
    with pytest.raises(ValueError, match="loss_curve_"):
        plot_loss_curve(object())
    with pytest.raises(ValueError, match="labels"):
        plot_loss_curve(_Fitted([1.0]), labels=["a", "b"])


def test_psychometric_fractions_per_level_sorted():
    x = np.array([0.3, -0.3, 0.3, -0.1, 0.3, -0.3])
    chose = np.array([1, 0, 1, 1, 0, 1])
    ax = plot_psychometric(x, chose)
    assert ax.lines[0].get_xdata().tolist() == [-0.3, -0.1, 0.3]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [0.5, 1.0, 2 / 3])
    with pytest.raises(ValueError, match="same length"):
        plot_psychometric(x, chose[:3])


def test_eigenvalues_scatter_positions_and_unit_circle():
    values = np.array([[0.9 + 0.1j, 0.5 + 0j]])
    ax = plot_eigenvalues(values)
    np.testing.assert_allclose(ax.collections[0].get_offsets(), [[0.9, 0.1], [0.5, 0.0]])
    circle = ax.lines[0]
    np.testing.assert_allclose(np.hypot(circle.get_xdata(), circle.get_ydata()), 1.0)
    ax = plot_eigenvalues(values, continuous=True)
    assert list(ax.lines[0].get_xdata()) == [0.0, 0.0]


def test_modes_coloured_by_the_predicted_component():
    X, y = make_multi_subject_latent_regression(
        2, n_samples=80, n_inputs=(6, 7), n_outputs=(5, 6), n_components=2, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = MultiSubjectLatentRegressor(n_components=2, n_bumps=4, max_iter=3, random_state=0).fit(X, y)
    ax = plot_modes(est, X[1], component=1, dims=(2, 0))
    points = ax.collections[0]
    props = np.asarray(X[1].output_properties)
    np.testing.assert_allclose(points.get_offsets(), props[:, [2, 0]])
    np.testing.assert_allclose(points.get_array(), est.predict_modes(X[1])[1][:, 1])
    ax = plot_modes(est, X[0], kind="input")
    assert len(ax.collections[0].get_offsets()) == X[0].n_inputs[0]
    with pytest.raises(ValueError, match="component"):
        plot_modes(est, X[0], component=2)
    with pytest.raises(ValueError, match="kind"):
        plot_modes(est, X[0], kind="latent")

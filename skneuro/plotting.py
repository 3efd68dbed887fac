"""Optional matplotlib figures. matplotlib is imported when a function is called."""

from __future__ import annotations

import numpy as np

__all__ = [
    "compare_reduced_rank",
    "plot_eigenvalues",
    "plot_flow_field",
    "plot_loss_curve",
    "plot_modes",
    "plot_psychometric",
]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("skneuro.plotting needs matplotlib: pip install 'skneuro[plot]'.") from exc
    return plt


def compare_reduced_rank(est1, est2, X=None, targets=None):
    """Side-by-side parameters (and predictions) of two fitted reduced-rank estimators.

    ``est2`` is sign-aligned to ``est1`` first (:meth:`align_signs`). Rows show ``g``,
    ``o2``, ``o1`` and ``v`` (where both models have them), then ``w1`` and ``w0ᵀ`` of
    both and their difference; with ``X``, the predictions of both on ``targets``.

    Parameters
    ----------
    est1, est2 : fitted RR*Regressor
    X : array-like of shape (n_samples, n_features), optional
    targets : sequence of int, optional
        Targets whose predictions are plotted (default: the first two at most).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skneuro.datasets import make_reduced_rank_regression
    >>> from skneuro.reduced_rank import RRLinearRegressor
    >>> from skneuro.plotting import compare_reduced_rank
    >>> X, y = make_reduced_rank_regression(300, random_state=0)
    >>> a = RRLinearRegressor().fit(X[:150], y[:150])
    >>> b = RRLinearRegressor().fit(X[150:], y[150:])
    >>> fig = compare_reduced_rank(a, b, X=X)
    >>> type(fig).__name__
    'Figure'
    """
    plt = _pyplot()
    est2 = est2.align_signs(est1)
    vectors = [name for name in ("g_", "o2_", "o1_", "noise_variance_") if hasattr(est1, name) and hasattr(est2, name)]
    n_rows = len(vectors) + 2 + (1 if X is not None else 0)
    fig, axes = plt.subplots(n_rows, 3, figsize=(12, 2.6 * n_rows), squeeze=False)
    for row, name in enumerate(vectors):
        a, b = getattr(est1, name), getattr(est2, name)
        for col, (values, title) in enumerate(((a, "est1"), (b, "est2"), (a - b, "difference"))):
            axes[row, col].plot(values, ".-")
            axes[row, col].set_title(f"{name.rstrip('_')} ({title})")
    for offset, name in enumerate(("w1_", "w0_")):
        row = len(vectors) + offset
        a, b = getattr(est1, name), getattr(est2, name)
        if name == "w0_":
            a, b = a.T, b.T
        limit = max(np.abs(a).max(), np.abs(b).max(), 1e-12)
        label = "w0ᵀ" if name == "w0_" else "w1"
        for col, (values, title) in enumerate(((a, "est1"), (b, "est2"), (a - b, "difference"))):
            image = axes[row, col].imshow(values, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit)
            axes[row, col].set_title(f"{label} ({title})")
            fig.colorbar(image, ax=axes[row, col])
    if X is not None:
        row = n_rows - 1
        p1, p2 = est1.predict(X), est2.predict(X)
        p1, p2 = p1.reshape(len(p1), -1), p2.reshape(len(p2), -1)
        chosen = list(range(min(2, p1.shape[1]))) if targets is None else list(targets)
        for col in range(3):
            axes[row, col].set_visible(col < len(chosen))
        for col, target in enumerate(chosen[:3]):
            axes[row, col].scatter(p1[:, target], p2[:, target], s=4)
            axes[row, col].set_xlabel("est1 prediction")
            axes[row, col].set_ylabel("est2 prediction")
            axes[row, col].set_title(f"target {target}")
    fig.tight_layout()
    return fig


def plot_flow_field(field, ax=None, kind="stream", fixed_points=None, trajectory=None):
    """Draw a flow field of :func:`skneuro.analysis.flow_field`, with fixed points and trajectories.

    Colour shows the speed, normalized to [0, 1] for display only (a zero field draws in
    one colour instead of failing).

    Parameters
    ----------
    field : FlowField
        A field with one centre (index a multi-centre field first: ``field[k]``).
    ax : matplotlib Axes, optional
        Where to draw; default: a new figure's axes.
    kind : {"stream", "quiver"}, default="stream"
    fixed_points : FixedPoints or array-like of shape (m, n_rec), optional
        Drawn as filled (stable) or open (unstable) circles; for ``FixedPoints`` only the
        ``unique`` ones.
    trajectory : array-like of shape (n_steps, n_rec) or (n_trials, n_steps, n_rec), optional
        Full network states, projected on the field's plane.

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np, torch
    >>> from skneuro.rnn import LeakyRNN
    >>> from skneuro.analysis import flow_field
    >>> from skneuro.plotting import plot_flow_field
    >>> net = LeakyRNN(0, 2, 0, activation="tanh")
    >>> _ = net.W_rec.data.copy_(torch.tensor([[1.5, -1.0], [1.0, 1.5]]))
    >>> ax = plot_flow_field(flow_field(net, np.zeros(0), (np.zeros(2), np.eye(2)), extent=2.0))
    >>> ax.get_xlabel()
    'component 1'
    """
    from .analysis import FixedPoints

    if field.grid.ndim != 3:
        raise ValueError("field has several centres; pass one of them, e.g. field[0].")
    if kind not in ("stream", "quiver"):
        raise ValueError(f"kind must be 'stream' or 'quiver'; got {kind!r}.")
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots()
    gx, gy = field.grid[..., 0], field.grid[..., 1]
    vx, vy = field.velocity[..., 0], field.velocity[..., 1]
    top = float(field.speed.max())
    colour = field.speed / top if top > 0 else np.zeros_like(field.speed)
    if kind == "stream":
        if top > 0:
            ax.streamplot(gx, gy, vx, vy, color=colour, cmap="viridis", density=1.2, norm=plt.Normalize(0, 1))
    else:
        ax.quiver(gx, gy, vx, vy, colour, cmap="viridis", norm=plt.Normalize(0, 1))
    if trajectory is not None:
        traj = np.asarray(trajectory, dtype=float)
        traj = traj[None] if traj.ndim == 2 else traj
        for path in field.project(traj):
            ax.plot(path[:, 0], path[:, 1], color="k", lw=1)
    if fixed_points is not None:
        if isinstance(fixed_points, FixedPoints):
            picked = fixed_points[fixed_points.unique]
            points, stable = field.project(picked.states), picked.is_stable
        else:
            points = field.project(np.atleast_2d(np.asarray(fixed_points, dtype=float)))
            stable = np.ones(len(points), dtype=bool)
        ax.scatter(*points[stable].T, s=40, c="crimson", zorder=3, label="stable")
        ax.scatter(*points[~stable].T, s=40, facecolors="white", edgecolors="crimson", zorder=3, label="unstable")
    ax.set_xlim(gx.min(), gx.max())
    ax.set_ylim(gy.min(), gy.max())
    ax.set_xlabel("component 1")
    ax.set_ylabel("component 2")
    return ax


def _axes(ax):
    if ax is None:
        _, ax = _pyplot().subplots()
    return ax


def plot_loss_curve(*estimators, ax=None, labels=None, log=True):
    """Training objective per epoch (``loss_curve_``) of one or more fitted estimators.

    An estimator fitted with ``early_stopping=True`` also gets its validation objective
    (``-validation_scores_``: the mean per-sample loss of the held-out data, without the
    penalties the training objective may include) as a dashed line of the same colour,
    and a dotted vertical line at the best-validation epoch, whose parameters it kept.

    Parameters
    ----------
    *estimators : fitted skneuro estimators
        Anything with a ``loss_curve_`` attribute.
    ax : matplotlib Axes, optional
    labels : sequence of str, optional
        Legend entries (default: the class names).
    log : bool, default=True
        Logarithmic y axis (only when every value is positive).

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skneuro.datasets import make_reduced_rank_regression
    >>> from skneuro.reduced_rank import RRReluRegressor
    >>> from skneuro.plotting import plot_loss_curve
    >>> X, y = make_reduced_rank_regression(200, 5, 4, 2, link="relu", random_state=0)[:2]
    >>> est = RRReluRegressor(n_components=2, max_iter=20, random_state=0).fit(X, y)
    >>> ax = plot_loss_curve(est)
    >>> len(ax.lines)
    1
    """
    if not estimators:
        raise ValueError("plot_loss_curve needs at least one fitted estimator.")
    labels = [type(e).__name__ for e in estimators] if labels is None else list(labels)
    if len(labels) != len(estimators):
        raise ValueError(f"labels must have one entry per estimator ({len(estimators)}); got {len(labels)}.")
    ax = _axes(ax)
    positive = True
    for est, label in zip(estimators, labels):
        curve = getattr(est, "loss_curve_", None)
        if curve is None:
            raise ValueError(f"{type(est).__name__} has no loss_curve_: fit it first.")
        curve = np.asarray(curve, dtype=float)
        positive &= bool((curve > 0).all())
        (line,) = ax.plot(np.arange(1, curve.size + 1), curve, marker="." if curve.size < 30 else None, label=label)
        scores = getattr(est, "validation_scores_", None)
        if scores is not None:
            validation = -np.asarray(scores, dtype=float)
            positive &= bool((validation > 0).all())
            color = line.get_color()
            ax.plot(np.arange(1, validation.size + 1), validation, ls="--", color=color, label=f"{label} (validation)")
            ax.axvline(int(np.argmax(scores)) + 1, ls=":", color=color, lw=1)
    if log and positive:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    validated = any(getattr(e, "validation_scores_", None) is not None for e in estimators)
    ax.set_ylabel("objective (training; dashed: validation)" if validated else "training objective")
    if len(estimators) > 1 or validated:
        ax.legend()
    return ax


def plot_modes(estimator, subject, *, kind="output", component=0, dims=(0, 1), ax=None):
    """Predicted modes of one subject's neurons, coloured over their properties (positions).

    Parameters
    ----------
    estimator : fitted MultiSubjectLatentRegressor
    subject : SubjectData
        Any subject, seen in training or not.
    kind : {"output", "input"}, default="output"
        The output modes U (one row per recorded neuron) or the input modes P.
    component : int, default=0
        Which latent component's loading to colour by.
    dims : (int, int), default=(0, 1)
        The two property columns used as plot coordinates.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skneuro.datasets import make_multi_subject_latent_regression
    >>> from skneuro.latent_regression import MultiSubjectLatentRegressor
    >>> from skneuro.plotting import plot_modes
    >>> X, y = make_multi_subject_latent_regression(2, n_samples=100, n_inputs=(8, 9), n_outputs=(6, 7),
    ...                                             random_state=0)
    >>> est = MultiSubjectLatentRegressor(n_bumps=4, max_iter=5, random_state=0).fit(X, y)
    >>> ax = plot_modes(est, X[0])
    >>> ax.get_xlabel()
    'property 0'
    """
    if kind not in ("output", "input"):
        raise ValueError(f"kind must be 'output' or 'input'; got {kind!r}.")
    P, U = estimator.predict_modes(subject)
    modes = U if kind == "output" else P
    props = subject.output_properties if kind == "output" else subject.input_properties
    if isinstance(modes, tuple):
        modes, props = np.concatenate(modes), np.concatenate([np.asarray(p) for p in props])
    props = np.asarray(props, dtype=float)
    if not 0 <= component < modes.shape[1]:
        raise ValueError(f"component must lie in [0, {modes.shape[1]}); got {component}.")
    if len(dims) != 2 or max(dims) >= props.shape[1]:
        raise ValueError(f"dims must name two of the {props.shape[1]} property columns; got {dims}.")
    ax = _axes(ax)
    values = modes[:, component]
    top = float(np.abs(values).max()) or 1.0
    points = ax.scatter(props[:, dims[0]], props[:, dims[1]], c=values, cmap="RdBu_r", vmin=-top, vmax=top, s=25)
    ax.figure.colorbar(points, ax=ax, label=f"{kind} mode, component {component}")
    ax.set_xlabel(f"property {dims[0]}")
    ax.set_ylabel(f"property {dims[1]}")
    ax.set_title(f"subject {subject.subject_id}")
    return ax


def plot_psychometric(signed_coherence, chose_first, *, ax=None, label=None):
    """Psychometric curve: the fraction of first-choice responses against signed evidence.

    Parameters
    ----------
    signed_coherence : array-like of shape (n_trials,) or (n_levels,)
        Evidence for the first choice on each trial (positive) or against it (negative).
    chose_first : array-like of bool or float, same shape
        Whether each trial chose the first option (or, per level, the fraction that did).
    ax : matplotlib Axes, optional
    label : str, optional

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skneuro.plotting import plot_psychometric
    >>> ax = plot_psychometric(np.array([-0.5, -0.5, 0.5, 0.5]), np.array([0, 0, 1, 0]))
    >>> ax.lines[0].get_ydata().tolist()
    [0.0, 0.5]
    """
    x = np.asarray(signed_coherence, dtype=float).ravel()
    choice = np.asarray(chose_first, dtype=float).ravel()
    if x.shape != choice.shape:
        raise ValueError(f"signed_coherence and chose_first must have the same length; got {x.size} and {choice.size}.")
    levels = np.unique(x)
    fraction = np.array([choice[x == level].mean() for level in levels])
    ax = _axes(ax)
    ax.plot(levels, fraction, "o-", label=label)
    ax.axhline(0.5, color="0.8", lw=1, zorder=0)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("signed coherence")
    ax.set_ylabel("P(first choice)")
    if label is not None:
        ax.legend()
    return ax


def plot_eigenvalues(eigenvalues, *, ax=None, continuous=False, label=None, **scatter_kwargs):
    """Eigenvalues in the complex plane with the stability boundary.

    Parameters
    ----------
    eigenvalues : array-like of complex
        Any shape (flattened), e.g. from :meth:`skneuro.analysis.Linearization.eigendecomposition`
        or :attr:`skneuro.analysis.FixedPoints.eigenvalues`.
    ax : matplotlib Axes, optional
    continuous : bool, default=False
        Draw the continuous-time boundary Re λ = 0 instead of the unit circle (discrete map).
    label : str, optional
    **scatter_kwargs
        Passed to ``ax.scatter``.

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skneuro.plotting import plot_eigenvalues
    >>> ax = plot_eigenvalues(np.array([0.9 + 0.1j, 0.9 - 0.1j]))
    >>> ax.get_xlabel()
    'Re λ'
    """
    values = np.asarray(eigenvalues).ravel().astype(complex)
    ax = _axes(ax)
    if continuous:
        ax.axvline(0.0, color="0.7", lw=1)
    else:
        angle = np.linspace(0, 2 * np.pi, 361)
        ax.plot(np.cos(angle), np.sin(angle), color="0.7", lw=1)
        ax.set_aspect("equal")
    ax.scatter(values.real, values.imag, label=label, **scatter_kwargs)
    ax.set_xlabel("Re λ")
    ax.set_ylabel("Im λ")
    if label is not None:
        ax.legend()
    return ax

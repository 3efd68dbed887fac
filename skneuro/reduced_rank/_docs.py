"""The shared docstring of the four reduced-rank estimators, filled per link."""

from __future__ import annotations

from ..utils._docstrings import fill_doc
from ._modules import LINK_PARAMS

__all__ = ["_doc"]

_COMMON_DOC = """{summary}

    .. math::

        {equation}

    with diagonal Gaussian noise ``y = mean + ε``, ``ε ~ N(0, diag(v))``. The fit
    maximises the likelihood (minimises the mean negative log-likelihood plus the
    optional penalties). The models are janelia_core's reduced-rank models [1]_. Read
    more in :ref:`the user guide <reduced_rank>`.

    With ``early_stopping=True`` the fit on the samples not held out chooses the number
    of iterations (its best-validation one); the fitted model is then trained on all
    samples from their own start for at most that many iterations, so the held-out share
    is not lost (``validation_scores_`` and ``best_validation_score_`` are those of the
    choice, ``n_iter_`` and ``loss_curve_`` those of the final fit).

    Parameters
    ----------
    n_components : int, default=2
        Rank k: number of shared input projections. At most
        ``max(n_features, n_targets)``; components beyond ``min(n_features, n_targets)``
        are zero.
    solver : {{"auto", "closed_form", "adam", "lbfgs"}}, default="auto"
        "auto" is the closed form for the unpenalised linear model; otherwise Adam when
        ``batch_size`` or an l1 penalty is set, else L-BFGS. ``solver_`` records it.
    init : {{"closed_form", "random"}}, default="closed_form"
        Start of iterative solvers: the closed-form linear fit matched to the link
        (then, for nonlinear links, a per-target Levenberg–Marquardt refinement), or
        random weights.
    alpha : float, default=0.0
        Ridge penalty of the closed form and of the initialisation.
    l1_w0, l2_w0, l1_w1, l2_w1 : float, default=0.0
        l1 and squared-l2 penalties on ``w0`` and ``w1`` (not divided by n).
    min_var : float, default=1e-4
        Noise variance floor relative to each target's training variance.
    fixed_params : tuple of str, default=()
        Parameters among ``{fixed}`` held at their initial values.
    {{engine_parameters}}
    {{early_stopping_parameters}}

    Attributes
    ----------
    w0_ : ndarray of shape (n_features, n_components)
        Input projections (standard form: they carry the singular values).
    w1_ : ndarray of shape (n_targets, n_components)
        Output loadings with orthonormal columns.
{extra_attributes}    o2_ : ndarray of shape (n_targets,)
        Output offsets.
    noise_variance_ : ndarray of shape (n_targets,)
        Noise variances (the diagonal of the Gaussian noise covariance).
    var_floor_ : ndarray of shape (n_targets,)
        ``min_var`` times each target's training variance.
    solver_ : str
        The solver used.
    {{engine_attributes}}

    See Also
    --------
    {see_also}
    skneuro.latent_regression.MultiSubjectLatentRegressor : Reduced-rank regression shared
        across subjects, with loadings predicted from neuron properties.

    References
    ----------
    .. [1] William Bishop (Janelia Research Campus), janelia_core,
       ``janelia_core.ml.reduced_rank_models`` (read at commit 5f52e5e): ``RRLinearModel``,
       ``RRSigmoidModel``, ``RRExpModel``, ``RRReluModel``.

    Examples
    --------
    >>> from scipy.linalg import subspace_angles
    >>> from skneuro.datasets import make_reduced_rank_regression
    >>> from skneuro.reduced_rank import {name}
    >>> X, y, truth = make_reduced_rank_regression(n_samples=1000, link="{link}", random_state=0,
    ...                                            return_params=True)
    >>> model = {name}(n_components=2, random_state=0).fit(X, y)
    >>> model.predict(X).shape, model.transform(X).shape
    ((1000, 20), (1000, 2))

    The fitted input subspace is close to the true one (angles in radians):

    >>> bool(subspace_angles(model.w0_, truth["w0"]).max() < 0.1)
    True
    """

_O1_DOC = """    o1_ : ndarray of shape (n_targets,)
        Offsets inside the link.
"""
_G_DOC = """    g_ : ndarray of shape (n_targets,)
        Gains of the link (non-negative for sigmoid).
"""


def _doc(name, link, summary, equation):
    extra = (_O1_DOC if link in ("sigmoid", "relu") else "") + (_G_DOC if link in ("sigmoid", "exp") else "")
    others = [n for n in ("RRLinearRegressor", "RRSigmoidRegressor", "RRExpRegressor", "RRReluRegressor") if n != name]
    doc = _COMMON_DOC.format(
        summary=summary,
        equation=equation,
        fixed=", ".join(LINK_PARAMS[link]),
        extra_attributes=extra,
        see_also="\n    ".join(f"{n} : The same model with another link." for n in others),
        name=name,
        link=link,
    )
    holder = type("_Doc", (), {"__doc__": doc})
    fill_doc(max_iter=300, learning_rate="None (0.01 for adam, 1.0 for lbfgs)", tol=1e-4, n_iter_no_change=10)(holder)
    shared = "for ``n_iter_no_change`` consecutive epochs."
    assert shared in holder.__doc__
    return holder.__doc__.replace(
        shared,
        shared + " The objective sums over targets, so ``tol`` is per\n"
        "        target (nats per sample and target): the threshold is ``tol * n_targets``.\n"
        "        L-BFGS, which is deterministic, stops at the first iteration below it.",
        1,
    )

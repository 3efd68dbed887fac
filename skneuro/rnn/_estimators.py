"""scikit-learn estimator of a constrained leaky rate RNN trained on trials (3-D arrays)."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._engine.base import to_numpy
from ..utils._docstrings import fill_doc
from ._base import RateRNNBase, rate_rnn_constraints
from ._initializers import AlphaIdentity, GaussianSpectralRadius, WeightInitializer
from ._modules import LeakyRNN

__all__ = ["RateRNNRegressor"]

_RANDOM_INITS = ("glorot_gauss", "glorot_unif", "const_gauss", "const_unif")


_WEIGHT_NAMES = ("W_in", "W_rec", "W_out", "b_rec", "b_out", "init_state")


@fill_doc(max_iter=50, learning_rate=0.001, tol=1e-4, n_iter_no_change=10, batch_size=64, held_out="trials")
class RateRNNRegressor(RateRNNBase):
    r"""A leaky rate RNN trained on trials, with PsychRNN's biological constraints.

    .. math::

        x_{t+1} = (1-α) x_t + α (W_{rec} f(x_t) + W_{in} u_t + b_{rec}) + \sqrt{2ασ^2} ξ_t,
        \qquad \hat y_t = W_{out} f(x_{t+1}) + b_{out},

    with α = dt/τ, connectivity masks, optional no-autapse and Dale's-law constraints (E
    units first; only E units feed the outputs) [1]_ [2]_. Trained by the engine on the
    masked mean squared error (divided by all entries, as PsychRNN) plus optional
    penalties; the recurrent noise acts in training only. Fixed points of the fitted
    network (:func:`~skneuro.analysis.find_fixed_points`) open the black box [3]_.

    Parameters
    ----------
    n_rec : int, default=50
        Number of recurrent units.
    {rate_rnn_parameters}
    dale_ratio : float or None, default=None
        Fraction of excitatory units (0 < r <= 1), placed first; each unit's outgoing
        weights then keep its sign and only excitatory units feed the outputs. None: no
        Dale's law.
    autapses : bool, default=True
        Allow self-connections; False zeroes the diagonal of the recurrent mask.
    input_connectivity, rec_connectivity, output_connectivity : array-like or None, default=None
        0/1 masks of shapes (n_rec, n_in), (n_rec, n_rec) and (n_out, n_rec): 1 where a
        connection exists. Masked weights are zero and stay zero. None: all connected.
    init : str or WeightInitializer, default="gaussian_spectral_radius"
        "gaussian_spectral_radius", "alpha_identity", a random scheme name (all matrices)
        or a :class:`WeightInitializer` whose arrays and constraints are used.
    spectral_radius : float, default=1.1
        Spectral radius of the initial recurrent matrix (``init="gaussian_spectral_radius"``).
    radius_of : {"effective", "raw"}, default="effective"
        Which matrix gets ``spectral_radius``: the effective ``W_rec`` (masks, no autapses
        and Dale signs applied; exact) or the raw weights before them (PsychRNN's choice).
    alpha_identity : float, default=1.0
        Diagonal value α of the initial recurrent matrix ``α·I`` (``init="alpha_identity"``;
        balanced between E and I units under Dale's law).
    input_scaling : {"fan_in", "glorot"}, default="fan_in"
        Variance of the initial input weights drawn by a Glorot scheme (the built-in
        initializers): ``1/fan_in`` (LeCun; each unit gets an O(1) input current, as the
        spectral-radius scaling gives W_rec) or PsychRNN's ``2/(fan_in + fan_out)``. With
        50 units and 2 inputs, Glorot input weights are 3.6 times smaller; under Dale's law
        (all-positive input weights) the selective part of the input is then too weak for
        training to leave its initial plateau in a few hundred updates. A
        :class:`WeightInitializer` passed as ``init`` is used as it is.
    {solver_parameter}
    {engine_parameters}
    {early_stopping_parameters}

    Attributes
    ----------
    W_in_, W_rec_, W_out_ : ndarray
        Effective weights (float64), shapes (n_rec, n_in), (n_rec, n_rec), (n_out, n_rec).
    b_rec_, b_out_, init_state_ : ndarray
        Recurrent bias, output bias and initial state x_0 (float64).
    dale_signs_ : ndarray of shape (n_rec,)
        +1 for excitatory units, -1 for inhibitory (all +1 without Dale's law).
    {engine_attributes}

    See Also
    --------
    MultiRegionRNNRegressor : The same network assembled from named brain regions.
    LeakyRNN : The torch module trained here.
    WeightInitializer : Initial weights and constraints, PsychRNN's initializers.
    skneuro.analysis.find_fixed_points : Fixed points of a fitted network.
    skneuro.datasets.tasks.PerceptualDiscrimination : A cognitive task to train on.

    References
    ----------
    .. [1] Ehrlich, Stone, Brandfonbrener, Atanasov and Murray, eNeuro (2021): the PsychRNN
       package, whose networks, constraints, initializers and tasks this estimator follows.
    .. [2] Song, Yang and Wang, PLoS Computational Biology (2016): training
       excitatory-inhibitory recurrent networks on cognitive tasks under Dale's law.
    .. [3] Sussillo and Barak, "Opening the black box", Neural Computation (2013): fixed
       points and linearized dynamics of trained recurrent networks.

    Examples
    --------
    >>> from skneuro.datasets.tasks import PerceptualDiscrimination
    >>> from skneuro.rnn import RateRNNRegressor
    >>> X, y, mask, _ = PerceptualDiscrimination(T=500).generate(64, random_state=0)
    >>> rnn = RateRNNRegressor(n_rec=20, max_iter=2, batch_size=32, random_state=0)
    >>> rnn.fit(X, y, sample_weight=mask).predict(X).shape
    (64, 50, 2)
    """

    _parameter_constraints: dict = {
        **rate_rnn_constraints(),
        "n_rec": [Interval(Integral, 1, None, closed="left")],
        "dale_ratio": [None, Interval(Real, 0, 1, closed="right")],
        "autapses": ["boolean"],
        "input_connectivity": [None, "array-like"],
        "rec_connectivity": [None, "array-like"],
        "output_connectivity": [None, "array-like"],
        "init": [StrOptions({"gaussian_spectral_radius", "alpha_identity", *_RANDOM_INITS}), WeightInitializer],
        "spectral_radius": [Interval(Real, 0, None, closed="neither")],
        "radius_of": [StrOptions({"effective", "raw"})],
        "alpha_identity": [Interval(Real, None, None, closed="neither")],
        "input_scaling": [StrOptions({"fan_in", "glorot"})],
    }

    def __init__(
        self,
        n_rec=50,
        *,
        dt=10.0,
        tau=100.0,
        rec_noise=0.0,
        activation="relu",
        dale_ratio=None,
        autapses=True,
        input_connectivity=None,
        rec_connectivity=None,
        output_connectivity=None,
        init="gaussian_spectral_radius",
        spectral_radius=1.1,
        radius_of="effective",
        alpha_identity=1.0,
        input_scaling="fan_in",
        train_init_state=False,
        output_bias_init="targets",
        fixed_params=(),
        l1_in=0.0,
        l1_rec=0.0,
        l1_out=0.0,
        l2_in=0.0,
        l2_rec=0.0,
        l2_out=0.0,
        l2_firing_rate=0.0,
        clip_grad_norm=1.0,
        solver="adam",
        learning_rate=1e-3,
        batch_size=64,
        max_iter=50,
        chunk_size=None,
        tol=1e-4,
        n_iter_no_change=10,
        early_stopping=False,
        validation_fraction=0.1,
        warm_start=False,
        device="cpu",
        dtype="float32",
        random_state=None,
        verbose=0,
        callback=None,
    ):
        self.n_rec = n_rec
        self.dt = dt
        self.tau = tau
        self.rec_noise = rec_noise
        self.activation = activation
        self.dale_ratio = dale_ratio
        self.autapses = autapses
        self.input_connectivity = input_connectivity
        self.rec_connectivity = rec_connectivity
        self.output_connectivity = output_connectivity
        self.init = init
        self.spectral_radius = spectral_radius
        self.radius_of = radius_of
        self.alpha_identity = alpha_identity
        self.input_scaling = input_scaling
        self.train_init_state = train_init_state
        self.output_bias_init = output_bias_init
        self.fixed_params = fixed_params
        self.l1_in = l1_in
        self.l1_rec = l1_rec
        self.l1_out = l1_out
        self.l2_in = l2_in
        self.l2_rec = l2_rec
        self.l2_out = l2_out
        self.l2_firing_rate = l2_firing_rate
        self.clip_grad_norm = clip_grad_norm
        self.solver = solver
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.chunk_size = chunk_size
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.warm_start = warm_start
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose
        self.callback = callback

    # ---------------------------------------------------------------- building
    def _weight_initializer(self, n_in, n_out, numpy_gen):
        if isinstance(self.init, WeightInitializer):
            init = self.init
            if (init.n_in, init.n_rec, init.n_out) != (n_in, self.n_rec, n_out):
                raise ValueError(
                    f"init has shapes (n_in={init.n_in}, n_rec={init.n_rec}, n_out={init.n_out}); "
                    f"the data and n_rec need ({n_in}, {self.n_rec}, {n_out})."
                )
            given = [
                name
                for name in ("dale_ratio", "input_connectivity", "rec_connectivity", "output_connectivity")
                if getattr(self, name) is not None
            ] + ([] if self.autapses else ["autapses"])
            if given:
                raise ValueError(
                    f"init is a WeightInitializer, which carries its own constraints; do not also set {given}."
                )
            return init
        common = {
            "input_connectivity": self.input_connectivity,
            "rec_connectivity": self.rec_connectivity,
            "output_connectivity": self.output_connectivity,
            "autapses": self.autapses,
            "dale_ratio": self.dale_ratio,
            "random_state": numpy_gen,
        }
        if self.init == "gaussian_spectral_radius":
            return GaussianSpectralRadius(
                n_in, self.n_rec, n_out, spec_rad=self.spectral_radius, radius_of=self.radius_of, **common
            )
        if self.init == "alpha_identity":
            return AlphaIdentity(n_in, self.n_rec, n_out, alpha=self.alpha_identity, **common)
        return WeightInitializer(n_in, self.n_rec, n_out, which_rand_init=self.init, **common)

    def _new_module(self, init, dtype, device):
        values = init.initializations
        dale = values["dale_ratio"] is not None
        signs = init.dale_signs
        module = LeakyRNN(
            init.n_in,
            init.n_rec,
            init.n_out,
            dt=self.dt,
            tau=self.tau,
            activation=self.activation,
            rec_noise=self.rec_noise,
            input_mask=values["input_connectivity"],
            rec_mask=values["rec_connectivity"],
            output_mask=values["output_connectivity"],
            input_signs=np.ones(init.n_in) if dale else None,
            rec_signs=signs if dale else None,
            output_signs=(signs > 0).astype(float) if dale else None,
            train_init_state=self.train_init_state,
            weights={
                name: np.asarray(values[name]) for name in ("W_in", "W_rec", "W_out", "b_rec", "b_out", "init_state")
            },
            dtype=dtype,
            device=device,
        )
        return module

    def _check_build_params(self):
        for name in ("input_connectivity", "rec_connectivity", "output_connectivity"):
            value = getattr(self, name)
            if value is not None:
                try:
                    arr = np.asarray(value, dtype=np.float64)
                except (ValueError, TypeError) as exc:
                    raise TypeError(f"{name} must be a numeric 0/1 array: {exc}") from exc
                if not np.isin(arr, (0.0, 1.0)).all():
                    raise ValueError(f"{name} must contain only 0 and 1 (connection absent or present).")

    def _given_output_bias(self):
        return isinstance(self.init, WeightInitializer)

    def _overflow_hint(self):
        gain = (
            f"alpha_identity={self.alpha_identity!r}"
            if self.init == "alpha_identity"
            else f"spectral_radius={self.spectral_radius!r}"
        )
        return f"lower {gain} (or check init), rescale X and y, or use dtype='float64'."

    def _build_module(self, n_in, n_out, numpy_gen, dtype, device):
        init = self._weight_initializer(n_in, n_out, numpy_gen)
        module = self._new_module(init, dtype, device)
        scheme = self.init if self.init in _RANDOM_INITS else "glorot_gauss"
        if self.input_scaling == "fan_in" and not isinstance(self.init, WeightInitializer):
            if scheme.startswith("glorot"):
                # Glorot draws have variance 2/F_ij, F_ij = fan_in_i + fan_out_j; rescale them to
                # 1/fan_in_i so that each unit gets an O(1) input current, as W_rec does
                M = module.input_mask
                fan = M.sum(1, keepdim=True) + M.sum(0, keepdim=True)
                fan_in = M.sum(1, keepdim=True).clamp_min(1.0)
                with torch.no_grad():
                    module.W_in.mul_(torch.sqrt(fan / (2.0 * fan_in)))
        return module, None

    def save_weights(self, path):
        """Write the trained weights and constraints as an ``.npz`` file (no pickle).

        :meth:`WeightInitializer.load` reads it back, e.g. as the ``init`` of a new
        estimator (a curriculum), or to inspect the raw weights.

        Parameters
        ----------
        path : str or path-like
        """
        check_is_fitted(self)
        m = self.module_
        WeightInitializer(
            m.n_in,
            m.n_rec,
            m.n_out,
            input_connectivity=to_numpy(m.input_mask),
            rec_connectivity=to_numpy(m.rec_mask),
            output_connectivity=to_numpy(m.output_mask),
            dale_ratio=None if m.rec_signs is None else float((to_numpy(m.rec_signs) > 0).mean()),
            W_in=to_numpy(m.W_in),
            W_rec=to_numpy(m.W_rec),
            W_out=to_numpy(m.W_out),
            b_rec=to_numpy(m.b_rec),
            b_out=to_numpy(m.b_out),
            init_state=to_numpy(m.init_state),
        ).save(path)

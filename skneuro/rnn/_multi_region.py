"""scikit-learn estimator of a multi-region leaky rate RNN built from a region configuration."""

from __future__ import annotations

import math
import os
from numbers import Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from ..utils._docstrings import fill_doc
from ._base import RateRNNBase, rate_rnn_constraints
from ._modules import LeakyRNN
from ._regions import parse_config, region_indices

__all__ = ["MultiRegionRNNRegressor"]


def _initial_weights(spec, n_out, rng):
    """mRNNTorch's initial raw weights: signed blocks uniform, mixed blocks Xavier normal."""
    n_rec, n_in = spec.n_rec, spec.n_in
    regions = {r["name"]: r for r in spec.config["regions"]}
    inputs = {r["name"]: r for r in spec.config["inputs"]}
    V_rec, V_in = np.zeros((n_rec, n_rec)), np.zeros((n_rec, n_in))
    for target, rows in spec.region_slices.items():
        n_k = regions[target]["n_units"]
        for source, cols in spec.region_slices.items():
            n_l = regions[source]["n_units"]
            if regions[source]["sign"] == "mixed":
                V_rec[rows, cols] = rng.normal(0.0, math.sqrt(2.0 / (n_k + n_l)), (n_k, n_l))
            else:
                V_rec[rows, cols] = rng.uniform(0.0, math.sqrt(1.0 / (2 * n_rec)), (n_k, n_l))
        for source, cols in spec.input_slices.items():
            n_l = inputs[source]["n_units"]
            if inputs[source]["sign"] == "mixed":
                V_in[rows, cols] = rng.normal(0.0, math.sqrt(2.0 / (n_k + n_l)), (n_k, n_l))
            else:
                V_in[rows, cols] = rng.uniform(0.0, math.sqrt(1.0 / (n_rec + n_in)), (n_k, n_l))
    n_readout = int(spec.readout_mask.sum())
    V_out = rng.normal(0.0, math.sqrt(2.0 / (n_out + n_readout)), (n_out, n_rec)) * spec.readout_mask
    return V_in, V_rec, V_out


@fill_doc(max_iter=50, learning_rate=0.001, tol=1e-4, n_iter_no_change=10, batch_size=64, held_out="trials")
class MultiRegionRNNRegressor(RateRNNBase):
    r"""A leaky rate RNN built from named brain regions, trained on trials.

    Regions own consecutive unit slices in config order; each region's sign makes its
    outgoing weights excitatory (≥ 0), inhibitory (≤ 0) or unconstrained ("mixed");
    connections between regions are listed with a ``density`` (fraction of connections
    present: every source unit reaches exactly ``round(density · n_target)`` target units);
    only the readout regions feed the outputs. The dynamics and training are those of
    :class:`RateRNNRegressor`:

    .. math::

        x_{t+1} = (1-α) x_t + α (W_{rec} f(x_t) + W_{in} u_t + b_{rec})
        + \sqrt{2α}σ_{rec} ξ_t + \sqrt{2α}σ_{in} W_{in} η_t,
        \qquad \hat y_t = W_{out} f(x_{t+1}) + b_{out},

    with ``b_rec`` the regions' ``base_firing`` (trained only in regions with
    ``learnable_bias``) and ``x_0`` their ``init`` values. The configuration, update and
    analyses follow mRNNTorch [1]_ (with RNNToolkit [2]_); Dale's-law regions as in
    Song, Yang and Wang [3]_; fixed points as in Sussillo and Barak [4]_.

    Parameters
    ----------
    config : dict or str or path-like
        The region configuration (see :func:`parse_config`), or a JSON file with it. Read
        and validated in :meth:`fit`; never modified.
    {rate_rnn_parameters}
    readout : list of str or None, default=None
        Regions (or parents) that feed the outputs; None: the config's ``readout`` (default
        all regions).
    input_noise : float, default=0.0
        σ_in of the noise added to the inputs during training (and :meth:`simulate`).
    spectral_radius : float or None, default=None
        If set, the initial effective recurrent matrix is scaled to this spectral radius.
    {solver_parameter}
    {engine_parameters}
    {early_stopping_parameters}

    Attributes
    ----------
    W_in_, W_rec_, W_out_ : ndarray
        Effective weights (float64), shapes (n_rec, n_in), (n_rec, n_rec), (n_out, n_rec).
    b_rec_, b_out_, init_state_ : ndarray
        Recurrent bias (the regions' ``base_firing``), output bias and initial state x_0.
    region_slices_, input_slices_ : dict of str to slice
        The units of each recurrent region and of each input, in config order.
    dale_signs_ : ndarray of int, shape (n_rec,)
        +1 excitatory, -1 inhibitory, 0 mixed units.
    rec_mask_, input_mask_ : ndarray
        The 0/1 connectivity drawn at the first fit.
    config_ : dict
        The normalized configuration (defaults filled in).
    {engine_attributes}

    See Also
    --------
    RateRNNRegressor : The same dynamics with PsychRNN's whole-network constraints.
    config_from_mrnntorch : Convert an mRNNTorch JSON configuration.
    skneuro.analysis.Linearization : Jacobians of region subsets of a fitted network.
    skneuro.analysis.find_fixed_points : Fixed points and their stability.
    skneuro.analysis.flow_field : 2-D flow fields of the dynamics.

    References
    ----------
    .. [1] mRNNTorch, multi-region leaky RNNs in PyTorch (toolkit, read at commit
       972b2e1): ``mRNN``, ``mLinearization``, ``mFixedPointFinder``, ``mFlowFieldFinder``.
    .. [2] RNNToolkit (toolkit, read at commit 279c5e2), on which mRNNTorch's fixed-point
       and flow-field finders are built.
    .. [3] Song, Yang and Wang, PLoS Computational Biology (2016): training
       excitatory-inhibitory recurrent networks on cognitive tasks under Dale's law.
    .. [4] Sussillo and Barak, "Opening the black box", Neural Computation (2013): fixed
       points and linearized dynamics of trained recurrent networks.

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.rnn import MultiRegionRNNRegressor
    >>> config = {
    ...     "regions": [{"name": "ctx", "n_units": 8, "sign": "excitatory"},
    ...                 {"name": "inh", "n_units": 4, "sign": "inhibitory"}],
    ...     "inputs": [{"name": "cue", "n_units": 1}],
    ...     "connections": [{"source": "cue", "target": "ctx"},
    ...                     {"source": "ctx", "target": "inh", "density": 0.5},
    ...                     {"source": "inh", "target": "ctx"}],
    ...     "readout": ["ctx"]}
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(16, 20, 1)); y = np.cumsum(X, axis=1) / 10
    >>> net = MultiRegionRNNRegressor(config, max_iter=3, random_state=0).fit(X, y)
    >>> net.region_activity(net.predict_states(X), "inh").shape
    (16, 20, 4)
    >>> bool((net.W_rec_[:, net.region_slices_["inh"]] <= 0).all())
    True
    """

    _parameter_constraints: dict = {
        **rate_rnn_constraints(),
        "config": [dict, str, os.PathLike],
        "readout": [None, list, tuple],
        "input_noise": [Interval(Real, 0, None, closed="left")],
        "spectral_radius": [None, Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        config,
        *,
        dt=10.0,
        tau=100.0,
        rec_noise=0.0,
        activation="relu",
        readout=None,
        input_noise=0.0,
        spectral_radius=None,
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
        self.config = config
        self.dt = dt
        self.tau = tau
        self.rec_noise = rec_noise
        self.activation = activation
        self.readout = readout
        self.input_noise = input_noise
        self.spectral_radius = spectral_radius
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
    def _spec(self, numpy_gen):
        config = self.config
        if self.readout is not None:
            from ._regions import _load

            config = _load(config)
            if isinstance(config, dict):
                config["readout"] = list(self.readout)
        try:
            return parse_config(config, random_state=numpy_gen)
        except ValueError as exc:
            if self.readout is not None and str(exc).startswith('config["readout"]'):
                raise ValueError(f"readout: {exc}") from exc
            raise

    def _build_module(self, n_in, n_out, numpy_gen, dtype, device):
        spec = self._spec(numpy_gen)
        if n_in != spec.n_in:
            raise ValueError(
                f"X has {n_in} features in its last axis; the config's inputs have {spec.n_in} units "
                f"({ {name: s.stop - s.start for name, s in spec.input_slices.items()} })."
            )
        V_in, V_rec, V_out = _initial_weights(spec, n_out, numpy_gen)
        module = LeakyRNN(
            spec.n_in,
            spec.n_rec,
            n_out,
            dt=self.dt,
            tau=self.tau,
            activation=self.activation,
            rec_noise=self.rec_noise,
            input_noise=self.input_noise,
            input_mask=spec.input_mask,
            rec_mask=spec.rec_mask,
            output_mask=np.tile(spec.readout_mask, (n_out, 1)),
            input_signs=spec.input_signs,
            rec_signs=spec.rec_signs,
            train_init_state=self.train_init_state,
            weights={
                "W_in": V_in,
                "W_rec": V_rec,
                "W_out": V_out,
                "b_rec": spec.base_firing,
                "init_state": spec.init_state,
                "bias_trainable": spec.bias_trainable,
            },
            dtype=dtype,
            device=device,
        )
        if self.spectral_radius is not None:
            W_rec = module.effective_weights()[1].detach().cpu().double().numpy()
            rho = float(np.max(np.abs(np.linalg.eigvals(W_rec)))) if W_rec.size else 0.0
            if not rho > 0:
                raise ValueError(
                    "spectral_radius cannot be set: the initial recurrent matrix has spectral radius 0 "
                    "(no recurrent loop among the connections)."
                )
            with torch.no_grad():
                module.W_rec.mul_(self.spectral_radius / rho)
        return module, spec

    def _store_weights(self, built=None):
        super()._store_weights(built)
        spec = built  # the RegionSpec of a new build; None on a warm start (attributes kept)
        if spec is not None:
            self.region_slices_ = dict(spec.region_slices)
            self.input_slices_ = dict(spec.input_slices)
            self.config_ = spec.config
        if self.module_.rec_signs is None:  # every region mixed
            self.dale_signs_ = np.zeros(self.module_.n_rec, dtype=int)
        self.rec_mask_ = self.module_.rec_mask.detach().cpu().double().numpy()
        self.input_mask_ = self.module_.input_mask.detach().cpu().double().numpy()

    # ---------------------------------------------------------------- regions
    @property
    def _parents(self):
        """Each parent name and its child regions, in config order (from ``config_``)."""
        parents = {}
        for region in self.config_["regions"]:
            if region["parent"] is not None:
                parents.setdefault(region["parent"], []).append(region["name"])
        return parents

    def _indices(self, names):
        check_is_fitted(self)
        return region_indices(names, self.region_slices_, self._parents, self.W_rec_.shape[0])

    def region_indices(self, *names):
        """Unit indices of the named regions (parents stand for their children), in the order given.

        Parameters
        ----------
        *names : str
            Region or parent names; none: every unit in network order.

        Returns
        -------
        ndarray of int
        """
        return self._indices(names)

    def region_activity(self, states, *names):
        """The last-axis columns of ``states`` that belong to the named regions, in the order given.

        Parameters
        ----------
        states : ndarray or tensor of shape (..., n_rec)
            States or rates, e.g. from :meth:`predict_states` or :meth:`simulate`.
        *names : str
            Region or parent names (a parent stands for its children at its own position);
            none: all units. A region asked for twice raises ``ValueError``.

        Returns
        -------
        ndarray or tensor of shape (..., n_units_selected)
            Same type as ``states``.
        """
        idx = self._indices(names)
        n_rec = self.W_rec_.shape[0]
        if states.shape[-1] != n_rec:
            raise ValueError(f"states must have {n_rec} units in the last axis; got shape {tuple(states.shape)}.")
        if isinstance(states, torch.Tensor):
            return states[..., torch.as_tensor(idx, device=states.device)]
        return np.asarray(states)[..., idx]

    def projection(self, target, source):
        """The block of ``W_rec_`` (or ``W_in_`` for an input source) from ``source`` to ``target``.

        Parameters
        ----------
        target : str
            Region or parent receiving the connections (rows).
        source : str
            Region, parent or input sending them (columns).

        Returns
        -------
        ndarray of shape (n_target_units, n_source_units)
        """
        rows = self._indices([target])
        if source in self.input_slices_:
            s = self.input_slices_[source]
            return self.W_in_[np.ix_(rows, np.arange(s.start, s.stop))]
        return self.W_rec_[np.ix_(rows, self._indices([source]))]

    def weight_subset(self, *names):
        """``W_rec_`` restricted to the named regions, rows and columns in the order given.

        Parameters
        ----------
        *names : str
            Region or parent names; none: the whole matrix.

        Returns
        -------
        ndarray of shape (n_selected, n_selected)
        """
        idx = self._indices(names)
        return self.W_rec_[np.ix_(idx, idx)]

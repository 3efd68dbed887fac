"""scikit-learn estimator of multi-subject latent regression (one sample = one subject)."""

from __future__ import annotations

import os
import re
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.metrics import r2_score
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._engine import Checkpointer, GroupedData, TorchEstimatorMixin, fit_module, load_checkpoint, make_generators
from .._engine.base import early_stopping_constraints, engine_parameter_constraints
from .._engine.base import to_numpy as _numpy
from .._persist import SaveLoadMixin
from ..utils._docstrings import fill_doc
from ..utils._validation import check_range
from ._building import LatentModelBuilding, SubjectFitting, pooled_scale
from ._data import SubjectData
from ._held_out import HeldOutNeurons
from ._modules import (
    SUBJECT_PARAMS,
    IdentityMapping,
    LinearMapping,
    _softplus_inverse,
    check_direct_pairs,
    subject_key,
)
from ._statistics import shared_tensor, subject_statistics

__all__ = ["MultiSubjectLatentRegressor"]


def _numpy_dtype(dtype):
    """The numpy dtype of a torch dtype (e.g. ``torch.float32`` -> ``float32``)."""
    return np.dtype(str(dtype).removeprefix("torch."))


def _group_output(arrays, grouped):
    return tuple(arrays) if grouped else arrays[0]


@fill_doc(max_iter=500, learning_rate=0.001, tol=1e-6, n_iter_no_change=20, held_out="output neurons of each subject")
class MultiSubjectLatentRegressor(
    LatentModelBuilding,
    SubjectFitting,
    HeldOutNeurons,
    TorchEstimatorMixin,
    SaveLoadMixin,
    RegressorMixin,
    BaseEstimator,
):
    r"""Latent regression shared across subjects, with modes predicted from neuron properties.

    Each subject's outputs are regressed on its inputs through ``n_components`` shared
    latent dimensions. A neuron's loading on each dimension (its mode) is a smooth
    function of its properties (e.g. 3-D position), learned by predictors that all
    subjects share, so a subject never seen in training is predicted from its inputs and
    its neurons' properties alone:

    .. math::

        \mu_{sh} = (m(X_{s1} P_{s1}, \dots) _h\, U_{sh}^\top) \odot c_{sh} + o_{sh}, \quad
        P_{sg} = \pi_g(R_{sg}), \; U_{sh} = \upsilon_h(Q_{sh}),

    with per-subject scales c, offsets o and noise variances ψ. For scikit-learn each
    subject is one sample: ``X`` is a list of :class:`SubjectData`, ``y`` a list of output
    arrays, and ``cross_val_score(est, X, y, cv=LeaveOneOut())`` is leave-one-subject-out
    cross-validation. The model is janelia_core's multi-subject latent regression [1]_.

    Parameters
    ----------
    n_components : int, default=2
        K, the number of shared latent dimensions.
    mode_predictor : {"bumps", "mlp"} or callable, default="bumps"
        Sums of Gaussian bumps (:class:`~skneuro.bumps.SumOfBumpFcns`), a tanh MLP, or
        ``callable(n_properties, n_components, generator) -> nn.Module`` called once per
        predicted group.
    n_bumps : int, default=50
        Bumps per predictor ("bumps").
    hidden_layer_sizes : tuple of int, default=(64, 64)
        Layers of the MLP predictors ("mlp").
    mapping : {"identity", "linear"} or nn.Module, default="identity"
        From the G groups of input latents to the H groups of output latents: identity
        (G = H), a learned linear map, or a module with the same list-to-list contract.
    subject_params : tuple of {"scales", "offsets", "latent_affine"}, default=("scales", "offsets")
        Per-subject parts that are learned (the others stay at c = 1, o = 0, a = 1, b = 0).
        Noise variances are always per subject.
    direct_pairs : tuple of (g, h) or None, default=None
        Diagonal direct maps from input group g to output group h of equal size.
    min_var : float, default=1e-3
        Floor of each neuron's noise variance relative to its training variance:
        ``ψ_j = min_var·Var(y_j) + softplus(ρ_j)`` (as in the reduced-rank estimators).
    init : {"auto", "random"}, default="auto"
        "auto": data-driven per-subject parameters and, for bump predictors with one input
        and one output group, an alternating least-squares start of the bump magnitudes.
    smooth_modes : bool, default=True
        After training, replace both predictors by Gaussian-process smoothings of what
        the data say about the training neurons' modes, then refit scales, offsets and
        noise variances in closed form. The likelihood alone makes the predictors follow
        each training neuron's own deviation from the smooth function of position, which
        no other neuron shares; smoothing keeps what predicts new neurons. *Inputs* first:
        an input neuron's mode is seen only through the latents, so the input predictor
        becomes the posterior mean of a GP regression through the data (each subject's
        outputs on its inputs, with the output neurons' least-squares loadings held fixed
        and every neuron's own deviation integrated out); per mode its length scales,
        deviation level and variance maximise the marginal likelihood. With two or more
        training subjects it is weighed with a few free Gaussian bumps fitted through the
        same data, the weight the one that predicts held-out subjects best (fitted on one
        half of the subjects, scored on the other). *Outputs* then:
        each training output neuron's least-squares loading on the new latents, smoothed
        by a GP of position (length scales and noise by marginal likelihood) and by a few
        free Gaussian bumps (each its own centre and widths, grown one at a time), which
        fit modes made of local features of different sizes that one length scale cannot:
        the result is their weighted sum, the weight the one that predicts held-out
        training neurons best (0 keeps the GP alone); errors are weighed by the latents'
        covariance, as they move predictions. On both
        sides each property gets its own length scale (automatic relevance
        determination): modes may change fast with one property, e.g. cortical depth,
        and not at all with another. Applies to
        bump predictors with one input and one output group, an identity or linear
        mapping, ``subject_params`` within ("scales", "offsets"), no direct pairs and no
        fixed output modes; the input side also needs no fixed input modes and at most
        2,000 inputs in every subject (one eigendecomposition of that size per subject;
        otherwise only the outputs are smoothed). The new predictors are sums of Gaussian bumps: the output
        one has one bump per training output neuron up to 1,000 (subset-of-regressors
        approximation beyond, 1,000 neurons drawn as centres, cost linear in the number
        of neurons), plus at most ``min(32 K, n/10)`` free bumps (only those where their
        weight is 1), the input one at most 400 bumps
        per distinct set of length scales plus at most ``10 K`` free bumps;
        ``n_bumps`` is the trained predictors' size. See the user guide for the equations.
        With ``early_stopping=True``, ``best_validation_score_`` scores the trained
        predictors before smoothing.
    {solver_parameter}
    checkpoint_path : str or path-like, default=None
        File for training checkpoints (written atomically, read without running code).
    checkpoint_every : int, default=None
        Write ``checkpoint_path`` after every k-th epoch. With ``warm_start=True`` and a
        checkpoint of the same data and parameters at ``checkpoint_path``, ``fit``
        resumes at its epoch and gives the same result as an uninterrupted fit.
    {engine_parameters}
    {early_stopping_parameters}

    Attributes
    ----------
    subject_ids_ : list
        Training subjects in fit order.
    scales_, offsets_, noise_variance_ : dict
        Per training subject: an array per output group (a tuple for several groups).
    latent_scales_, latent_offsets_ : dict
        Per training subject: an array (K,) per input group.
    default_subject_params_ : dict
        Parameters used for subjects not seen in training. Noise variances: the mean over
        training neurons; latent affine: the mean over training subjects; scale: the one
        scale that best predicts all training neurons together, the least-squares slope of
        their outputs on their latent predictions ``z_j`` (each neuron's scale weighted by
        the spread of its ``z_j`` over samples, so that a neuron whose predicted loading
        is near 0, and whose own scale is therefore arbitrary, does not set it); offset:
        the mean intercept at that scale. (A model saved before these weights were
        recorded uses the plain means of scales and offsets.)
    device_placement_ : dict
        Subject index (fit order) -> index into the device list.
    mapping_weight_ : ndarray of shape (G·K, H·K)
        Only with ``mapping="linear"``.
    n_input_groups_, n_output_groups_, n_properties_ : int
    {engine_attributes}

    See Also
    --------
    SubjectData : One subject's inputs and neuron properties.
    skneuro.reduced_rank.RRLinearRegressor : Reduced-rank regression of a single subject.
    skneuro.bumps.SumOfBumpsRegressor : Sums of Gaussian bumps, the default mode predictors.
    skneuro.datasets.make_multi_subject_latent_regression : Ground-truth subjects.

    Notes
    -----
    With one input and one output group, a linear mapping, no direct pairs and full-batch
    training, the objective needs each subject's data only through ``PᵀX̃ᵀX̃P`` (K×K) and
    ``PᵀX̃ᵀỸ`` (K×e): these come from the data moments ``X̃ᵀX̃``, ``X̃ᵀỸ`` (computed once in
    float64) when those are smaller than the data (fewer inputs than half the samples in
    float32), else from one pass over the data per evaluation, in row chunks, which also
    gives the gradient (products at ``dtype``, sums in float64; float32 data are used in
    place, never copied to float64). Both give the per-sample objective; a fit's own
    memory stays a fraction of the data's size.

    The default ``learning_rate`` is 1e-3, not the original system's 1e-2: from the
    least-squares start, Adam's first steps move every parameter by about the learning
    rate, which at 1e-2 throws the bump magnitudes far off.

    With the identity mapping and no latent affine, the fit ends in a standard form (the
    K×K rotations ``p_mix``/``u_mix`` of the module): scales of unit rms (each neuron weighted
    by the variance of its latent prediction), identity covariance of
    the pooled training latents, orthogonal pooled ``U ⊙ c`` columns by decreasing norm,
    and a positive largest entry in each U column. Predictions are unchanged by it.

    ``device`` may be a list: subject i (in fit order) lives on ``device[i % len(device)]``
    (``device_placement_`` maps subject index to device index), the shared predictors and
    mapping on ``device[0]``; only modes and loss values cross devices.

    References
    ----------
    .. [1] William Bishop (Janelia Research Campus), janelia_core,
       ``janelia_core.ml.latent_regression`` (``regression.py``, ``subject_models.py``,
       ``group_maps.py``; read at commit 78e7f69): ``MultiSubjectRegressionFitter``,
       ``SubjectRegressionCollection``.

    Examples
    --------
    >>> from sklearn.model_selection import LeaveOneOut, cross_val_score
    >>> from skneuro.datasets import make_multi_subject_latent_regression
    >>> from skneuro.latent_regression import MultiSubjectLatentRegressor
    >>> X, y = make_multi_subject_latent_regression(n_subjects=3, n_samples=300, random_state=0)
    >>> est = MultiSubjectLatentRegressor(n_bumps=10, max_iter=50, random_state=0)
    >>> scores = cross_val_score(est, X, y, cv=LeaveOneOut())
    >>> scores.shape, bool(scores.min() > 0.5)
    ((3,), True)
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "mode_predictor": [StrOptions({"bumps", "mlp"}), callable],
        "n_bumps": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": [tuple, list],
        "mapping": [StrOptions({"identity", "linear"}), torch.nn.Module],
        "subject_params": [tuple, list],
        "direct_pairs": [None, tuple, list],
        "min_var": [Interval(Real, 0, None, closed="neither")],
        "init": [StrOptions({"auto", "random"})],
        "smooth_modes": ["boolean"],
        "solver": [StrOptions({"adam", "lbfgs"})],
        "checkpoint_path": [None, str, os.PathLike],
        "checkpoint_every": [None, Interval(Integral, 1, None, closed="left")],
        **engine_parameter_constraints(),
        **early_stopping_constraints(),
        "device": [str, torch.device, list, tuple],
    }

    def __init__(
        self,
        n_components=2,
        *,
        mode_predictor="bumps",
        n_bumps=50,
        hidden_layer_sizes=(64, 64),
        mapping="identity",
        subject_params=("scales", "offsets"),
        direct_pairs=None,
        min_var=1e-3,
        init="auto",
        smooth_modes=True,
        solver="adam",
        learning_rate=0.001,
        max_iter=500,
        batch_size=None,
        chunk_size=None,
        tol=1e-6,
        n_iter_no_change=20,
        early_stopping=False,
        validation_fraction=0.1,
        checkpoint_path=None,
        checkpoint_every=None,
        warm_start=False,
        device="cpu",
        dtype="float32",
        random_state=None,
        verbose=0,
        callback=None,
    ):
        self.n_components = n_components
        self.mode_predictor = mode_predictor
        self.n_bumps = n_bumps
        self.hidden_layer_sizes = hidden_layer_sizes
        self.mapping = mapping
        self.subject_params = subject_params
        self.direct_pairs = direct_pairs
        self.min_var = min_var
        self.init = init
        self.smooth_modes = smooth_modes
        self.solver = solver
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.chunk_size = chunk_size
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.checkpoint_path = checkpoint_path
        self.checkpoint_every = checkpoint_every
        self.warm_start = warm_start
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose
        self.callback = callback

    # ------------------------------------------------------------ validation
    @staticmethod
    def _check_subjects(X):
        if not isinstance(X, (list, tuple)) or not all(isinstance(s, SubjectData) for s in X):
            raise TypeError("X must be a list of SubjectData (one per subject).")
        if not X:
            raise ValueError("X must contain at least one subject.")
        first = X[0]
        for s in X[1:]:
            if (s.n_input_groups, s.n_output_groups) != (first.n_input_groups, first.n_output_groups):
                raise ValueError(
                    f"subject {s.subject_id!r} has {s.n_input_groups} input and {s.n_output_groups} output "
                    f"group(s); subject {first.subject_id!r} has {first.n_input_groups} and {first.n_output_groups}."
                )
            if None not in (s.n_properties, first.n_properties) and s.n_properties != first.n_properties:
                raise ValueError(
                    f"subject {s.subject_id!r} has {s.n_properties} properties per neuron; "
                    f"subject {first.subject_id!r} has {first.n_properties}."
                )
        return list(X)

    def _check_structure(self, dtype):
        """Parameters whose constraints let through values that would fail deep in torch."""
        for name in ("n_components", "n_bumps"):
            if isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be an int; got {getattr(self, name)!r}.")
        for size in self.hidden_layer_sizes:
            if isinstance(size, bool) or not isinstance(size, Integral):
                raise TypeError(f"hidden_layer_sizes must contain ints; got {size!r} in {self.hidden_layer_sizes!r}.")
            if size < 1:
                raise ValueError(f"hidden_layer_sizes must contain positive ints; got {self.hidden_layer_sizes!r}.")
        check_range("min_var", self.min_var, _numpy_dtype(dtype))

    @staticmethod
    def _check_data_range(subjects, ys, dtype):
        """Reject inputs, outputs and properties whose squares overflow the training ``dtype``."""
        dtype = _numpy_dtype(dtype)
        for i, s in enumerate(subjects):
            in_props, out_props = s.property_groups()
            for field, groups in (
                ("x", s.x_groups()),
                ("input_properties", in_props),
                ("output_properties", out_props),
            ):
                for g, arr in enumerate(groups):
                    if arr is not None:
                        check_range(s._where(field, g), arr, dtype)
            for h, arr in enumerate(ys[i] if ys is not None else ()):
                check_range(s._where("y", h), arr, dtype)

    def _check_fit_data(self, X, y):
        subjects = self._check_subjects(X)
        if not isinstance(y, (list, tuple)) or len(y) != len(subjects):
            raise ValueError(f"y must be a list with one entry per subject ({len(subjects)}).")
        keys = [subject_key(s.subject_id) for s in subjects]
        if len(set(keys)) != len(keys):
            raise ValueError("subject ids in X must be unique (ids with the same string form collide).")
        for s in subjects:
            if s.n_samples == 0:
                raise ValueError(f"subject {s.subject_id!r} has 0 samples; every training subject needs data.")
        ys = [s.check_y(ys) for s, ys in zip(subjects, y)]
        unknown = [p for p in self.subject_params if p not in SUBJECT_PARAMS]
        if unknown:
            raise ValueError(f"subject_params entries must be among {SUBJECT_PARAMS}; got {unknown}.")
        G, H = subjects[0].n_input_groups, subjects[0].n_output_groups
        if isinstance(self.mapping, str) and self.mapping == "identity" and G != H:
            raise ValueError(f"mapping='identity' needs as many input as output groups; got {G} and {H}.")
        check_direct_pairs(self.direct_pairs or (), G, H)
        K = self.n_components
        for s in subjects:
            for kind, modes in zip(("input_modes", "output_modes"), s.mode_groups()):
                for g, m in enumerate(modes):
                    if m is not None and m.shape[1] != K:
                        raise ValueError(
                            f"{kind}[{g}] of subject {s.subject_id!r} has {m.shape[1]} columns; n_components={K}."
                        )
        return subjects, ys

    # ---------------------------------------------------------------- building
    # ----------------------------------------------------------------- fitting
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit shared predictors and per-subject parameters.

        Parameters
        ----------
        X : list of SubjectData
        y : list of ndarray of shape (n_samples_s, n_outputs_s), or of tuples per output group

        Returns
        -------
        self : object
        """
        subjects, ys = self._check_fit_data(X, y)
        if self.checkpoint_every is not None and self.checkpoint_path is None:
            raise ValueError("checkpoint_every needs checkpoint_path.")
        devices, dtype = self._resolve_devices_dtype()
        self._check_structure(dtype)
        self._check_data_range(subjects, ys, dtype)
        device = devices[0]
        all_subjects, all_ys = subjects, ys
        validation = None
        if self.early_stopping:
            subjects, ys, validation = self._hold_out_neurons(subjects, ys)
        torch_gen, numpy_gen = make_generators(self.random_state)
        fingerprint = self._fingerprint(subjects)
        resume = self._matching_checkpoint(fingerprint) if self.warm_start else None
        warm = self.warm_start and hasattr(self, "module_") and resume is None
        if warm and self.early_stopping:
            raise ValueError(
                "warm_start=True with early_stopping=True continues only from a checkpoint (checkpoint_path) "
                "in this estimator: the fitted subjects include the held-out neurons."
            )
        if warm:
            missing = [s.subject_id for s in subjects if subject_key(s.subject_id) not in self.module_.subjects]
            if missing:
                raise ValueError(f"warm_start=True needs the subjects of the previous fit; new: {missing}.")
            module = self.module_
        else:
            module = self._build(subjects, ys, torch_gen, numpy_gen)
        module = module.to(device=device, dtype=dtype)
        placement = {i: i % len(devices) for i in range(len(subjects))}
        for i, s in enumerate(subjects):
            module.subject(s.subject_id).to(devices[placement[i]])
        checkpoint = None
        if self.checkpoint_every is not None:
            checkpoint = Checkpointer(self.checkpoint_path, self.checkpoint_every, {"fingerprint": fingerprint})
        result = self._train(module, subjects, ys, torch_gen, devices, placement, dtype, checkpoint, resume, validation)
        if validation is not None:
            subjects, ys = all_subjects, all_ys
            self._complete_held_out_neurons(module, subjects, ys, devices, placement)
        if self._smooths_input_modes(module, subjects):
            self._smooth_input_modes(module, subjects, ys)
        if self._smooths_output_modes(module, subjects):
            self._smooth_output_modes(module, subjects, ys)
        if isinstance(module.mapping, IdentityMapping) and "latent_affine" not in self.subject_params:
            self._standardise(module, subjects)
        signal = [self._signal_moments(module.subject(s.subject_id), s, module) for s in subjects]
        # Fitted attributes are set together, only once everything above has succeeded.
        self.module_, self.device_ = module, (devices if isinstance(self.device, (list, tuple)) else device)
        self.device_placement_ = placement
        self.subject_ids_ = [s.subject_id for s in subjects]
        self.n_input_groups_, self.n_output_groups_ = subjects[0].n_input_groups, subjects[0].n_output_groups
        self.n_properties_ = next((s.n_properties for s in subjects if s.n_properties is not None), None)
        self._grouped_y = [s._grouped_y for s in subjects]
        self._signal = signal
        self.loss_curve_, self.n_iter_, self.n_updates_ = result.loss_curve, result.n_iter, result.n_updates
        self._store_attributes()
        self._store_validation(result)
        return self

    def _tensors(self, subject, device, dtype):
        t = {"device": device, "dtype": dtype}
        in_props, out_props = subject.property_groups()
        to = [None if p is None else torch.as_tensor(p, **t) for p in in_props]
        tq = [None if p is None else torch.as_tensor(p, **t) for p in out_props]
        return to, tq

    def _uses_moments(self, module, subjects):
        """Whether full-batch training can run on data moments (same objective, far cheaper)."""
        return (
            self.batch_size is None
            and self.chunk_size is None
            and subjects[0].n_input_groups == 1
            and subjects[0].n_output_groups == 1
            and isinstance(module.mapping, (IdentityMapping, LinearMapping))
            and not self.direct_pairs
        )

    def _fingerprint(self, subjects) -> str:
        """What a checkpoint must match to be resumed: data shapes and parameters."""
        ignored = {"checkpoint_path", "checkpoint_every", "warm_start", "verbose", "max_iter", "device", "callback"}
        params = {k: v for k, v in self.get_params(deep=False).items() if k not in ignored}
        shapes = [(str(s.subject_id), s.n_samples, s.n_inputs, s.n_outputs) for s in subjects]
        # default reprs carry a memory address, which differs between processes
        stable = {k: re.sub(r" at 0x[0-9a-fA-F]+", "", repr(v)) for k, v in params.items()}
        return repr((sorted(stable.items()), shapes))

    def _matching_checkpoint(self, fingerprint):
        if self.checkpoint_path is None or not os.path.exists(self.checkpoint_path):
            return None
        state = load_checkpoint(self.checkpoint_path)
        if state.get("extra", {}).get("fingerprint") != fingerprint:
            warnings.warn(
                f"checkpoint {os.fspath(self.checkpoint_path)!r} was written for other data or parameters; "
                "it is ignored and the fit starts afresh.",
                UserWarning,
                stacklevel=3,
            )
            return None
        return state

    def _train(
        self, module, subjects, ys, torch_gen, devices, placement, dtype, checkpoint=None, resume=None, validation=None
    ):
        """Shared parts on ``devices[0]``; subject i and its data on ``devices[placement[i]]``."""
        device = devices[0]
        subject_devices = [devices[placement[i]] for i in range(len(subjects))]
        G = subjects[0].n_input_groups
        props = [self._tensors(s, device, dtype) for s in subjects]
        ids = [s.subject_id for s in subjects]
        if self._uses_moments(module, subjects):
            wide = torch.float32 if device.type == "mps" else torch.float64
            over_data, groups = [], []
            for s, (y,) in zip(subjects, ys):
                passes, statistics = subject_statistics(s.x_groups()[0], y, dtype, wide)
                over_data.append(passes)
                groups.append(tuple(t[None] for t in statistics))
            data = GroupedData(groups, n_total=sum(s.n_samples for s in subjects), devices=subject_devices)

            def loss(m, index, *moments):
                model = m.subject(ids[index])
                P, U = (model.on_own_device(modes) for modes in m.modes(model, *props[index]))
                moments = [t[0] for t in moments]
                return model.neg_log_likelihood_from_moments(moments, P, U, m.mapping, over_data[index]).to(device)

        else:
            data = GroupedData(
                [tuple(shared_tensor(a, dtype) for a in (*s.x_groups(), *y_s)) for s, y_s in zip(subjects, ys)],
                devices=subject_devices,
            )

            def loss(m, index, *tensors):
                x, y = tensors[:G], tensors[G:]
                means = m(ids[index], x, *props[index])
                return m.subject(ids[index]).neg_log_likelihood(y, means).sum().to(device)

        validation_options = {}
        if validation is not None:
            validation_options = self._validation_objective(validation, ids, props, device, dtype)
        return fit_module(
            module,
            loss,
            data,
            generator=torch_gen,
            **self._engine_options(),
            checkpoint=checkpoint,
            resume=resume,
            **validation_options,
        )

    def _store_attributes(self):
        self.scales_, self.offsets_, self.noise_variance_ = {}, {}, {}
        self.latent_scales_, self.latent_offsets_ = {}, {}
        for sid, grouped in zip(self.subject_ids_, self._grouped_y):
            model = self.module_.subject(sid)
            H = len(model.n_outputs)
            self.scales_[sid] = _group_output([_numpy(c) for c in model.scales], grouped)
            self.offsets_[sid] = _group_output([_numpy(o) for o in model.offsets], grouped)
            self.noise_variance_[sid] = _group_output([_numpy(model.psi(h)) for h in range(H)], grouped)
            self.latent_scales_[sid] = [_numpy(a) for a in model.latent_scales]
            self.latent_offsets_[sid] = [_numpy(b) for b in model.latent_offsets]
        models = [self.module_.subject(sid) for sid in self.subject_ids_]
        H = self.n_output_groups_

        def pooled(name):
            return [float(np.mean(np.concatenate([_numpy(getattr(m, name)[h]) for m in models]))) for h in range(H)]

        signal = getattr(self, "_signal", None)
        if signal is not None and len(signal) == len(models):  # else a model saved before the weights: means
            scales, offsets = [], []
            for h in range(H):
                c = np.concatenate([_numpy(m.scales[h]) for m in models])
                o = np.concatenate([_numpy(m.offsets[h]) for m in models])
                z_mean, z_var, n = np.concatenate([v[h] for v in signal], axis=1)
                if "offsets" in self.subject_params:
                    scales.append(pooled_scale(c, n * z_var))
                    # the mean intercept at that scale: each neuron's mean output is c_j z̄_j + o_j
                    offsets.append(float(np.mean(o + (c - scales[-1]) * z_mean)))
                else:  # slopes through the origin: weights Σ_t z² = n (var + mean²); offsets stay as trained
                    scales.append(pooled_scale(c, n * (z_var + z_mean**2)))
                    offsets.append(float(np.mean(o)))
        else:
            scales, offsets = pooled("scales"), pooled("offsets")
        self.default_subject_params_ = {
            "scales": scales,
            "offsets": offsets,
            "noise_variance": [float(np.mean(np.concatenate([_numpy(m.psi(h)) for m in models]))) for h in range(H)],
            "var_floor": [float(np.mean(np.concatenate([_numpy(m.var_floor(h)) for m in models]))) for h in range(H)],
            "latent_scales": [
                np.mean([_numpy(m.latent_scales[g]) for m in models], axis=0) for g in range(self.n_input_groups_)
            ],
            "latent_offsets": [
                np.mean([_numpy(m.latent_offsets[g]) for m in models], axis=0) for g in range(self.n_input_groups_)
            ],
            "direct": [
                float(np.mean(np.concatenate([_numpy(m.direct[i]) for m in models])))
                for i in range(len(models[0].direct))
            ],
        }
        if isinstance(self.module_.mapping, LinearMapping):
            self.mapping_weight_ = _numpy(self.module_.mapping.weight)

    # -------------------------------------------------------------- prediction
    def _subject_model(self, subject):
        """The trained model of a known subject, or one built from the default parameters."""
        key = subject_key(subject.subject_id)
        if key in self.module_.subjects:
            model = self.module_.subjects[key]
            if model.n_inputs != subject.n_inputs or model.n_outputs != subject.n_outputs:
                raise ValueError(f"subject {subject.subject_id!r} does not match the shapes it had in training.")
            return model
        model = self._blank_subject(subject)
        d = self.default_subject_params_
        with torch.no_grad():
            for h in range(len(subject.n_outputs)):
                model.scales[h].fill_(d["scales"][h])
                model.offsets[h].fill_(d["offsets"][h])
                floor = d["var_floor"][h]
                model.set_var_floor(h, floor)
                model.rho[h].fill_(_softplus_inverse(max(d["noise_variance"][h] - floor, 1e-6 * floor)))
            for g in range(len(subject.n_inputs)):
                model.latent_scales[g].copy_(torch.as_tensor(d["latent_scales"][g]))
                model.latent_offsets[g].copy_(torch.as_tensor(d["latent_offsets"][g]))
            for i, value in enumerate(d["direct"]):
                model.direct[i].fill_(value)
        param = next(self.module_.parameters())
        return model.to(device=param.device, dtype=param.dtype)

    def _check_predict_subjects(self, X):
        check_is_fitted(self)
        subjects = self._check_subjects(X)
        for s in subjects:
            if (s.n_input_groups, s.n_output_groups) != (self.n_input_groups_, self.n_output_groups_):
                raise ValueError(
                    f"subject {s.subject_id!r} has {s.n_input_groups} input and {s.n_output_groups} output "
                    f"group(s); the model was fitted with {self.n_input_groups_} and {self.n_output_groups_}."
                )
            if s.n_properties is not None and self.n_properties_ is not None and s.n_properties != self.n_properties_:
                raise ValueError(
                    f"subject {s.subject_id!r} has {s.n_properties} properties per neuron; the model was "
                    f"fitted with {self.n_properties_}."
                )
        self._check_data_range(subjects, None, next(self.module_.parameters()).dtype)
        return subjects

    def _forward(self, subject, model=None, module=None):
        module = self.module_ if module is None else module
        param = next(module.parameters())
        device, dtype = param.device, param.dtype
        model = self._subject_model(subject) if model is None else model
        in_props, out_props = self._tensors(subject, device, dtype)
        x = [torch.as_tensor(a, device=model.rho[0].device, dtype=dtype) for a in subject.x_groups()]
        with torch.no_grad():
            P, U = (model.on_own_device(modes) for modes in module.modes(model, in_props, out_props))
            means = model(x, P, U, module.mapping)
            latents = [xg @ pg for xg, pg in zip(x, P)]
            if "latent_affine" in self.subject_params:
                latents = [lg * a.abs() + b for lg, a, b in zip(latents, model.latent_scales, model.latent_offsets)]
        return means, latents, P, U

    def predict(self, X):
        """Predicted outputs of every subject, seen in training or not.

        Parameters
        ----------
        X : list of SubjectData

        Returns
        -------
        list of ndarray of shape (n_samples_s, n_outputs_s) (a tuple per subject for several output groups)
        """
        out = []
        for s in self._check_predict_subjects(X):
            means = self._forward(s)[0]
            out.append(_group_output([_numpy(m) for m in means], s._grouped_y))
        return out

    def transform(self, X):
        """Latents of every subject, input groups side by side.

        One array per subject, each of its own length, rather than one table: the
        estimator has no ``set_output``, and a global ``transform_output`` setting leaves
        the list of ndarrays as it is.

        Parameters
        ----------
        X : list of SubjectData

        Returns
        -------
        list of ndarray of shape (n_samples_s, G·K)
        """
        return [np.hstack([_numpy(lat) for lat in self._forward(s)[1]]) for s in self._check_predict_subjects(X)]

    def predict_modes(self, subject):
        """Modes ``(P, U)`` of one subject: (n_inputs, K) and (n_outputs, K) arrays, tuples per group.

        Parameters
        ----------
        subject : SubjectData
        """
        (s,) = self._check_predict_subjects([subject])
        _, _, P, U = self._forward(s)
        return (
            _group_output([_numpy(p) for p in P], s._grouped_x),
            _group_output([_numpy(u) for u in U], s._grouped_y),
        )

    def score(self, X, y):
        """Mean over subjects of the pooled R² (variance-weighted over all output neurons).

        Parameters
        ----------
        X : list of SubjectData
        y : list of output arrays (or tuples per output group)

        Returns
        -------
        float
        """
        subjects = self._check_predict_subjects(X)
        if not isinstance(y, (list, tuple)) or len(y) != len(subjects):
            raise ValueError(f"y must be a list with one entry per subject ({len(subjects)}).")
        scores = []
        for s, y_s, pred in zip(subjects, y, self.predict(subjects)):
            truth = np.hstack(s.check_y(y_s))
            fitted = np.hstack(pred if isinstance(pred, tuple) else (pred,))
            scores.append(r2_score(truth, fitted, multioutput="variance_weighted"))
        return float(np.mean(scores))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.non_deterministic = False
        return tags

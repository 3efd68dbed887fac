"""Model building for :class:`MultiSubjectLatentRegressor`: predictors, subjects, starts, standard form.

A mixin of the estimator, kept apart so that the estimator module reads as sklearn glue.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import torch
from sklearn.cluster import KMeans

from .._engine import fit_module, held_fixed, make_generators
from .._engine.base import to_numpy as _numpy
from ..bumps import SumOfBumpFcns
from ..utils._linalg import scales_from_moments
from ._init import bilinear_als
from ._input_smoothing import smooth_input_modes
from ._modules import (
    IdentityMapping,
    LinearMapping,
    ModePredictorMLP,
    MultiSubjectLatentRegModule,
    SubjectModel,
    apply_mapping,
    call_user,
    subject_key,
)
from ._smoothing import least_squares_fit, least_squares_modes, smooth_modes
from ._statistics import basis_statistics, column_moments, project_rows

__all__ = ["LatentModelBuilding", "SubjectFitting", "pooled_scale"]

_METRIC_FLOOR = 1e-6  # of the latents' mean variance, added to the covariance's diagonal (latent_metric)
MAX_SMOOTHED_INPUTS = 2000  # input neurons per subject: an eigendecomposition of this size each


def _covariance(rows):
    """Covariance (K, K) of the rows of an (n, K) array, normalised by n."""
    return np.atleast_2d(np.cov(rows, rowvar=False, bias=True))


def _weighted_rms(values, weights):
    """``sqrt(Σ w v² / Σ w)``, or the plain rms where the weights sum to 0."""
    total = float(np.sum(weights))
    if not total > 0:
        return float(np.sqrt(np.mean(values**2)))
    return float(np.sqrt(np.sum(weights * values**2) / total))


def pooled_scale(scales, signal_variances):
    """The one scale that best predicts every neuron: ``Σ_j v_j c_j / Σ_j v_j``.

    ``c_j`` a neuron's own scale, ``v_j`` the variance over samples of its latent
    prediction ``z_j`` (unit scale, no offset): the least-squares slope of all neurons'
    centred outputs on their centred ``z`` together. A neuron whose predicted loading is
    near 0 has an arbitrary scale (its slope is noise over almost nothing) and weighs
    almost nothing; a plain mean lets one such neuron set the scale of every neuron of a
    new subject. The plain mean where every ``v_j`` is 0.

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.latent_regression._building import pooled_scale
    >>> round(pooled_scale(np.array([1.0, 1.2, -30.0]), np.array([1.0, 1.0, 1e-8])), 6)
    1.1
    """
    scales, weights = np.asarray(scales, dtype=np.float64), np.asarray(signal_variances, dtype=np.float64)
    total = float(np.sum(weights))
    return float(np.sum(weights * scales) / total) if total > 0 else float(np.mean(scales))


def latent_metric(covariance):
    """``L`` with ``L Lᵀ`` the latents' covariance: loadings ``U L`` measure errors as predictions do.

    A neuron's prediction is ``t uᵀ``; an error ``δ`` in its loadings moves it by ``t δᵀ``,
    of mean square ``δ Cov(t) δᵀ = ‖δ L‖²``. So smoothing ``U L`` (and mapping the result
    back by ``L⁻¹``) weighs errors by what they cost, whatever the latents' basis. The
    covariance's diagonal is raised by 1e-6 of its mean (a latent that barely varies
    still gets a bounded ``L⁻¹``); the identity where it is not finite or zero.

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.latent_regression._building import latent_metric
    >>> L = latent_metric(np.array([[4.0, 0.0], [0.0, 0.25]]))
    >>> np.round(L, 4).tolist()
    [[2.0, 0.0], [0.0, 0.5]]
    """
    covariance = np.asarray(covariance, dtype=np.float64)
    K = len(covariance)
    scale = float(np.trace(covariance)) / max(K, 1)
    if not (np.isfinite(covariance).all() and scale > 0):
        return np.eye(K)
    # a floor of 1e-6 of the mean variance: L⁻¹ (which maps the smoothed modes back) stays
    # within 1e3 of the latents' scale, for a float32 predictor
    floored = (covariance + covariance.T) / 2 + _METRIC_FLOOR * scale * np.eye(K)
    try:
        return np.linalg.cholesky(floored)
    except np.linalg.LinAlgError:
        return np.eye(K)


class LatentModelBuilding:
    """Builds the torch model of a fit and puts it in standard form (estimator mixin)."""

    def _properties(self, subjects, kind, group):
        props = [s.property_groups()[0 if kind == "input" else 1][group] for s in subjects]
        modes = [s.mode_groups()[0 if kind == "input" else 1][group] for s in subjects]
        return [p for p, m in zip(props, modes) if m is None and p is not None]

    def _make_predictor(self, pooled, q, torch_gen, numpy_gen, dtype):
        K = self.n_components
        if callable(self.mode_predictor):
            net = call_user(
                "mode_predictor",
                f"when called as mode_predictor(n_properties={q}, n_components={K}, generator); it must "
                "return an nn.Module.",
                self.mode_predictor,
                q,
                K,
                torch_gen,
            )
            if not isinstance(net, torch.nn.Module):
                raise TypeError(
                    f"mode_predictor must return an nn.Module mapping (n, {q}) properties to (n, {K}) modes; "
                    f"got {type(net).__name__}."
                )
            return net
        if self.mode_predictor == "mlp":
            with torch.random.fork_rng(devices=[]):  # construction draws from the global RNG: discard it
                net = ModePredictorMLP(q, K, tuple(self.hidden_layer_sizes), dtype=dtype)
            with torch.no_grad():
                for layer in net.modules():
                    if isinstance(layer, torch.nn.Linear):
                        bound = 1.0 / np.sqrt(layer.in_features)
                        layer.weight.uniform_(-bound, bound, generator=torch_gen)
                        layer.bias.uniform_(-bound, bound, generator=torch_gen)
            return net
        lo, hi = pooled.min(axis=0), pooled.max(axis=0)
        span = np.where(hi > lo, hi - lo, 1.0)
        n_bumps = min(self.n_bumps, len(np.unique(pooled, axis=0)))
        seed = int(numpy_gen.integers(2**31 - 1))
        centers = KMeans(n_bumps, n_init=1, max_iter=10, random_state=seed).fit(pooled).cluster_centers_
        widths = np.tile(span / n_bumps ** (1.0 / q), (n_bumps, 1))
        magnitudes = numpy_gen.normal(scale=0.01, size=(n_bumps, K))
        t = {"dtype": torch.float64}
        return SumOfBumpFcns(
            torch.as_tensor(centers, **t),
            torch.as_tensor(widths, **t),
            torch.as_tensor(magnitudes, **t),
            c_bounds=torch.as_tensor(np.stack([lo - 0.1 * span, hi + 0.1 * span]), **t),
            w_bounds=torch.as_tensor(np.stack([1e-3 * span, 10.0 * span]), **t),
        )

    def _make_mapping(self, G, H):
        if isinstance(self.mapping, torch.nn.Module):
            # a copy: fitting must neither train nor cast the module passed as a parameter
            return copy.deepcopy(self.mapping)
        if self.mapping == "linear":
            return LinearMapping(G, H, self.n_components, dtype=torch.float64)
        return IdentityMapping()

    def _blank_subject(self, subject):
        """A float64 :class:`SubjectModel` of the subject's shapes and fixed modes, at its defaults."""
        in_modes, out_modes = subject.mode_groups()
        return SubjectModel(
            subject.n_inputs,
            subject.n_outputs,
            self.n_components,
            tuple(self.subject_params),
            self.min_var,  # a placeholder: _set_var_floors sets min_var times each neuron's variance
            tuple(self.direct_pairs or ()),
            input_modes=in_modes,
            output_modes=out_modes,
            dtype=torch.float64,
        )

    def _new_subject(self, subject, ys):
        """A :class:`SubjectModel` initialised from the data: o = means, c = 1, ψ = variances."""
        model = self._blank_subject(subject)
        with torch.no_grad():
            for h, yh in enumerate(ys):
                mean, variances = self._set_var_floor(model, h, yh)
                if "offsets" in self.subject_params:
                    model.offsets[h].copy_(torch.as_tensor(mean))
                model.rho[h].copy_(torch.as_tensor(self._rho(model, h, variances)))
        return model

    def _set_var_floors(self, model, ys):
        """Floors ``min_var`` times each neuron's variance (as in reduced rank: see ``target_scales``)."""
        for h, yh in enumerate(ys):
            self._set_var_floor(model, h, yh)

    def _set_var_floor(self, model, group, y):
        """Set the floors of one output group; returns the column means and variances of ``y`` (float64)."""
        mean, sum_sq, abs_max = column_moments(y)
        variances = sum_sq / max(y.shape[0], 1)
        model.set_var_floor(group, self.min_var * scales_from_moments(variances, abs_max))
        return mean, variances

    @staticmethod
    def _rho(model, group, variances):
        """ρ such that ``floor + softplus(ρ)`` equals the variances (kept just above the floor)."""
        floor = _numpy(model.var_floor(group))
        excess = np.maximum(np.asarray(variances, dtype=np.float64) - floor, 1e-6 * floor)
        return excess + np.log(-np.expm1(-excess))

    def _build(self, subjects, ys, torch_gen, numpy_gen):
        G, H = subjects[0].n_input_groups, subjects[0].n_output_groups
        q = next((s.n_properties for s in subjects if s.n_properties is not None), None)
        predictors = {}
        for kind, count in (("input", G), ("output", H)):
            predictors[kind] = []
            for g in range(count):
                props = self._properties(subjects, kind, g)
                predictors[kind].append(
                    self._make_predictor(np.vstack(props), q, torch_gen, numpy_gen, torch.float64) if props else None
                )
        module = MultiSubjectLatentRegModule(
            predictors["input"], predictors["output"], self._make_mapping(G, H), self.n_components
        ).double()
        for s, y_s in zip(subjects, ys):
            module.add_subject(s.subject_id, self._new_subject(s, y_s))
        if self.init == "auto":
            self._als_start(module, subjects, ys, numpy_gen)
        return module

    def _als_start(self, module, subjects, ys, numpy_gen):
        """Bilinear ALS start of bump magnitudes (one input and one output group, no fixed modes).

        The start is exact for the initial a = 1, b = 0, δ = 0 of the optional latent affine
        and direct maps, which the engine then learns.
        """
        bumps_in, bumps_out = module.input_predictors[0], module.output_predictors[0]
        simple = (
            len(module.input_predictors) == 1
            and len(module.output_predictors) == 1
            and isinstance(bumps_in, SumOfBumpFcns)
            and isinstance(bumps_out, SumOfBumpFcns)
            and isinstance(module.mapping, (IdentityMapping, LinearMapping))
            and all(m is None for s in subjects for group in s.mode_groups() for m in group)
        )
        if not simple:
            return
        stats = []
        with torch.no_grad():
            for s, (y_s,) in zip(subjects, ys):
                (x_s,), ((r_s,), (q_s,)) = s.x_groups(), s.property_groups()
                phi_in = _numpy(bumps_in.bump_activations(torch.as_tensor(r_s, dtype=torch.float64)))
                phi_out = _numpy(bumps_out.bump_activations(torch.as_tensor(q_s, dtype=torch.float64)))
                stats.append({**basis_statistics(x_s, y_s, phi_in), "phi_in": phi_in, "phi_out": phi_out})
        M_P, M_U = bilinear_als(stats, self.n_components, numpy_gen=numpy_gen)
        with torch.no_grad():
            bumps_in.m.copy_(torch.as_tensor(M_P))
            bumps_out.m.copy_(torch.as_tensor(M_U))
            for s, st in zip(subjects, stats):
                model = module.subject(s.subject_id)
                # residual sums of squares of Ỹ ≈ Z M_P Uᵀ from the statistics: V = M_P Uᵀ (B, e)
                U = st["phi_out"] @ M_U
                V = M_P @ U.T
                rss = st["syy"] - 2.0 * (st["zty"] * V).sum(axis=0) + ((st["ztz"] @ V) * V).sum(axis=0)
                model.rho[0].copy_(torch.as_tensor(self._rho(model, 0, np.maximum(rss, 0.0) / s.n_samples)))
                if "offsets" in self.subject_params:
                    P = st["phi_in"] @ M_P
                    model.offsets[0].copy_(torch.as_tensor(st["y_mean"] - st["x_mean"] @ P @ U.T))

    def _smooths_output_modes(self, module, subjects):
        """Whether ``smooth_modes`` applies to this fit (see :mod:`._smoothing`)."""
        return (
            self.smooth_modes
            and isinstance(self.mode_predictor, str)
            and self.mode_predictor == "bumps"
            and len(module.input_predictors) == 1
            and len(module.output_predictors) == 1
            and module._predicted_out[0]
            and isinstance(module.mapping, (IdentityMapping, LinearMapping))
            and set(self.subject_params) <= {"scales", "offsets"}
            and not self.direct_pairs
            and all(m is None for s in subjects for m in s.mode_groups()[1])
        )

    def _smooths_input_modes(self, module, subjects):
        """Whether the input side is smoothed too: predicted input modes, every subject at most 2,000 inputs."""
        return (
            self._smooths_output_modes(module, subjects)
            and module._predicted_in[0]
            and all(m is None for s in subjects for m in s.mode_groups()[0])
            and all(s.x_groups()[0].shape[1] <= MAX_SMOOTHED_INPUTS for s in subjects)
        )

    def _smoothing_seed(self):
        return 0 if self.random_state is None else int(make_generators(self.random_state)[1].integers(2**31 - 1))

    def _smooth_input_modes(self, module, subjects, ys):
        """Input predictor := smoothed input modes given the data (:func:`smooth_input_modes`: the GP
        posterior mean, or its weighted sum with free bumps through the data).

        The output side enters as each training output neuron's least-squares loading on its
        subject's latents and its residual variance (floored at its ``var_floor``): what the
        data say about the latents, whatever the output predictor.
        """
        param = next(module.parameters())
        device, dtype = param.device, param.dtype
        inputs, positions, current, outputs, loadings, noise = [], [], [], [], [], []
        with torch.no_grad():
            for s, (y_s,) in zip(subjects, ys):
                model = module.subject(s.subject_id)
                (x,) = s.x_groups()
                (P,), _ = module.modes(model, *self._tensors(s, device, dtype))
                P = _numpy(P)
                u, residual = least_squares_fit(project_rows(x, P), y_s)
                inputs.append(x)
                positions.append(s.property_groups()[0][0])
                current.append(P)
                outputs.append(y_s)
                loadings.append(u)
                noise.append(np.maximum(residual, _numpy(model.var_floor(0))))
        centres, widths, magnitudes = smooth_input_modes(
            inputs, positions, current, outputs, loadings, noise, random_state=self._smoothing_seed()
        )
        if not np.isfinite(magnitudes).all():
            warnings.warn(
                "smooth_modes: the input modes' smoothing gave non-finite values; the trained input predictor is kept.",
                RuntimeWarning,
                stacklevel=4,
            )
            return
        module.input_predictors[0] = self._bumps_like(
            module.input_predictors[0], centres, widths, magnitudes @ np.linalg.inv(_numpy(module.p_mix_0))
        ).to(device=device, dtype=dtype)

    @staticmethod
    def _bumps_like(old, centres, widths, magnitudes):
        """A float64 :class:`SumOfBumpFcns` of these bumps, with the bounds of the predictor it replaces.

        The bounds are widened to hold the smoothing's widths (a property the modes ignore
        gets widths of up to 100 ranges) and centres (a free bump's centre may lie outside
        the training neurons' range), so that further training starts where the smoothing
        left the predictor.
        """
        t = {"dtype": torch.float64}

        def widened(bounds, values):
            if bounds is None:
                return None
            bounds = bounds.detach().to(torch.float64).cpu().clone()
            bounds[0] = torch.minimum(bounds[0], torch.as_tensor(values.min(axis=0), **t))
            bounds[1] = torch.maximum(bounds[1], torch.as_tensor(values.max(axis=0), **t))
            return bounds

        return SumOfBumpFcns(
            torch.as_tensor(centres, **t),
            torch.as_tensor(widths, **t),
            torch.as_tensor(magnitudes, **t),
            c_bounds=widened(old.c_bounds, centres),
            w_bounds=widened(old.w_bounds, widths),
        )

    def _smooth_output_modes(self, module, subjects, ys):
        """Output predictor := smoothed training neurons' modes; per-neuron parts refitted.

        Each training neuron's mode is its least-squares loading on its subject's centred
        latents (:func:`least_squares_modes`); the new predictor is :func:`smooth_modes` of
        them (a GP posterior mean stored as at most 1,000 bumps centred on training neurons,
        or its weighted sum with free bumps, the weight chosen on held-out neurons; cost
        linear in their number). The modes are smoothed in the latents' metric (:func:`latent_metric`), so
        that an error counts by how much it moves a prediction. Scales, offsets and noise
        variances are then refitted in closed form, as ``fit_subject`` does.
        """
        param = next(module.parameters())
        device, dtype = param.device, param.dtype
        positions, loadings, scatter, n_samples = [], [], 0.0, 0
        with torch.no_grad():
            for s, (y_s,) in zip(subjects, ys):
                model = module.subject(s.subject_id)
                (x,) = s.x_groups()
                in_props, out_props = self._tensors(s, device, dtype)
                (P,), _ = module.modes(model, in_props, out_props)
                latents = project_rows(x, _numpy(P))  # row blocks: a memmap is not loaded whole
                (t,) = module.mapping([torch.as_tensor(latents, device=device, dtype=dtype)])
                t = _numpy(t).astype(np.float64)
                loadings.append(least_squares_modes(t, y_s))
                positions.append(s.property_groups()[1][0])
                scatter, n_samples = scatter + _covariance(t) * len(t), n_samples + len(t)
        metric = latent_metric(scatter / max(n_samples, 1))
        centres, widths, magnitudes = smooth_modes(
            np.vstack(positions), np.vstack(loadings) @ metric, random_state=self._smoothing_seed()
        )
        magnitudes = magnitudes @ np.linalg.inv(metric)
        u_mix = _numpy(module.u_mix_0)  # the buffer u_mix is applied after the predictor
        module.output_predictors[0] = self._bumps_like(
            module.output_predictors[0], centres, widths, magnitudes @ np.linalg.inv(u_mix)
        ).to(device=device, dtype=dtype)
        for s, y_s in zip(subjects, ys):
            self._fit_subject_closed_form(module.subject(s.subject_id), s, y_s, module=module)

    def _standardise(self, module, subjects):
        """Set ``p_mix``/``u_mix`` (and rescale c) to the standard form; predictions are unchanged.

        Per group pair g (identity mapping): (1) the rms of the scales over all training
        neurons, each weighted by the variance of its latent prediction, becomes 1, U
        absorbing the factor; (2) pooled centred training latents get
        identity covariance; (3) the pooled columns of ``U ⊙ c`` become orthogonal, sorted by
        decreasing norm; (4) the largest-magnitude entry of each pooled U column is positive.
        """
        param = next(module.parameters())
        device, dtype = param.device, param.dtype
        models = [module.subject(s.subject_id) for s in subjects]
        with torch.no_grad():
            modes = [module.modes(m, *self._tensors(s, device, dtype)) for s, m in zip(subjects, models)]
            for g in range(len(module.input_predictors)):
                if not (module._predicted_in[g] and module._predicted_out[g]):
                    continue  # a fixed side cannot absorb the transformation
                scales = np.concatenate([_numpy(m.scales[g]) for m in models])
                latents = [project_rows(s.x_groups()[g], _numpy(P[g])) for s, (P, _) in zip(subjects, modes)]
                # each neuron weighted by the variance of its latent prediction U_j t: a neuron whose
                # predicted loading is near 0 has an arbitrary scale, and must not set the others'
                signal = np.concatenate(
                    [
                        len(lat) * ((_numpy(U[g]) @ _covariance(lat)) * _numpy(U[g])).sum(axis=1)
                        for (_, U), lat in zip(modes, latents)
                    ]
                )
                kappa = _weighted_rms(scales, signal) or 1.0
                centred = np.vstack([lat - lat.mean(axis=0) for lat in latents])
                cov = centred.T @ centred / max(len(centred), 1)
                evals, evecs = np.linalg.eigh(cov)
                if evals.min() <= 1e-12 * max(evals.max(), 1e-300):
                    continue  # degenerate latents: leave the modes as they are
                whiten = evecs / np.sqrt(evals)  # A with Aᵀ cov A = I
                unwhiten = evecs * np.sqrt(evals)  # A^{-T}
                loadings = np.vstack(
                    [
                        _numpy(U[g]) @ unwhiten * kappa * (_numpy(m.scales[g]) / kappa)[:, None]
                        for (_, U), m in zip(modes, models)
                    ]
                )
                _, _, vt = np.linalg.svd(loadings, full_matrices=False)
                rotation = vt.T
                pooled_u = np.vstack([_numpy(U[g]) @ unwhiten @ rotation for _, U in modes])
                signs = np.sign(pooled_u[np.argmax(np.abs(pooled_u), axis=0), np.arange(pooled_u.shape[1])])
                signs[signs == 0] = 1.0
                a_p = whiten @ rotation * signs
                a_u = unwhiten @ rotation * signs * kappa
                p_mix, u_mix = getattr(module, f"p_mix_{g}"), getattr(module, f"u_mix_{g}")
                p_mix.copy_(p_mix @ torch.as_tensor(a_p, dtype=p_mix.dtype, device=p_mix.device))
                u_mix.copy_(u_mix @ torch.as_tensor(a_u, dtype=u_mix.dtype, device=u_mix.device))
                for m in models:
                    m.scales[g].div_(kappa)


class SubjectFitting:
    """``fit_subject``: one subject's parameters with the shared parts frozen (estimator mixin)."""

    def fit_subject(self, subject, y):
        """Fit one subject's own parameters with the shared predictors and mapping frozen.

        A subject new to the model is added to it and to ``subject_ids_`` (so is one that a
        warm refit left out). With ``subject_params`` within
        {"scales", "offsets"} and no direct pairs the fit is closed form: per neuron, the
        least-squares line of ``y_j`` on its latent prediction ``z_j = t U_jᵀ`` (slope c_j
        and intercept o_j where learned), and ψ_j the residual variance (at least
        ``min_var`` times the neuron's variance). Otherwise the engine trains that subject's parameters alone.

        Parameters
        ----------
        subject : SubjectData
        y : ndarray of shape (n_samples, n_outputs), or a tuple per output group

        Returns
        -------
        self : object
        """
        (subject,) = self._check_predict_subjects([subject])
        ys = subject.check_y(y)
        self._check_data_range([subject], [ys], next(self.module_.parameters()).dtype)
        if subject.n_samples == 0:
            raise ValueError(f"subject {subject.subject_id!r} has 0 samples; fit_subject needs data.")
        model = self._subject_model(subject)
        self._set_var_floors(model, ys)
        key = subject_key(subject.subject_id)
        known = key in self.module_.subjects
        if set(self.subject_params) <= {"scales", "offsets"} and not self.direct_pairs:
            self._fit_subject_closed_form(model, subject, ys)
        else:
            self._fit_subject_engine(model, subject, ys)
        signal = self._signal_moments(model, subject)
        if not known:
            self.module_.add_subject(subject.subject_id, model)
        ids = [subject_key(i) for i in self.subject_ids_]
        if key not in ids:
            # new, or kept in the module but left out of a warm refit: listed again, now fitted
            # to the current shared predictors
            self.subject_ids_ = [*self.subject_ids_, subject.subject_id]
            self._grouped_y = [*self._grouped_y, subject._grouped_y]
            if getattr(self, "_signal", None) is not None:
                self._signal = [*self._signal, None]
            ids.append(key)
        if getattr(self, "_signal", None) is not None:  # aligned with subject_ids_
            at = ids.index(key)
            self._signal = [*self._signal[:at], signal, *self._signal[at + 1 :]]
        self._store_attributes()
        return self

    def _unit_predictions(self, model, subject, module=None):
        """Latent predictions ``z`` per output group: the subject's means at unit scales and zero offsets."""
        with torch.no_grad():
            saved = [(c.detach().clone(), o.detach().clone()) for c, o in zip(model.scales, model.offsets)]
            for c, o in zip(model.scales, model.offsets):
                c.fill_(1.0)
                o.fill_(0.0)
            try:
                z_groups, _, _, _ = self._forward(subject, model, module)
            finally:
                for (c, o), (c0, o0) in zip(zip(model.scales, model.offsets), saved):
                    c.copy_(c0)
                    o.copy_(o0)
        return [_numpy(z) for z in z_groups], saved

    def _signal_moments(self, model, subject, module=None):
        """Per output group, (3, n_outputs): each neuron's mean and variance over samples of its
        latent prediction ``z_j = t U_jᵀ`` (the mean before scale, offset and direct maps), and
        the subject's number of samples: what :func:`pooled_scale` weighs by and what sets the
        population offset at that scale.

        From the latents' mean and covariance (``z̄_j = U_j t̄``, ``var z_j = U_j Cov(t) U_jᵀ``):
        the latents come from ``x`` in row blocks, so no (n, e) array and no whole copy of ``x``.
        """
        module = self.module_ if module is None else module
        param = next(module.parameters())
        device, dtype = param.device, param.dtype
        with torch.no_grad():
            P, U = module.modes(model, *self._tensors(subject, device, dtype))
            latents = [
                torch.as_tensor(project_rows(xg, _numpy(pg).astype(np.float64)), device=device, dtype=dtype)
                for xg, pg in zip(subject.x_groups(), P)
            ]
            if "latent_affine" in self.subject_params:
                latents = [
                    lg * a.to(device).abs() + b.to(device)
                    for lg, a, b in zip(latents, model.latent_scales, model.latent_offsets)
                ]
            targets = apply_mapping(module.mapping, latents, len(U))
        moments = []
        for t, u in zip(targets, U):
            t, u = _numpy(t).astype(np.float64), _numpy(u).astype(np.float64)
            n = np.full(len(u), float(len(t)))
            moments.append(np.stack([u @ t.mean(axis=0), ((u @ _covariance(t)) * u).sum(axis=1), n]))
        return moments

    def _fit_subject_closed_form(self, model, subject, ys, module=None):
        scales, offsets = ("scales" in self.subject_params), ("offsets" in self.subject_params)
        z_groups, saved = self._unit_predictions(model, subject, module)
        with torch.no_grad():
            for h, (z, yh) in enumerate(zip(z_groups, ys)):
                z_mean, y_mean = z.mean(axis=0), yh.mean(axis=0)
                if scales and offsets:
                    zc = z - z_mean
                    denom = (zc**2).sum(axis=0)
                    c = np.where(denom > 0, (zc * (yh - y_mean)).sum(axis=0) / np.where(denom > 0, denom, 1.0), 0.0)
                    o = y_mean - c * z_mean
                elif scales:
                    denom = (z**2).sum(axis=0)
                    c = np.where(denom > 0, (z * yh).sum(axis=0) / np.where(denom > 0, denom, 1.0), 0.0)
                    o = np.zeros_like(c)
                elif offsets:
                    c, o = np.ones(z.shape[1]), y_mean - z_mean
                else:
                    c, o = _numpy(saved[h][0]), _numpy(saved[h][1])
                resid = yh - (z * c + o)
                model.scales[h].copy_(torch.as_tensor(c))
                model.offsets[h].copy_(torch.as_tensor(o))
                model.rho[h].copy_(torch.as_tensor(self._rho(model, h, (resid**2).mean(axis=0))))

    def _fit_subject_engine(self, model, subject, ys):
        param = next(self.module_.parameters())
        device, dtype = param.device, param.dtype
        torch_gen, _ = make_generators(self.random_state)
        shared = [p for p in self.module_.parameters() if p.requires_grad]
        in_props, out_props = self._tensors(subject, device, dtype)
        G = subject.n_input_groups
        data = tuple(torch.tensor(a, dtype=dtype) for a in (*subject.x_groups(), *ys))

        def loss(m, *tensors):
            x, y = tensors[:G], tensors[G:]
            return m.neg_log_likelihood(y, self.module_(m, x, in_props, out_props)).sum()

        with held_fixed(shared):  # the shared parts live outside the trained subject model
            fit_module(model, loss, data, generator=torch_gen, **self._engine_options())

r"""Torch modules of multi-subject latent regression.

Subject s has input groups g = 1..G with inputs ``X_sg (n, d_sg)`` and output groups
h = 1..H with ``e_sh`` neurons. Shared predictors map neuron properties to modes,
``P_sg = π_g(R_sg) (d_sg, K)`` and ``U_sh = υ_h(Q_sh) (e_sh, K)``, then

.. math::

    l_{sg} = X_{sg} P_{sg} \;[\odot |a_{sg}| + b_{sg}], \qquad
    [t_1 \dots t_H] = m(l_1 \dots l_G), \qquad
    \mu_{sh} = (t_h U_{sh}^\top) \odot c_{sh} + o_{sh} \;[+ X_{sg} \odot \delta_{s,gh}],

with ``Y_sh ~ N(μ_sh, diag ψ_sh)``, ``ψ = floor + softplus(ρ)``. The predictors π, υ and
the mapping m are shared; scales c, offsets o, ρ, the latent affine (a, b) and the direct
maps δ belong to each subject.
"""

from __future__ import annotations

import math
from numbers import Integral

import torch
from torch import nn

from ._statistics import projections

__all__ = [
    "IdentityMapping",
    "LinearMapping",
    "ModePredictorMLP",
    "MultiSubjectLatentRegModule",
    "SubjectModel",
    "subject_key",
]

SUBJECT_PARAMS = ("scales", "offsets", "latent_affine")

# failures of user code that are not about its contract, and are re-raised as they are
_NOT_WRAPPED = (MemoryError, getattr(torch, "OutOfMemoryError", MemoryError))


def call_user(what, contract, fn, *args):
    """``fn(*args)`` for user-supplied code; a failure becomes a ValueError naming ``what``.

    Out-of-memory errors pass through unchanged (they are not the user's contract).
    """
    try:
        return fn(*args)
    except _NOT_WRAPPED:
        raise
    except Exception as exc:  # noqa: BLE001 - user code: any failure is reported against the parameter
        raise ValueError(f"{what} raised {type(exc).__name__} ({exc}) {contract}") from exc


def check_direct_pairs(direct_pairs, n_input_groups: int, n_output_groups: int) -> tuple:
    """``direct_pairs`` as a tuple of ``(g, h)`` int pairs naming existing groups.

    Examples
    --------
    >>> from skneuro.latent_regression._modules import check_direct_pairs
    >>> check_direct_pairs([[0, 1]], 1, 2)
    ((0, 1),)
    >>> check_direct_pairs([(0.9, 0.2)], 1, 1)
    Traceback (most recent call last):
    ...
    TypeError: direct_pairs entries must be (g, h) pairs of int group indices; got (0.9, 0.2).
    """
    pairs = []
    for entry in direct_pairs:
        if (
            not isinstance(entry, (tuple, list))
            or len(entry) != 2
            or not all(isinstance(v, Integral) and not isinstance(v, bool) for v in entry)
        ):
            raise TypeError(f"direct_pairs entries must be (g, h) pairs of int group indices; got {entry!r}.")
        g, h = int(entry[0]), int(entry[1])
        if not (0 <= g < n_input_groups and 0 <= h < n_output_groups):
            raise ValueError(
                f"direct_pairs entry {(g, h)} names a group that does not exist "
                f"({n_input_groups} input and {n_output_groups} output group(s))."
            )
        pairs.append((g, h))
    return tuple(pairs)


def apply_mapping(mapping, latents, n_output_groups: int) -> list[torch.Tensor]:
    """``mapping(latents)``, its failures and contract breaches reported as errors naming ``mapping``."""
    n, K = latents[0].shape
    targets = call_user(
        "mapping",
        f"on {len(latents)} latent group(s) of shape {(n, K)}; it must map a list of G (n, n_components) "
        "tensors to a list of H such tensors.",
        mapping,
        latents,
    )
    if not isinstance(targets, (list, tuple)) or not all(isinstance(t, torch.Tensor) for t in targets):
        raise TypeError(
            f"mapping must return a list of {n_output_groups} tensor(s) of shape (n, n_components); "
            f"got {type(targets).__name__}."
        )
    if len(targets) != n_output_groups:
        raise ValueError(f"mapping returned {len(targets)} groups; the subject has {n_output_groups} output groups.")
    for h, t in enumerate(targets):
        if tuple(t.shape) != (n, K):
            raise ValueError(
                f"mapping returned a tensor of shape {tuple(t.shape)} for output group {h}; "
                f"expected (n={n}, n_components={K})."
            )
    return list(targets)


def subject_key(subject_id) -> str:
    """The ``ModuleDict`` key of a subject: ``"s_" + str(subject_id)`` with ``%`` and ``.`` escaped.

    The prefix keeps ids such as ``"train"`` clear of ``nn.Module`` attribute names. Ids
    with the same string form (``7`` and ``"7"``) share a key; callers reject such pairs.

    Examples
    --------
    >>> from skneuro.latent_regression._modules import subject_key
    >>> subject_key("2024.01"), subject_key(7), subject_key("train")
    ('s_2024%2E01', 's_7', 's_train')
    """
    return "s_" + str(subject_id).replace("%", "%25").replace(".", "%2E")


class IdentityMapping(nn.Module):
    """Mapping ``t_h = l_h`` (needs as many input as output groups).

    Examples
    --------
    >>> import torch
    >>> from skneuro.latent_regression import IdentityMapping
    >>> IdentityMapping()([torch.ones(2, 3)])[0].shape
    torch.Size([2, 3])
    """

    def forward(self, latents: list[torch.Tensor]) -> list[torch.Tensor]:
        return list(latents)


class LinearMapping(nn.Module):
    """Mapping ``[t_1 … t_H] = [l_1 … l_G] W`` with ``W`` of shape (G·K, H·K), no bias.

    ``W`` starts as stacked identities: every output group receives the sum of the input
    groups' latents.

    Examples
    --------
    >>> import torch
    >>> from skneuro.latent_regression import LinearMapping
    >>> m = LinearMapping(2, 1, 1)
    >>> m([torch.tensor([[1.0]]), torch.tensor([[2.0]])])[0].item()
    3.0
    """

    def __init__(self, n_input_groups: int, n_output_groups: int, n_components: int, *, dtype=None, device=None):
        super().__init__()
        self.n_input_groups, self.n_output_groups, self.n_components = n_input_groups, n_output_groups, n_components
        eye = torch.eye(n_components, dtype=dtype, device=device)
        self.weight = nn.Parameter(eye.repeat(n_input_groups, n_output_groups))

    def forward(self, latents: list[torch.Tensor]) -> list[torch.Tensor]:
        if len(latents) != self.n_input_groups:
            raise ValueError(f"mapping expects {self.n_input_groups} input groups; got {len(latents)}.")
        stacked = torch.cat(list(latents), dim=1)
        out = stacked @ self.weight.to(stacked.device)  # subjects may live on other devices
        return list(out.split(self.n_components, dim=1))

    def extra_repr(self) -> str:
        return f"{self.n_input_groups} groups -> {self.n_output_groups} groups, n_components={self.n_components}"


class ModePredictorMLP(nn.Module):
    """A tanh multilayer perceptron from neuron properties (n, q) to modes (n, K).

    Examples
    --------
    >>> import torch
    >>> from skneuro.latent_regression import ModePredictorMLP
    >>> ModePredictorMLP(3, 2, hidden_layer_sizes=(8,))(torch.zeros(5, 3)).shape
    torch.Size([5, 2])
    """

    def __init__(self, n_properties: int, n_components: int, hidden_layer_sizes=(64, 64), *, dtype=None, device=None):
        super().__init__()
        sizes = [n_properties, *hidden_layer_sizes, n_components]
        layers = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b, dtype=dtype, device=device))
            if i < len(sizes) - 2:
                layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, properties: torch.Tensor) -> torch.Tensor:
        return self.net(properties)


def _softplus_inverse(value: float) -> float:
    return value + math.log(-math.expm1(-value))


class SubjectModel(nn.Module):
    """Per-subject parameters and the likelihood of one subject.

    Parameters
    ----------
    n_inputs, n_outputs : sequence of int
        Columns per input group and neurons per output group.
    n_components : int
    subject_params : collection of {"scales", "offsets", "latent_affine"}
        Learned per-subject parts; the others are fixed at ``c = 1``, ``o = 0``,
        ``a = 1``, ``b = 0`` (kept with ``requires_grad=False``).
    var_floor : float
        Floor of the noise variances ``ψ = floor + softplus(ρ)``, the same for every neuron
        until :meth:`set_var_floor` sets per-neuron floors (registered buffers
        ``var_floor_<h>``, one per output group).
    direct_pairs : sequence of (g, h)
        Diagonal direct maps ``X_g ⊙ δ_gh`` added to output group h (needs equal sizes).
    input_modes, output_modes : sequence of tensor or None
        Fixed modes per group (registered as buffers), None where predicted.

    Examples
    --------
    >>> import torch
    >>> from skneuro.latent_regression import SubjectModel, IdentityMapping
    >>> s = SubjectModel([2], [2], 1, ("scales", "offsets"), var_floor=1e-3)
    >>> means = s([torch.tensor([[1.0, 2.0]])], [torch.tensor([[1.0], [1.0]])],
    ...           [torch.tensor([[2.0], [3.0]])], IdentityMapping())
    >>> means[0].tolist()
    [[6.0, 9.0]]
    """

    def __init__(
        self,
        n_inputs,
        n_outputs,
        n_components,
        subject_params=("scales", "offsets"),
        var_floor=1e-3,
        direct_pairs=(),
        input_modes=None,
        output_modes=None,
        *,
        dtype=None,
        device=None,
    ):
        super().__init__()
        kw = {"dtype": dtype, "device": device}
        self.n_inputs, self.n_outputs = tuple(int(v) for v in n_inputs), tuple(int(v) for v in n_outputs)
        self.n_components = int(n_components)
        self.subject_params = tuple(subject_params)
        unknown = [p for p in self.subject_params if p not in SUBJECT_PARAMS]
        if unknown:
            raise ValueError(f"subject_params entries must be among {SUBJECT_PARAMS}; got {unknown}.")
        self.direct_pairs = check_direct_pairs(direct_pairs, len(self.n_inputs), len(self.n_outputs))
        for g, h in self.direct_pairs:
            if self.n_inputs[g] != self.n_outputs[h]:
                raise ValueError(
                    f"direct_pairs entry {(g, h)} needs input group {g} ({self.n_inputs[g]} columns) "
                    f"and output group {h} ({self.n_outputs[h]} neurons) of equal size."
                )
        K = self.n_components

        def plist(sizes, value, learned):
            return nn.ParameterList(nn.Parameter(torch.full((n,), value, **kw), requires_grad=learned) for n in sizes)

        self.scales = plist(self.n_outputs, 1.0, "scales" in self.subject_params)
        self.offsets = plist(self.n_outputs, 0.0, "offsets" in self.subject_params)
        self.rho = plist(self.n_outputs, _softplus_inverse(1.0), True)
        for h, n in enumerate(self.n_outputs):
            self.register_buffer(f"var_floor_{h}", torch.full((n,), float(var_floor), **kw))
        affine = "latent_affine" in self.subject_params
        self.latent_scales = plist([K] * len(self.n_inputs), 1.0, affine)
        self.latent_offsets = plist([K] * len(self.n_inputs), 0.0, affine)
        self.direct = plist([self.n_inputs[g] for g, _ in self.direct_pairs], 0.0, True)
        for prefix, modes, sizes in (
            ("input_modes", input_modes, self.n_inputs),
            ("output_modes", output_modes, self.n_outputs),
        ):
            modes = [None] * len(sizes) if modes is None else list(modes)
            if len(modes) != len(sizes):
                raise ValueError(f"{prefix} must have one entry per group ({len(sizes)}); got {len(modes)}.")
            for i, m in enumerate(modes):
                mode_dtype = dtype if dtype is not None else torch.get_default_dtype()
                tensor = None if m is None else torch.as_tensor(m, dtype=mode_dtype, device=device).clone()
                if tensor is not None and tensor.shape != (sizes[i], K):
                    raise ValueError(
                        f"{prefix}[{i}] must have shape ({sizes[i]}, n_components={K}); got {tuple(tensor.shape)}."
                    )
                self.register_buffer(f"{prefix}_{i}", tensor)

    def on_own_device(self, tensors):
        """Tensors (e.g. modes computed with the shared predictors) moved to this subject's device."""
        device = self.rho[0].device
        return [t if t.device == device else t.to(device) for t in tensors]

    def fixed_modes(self, kind: str, group: int):
        """The fixed modes of a group (``kind`` "input" or "output"), or None."""
        return getattr(self, f"{kind}_modes_{group}")

    def var_floor(self, group: int) -> torch.Tensor:
        """Per-neuron floors of the noise variances of an output group."""
        return getattr(self, f"var_floor_{group}")

    def set_var_floor(self, group: int, floor) -> None:
        """Set the floors of an output group (a number or one value per neuron)."""
        with torch.no_grad():
            self.var_floor(group).copy_(torch.as_tensor(floor))

    def psi(self, group: int) -> torch.Tensor:
        """Noise variances ``floor + softplus(ρ)`` of an output group."""
        return self.var_floor(group) + nn.functional.softplus(self.rho[group])

    def forward(self, x, input_modes, output_modes, mapping) -> list[torch.Tensor]:
        """Means ``μ_h`` (n, e_h) of every output group from inputs and modes (lists per group)."""
        if len(x) != len(self.n_inputs) or len(input_modes) != len(self.n_inputs):
            raise ValueError(
                f"expected {len(self.n_inputs)} input group(s) of x and of input modes; "
                f"got {len(x)} and {len(input_modes)}."
            )
        if len(output_modes) != len(self.n_outputs):
            raise ValueError(f"expected {len(self.n_outputs)} output group(s) of modes; got {len(output_modes)}.")
        latents = [xg @ pg for xg, pg in zip(x, input_modes)]
        if "latent_affine" in self.subject_params:
            latents = [lg * a.abs() + b for lg, a, b in zip(latents, self.latent_scales, self.latent_offsets)]
        targets = apply_mapping(mapping, latents, len(self.n_outputs))
        means = [(t @ u.T) * c + o for t, u, c, o in zip(targets, output_modes, self.scales, self.offsets)]
        for (g, h), delta in zip(self.direct_pairs, self.direct):
            means[h] = means[h] + x[g] * delta
        return means

    def neg_log_likelihood_from_moments(self, moments, P, U, mapping, over_data=False) -> torch.Tensor:
        """Summed negative log-likelihood of a whole data set from its moments (one group each way).

        With one input and one output group, a linear ``mapping`` and no direct pairs the
        means are affine in x, ``μ_t = x_t A + β`` with ``A = P M``, ``M = diag|a| W Uᵀ diag(c)``
        (K, e) of rank K, so the residual sum of squares of neuron j,
        ``rss_j = ỹ_jᵀỹ_j − 2 M_jᵀC_j + M_jᵀ G M_j + n (β_j + x̄ᵀPM_j − ȳ_j)²``, needs only
        ``n``, ``x̄``, ``ȳ``, ``diag(ỸᵀỸ)`` and the projections ``G = PᵀX̃ᵀX̃P`` (K, K) and
        ``C = PᵀX̃ᵀỸ`` (K, e) (:func:`~skneuro.latent_regression._statistics.projections`).
        From the moments ``X̃ᵀX̃``, ``X̃ᵀỸ`` an evaluation costs O(d²K + deK). Passing over the
        data it costs one pass, O(n(d+e)K), and no d×d or d×e array: the objective is
        linear in G and C, ``Σ_j rss_j/ψ_j = Σ_j (ỹ_jᵀỹ_j + n shift_j²)/ψ_j − 2 tr Z +
        ⟨G, M V⟩`` with ``V = (M/ψ)ᵀ`` and ``Z = CV`` (K, K), so its gradient needs no
        second pass. Either way it equals the per-sample sum (the moment form clamps
        each centred residual sum at 0 against rounding).

        Parameters
        ----------
        moments : tuple of tensors
            ``(n (1,), x_mean (d,), y_mean (e,), sxx (d, d), sxy (d, e), syy (e,))``, or with
            ``over_data`` the data ``x (n, d)`` and ``y (n, e)`` in place of sxx and sxy.
        P, U : list of one tensor each
            Modes (d, K) and (e, K).
        mapping : nn.Module
            Linear without bias (identity or :class:`LinearMapping`).
        over_data : bool, default=False
            Whether ``moments`` holds the data instead of sxx and sxy.
        """
        n, x_mean, y_mean, _, _, syy = moments
        # Computed at the moments' precision (float64 where available): the residual sum
        # of squares is a difference of large terms.
        wide = syy.dtype
        (P,), (U,) = P, U
        modes = P
        P, U = P.to(wide), U.to(wide)
        K = self.n_components
        eye = torch.eye(K, dtype=wide, device=P.device)
        if "latent_affine" in self.subject_params:
            scale, shift = self.latent_scales[0].abs().to(wide), self.latent_offsets[0].to(wide)
        else:
            scale, shift = torch.ones(K, dtype=wide, device=P.device), torch.zeros(K, dtype=wide, device=P.device)
        mapping_dtype = next(mapping.parameters(), eye).dtype
        (weight,) = apply_mapping(mapping, [eye.to(mapping_dtype)], 1)
        (shift_out,) = apply_mapping(mapping, [shift[None, :].to(mapping_dtype)], 1)
        weight, shift_out = weight.to(wide), shift_out.to(wide)
        c, o = self.scales[0].to(wide), self.offsets[0].to(wide)
        M = ((scale[:, None] * weight) @ U.T) * c  # (K, e), A = P M
        beta = (shift_out[0] @ U.T) * c + o
        shift_mean = beta + (x_mean.to(wide) @ P) @ M - y_mean.to(wide)
        psi = self.psi(0).to(wide)
        total = (0.5 * n * torch.log(2 * math.pi * psi) + n * shift_mean**2 / (2.0 * psi)).sum()
        if over_data:
            V = (M / psi).T
            gram, _, z = projections(moments, modes, over_data, weights=V)
            return total + (syy / (2.0 * psi)).sum() - torch.trace(z) + 0.5 * (gram * (M @ V)).sum()
        gram, proj_cross, _ = projections(moments, modes)
        quad = (M * (gram @ M)).sum(0)
        cross = (M * proj_cross).sum(0)
        rss = (syy - 2.0 * cross + quad).clamp_min(0.0)
        return total + (rss / (2.0 * psi)).sum()

    def neg_log_likelihood(self, y, means) -> torch.Tensor:
        """Per-sample ``Σ_h Σ_j ½ log(2π ψ_hj) + (y_hj − μ_hj)² / (2 ψ_hj)`` (n,)."""
        if len(y) != len(self.n_outputs) or len(means) != len(self.n_outputs):
            raise ValueError(f"y and means need {len(self.n_outputs)} output group(s); got {len(y)} and {len(means)}.")
        total = 0.0
        for h, (yh, mh) in enumerate(zip(y, means)):
            psi = self.psi(h)
            total = total + (0.5 * torch.log(2 * math.pi * psi) + 0.5 * (yh - mh) ** 2 / psi).sum(dim=1)
        return total


class MultiSubjectLatentRegModule(nn.Module):
    """Shared predictors and mapping, registered once, and a ``ModuleDict`` of subjects.

    Parameters
    ----------
    input_predictors, output_predictors : sequence of nn.Module or None
        One predictor per group, (n, q) -> (n, K); None for a group whose modes are
        always fixed.
    mapping : nn.Module
        List of G latents -> list of H targets.
    n_components : int

    Attributes
    ----------
    subjects : nn.ModuleDict
        :class:`SubjectModel` per subject, keyed by :func:`subject_key`.

    Examples
    --------
    >>> import torch
    >>> from skneuro.latent_regression import (MultiSubjectLatentRegModule, IdentityMapping,
    ...                                        ModePredictorMLP, SubjectModel)
    >>> net = MultiSubjectLatentRegModule([ModePredictorMLP(3, 2, (4,))], [ModePredictorMLP(3, 2, (4,))],
    ...                                   IdentityMapping(), 2)
    >>> net.add_subject("m1", SubjectModel([5], [7], 2))
    >>> means = net("m1", [torch.zeros(10, 5)], [torch.zeros(5, 3)], [torch.zeros(7, 3)])
    >>> means[0].shape
    torch.Size([10, 7])
    """

    def __init__(self, input_predictors, output_predictors, mapping, n_components):
        super().__init__()
        input_predictors, output_predictors = list(input_predictors), list(output_predictors)
        self.n_components = int(n_components)
        self.input_predictors = nn.ModuleList(nn.Identity() if p is None else p for p in input_predictors)
        self.output_predictors = nn.ModuleList(nn.Identity() if p is None else p for p in output_predictors)
        self._predicted_in = tuple(p is not None for p in input_predictors)
        self._predicted_out = tuple(p is not None for p in output_predictors)
        self.mapping = mapping
        K = self.n_components
        for prefix, count in (("p_mix", len(self.input_predictors)), ("u_mix", len(self.output_predictors))):
            for i in range(count):
                self.register_buffer(f"{prefix}_{i}", torch.eye(K))
        self.subjects = nn.ModuleDict()

    def add_subject(self, subject_id, model: SubjectModel) -> None:
        """Register ``model`` as the parameters of ``subject_id``."""
        self.subjects[subject_key(subject_id)] = model

    def subject(self, subject_id) -> SubjectModel:
        return self.subjects[subject_key(subject_id)]

    def _group_modes(self, kind, predictors, predicted, properties, subject):
        modes = []
        for i, (predictor, props) in enumerate(zip(predictors, properties)):
            fixed = subject.fixed_modes(kind, i)
            if fixed is not None:
                modes.append(fixed if props is None else fixed.to(props.device))
                continue
            if not predicted[i] or props is None:
                raise ValueError(f"{kind} group {i} has neither fixed modes nor properties and a predictor.")
            mix = getattr(self, f"{'p' if kind == 'input' else 'u'}_mix_{i}")
            modes.append(self._predict_modes(kind, i, predictor, props) @ mix.to(props.dtype))
        return modes

    def _predict_modes(self, kind, group, predictor, props):
        """``predictor(props)``, its failures and contract breaches reported as errors naming ``mode_predictor``."""
        where = f"mode_predictor of {kind} group {group}"
        expected = (props.shape[0], self.n_components)
        modes = call_user(
            where,
            f"on properties of shape {tuple(props.shape)}; it must map (n, n_properties) properties to "
            "(n, n_components) modes.",
            predictor,
            props,
        )
        if not isinstance(modes, torch.Tensor):
            raise TypeError(f"{where} must return a tensor of shape {expected}; got {type(modes).__name__}.")
        if tuple(modes.shape) != expected:
            raise ValueError(
                f"{where} returned modes of shape {tuple(modes.shape)}; expected "
                f"(n={expected[0]}, n_components={expected[1]})."
            )
        return modes

    def modes(self, subject, input_properties, output_properties):
        """``(P, U)``: lists of modes per input group (d_g, K) and output group (e_h, K).

        ``subject`` is a subject id, or a :class:`SubjectModel` (e.g. one built for a
        subject never seen in training).
        """
        if not isinstance(subject, SubjectModel):
            subject = self.subject(subject)
        P = self._group_modes("input", self.input_predictors, self._predicted_in, input_properties, subject)
        U = self._group_modes("output", self.output_predictors, self._predicted_out, output_properties, subject)
        return P, U

    def forward(self, subject, x, input_properties, output_properties) -> list[torch.Tensor]:
        """Means of every output group of one subject (an id or a :class:`SubjectModel`)."""
        model = subject if isinstance(subject, SubjectModel) else self.subject(subject)
        P, U = self.modes(model, input_properties, output_properties)
        P, U = model.on_own_device(P), model.on_own_device(U)
        return model(x, P, U, self.mapping)


def held_out_neg_log_likelihood(
    moments, P, U, mapping, var_floor, scales=True, offsets=True, over_data=False
) -> torch.Tensor:
    """Summed negative log-likelihood of neurons not trained on, each given its best scale and offset.

    A held-out neuron j of a subject has no trained parameters: its latent prediction
    ``z_tj = x_t P W u_j`` (``u_j`` its mode predicted from its properties, W the linear
    ``mapping``) is fitted to its data by least squares in ``c_j`` and ``o_j`` where those are
    learned (else ``c = 1``, ``o = 0``), exactly as ``fit_subject`` fits a new subject, and
    ``ψ_j = max(RSS_j / n, floor_j)``. The result, ``Σ_j [n/2 log(2π ψ_j) + RSS_j/(2ψ_j)]``,
    comes from the data moments alone (as :meth:`SubjectModel.neg_log_likelihood_from_moments`).

    Parameters
    ----------
    moments : tuple of tensors
        ``(n (1,), x_mean (d,), y_mean (e,), sxx (d, d), sxy (d, e), syy (e,))`` of the
        held-out neurons (centred sums), or with ``over_data`` the data ``x (n, d)`` and
        ``y (n, e)`` in place of sxx and sxy.
    P, U : tensor
        Input modes (d, K) and the held-out neurons' predicted modes (e, K).
    mapping : nn.Module
        Linear without bias (identity or :class:`LinearMapping`).
    var_floor : tensor of shape (e,)
        Absolute floors of the noise variances.
    scales, offsets : bool
        Whether per-neuron scales and offsets are fitted.
    over_data : bool, default=False
        Whether ``moments`` holds the data instead of sxx and sxy.

    Examples
    --------
    >>> import torch
    >>> from skneuro.latent_regression._modules import IdentityMapping, held_out_neg_log_likelihood
    >>> x = torch.tensor([[0.0], [1.0], [2.0], [3.0]], dtype=torch.float64)
    >>> y = 2 * x + 1 + torch.tensor([[0.1], [-0.1], [0.1], [-0.1]], dtype=torch.float64)
    >>> xc, yc = x - x.mean(0), y - y.mean(0)
    >>> m = (torch.tensor([4.0]), x.mean(0), y.mean(0), xc.T @ xc, xc.T @ yc, (yc**2).sum(0))
    >>> eye = torch.eye(1, dtype=torch.float64)
    >>> nll = held_out_neg_log_likelihood(m, eye, eye, IdentityMapping(), torch.tensor([1e-6]))
    >>> import numpy as np
    >>> line = np.polyfit(x[:, 0].numpy(), y[:, 0].numpy(), 1)
    >>> rss = float(((np.polyval(line, x[:, 0].numpy()) - y[:, 0].numpy()) ** 2).sum())
    >>> bool(np.isclose(float(nll), 2 * np.log(2 * np.pi * rss / 4) + 2))
    True
    """
    n, x_mean, y_mean, _, _, syy = moments
    wide = syy.dtype
    gram, proj_cross, _ = projections(moments, P, over_data)
    P, U = P.to(wide), U.to(wide)
    K = P.shape[1]
    eye = torch.eye(K, dtype=wide, device=P.device)
    mapping_dtype = next(mapping.parameters(), eye).dtype
    (weight,) = apply_mapping(mapping, [eye.to(mapping_dtype)], 1)
    M = weight.to(wide) @ U.T  # (K, e): z = x P M
    quad = (M * (gram @ M)).sum(0)  # centred Σ z²
    cross = (M * proj_cross).sum(0)  # centred Σ z y
    z_mean = (x_mean.to(wide) @ P) @ M
    y_mean = y_mean.to(wide)
    if scales and offsets:
        rss = syy - torch.where(quad > 0, cross**2 / torch.where(quad > 0, quad, 1.0), 0.0)
    elif offsets:  # c = 1
        rss = syy - 2 * cross + quad
    else:  # uncentred sums: o = 0
        szz, szy, syy_raw = quad + n * z_mean**2, cross + n * z_mean * y_mean, syy + n * y_mean**2
        if scales:
            rss = syy_raw - torch.where(szz > 0, szy**2 / torch.where(szz > 0, szz, 1.0), 0.0)
        else:
            rss = syy_raw - 2 * szy + szz
    rss = rss.clamp_min(0.0)
    psi = torch.maximum(rss / n, var_floor.to(wide))
    return (0.5 * n * torch.log(2 * math.pi * psi) + rss / (2 * psi)).sum()

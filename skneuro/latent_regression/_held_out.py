"""Early stopping of the latent model on held-out neurons (estimator mixin).

What generalises in this model is the prediction of a neuron's modes from its properties:
that is what predicts a subject never seen in training. So the validation data are neurons
(``validation_fraction`` of each subject's output neurons, drawn from ``random_state``)
that training never sees; after every epoch their modes are predicted from their
properties and scored by :func:`held_out_neg_log_likelihood` (each held-out neuron given
its best scale and offset, as ``fit_subject`` gives a new subject's neurons). After the fit,
every subject gets back all its neurons: the per-neuron parameters of all of them are set
in closed form from the shared parts, as ``fit_subject`` does.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .._engine import GroupedData, make_generators
from ..utils._linalg import target_scales
from ._data import SubjectData
from ._modules import IdentityMapping, LinearMapping, held_out_neg_log_likelihood
from ._statistics import subject_statistics


class HeldOutNeurons:
    """``early_stopping`` of :class:`MultiSubjectLatentRegressor`: split, validation objective, completion."""

    def _check_early_stopping_layout(self, subjects):
        problems = []
        if subjects[0].n_input_groups != 1 or subjects[0].n_output_groups != 1:
            problems.append("one input and one output group")
        if not set(self.subject_params) <= {"scales", "offsets"}:
            problems.append('subject_params within ("scales", "offsets")')
        if self.direct_pairs:
            problems.append("no direct_pairs")
        if not (self.mapping in ("identity", "linear") or isinstance(self.mapping, (IdentityMapping, LinearMapping))):
            problems.append('mapping "identity" or "linear"')
        if any(s.output_modes is not None and s.mode_groups()[1][0] is not None for s in subjects):
            problems.append("output modes predicted from properties (not fixed)")
        if problems:
            raise ValueError(f"early_stopping=True needs {', '.join(problems)} in this estimator.")

    def _hold_out_neurons(self, subjects, ys):
        """Training views of the subjects (held-out neurons removed) and the validation record."""
        self._check_early_stopping_layout(subjects)
        rng = make_generators(self.random_state)[1]
        train_subjects, train_ys, held = [], [], []
        for s, (y_s,) in zip(subjects, ys):
            e = y_s.shape[1]
            n_val = math.ceil(self.validation_fraction * e)
            if n_val < 1 or e - n_val < 2:
                raise ValueError(
                    f"validation_fraction={self.validation_fraction} holds out {n_val} of the {e} output neurons "
                    f"of subject {s.subject_id!r}, leaving {e - n_val} for training; early stopping needs at least "
                    "1 held out and 2 for training per subject."
                )
            order = rng.permutation(e)
            train, val = np.sort(order[n_val:]), np.sort(order[:n_val])
            (q,) = s.property_groups()[1]
            train_subjects.append(
                SubjectData(s.subject_id, s.x, s.input_properties, q[train], input_modes=s.input_modes)
            )
            train_ys.append((y_s[:, train],))
            held.append((val, q[val], y_s[:, val]))
        return train_subjects, train_ys, (subjects, held)

    def _validation_objective(self, validation, ids, props, device, dtype):
        """``validation_data`` and ``validation_loss`` keywords of ``fit_module``."""
        subjects, held = validation
        wide = torch.float32 if device.type == "mps" else torch.float64
        groups, val_props, floors, over_data = [], [], [], []
        for s, (_, q_val, y_val) in zip(subjects, held):
            (x,) = s.x_groups()
            passes, statistics = subject_statistics(x, y_val, dtype, wide)
            groups.append(tuple(t[None] for t in statistics))
            over_data.append(passes)
            val_props.append(torch.as_tensor(q_val, device=device, dtype=dtype))
            floors.append(torch.as_tensor(self.min_var * target_scales(y_val), dtype=wide))
        data = GroupedData(groups, n_total=sum(s.n_samples for s in subjects))
        learned = {"scales": "scales" in self.subject_params, "offsets": "offsets" in self.subject_params}

        def validation_loss(m, index, *moments):
            model = m.subject(ids[index])
            (in_props,), _ = props[index]
            P, U = m.modes(model, [in_props], [val_props[index]])
            moments = [t[0].to(P[0].device) for t in moments]
            floor = floors[index].to(P[0].device)
            return held_out_neg_log_likelihood(
                moments, P[0], U[0], m.mapping, floor, **learned, over_data=over_data[index]
            ).to(device)

        return {"validation_data": data, "validation_loss": validation_loss}

    def _complete_held_out_neurons(self, module, subjects, ys, devices, placement):
        """Every subject back with all its neurons, per-neuron parameters in closed form from the shared parts."""
        param = next(module.parameters())
        for i, (s, y_s) in enumerate(zip(subjects, ys)):
            model = self._new_subject(s, y_s).to(device=devices[placement[i]], dtype=param.dtype)
            self._fit_subject_closed_form(model, s, y_s, module=module)
            module.add_subject(s.subject_id, model)

"""One subject's data for multi-subject latent regression (numpy only, no torch)."""

from __future__ import annotations

from ..utils._validation import check_numeric

__all__ = ["SubjectData"]


def _as_groups(value):
    """A tuple of groups, and whether the value was given as groups."""
    if isinstance(value, (tuple, list)):
        return tuple(value), True
    return (value,), False


class SubjectData:
    """Inputs and neuron properties of one subject, validated on construction.

    A subject's inputs come in one or more groups (e.g. stimulus channels, another brain
    area); its outputs (recorded neurons) in one or more output groups. Each input
    column and each output neuron has a row of ``q`` properties (e.g. a 3-D atlas
    position) from which the shared predictors compute its modes. The arrays are stored
    as given and never modified.

    Parameters
    ----------
    subject_id : hashable
        Name of the subject (e.g. ``"m3"``); ids must be unique within a fit.
    x : array-like of shape (n_samples, n_inputs), or a tuple of such (one per input group)
        Inputs; all groups share ``n_samples`` (0 is allowed: modes and shapes only).
    input_properties : array-like of shape (n_inputs, q), or a tuple matching ``x``
        One row of properties per input column. A group whose modes are fixed by
        ``input_modes`` may give None.
    output_properties : array-like of shape (n_outputs, q), or a tuple (one per output group)
        One row of properties per output neuron; a tuple means ``y`` is a tuple too.
    input_modes, output_modes : None, or per group None or array-like of shape (n, n_components)
        Fixed modes for a group (never trained); None lets the predictors compute them.

    Attributes
    ----------
    n_samples : int
    n_inputs, n_outputs : tuple of int
        Columns per input group, neurons per output group.
    n_properties : int or None
        q, the common number of properties (None when every group has fixed modes).

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.latent_regression import SubjectData
    >>> s = SubjectData("m1", np.zeros((100, 4)), np.zeros((4, 3)), np.zeros((6, 3)))
    >>> s.n_samples, s.n_inputs, s.n_outputs, s.n_properties
    (100, (4,), (6,), 3)
    >>> SubjectData("m2", np.zeros((10, 4)), np.zeros((5, 3)), np.zeros((6, 3)))
    Traceback (most recent call last):
    ...
    ValueError: input_properties[0] of subject 'm2' has 5 rows, x[0] has 4 columns.
    """

    def __init__(self, subject_id, x, input_properties, output_properties, input_modes=None, output_modes=None):
        self.subject_id = subject_id
        self.x = x
        self.input_properties = input_properties
        self.output_properties = output_properties
        self.input_modes = input_modes
        self.output_modes = output_modes
        self._validate()

    # ------------------------------------------------------------------ checks
    def _where(self, field, group):
        return f"{field}[{group}] of subject {self.subject_id!r}"

    def _array(self, field, group, value, ndim=2):
        where = self._where(field, group)
        arr = check_numeric(where, value)
        if arr.ndim != ndim:
            raise ValueError(f"{where} must be {ndim}-D; got shape {arr.shape}.")
        return arr

    def _modes(self, field, modes, n_groups):
        if modes is None:
            return (None,) * n_groups
        groups, _ = _as_groups(modes)
        if len(groups) != n_groups:
            raise ValueError(f"{field} of subject {self.subject_id!r} has {len(groups)} group(s); expected {n_groups}.")
        return tuple(None if m is None else self._array(field, g, m) for g, m in enumerate(groups))

    def _validate(self):
        try:
            hash(self.subject_id)
        except TypeError:
            raise TypeError(f"subject_id must be hashable; got {type(self.subject_id).__name__}.") from None
        xs, self._grouped_x = _as_groups(self.x)
        if not xs:
            raise ValueError(f"x of subject {self.subject_id!r} must have at least one group.")
        xs = tuple(self._array("x", g, v) for g, v in enumerate(xs))
        for g, arr in enumerate(xs[1:], start=1):
            if arr.shape[0] != xs[0].shape[0]:
                raise ValueError(f"{self._where('x', g)} has {arr.shape[0]} rows (samples), x[0] has {xs[0].shape[0]}.")
        in_props, grouped = _as_groups(self.input_properties)
        if len(in_props) != len(xs):
            raise ValueError(
                f"input_properties of subject {self.subject_id!r} has {len(in_props)} group(s), x has {len(xs)}."
            )
        out_props, self._grouped_y = _as_groups(self.output_properties)
        if not out_props:
            raise ValueError(f"output_properties of subject {self.subject_id!r} must have at least one group.")
        in_modes = self._modes("input_modes", self.input_modes, len(xs))
        out_modes = self._modes("output_modes", self.output_modes, len(out_props))
        q = []  # (field[group], number of properties), in order
        checked_in = []
        for g, (arr, props, modes) in enumerate(zip(xs, in_props, in_modes)):
            if props is None and modes is None:
                raise ValueError(f"{self._where('input_properties', g)} is None but the group has no input_modes.")
            if props is not None:
                props = self._array("input_properties", g, props)
                if props.shape[0] != arr.shape[1]:
                    raise ValueError(
                        f"{self._where('input_properties', g)} has {props.shape[0]} rows, "
                        f"x[{g}] has {arr.shape[1]} columns."
                    )
                q.append((f"input_properties[{g}]", props.shape[1]))
            if modes is not None and modes.shape[0] != arr.shape[1]:
                raise ValueError(
                    f"{self._where('input_modes', g)} has {modes.shape[0]} rows, x[{g}] has {arr.shape[1]} columns."
                )
            checked_in.append(props)
        checked_out, n_outputs = [], []
        for h, (props, modes) in enumerate(zip(out_props, out_modes)):
            if props is None and modes is None:
                raise ValueError(f"{self._where('output_properties', h)} is None but the group has no output_modes.")
            rows = None
            if props is not None:
                props = self._array("output_properties", h, props)
                q.append((f"output_properties[{h}]", props.shape[1]))
                rows = props.shape[0]
            if modes is not None:
                if rows is not None and modes.shape[0] != rows:
                    raise ValueError(
                        f"{self._where('output_modes', h)} has {modes.shape[0]} rows, "
                        f"output_properties[{h}] has {rows}."
                    )
                rows = modes.shape[0]
            checked_out.append(props)
            n_outputs.append(rows)
        for name, n_props in q[1:]:
            if n_props != q[0][1]:
                raise ValueError(
                    f"{name} of subject {self.subject_id!r} has {n_props} columns (properties), "
                    f"{q[0][0]} has {q[0][1]}; all groups must have the same properties."
                )
        self._x = xs
        self._input_properties = tuple(checked_in)
        self._output_properties = tuple(checked_out)
        self._input_modes = in_modes
        self._output_modes = out_modes
        self.n_samples = xs[0].shape[0]
        self.n_inputs = tuple(a.shape[1] for a in xs)
        self.n_outputs = tuple(n_outputs)
        self.n_properties = q[0][1] if q else None

    # --------------------------------------------------------------- accessors
    @property
    def n_input_groups(self) -> int:
        return len(self.n_inputs)

    @property
    def n_output_groups(self) -> int:
        return len(self.n_outputs)

    def x_groups(self) -> tuple:
        """Inputs as a tuple of validated arrays, one per group."""
        return self._x

    def property_groups(self) -> tuple[tuple, tuple]:
        """``(input_properties, output_properties)`` as tuples of arrays (None for fixed groups)."""
        return self._input_properties, self._output_properties

    def mode_groups(self) -> tuple[tuple, tuple]:
        """``(input_modes, output_modes)`` as tuples (None where the predictors compute them)."""
        return self._input_modes, self._output_modes

    def check_y(self, y):
        """Validate this subject's outputs; returns a tuple of arrays, one per output group."""
        ys, grouped = _as_groups(y)
        if grouped != self._grouped_y and not (len(ys) == 1 and self.n_output_groups == 1):
            raise ValueError(
                f"y of subject {self.subject_id!r} must be "
                f"{'a tuple of' if self._grouped_y else 'one'} array(s) like output_properties."
            )
        if len(ys) != self.n_output_groups:
            raise ValueError(
                f"y of subject {self.subject_id!r} has {len(ys)} group(s); expected {self.n_output_groups}."
            )
        out = []
        for h, (arr, n_out) in enumerate(zip(ys, self.n_outputs)):
            arr = self._array("y", h, arr)
            if arr.shape != (self.n_samples, n_out):
                raise ValueError(
                    f"y[{h}] of subject {self.subject_id!r} must have shape "
                    f"(n_samples={self.n_samples}, n_outputs={n_out}); got {arr.shape}."
                )
            out.append(arr)
        return tuple(out)

    def __repr__(self) -> str:
        return (
            f"SubjectData({self.subject_id!r}, n_samples={self.n_samples}, n_inputs={self.n_inputs}, "
            f"n_outputs={self.n_outputs}, n_properties={self.n_properties})"
        )

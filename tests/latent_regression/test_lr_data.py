"""SubjectData: shapes, groups, fixed modes and validation errors (spec §3, §5)."""

import re

import numpy as np
import pytest

from skneuro.latent_regression import SubjectData


def _zeros(*shape):
    return np.zeros(shape)


def _subject(**kwargs):
    """Subject 'm3': 10 samples, 4 inputs, 6 outputs, 3 properties."""
    values = {
        "subject_id": "m3",
        "x": _zeros(10, 4),
        "input_properties": _zeros(4, 3),
        "output_properties": _zeros(6, 3),
    }
    values.update(kwargs)
    return SubjectData(**values)


def _with_nan(shape, value=np.nan):
    arr = np.zeros(shape)
    arr[0, -1] = value
    return arr


# ------------------------------------------------------------------ attributes
def test_single_group_attributes():
    s = _subject()
    assert (s.subject_id, s.n_samples, s.n_inputs, s.n_outputs, s.n_properties) == ("m3", 10, (4,), (6,), 3)
    assert s.n_input_groups == s.n_output_groups == 1
    assert len(s.x_groups()) == 1 and s.x_groups()[0].shape == (10, 4)
    props_in, props_out = s.property_groups()
    assert props_in[0].shape == (4, 3) and props_out[0].shape == (6, 3)
    assert s.mode_groups() == ((None,), (None,))
    assert repr(s) == "SubjectData('m3', n_samples=10, n_inputs=(4,), n_outputs=(6,), n_properties=3)"


def test_grouped_inputs_and_outputs():
    s = SubjectData(
        7,
        (_zeros(5, 3), _zeros(5, 2)),
        (_zeros(3, 2), _zeros(2, 2)),
        (_zeros(4, 2), _zeros(1, 2), _zeros(6, 2)),
    )
    assert s.n_inputs == (3, 2) and s.n_outputs == (4, 1, 6) and s.n_properties == 2
    assert s.n_input_groups == 2 and s.n_output_groups == 3
    ys = s.check_y((_zeros(5, 4), _zeros(5, 1), _zeros(5, 6)))
    assert [y.shape for y in ys] == [(5, 4), (5, 1), (5, 6)]
    with pytest.raises(ValueError, match=r"y of subject 7 must be a tuple of array\(s\)"):
        s.check_y(_zeros(5, 11))
    with pytest.raises(ValueError, match=r"y of subject 7 has 2 group\(s\); expected 3"):
        s.check_y((_zeros(5, 4), _zeros(5, 1)))


def test_one_group_given_as_tuple_or_array_is_the_same():
    a = _subject()
    b = _subject(x=(_zeros(10, 4),), input_properties=(_zeros(4, 3),), output_properties=(_zeros(6, 3),))
    assert (a.n_inputs, a.n_outputs, a.n_properties) == (b.n_inputs, b.n_outputs, b.n_properties)
    for s in (a, b):  # a one-group y may be given either way
        assert s.check_y(_zeros(10, 6))[0].shape == (10, 6)
        assert s.check_y((_zeros(10, 6),))[0].shape == (10, 6)


def test_zero_samples_allowed():
    s = _subject(x=_zeros(0, 4))
    assert s.n_samples == 0
    assert s.check_y(_zeros(0, 6))[0].shape == (0, 6)
    with pytest.raises(ValueError, match=re.escape("y[0] of subject 'm3' must have shape (n_samples=0, n_outputs=6)")):
        s.check_y(_zeros(1, 6))


def test_fixed_modes_replace_properties():
    P, U = np.ones((4, 2)), np.ones((6, 2))
    s = _subject(input_properties=None, input_modes=P, output_properties=None, output_modes=U)
    assert s.n_properties is None and s.n_inputs == (4,) and s.n_outputs == (6,)
    assert s.mode_groups()[0][0] is not None and s.property_groups() == ((None,), (None,))
    # one group fixed, one predicted; the output size comes from the fixed modes
    s = SubjectData(
        "m1",
        (_zeros(10, 4), _zeros(10, 2)),
        (None, _zeros(2, 3)),
        (None,),
        input_modes=(P, None),
        output_modes=(np.ones((5, 2)),),
    )
    assert s.n_properties == 3 and s.n_outputs == (5,)
    assert s.mode_groups()[0][1] is None and s.mode_groups()[0][0].shape == (4, 2)
    # modes and properties may both be given
    s = _subject(input_modes=P, output_modes=U)
    assert s.n_properties == 3 and s.mode_groups()[1][0].shape == (6, 2)


def test_arrays_are_stored_and_never_modified():
    arrays = {
        "x": np.arange(40.0).reshape(10, 4),
        "input_properties": np.arange(12.0).reshape(4, 3),
        "output_properties": np.arange(18, dtype=np.int64).reshape(6, 3),
        "input_modes": np.arange(8.0).reshape(4, 2),
        "output_modes": np.arange(12.0).reshape(6, 2),
    }
    y = np.arange(60.0).reshape(10, 6)
    copies = {k: v.copy() for k, v in arrays.items()}
    for value in (*arrays.values(), y):
        value.setflags(write=False)  # any write inside would raise
    s = _subject(**arrays)
    s.check_y(y)
    for name, value in arrays.items():
        assert getattr(s, name) is value
        np.testing.assert_array_equal(value, copies[name])
        assert value.dtype == copies[name].dtype
    np.testing.assert_array_equal(y, np.arange(60.0).reshape(10, 6))
    assert np.shares_memory(s.x_groups()[0], arrays["x"])


# ---------------------------------------------------------------------- errors
ERRORS = [
    # ndim
    ({"x": _zeros(10)}, "x[0] of subject 'm3' must be 2-D; got shape (10,)."),
    ({"x": (_zeros(10, 4), _zeros(10, 2, 1))}, "x[1] of subject 'm3' must be 2-D"),
    ({"input_properties": _zeros(4)}, "input_properties[0] of subject 'm3' must be 2-D"),
    ({"output_properties": _zeros(6, 3, 1)}, "output_properties[0] of subject 'm3' must be 2-D"),
    ({"input_modes": _zeros(4)}, "input_modes[0] of subject 'm3' must be 2-D"),
    ({"output_modes": _zeros(6)}, "output_modes[0] of subject 'm3' must be 2-D"),
    # group counts
    ({"x": ()}, "x of subject 'm3' must have at least one group."),
    ({"output_properties": ()}, "output_properties of subject 'm3' must have at least one group."),
    (
        {"x": (_zeros(10, 4), _zeros(10, 2))},
        "input_properties of subject 'm3' has 1 group(s), x has 2.",
    ),
    ({"input_properties": (_zeros(4, 3), _zeros(2, 3))}, "input_properties of subject 'm3' has 2 group(s), x has 1."),
    ({"input_modes": (None, None)}, "input_modes of subject 'm3' has 2 group(s); expected 1."),
    ({"output_modes": (None, _zeros(6, 2))}, "output_modes of subject 'm3' has 2 group(s); expected 1."),
    # samples and rows
    (
        {"x": (_zeros(10, 4), _zeros(9, 2)), "input_properties": (_zeros(4, 3), _zeros(2, 3))},
        "x[1] of subject 'm3' has 9 rows (samples), x[0] has 10.",
    ),
    (
        {
            "x": (_zeros(10, 4), _zeros(10, 310)),
            "input_properties": (_zeros(4, 3), _zeros(300, 3)),
        },
        "input_properties[1] of subject 'm3' has 300 rows, x[1] has 310 columns.",  # the spec's example
    ),
    ({"input_modes": _zeros(5, 2)}, "input_modes[0] of subject 'm3' has 5 rows, x[0] has 4 columns."),
    ({"output_modes": _zeros(5, 2)}, "output_modes[0] of subject 'm3' has 5 rows, output_properties[0] has 6."),
    # same q everywhere
    (
        {"output_properties": _zeros(6, 2)},
        "output_properties[0] of subject 'm3' has 2 columns (properties), input_properties[0] has 3",
    ),
    (
        {"x": (_zeros(10, 4), _zeros(10, 2)), "input_properties": (_zeros(4, 3), _zeros(2, 4))},
        "input_properties[1] of subject 'm3' has 4 columns (properties), input_properties[0] has 3",
    ),
    (
        {
            "output_properties": (_zeros(6, 3), _zeros(2, 1)),
        },
        "output_properties[1] of subject 'm3' has 1 columns (properties), input_properties[0] has 3",
    ),
    # None properties need fixed modes
    ({"input_properties": None}, "input_properties[0] of subject 'm3' is None but the group has no input_modes."),
    (
        {"output_properties": (_zeros(6, 3), None)},
        "output_properties[1] of subject 'm3' is None but the group has no output_modes.",
    ),
    # finite values
    ({"x": _with_nan((10, 4))}, "x[0] of subject 'm3' contains NaN or infinity."),
    ({"input_properties": _with_nan((4, 3), np.inf)}, "input_properties[0] of subject 'm3' contains NaN or infinity."),
    (
        {"output_properties": (_zeros(6, 3), _with_nan((2, 3), -np.inf))},
        "output_properties[1] of subject 'm3' contains NaN or infinity.",
    ),
    ({"input_modes": _with_nan((4, 2))}, "input_modes[0] of subject 'm3' contains NaN or infinity."),
    ({"output_modes": _with_nan((6, 2))}, "output_modes[0] of subject 'm3' contains NaN or infinity."),
]


@pytest.mark.parametrize(
    "kwargs,message", ERRORS, ids=[m.split(" of ")[0] + f"-{i}" for i, (_, m) in enumerate(ERRORS)]
)
def test_invalid_subject_raises_naming_field_group_and_subject(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        _subject(**kwargs)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"x": np.array([["a", "b"]])}, "x[0] of subject 'm3' must be a numeric array; got dtype <U1."),
        ({"input_properties": np.zeros((4, 3), dtype=object)}, "input_properties[0] of subject 'm3' must be a numeric"),
        ({"output_properties": np.zeros((6, 3), dtype=complex)}, "output_properties[0] of subject 'm3' must be real"),
        ({"subject_id": ["m", 3]}, "subject_id must be hashable; got list."),
    ],
)
def test_wrong_types_raise_type_error(kwargs, message):
    with pytest.raises(TypeError, match=re.escape(message)):
        _subject(**kwargs)


@pytest.mark.parametrize(
    "y,message",
    [
        (_zeros(9, 6), "y[0] of subject 'm3' must have shape (n_samples=10, n_outputs=6); got (9, 6)."),
        (_zeros(10, 5), "y[0] of subject 'm3' must have shape (n_samples=10, n_outputs=6); got (10, 5)."),
        (_zeros(10), "y[0] of subject 'm3' must be 2-D"),
        (_with_nan((10, 6)), "y[0] of subject 'm3' contains NaN or infinity."),
        (_with_nan((10, 6), np.inf), "y[0] of subject 'm3' contains NaN or infinity."),
        ((_zeros(10, 6), _zeros(10, 6)), "y of subject 'm3' must be one array(s) like output_properties."),
    ],
)
def test_invalid_y_raises_naming_subject_and_y(y, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        _subject().check_y(y)

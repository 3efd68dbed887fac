"""``random_state`` → local numpy generator or seed: skneuro's one converter (numpy only).

Every estimator, initializer, simulator and task turns its ``random_state`` into random
draws here. The global numpy and torch random states are never read or changed: ``None``
takes fresh entropy from the operating system, a ``RandomState`` or ``Generator`` passed in
is advanced by one draw (or used as it is, by :func:`as_generator`).
"""

from __future__ import annotations

from numbers import Integral

import numpy as np

__all__ = ["as_generator", "random_seed"]

_EXPECTED = "None, a non-negative int, a numpy RandomState or a numpy Generator"


def random_seed(random_state) -> int:
    """A non-negative integer seed from ``random_state``.

    Parameters
    ----------
    random_state : None, int, numpy.random.RandomState or numpy.random.Generator
        An int is its own seed; ``None`` draws one from fresh OS entropy; a
        ``RandomState`` draws one in ``[0, 2**31 − 1)`` and a ``Generator`` one in
        ``[0, 2**63 − 1)`` (each advancing the object passed in by one draw).

    Returns
    -------
    int

    Raises
    ------
    ValueError
        For anything else (negative ints and booleans included), naming ``random_state``.

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.utils._random import random_seed
    >>> random_seed(7)
    7
    >>> random_seed(np.random.default_rng(0)) == random_seed(np.random.default_rng(0))
    True
    """
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0] >> 1)
    if isinstance(random_state, (Integral, np.integer)) and not isinstance(random_state, (bool, np.bool_)):
        if random_state < 0:
            raise ValueError(f"random_state must be a non-negative integer; got {random_state!r}.")
        return int(random_state)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63 - 1))
    raise ValueError(f"random_state must be {_EXPECTED}; got {random_state!r}.")


def as_generator(random_state) -> np.random.Generator:
    """A local ``numpy.random.Generator`` from ``random_state`` (a Generator is used as it is).

    Examples
    --------
    >>> from skneuro.utils._random import as_generator
    >>> bool(as_generator(3).random() == as_generator(3).random())
    True
    """
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(random_seed(random_state))

"""Initial weights and constraints of a leaky rate RNN (numpy only, no torch).

The networks hold raw weights ``V`` and masks ``M >= 0``; the dynamics use effective
weights. Without Dale's law ``W = V ⊙ M``. With Dale ratio ``r`` the first
``n_exc = ⌊r·n_rec + 1e-9⌋`` recurrent units are excitatory (sign ``s_j = +1``), the
others inhibitory (``s_j = -1``), and

- ``W_in = |V_in ⊙ M_in|`` (all inputs excitatory),
- ``W_rec = |V_rec ⊙ M_rec| diag(s)`` (column ``j`` has the sign of presynaptic unit ``j``),
- ``W_out = |V_out ⊙ M_out| diag(e)``, ``e_j = [s_j > 0]`` (only E units feed outputs).
"""

from __future__ import annotations

import math
import os
import warnings
from numbers import Integral, Real

import numpy as np

from ..utils._random import as_generator

__all__ = ["AlphaIdentity", "GaussianSpectralRadius", "WeightInitializer"]

FORMAT_VERSION = 1
_RANDOM_INITS = ("const_unif", "const_gauss", "glorot_unif", "glorot_gauss")
_WEIGHT_KEYS = ("W_in", "W_rec", "W_out", "b_rec", "b_out", "init_state")
_MASK_KEYS = ("input_connectivity", "rec_connectivity", "output_connectivity")


def _float_array(name: str, value, shape: tuple[int, ...]) -> np.ndarray:
    """A float64 copy of ``value`` with the given shape and finite entries."""
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a numeric array of shape {shape}; got {type(value).__name__}.") from None
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}; got {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must hold finite numbers only.")
    return arr


def _connectivity(name: str, value, shape: tuple[int, ...]) -> np.ndarray:
    if value is None:
        return np.ones(shape)
    mask = _float_array(name, value, shape)
    if np.any(mask < 0):
        raise ValueError(f"{name} must be non-negative (a mask of connection strengths).")
    return mask


def _n_excitatory(dale_ratio, n_rec: int) -> int | None:
    if dale_ratio is None:
        return None
    if isinstance(dale_ratio, bool) or not isinstance(dale_ratio, Real) or not 0 < dale_ratio <= 1:
        raise ValueError(f"dale_ratio must be None or a number with 0 < dale_ratio <= 1; got {dale_ratio!r}.")
    n_exc = math.floor(float(dale_ratio) * n_rec + 1e-9)
    if n_exc < 1:
        raise ValueError(
            f"dale_ratio={dale_ratio!r} gives no excitatory unit among n_rec={n_rec}; "
            "floor(dale_ratio * n_rec) must be at least 1."
        )
    return n_exc


def _fan_sum(mask: np.ndarray) -> np.ndarray:
    """F_ij = (row sum i) + (column sum j) of the mask."""
    return mask.sum(axis=1, keepdims=True) + mask.sum(axis=0, keepdims=True)


def _spectral_radius(matrix: np.ndarray) -> float:
    return float(np.max(np.abs(np.linalg.eigvals(matrix)))) if matrix.size else 0.0


class WeightInitializer:
    """Initial weights, connectivity masks and Dale signs of a leaky rate RNN.

    All weight entries are drawn, connected or not (masks act through the effective
    weights): ``"const_unif"`` ``U(init_minval, init_maxval)``, ``"const_gauss"``
    ``N(0, 1)``, ``"glorot_unif"`` ``U(±√(6/F_ij))`` and ``"glorot_gauss"``
    ``N(0, 2/F_ij)``, with ``F_ij`` the row sum ``i`` plus the column sum ``j`` of the
    mask (an entry with ``F_ij = 0`` is 0). The arrays passed in are copied, never
    modified.

    Parameters
    ----------
    n_in, n_rec, n_out : int
        Numbers of inputs, recurrent units (at least 1) and outputs.
    which_rand_init : {"glorot_gauss", "glorot_unif", "const_gauss", "const_unif"}, default="glorot_gauss"
        Distribution of ``W_in`` and ``W_out``, and of ``W_rec`` unless
        ``which_rand_W_rec_init`` is given.
    which_rand_W_rec_init : str or None, default=None
        Distribution of ``W_rec``; None uses ``which_rand_init``.
    init_minval, init_maxval : float, default=-0.1, 0.1
        Bounds of ``"const_unif"``.
    input_connectivity : array-like of shape (n_rec, n_in) or None
        Mask ``M_in >= 0``; None is all ones. Likewise ``rec_connectivity``
        (n_rec, n_rec) and ``output_connectivity`` (n_out, n_rec).
    rec_connectivity, output_connectivity : array-like or None
        See ``input_connectivity``.
    autapses : bool, default=True
        False zeroes the diagonal of (a copy of) ``rec_connectivity``.
    dale_ratio : float or None, default=None
        Fraction of excitatory units, ``0 < dale_ratio <= 1``; None means no Dale's law.
    W_in, W_rec, W_out : array-like or None
        Raw weights of shapes (n_rec, n_in), (n_rec, n_rec), (n_out, n_rec); None draws
        them.
    b_rec, b_out : array-like of shape (n_rec,), (n_out,) or None
        Biases; None is zeros.
    init_state : array-like of shape (n_rec,) or None
        Initial state ``x_0``; None draws ``0.1 + 0.01·N(0, 1)`` per unit.
    random_state : int, RandomState instance, Generator or None, default=None
        Seeds a local generator; the global numpy random state is never touched.

    Attributes
    ----------
    initializations : dict
        PsychRNN's keys: ``input_connectivity``, ``rec_connectivity``,
        ``output_connectivity``, ``dale_ratio``, ``Dale_rec`` (``diag(s)``), ``Dale_out``
        (``diag(e)``), ``W_in``, ``W_rec``, ``W_out`` (raw weights), ``b_rec``, ``b_out``
        and ``init_state``; float64 arrays (``dale_ratio`` a float or None).
    n_exc : int
        Number of excitatory units (``n_rec`` without Dale's law).

    See Also
    --------
    GaussianSpectralRadius : Gaussian ``W_rec`` scaled to a given spectral radius.
    AlphaIdentity : ``W_rec`` a multiple of the identity.

    Examples
    --------
    >>> from skneuro.rnn import WeightInitializer
    >>> init = WeightInitializer(2, 5, 1, dale_ratio=0.8, autapses=False, random_state=0)
    >>> init.dale_signs
    array([ 1.,  1.,  1.,  1., -1.])
    >>> W_in, W_rec, W_out = init.effective_weights()
    >>> bool((W_in >= 0).all()), bool((W_rec[:, 4] <= 0).all()), float(W_out[0, 4])
    (True, True, 0.0)
    """

    def __init__(
        self,
        n_in: int,
        n_rec: int,
        n_out: int,
        *,
        which_rand_init: str = "glorot_gauss",
        which_rand_W_rec_init: str | None = None,
        init_minval: float = -0.1,
        init_maxval: float = 0.1,
        input_connectivity=None,
        rec_connectivity=None,
        output_connectivity=None,
        autapses: bool = True,
        dale_ratio: float | None = None,
        W_in=None,
        W_rec=None,
        W_out=None,
        b_rec=None,
        b_out=None,
        init_state=None,
        random_state=None,
    ):
        for name, value, low in (("n_in", n_in, 0), ("n_rec", n_rec, 1), ("n_out", n_out, 0)):
            if isinstance(value, bool) or not isinstance(value, (Integral, np.integer)) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}; got {value!r}.")
        self.n_in, self.n_rec, self.n_out = int(n_in), int(n_rec), int(n_out)
        which_rand_W_rec_init = which_rand_init if which_rand_W_rec_init is None else which_rand_W_rec_init
        for name, value in (("which_rand_init", which_rand_init), ("which_rand_W_rec_init", which_rand_W_rec_init)):
            if value not in _RANDOM_INITS:
                raise ValueError(f"{name} must be one of {_RANDOM_INITS}; got {value!r}.")
        if not (np.isfinite(init_minval) and np.isfinite(init_maxval) and init_minval <= init_maxval):
            raise ValueError(
                f"init_minval and init_maxval must be finite with init_minval <= init_maxval; "
                f"got {init_minval!r}, {init_maxval!r}."
            )
        self.which_rand_init, self.which_rand_W_rec_init = which_rand_init, which_rand_W_rec_init
        self.init_minval, self.init_maxval = float(init_minval), float(init_maxval)
        self.autapses = bool(autapses)
        n_exc = _n_excitatory(dale_ratio, self.n_rec)
        self.dale_ratio = None if dale_ratio is None else float(dale_ratio)
        self.n_exc = self.n_rec if n_exc is None else n_exc
        self._rng = as_generator(random_state)

        self.initializations = self._constraints(input_connectivity, rec_connectivity, output_connectivity)
        self._fill_weights(W_in, W_rec, W_out, b_rec, b_out, init_state)

    def _constraints(self, input_connectivity, rec_connectivity, output_connectivity) -> dict:
        """Masks (autapses removed from a copy) and PsychRNN's Dale matrices."""
        n_in, n_rec, n_out = self.n_in, self.n_rec, self.n_out
        init = {
            "input_connectivity": _connectivity("input_connectivity", input_connectivity, (n_rec, n_in)),
            "rec_connectivity": _connectivity("rec_connectivity", rec_connectivity, (n_rec, n_rec)),
            "output_connectivity": _connectivity("output_connectivity", output_connectivity, (n_out, n_rec)),
        }
        if not self.autapses:
            np.fill_diagonal(init["rec_connectivity"], 0.0)
        signs = np.where(np.arange(n_rec) < self.n_exc, 1.0, -1.0)
        init["dale_ratio"] = self.dale_ratio
        init["Dale_rec"] = np.diag(signs)
        init["Dale_out"] = np.diag((signs > 0).astype(np.float64))
        return init

    def _fill_weights(self, W_in, W_rec, W_out, b_rec, b_out, init_state) -> None:
        """Given weights (validated copies) or draws; ``W_rec`` last, after ``W_in`` and ``W_out``."""
        n_in, n_rec, n_out = self.n_in, self.n_rec, self.n_out
        init = self.initializations

        def given_or_drawn(name, value, shape, draw):
            return draw() if value is None else _float_array(name, value, shape)

        init["W_in"] = given_or_drawn(
            "W_in", W_in, (n_rec, n_in), lambda: self._draw(self.which_rand_init, init["input_connectivity"])
        )
        init["W_out"] = given_or_drawn(
            "W_out", W_out, (n_out, n_rec), lambda: self._draw(self.which_rand_init, init["output_connectivity"])
        )
        init["W_rec"] = self._initial_W_rec(W_rec)
        init["b_rec"] = given_or_drawn("b_rec", b_rec, (n_rec,), lambda: np.zeros(n_rec))
        init["b_out"] = given_or_drawn("b_out", b_out, (n_out,), lambda: np.zeros(n_out))
        if init_state is not None and np.size(init_state) == n_rec:
            init_state = np.reshape(np.asarray(init_state), (n_rec,))  # PsychRNN stores (1, n_rec)
        init["init_state"] = given_or_drawn(
            "init_state", init_state, (n_rec,), lambda: 0.1 + 0.01 * self._rng.standard_normal(n_rec)
        )

    def _initial_W_rec(self, W_rec) -> np.ndarray:
        """Raw ``W_rec``: the given one, or a draw (subclasses build their own)."""
        if W_rec is not None:
            return _float_array("W_rec", W_rec, (self.n_rec, self.n_rec))
        return self._draw(self.which_rand_W_rec_init, self.initializations["rec_connectivity"])

    def _draw(self, which: str, mask: np.ndarray) -> np.ndarray:
        shape = mask.shape
        if which == "const_unif":
            return self._rng.uniform(self.init_minval, self.init_maxval, size=shape)
        if which == "const_gauss":
            return self._rng.standard_normal(shape)
        fan = _fan_sum(mask)
        connected = fan > 0
        if which == "glorot_unif":
            limit = np.sqrt(6.0 / np.where(connected, fan, 1.0))
            draw = self._rng.uniform(-1.0, 1.0, size=shape) * limit
        else:
            draw = self._rng.standard_normal(shape) * np.sqrt(2.0 / np.where(connected, fan, 1.0))
        return np.where(connected, draw, 0.0)

    @property
    def dale_signs(self) -> np.ndarray:
        """Sign ``s_j`` of each recurrent unit: +1 (E, first ``n_exc``) or -1 (I).

        All +1 without Dale's law.

        Examples
        --------
        >>> from skneuro.rnn import WeightInitializer
        >>> WeightInitializer(1, 4, 1, dale_ratio=0.5, random_state=0).dale_signs
        array([ 1.,  1., -1., -1.])
        """
        return np.diag(self.initializations["Dale_rec"]).copy()

    def effective_weights(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Effective ``(W_in, W_rec, W_out)`` that drive the dynamics.

        Without Dale's law ``W = V ⊙ M``; with it ``W_in = |V_in ⊙ M_in|``,
        ``W_rec = |V_rec ⊙ M_rec| diag(s)`` and ``W_out = |V_out ⊙ M_out| diag(e)``.

        Returns
        -------
        W_in : ndarray of shape (n_rec, n_in)
        W_rec : ndarray of shape (n_rec, n_rec)
        W_out : ndarray of shape (n_out, n_rec)

        Examples
        --------
        >>> import numpy as np
        >>> from skneuro.rnn import WeightInitializer
        >>> init = WeightInitializer(1, 2, 1, dale_ratio=0.5, W_rec=[[-1.0, 2.0], [3.0, -4.0]], random_state=0)
        >>> init.effective_weights()[1]
        array([[ 1., -2.],
               [ 3., -4.]])
        """
        init = self.initializations
        W_in = init["W_in"] * init["input_connectivity"]
        W_rec = init["W_rec"] * init["rec_connectivity"]
        W_out = init["W_out"] * init["output_connectivity"]
        if init["dale_ratio"] is None:
            return W_in, W_rec, W_out
        signs = self.dale_signs
        return np.abs(W_in), np.abs(W_rec) * signs, np.abs(W_out) * (signs > 0)

    def balance_dale_ratio(self) -> None:
        """Balance excitation and inhibition of the raw ``W_rec`` in place (Dale only).

        With ``v_j = 1`` for E units and ``r/(1-r)`` for I units, column ``j`` of
        ``W_rec`` is multiplied by ``v_j / ‖row j of M_rec·diag(v)‖₂`` (a zero norm
        counts as 1). Nothing happens without Dale's law or when ``dale_ratio = 1``.

        Examples
        --------
        >>> import numpy as np
        >>> from skneuro.rnn import WeightInitializer
        >>> init = WeightInitializer(1, 10, 1, dale_ratio=0.8, W_rec=np.ones((10, 10)), random_state=0)
        >>> init.balance_dale_ratio()
        >>> init.initializations["W_rec"][0, [0, 9]].round(5)
        array([0.15811, 0.63246])
        """
        ratio = self.initializations["dale_ratio"]
        if ratio is None or self.n_exc == self.n_rec:
            return
        v = np.where(self.dale_signs > 0, 1.0, ratio / (1.0 - ratio))
        norms = np.linalg.norm(self.initializations["rec_connectivity"] * v, axis=1)
        self.initializations["W_rec"] = self.initializations["W_rec"] * (v / np.where(norms > 0, norms, 1.0))

    def save(self, path) -> None:
        """Write the arrays to an ``.npz`` file of numbers only (no pickled objects).

        ``dale_ratio`` None is stored as NaN; ``autapses`` and a ``format_version`` are
        stored too. The extension ``.npz`` is appended when missing, as numpy does.

        Parameters
        ----------
        path : str or path-like

        Examples
        --------
        >>> import os, tempfile
        >>> import numpy as np
        >>> from skneuro.rnn import WeightInitializer
        >>> init = WeightInitializer(2, 4, 1, dale_ratio=0.5, random_state=0)
        >>> path = os.path.join(tempfile.mkdtemp(), "weights.npz")
        >>> init.save(path)
        >>> back = WeightInitializer.load(path)
        >>> bool(np.array_equal(back.initializations["W_rec"], init.initializations["W_rec"]))
        True
        """
        init = self.initializations
        arrays = {key: init[key] for key in (*_MASK_KEYS, "Dale_rec", "Dale_out", *_WEIGHT_KEYS)}
        ratio = init["dale_ratio"]
        arrays["dale_ratio"] = np.float64(np.nan if ratio is None else ratio)
        arrays["autapses"] = np.bool_(self.autapses)
        arrays["format_version"] = np.int64(FORMAT_VERSION)
        np.savez(os.fspath(path), **arrays)

    @classmethod
    def load(cls, path) -> WeightInitializer:
        """Read a file written by :meth:`save` (or by PsychRNN) without unpickling.

        Loading never runs code: entries that would need pickling (PsychRNN's
        ``transfer_function``, a None ``dale_ratio``) are skipped with a warning.
        The result is a :class:`WeightInitializer` holding the saved arrays, whatever
        class wrote them.

        Parameters
        ----------
        path : str or path-like

        Returns
        -------
        WeightInitializer

        Raises
        ------
        ValueError
            If the file was written by a newer format version, lacks a weight array,
            or its Dale signs differ from those ``dale_ratio`` gives here.

        Examples
        --------
        >>> import os, tempfile
        >>> from skneuro.rnn import WeightInitializer
        >>> path = os.path.join(tempfile.mkdtemp(), "weights.npz")
        >>> WeightInitializer(3, 5, 2, random_state=0).save(path)
        >>> WeightInitializer.load(path).initializations["W_in"].shape
        (5, 3)
        """
        entries, skipped = {}, []
        with np.load(os.fspath(path), allow_pickle=False) as data:
            for key in data.files:
                try:
                    entries[key] = data[key]
                except ValueError:  # an object array: reading it would unpickle
                    skipped.append(key)
        if skipped:
            warnings.warn(f"{path}: skipped entries that need pickling: {', '.join(skipped)}.", stacklevel=2)
        version = int(entries.get("format_version", 0))
        if version > FORMAT_VERSION:
            raise ValueError(
                f"{path} has format_version {version}; this skneuro reads up to {FORMAT_VERSION}. Upgrade skneuro."
            )
        missing = [key for key in _WEIGHT_KEYS if key not in entries]
        if missing:
            raise ValueError(f"{path} lacks the weight array(s) {', '.join(missing)}.")
        for key in ("W_in", "W_rec", "W_out"):
            if entries[key].ndim != 2:
                raise ValueError(f"{path}: {key} must be 2-D; got shape {entries[key].shape}.")
        ratio = float(entries["dale_ratio"]) if "dale_ratio" in entries else np.nan
        loaded = WeightInitializer(
            entries["W_in"].shape[1],
            entries["W_rec"].shape[0],
            entries["W_out"].shape[0],
            autapses=bool(entries.get("autapses", True)),
            dale_ratio=None if np.isnan(ratio) else ratio,
            random_state=0,
            **{key: entries.get(key) for key in (*_MASK_KEYS, *_WEIGHT_KEYS)},
        )
        if "Dale_rec" in entries and loaded.initializations["dale_ratio"] is not None:
            if not np.array_equal(np.diag(entries["Dale_rec"]), loaded.dale_signs):
                raise ValueError(
                    f"{path}: Dale_rec does not match dale_ratio={ratio} "
                    f"(n_exc = floor(dale_ratio * n_rec + 1e-9) = {loaded.n_exc} here)."
                )
        return loaded


class GaussianSpectralRadius(WeightInitializer):
    """Gaussian ``W_rec`` balanced for Dale's law and scaled to a spectral radius.

    ``V_rec ~ N(0, 1)``, then :meth:`~WeightInitializer.balance_dale_ratio`, then
    ``V_rec ← V_rec · spec_rad/ρ``. With ``radius_of="effective"`` ``ρ`` is the spectral
    radius of the effective ``W_rec`` (masks, no autapses and Dale signs included), which
    then equals ``spec_rad`` exactly, since the effective ``W_rec`` is positively
    homogeneous in ``V_rec``. ``radius_of="raw"`` uses ``V_rec`` itself, as PsychRNN does.

    Parameters
    ----------
    n_in, n_rec, n_out : int
        As in :class:`WeightInitializer`.
    spec_rad : float, default=1.1
        Target spectral radius, > 0.
    radius_of : {"effective", "raw"}, default="effective"
        Which matrix gets the spectral radius.
    **kwargs
        Other parameters of :class:`WeightInitializer`, except ``W_rec``
        (``which_rand_W_rec_init`` has no effect here).

    Raises
    ------
    ValueError
        If the matrix has spectral radius 0 (e.g. a recurrent mask that allows no cycle).

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.rnn import GaussianSpectralRadius
    >>> init = GaussianSpectralRadius(2, 50, 1, dale_ratio=0.8, autapses=False, random_state=0)
    >>> W_rec = init.effective_weights()[1]
    >>> round(float(np.max(np.abs(np.linalg.eigvals(W_rec)))), 10)
    1.1
    """

    def __init__(self, n_in: int, n_rec: int, n_out: int, *, spec_rad: float = 1.1, radius_of="effective", **kwargs):
        if isinstance(spec_rad, bool) or not isinstance(spec_rad, Real) or not (0 < spec_rad < np.inf):
            raise ValueError(f"spec_rad must be a positive finite number; got {spec_rad!r}.")
        if radius_of not in ("effective", "raw"):
            raise ValueError(f"radius_of must be 'effective' or 'raw'; got {radius_of!r}.")
        self.spec_rad, self.radius_of = float(spec_rad), radius_of
        super().__init__(n_in, n_rec, n_out, **kwargs)

    def _initial_W_rec(self, W_rec) -> np.ndarray:
        if W_rec is not None:
            raise ValueError(f"W_rec is drawn by {type(self).__name__}; pass it to WeightInitializer instead.")
        self.initializations["W_rec"] = self._rng.standard_normal((self.n_rec, self.n_rec))
        self.balance_dale_ratio()
        V_rec = self.initializations["W_rec"]
        matrix = self.effective_weights()[1] if self.radius_of == "effective" else V_rec
        rho = _spectral_radius(matrix)
        if rho == 0:
            raise ValueError(
                f"the {self.radius_of} W_rec has spectral radius 0 and cannot be scaled to spec_rad; "
                "check rec_connectivity and autapses."
            )
        return V_rec * (self.spec_rad / rho)


class AlphaIdentity(WeightInitializer):
    """``W_rec = alpha·I``, balanced for Dale's law.

    Under Dale's law :meth:`~WeightInitializer.balance_dale_ratio` rescales the columns,
    so the diagonal is no longer exactly ``alpha``.

    Parameters
    ----------
    n_in, n_rec, n_out : int
        As in :class:`WeightInitializer`.
    alpha : float, default=1.0
        The diagonal of ``W_rec``.
    **kwargs
        Other parameters of :class:`WeightInitializer`, except ``W_rec``
        (``which_rand_W_rec_init`` has no effect here).

    Raises
    ------
    ValueError
        With ``autapses=False`` (or a recurrent mask with a zero diagonal) and a non-zero
        ``alpha``: the effective ``W_rec`` would be zero.

    Examples
    --------
    >>> from skneuro.rnn import AlphaIdentity
    >>> AlphaIdentity(1, 3, 1, alpha=0.5, random_state=0).initializations["W_rec"]
    array([[0.5, 0. , 0. ],
           [0. , 0.5, 0. ],
           [0. , 0. , 0.5]])
    """

    def __init__(self, n_in: int, n_rec: int, n_out: int, *, alpha: float = 1.0, **kwargs):
        if isinstance(alpha, bool) or not isinstance(alpha, Real) or not np.isfinite(alpha):
            raise ValueError(f"alpha must be a finite number; got {alpha!r}.")
        self.alpha = float(alpha)
        super().__init__(n_in, n_rec, n_out, **kwargs)

    def _initial_W_rec(self, W_rec) -> np.ndarray:
        if W_rec is not None:
            raise ValueError(f"W_rec is drawn by {type(self).__name__}; pass it to WeightInitializer instead.")
        if not self.autapses:
            raise ValueError(
                "AlphaIdentity needs autapses=True: its weights sit on the diagonal, so autapses=False "
                "would leave a zero effective W_rec."
            )
        self.initializations["W_rec"] = self.alpha * np.eye(self.n_rec)
        self.balance_dale_ratio()
        if self.alpha != 0 and not np.any(self.effective_weights()[1]):
            raise ValueError(
                "AlphaIdentity gives a zero effective W_rec: rec_connectivity has a zero diagonal "
                "(as with autapses=False)."
            )
        return self.initializations["W_rec"]

r"""One pass over the data: the moments every start value needs, and a row subsample.

The closed-form reduced-rank fit and the links' first match depend on the data only
through ``n``, the means, :math:`X_c^\top X_c`, :math:`X_c^\top Y_c` and the diagonal of
:math:`Y_c^\top Y_c`: (d, d), (d, p) and (p,) arrays, whatever ``n``. They are accumulated
chunk by chunk in float64 about a shift (the first chunk's means, so that large offsets do
not cancel), while the chunks are checked (finite values, with the row of the first bad
one) and a subsample of rows is kept for the nonlinear start.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..utils._chunks import RowReader, chunk_rows

__all__ = ["Moments", "data_moments"]


@dataclass
class Moments:
    """Sufficient statistics of ``(X, Y)`` for linear fits, plus per-column ranges.

    Attributes
    ----------
    n : int
    x_mean, y_mean : ndarray (d,), (p,)
    sxx : ndarray (d, d)
        :math:`X_c^\\top X_c` (centred).
    sxy : ndarray (d, p)
        :math:`X_c^\\top Y_c`.
    syy : ndarray (p,)
        Column sums of squares of :math:`Y_c`.
    x_min, x_max, y_min, y_max : ndarray
        Per-column extremes.
    x_sub, y_sub : ndarray or None
        The subsample's rows (the readers' dtype), when one was asked for.
    """

    n: int
    x_mean: np.ndarray
    y_mean: np.ndarray
    sxx: np.ndarray
    sxy: np.ndarray
    syy: np.ndarray
    x_min: np.ndarray
    x_max: np.ndarray
    y_min: np.ndarray
    y_max: np.ndarray
    x_sub: np.ndarray | None = None
    y_sub: np.ndarray | None = None

    @property
    def y_var(self) -> np.ndarray:
        """Per-target variance (``ddof=0``)."""
        return self.syy / self.n


def _check_finite(block, reader, start):
    if not np.isfinite(block).all():
        bad = int(np.flatnonzero(~np.isfinite(block).all(axis=1))[0])
        raise ValueError(
            f"{reader.name} contains NaN or infinity in row {reader.source_row(start + bad)}; "
            f"{reader.name} must be finite."
        )


def data_moments(Xr: RowReader, Yr: RowReader, *, subsample=None, budget=None) -> Moments:
    """Moments of ``(X, Y)`` in one pass over row chunks (float64 accumulation).

    Parameters
    ----------
    Xr, Yr : RowReader
        The same rows of X (n, d) and Y (n, p).
    subsample : ndarray of int or None
        Increasing row positions to keep in ``x_sub``/``y_sub``.
    budget : int or None
        Elements per chunk (of X and Y together).

    Returns
    -------
    Moments

    Raises
    ------
    ValueError
        A non-finite value, naming ``X`` or ``y`` and the row.

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.utils._chunks import RowReader
    >>> from skneuro.reduced_rank._moments import data_moments
    >>> X = np.arange(12.0).reshape(6, 2); Y = X @ np.array([[1.0], [2.0]])
    >>> m = data_moments(RowReader(X, "X"), RowReader(Y, "y"), budget=6)
    >>> bool(np.allclose(m.sxy, (X - X.mean(0)).T @ (Y - Y.mean(0))))
    True
    """
    n, d = Xr.shape
    p = Yr.shape[1]
    step = chunk_rows(d + p, budget)
    keep = None if subsample is None else np.asarray(subsample, dtype=np.int64)
    x_sub = y_sub = None
    if keep is not None:
        x_sub = np.empty((len(keep), d), dtype=Xr.dtype)
        y_sub = np.empty((len(keep), p), dtype=Yr.dtype)
    sx = sy = None
    s1x, s1y = np.zeros(d), np.zeros(p)
    sxx, sxy, syy = np.zeros((d, d)), np.zeros((d, p)), np.zeros(p)
    x_min = np.full(d, np.inf)
    x_max = np.full(d, -np.inf)
    y_min = np.full(p, np.inf)
    y_max = np.full(p, -np.inf)
    for start in range(0, n, step):
        stop = min(start + step, n)
        xb, yb = Xr.read(start, stop), Yr.read(start, stop)
        _check_finite(xb, Xr, start)
        _check_finite(yb, Yr, start)
        np.minimum(x_min, xb.min(axis=0), out=x_min)
        np.maximum(x_max, xb.max(axis=0), out=x_max)
        np.minimum(y_min, yb.min(axis=0), out=y_min)
        np.maximum(y_max, yb.max(axis=0), out=y_max)
        if keep is not None:
            lo, hi = np.searchsorted(keep, [start, stop])
            x_sub[lo:hi] = xb[keep[lo:hi] - start]
            y_sub[lo:hi] = yb[keep[lo:hi] - start]
        if sx is None:
            sx, sy = xb.mean(axis=0, dtype=np.float64), yb.mean(axis=0, dtype=np.float64)
        xc = xb.astype(np.float64) - sx
        yc = yb.astype(np.float64) - sy
        s1x += xc.sum(axis=0)
        s1y += yc.sum(axis=0)
        sxx += xc.T @ xc
        sxy += xc.T @ yc
        syy += np.einsum("ij,ij->j", yc, yc)
        del xc, yc
    mx, my = s1x / n, s1y / n
    return Moments(
        n=n,
        x_mean=sx + mx,
        y_mean=sy + my,
        sxx=sxx - n * np.outer(mx, mx),
        sxy=sxy - n * np.outer(mx, my),
        syy=np.maximum(syy - n * my**2, 0.0),
        x_min=x_min,
        x_max=x_max,
        y_min=y_min,
        y_max=y_max,
        x_sub=x_sub,
        y_sub=y_sub,
    )

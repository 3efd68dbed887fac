"""Row-chunked reading of 2-D data: in-memory arrays, memmaps, and file-backed datasets.

Whole-brain recordings do not fit in memory more than once, and often not at all. A
:class:`RowReader` reads an array's rows in chunks (optionally a subset of its rows, e.g.
the training part of a validation split) and never holds more than one chunk: ``X`` and
``y`` may be ``numpy`` arrays, ``numpy.memmap`` files, or any object with a two-dimensional
``shape``, a numeric ``dtype`` and row slicing (an ``h5py`` dataset, a ``zarr`` array).
Chunk sizes come from a budget in elements (:func:`chunk_rows`). Nothing is written to
the data.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RowReader", "chunk_rows", "is_array_source"]

#: elements per chunk when a caller gives no budget (32 MiB of float64)
DEFAULT_CHUNK_ELEMENTS = 2**22


def is_array_source(obj) -> bool:
    """Whether ``obj`` is data to read in row chunks rather than to convert whole.

    True for ``numpy.memmap`` and for objects that are not numpy arrays but have a
    ``shape``, a ``dtype``, ``ndim`` and ``__getitem__`` (``h5py`` datasets, ``zarr``
    arrays). Plain numpy arrays, lists and data frames are converted as usual.

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.utils._chunks import is_array_source
    >>> is_array_source(np.zeros((3, 2))), is_array_source([[1.0]])
    (False, False)
    """
    if isinstance(obj, np.memmap):
        return True
    if isinstance(obj, np.ndarray) or not all(hasattr(obj, name) for name in ("shape", "dtype", "ndim", "__getitem__")):
        return False
    if hasattr(obj, "iloc") or type(obj).__module__.split(".")[0] in ("scipy", "torch", "pandas", "polars", "cupy"):
        return False  # data frames, sparse matrices, tensors and GPU arrays are converted by scikit-learn
    if not all(isinstance(size, (int, np.integer)) for size in obj.shape):
        return False  # e.g. a dask array of unknown length
    try:
        np.dtype(obj.dtype)
    except TypeError:
        return False
    return True


def chunk_rows(n_cols: int, budget: int | None = None) -> int:
    """Rows per chunk so that a chunk holds at most ``budget`` elements (at least one row).

    Examples
    --------
    >>> from skneuro.utils._chunks import chunk_rows
    >>> chunk_rows(1000, budget=10_000), chunk_rows(10**9, budget=10)
    (10, 1)
    """
    budget = DEFAULT_CHUNK_ELEMENTS if budget is None else int(budget)
    return max(1, budget // max(int(n_cols), 1))


class RowReader:
    """Rows of a 1-D or 2-D array, read in chunks as float arrays.

    Parameters
    ----------
    source : array-like
        A numpy array or memmap, or any object with ``shape``, ``dtype`` and row slicing.
        1-D sources are read as one column.
    name : str
        The argument's name, used in error messages (``"X"``, ``"y"``).
    rows : ndarray of int or None
        Increasing row indices of ``source`` that this reader sees (None: all rows).
    dtype : numpy dtype or None
        Dtype of the chunks; default: the source's if it is float32 or float64, else float64.

    Attributes
    ----------
    shape : tuple of int
        ``(n_rows, n_cols)`` as seen through ``rows``.

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.utils._chunks import RowReader
    >>> reader = RowReader(np.arange(10.0).reshape(5, 2), "X", rows=np.array([0, 2, 4]))
    >>> reader.shape, reader.read(1, 3).tolist()
    ((3, 2), [[4.0, 5.0], [8.0, 9.0]])
    """

    def __init__(self, source, name, rows=None, dtype=None):
        if source.ndim not in (1, 2):
            raise ValueError(f"{name} must be 1-D or 2-D; got an array of shape {tuple(source.shape)}.")
        self.source, self.name = source, name
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        source_dtype = np.dtype(source.dtype)
        if dtype is None:
            dtype = source_dtype if source_dtype in (np.float32, np.float64) else np.float64
        self.dtype = np.dtype(dtype)
        n = int(source.shape[0]) if self.rows is None else len(self.rows)
        self.shape = (n, int(source.shape[1]) if source.ndim == 2 else 1)

    @property
    def nbytes(self) -> int:
        """Bytes of the rows seen, in the chunks' dtype."""
        return self.shape[0] * self.shape[1] * self.dtype.itemsize

    def subset(self, rows) -> RowReader:
        """A reader of the rows ``rows`` (increasing positions in this reader)."""
        rows = np.asarray(rows, dtype=np.int64)
        return RowReader(self.source, self.name, rows if self.rows is None else self.rows[rows], self.dtype)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` as a 2-D array of the reader's dtype (a view when possible)."""
        if self.rows is None:
            block = self.source[start:stop]
        else:
            block = _take(self.source, self.rows[start:stop])
        block = np.asarray(block)
        if block.ndim == 1:
            block = block[:, None]
        return block.astype(self.dtype, copy=False)

    def take(self, rows) -> np.ndarray:
        """The rows ``rows`` (increasing positions) as one 2-D array (a copy)."""
        rows = np.asarray(rows, dtype=np.int64)
        block = np.asarray(_take(self.source, rows if self.rows is None else self.rows[rows]))
        return (block[:, None] if block.ndim == 1 else block).astype(self.dtype, copy=True)

    def chunks(self, budget: int | None = None, rows_per_chunk: int | None = None):
        """Yield ``(start, block)`` over all rows, each block of at most ``budget`` elements."""
        step = rows_per_chunk or chunk_rows(self.shape[1], budget)
        for start in range(0, self.shape[0], step):
            yield start, self.read(start, min(start + step, self.shape[0]))

    def source_row(self, position: int) -> int:
        """The source's row index of this reader's row ``position`` (for error messages)."""
        return int(position if self.rows is None else self.rows[position])


def _take(source, rows):
    """``source[rows]`` for increasing ``rows``, reading contiguous runs where fancy indexing is missing."""
    if isinstance(source, np.ndarray):
        return source[rows]
    try:
        return source[rows]
    except (TypeError, ValueError, IndexError):
        if len(rows) == 0:
            return np.asarray(source[0:0])
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        runs = np.split(rows, breaks)
        return np.concatenate([np.asarray(source[int(r[0]) : int(r[-1]) + 1]) for r in runs], axis=0)

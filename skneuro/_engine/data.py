"""Data the engine reads in row chunks instead of holding: :class:`LazyRows`."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["LazyRows"]


class LazyRows:
    """Rows of a :class:`~skneuro.utils._chunks.RowReader` as torch tensors, read when indexed.

    Give :func:`~skneuro._engine.fit.fit_module` such objects instead of tensors, with a
    ``chunk_size``, and the data stay where they are (in memory, in a memmap, in an HDF5
    file): each chunk is read, converted to ``dtype`` and moved to the module's device when
    used, so a fit holds one chunk at a time (the originals' ``send_size``).

    Parameters
    ----------
    reader : RowReader
    dtype : torch.dtype

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skneuro.utils._chunks import RowReader
    >>> from skneuro._engine.data import LazyRows
    >>> rows = LazyRows(RowReader(np.arange(6.0).reshape(3, 2), "X"), torch.float32)
    >>> rows.shape, rows[1:3].tolist(), rows[torch.tensor([2, 0])].tolist()
    (torch.Size([3, 2]), [[2.0, 3.0], [4.0, 5.0]], [[4.0, 5.0], [0.0, 1.0]])
    """

    device = torch.device("cpu")

    def __init__(self, reader, dtype):
        self.reader = reader
        self.dtype = dtype
        self.shape = torch.Size(reader.shape)

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, index) -> torch.Tensor:
        if isinstance(index, slice):
            start, stop, step = index.indices(self.shape[0])
            if step != 1:
                raise ValueError("LazyRows reads contiguous row slices (step 1) or index tensors.")
            block = self.reader.read(start, max(start, stop))
        else:
            rows = torch.as_tensor(index).cpu().numpy().astype(np.int64)
            order = np.argsort(rows, kind="stable")
            block = np.empty((len(rows), self.shape[1]), dtype=self.reader.dtype)
            block[order] = self.reader.take(rows[order])
        if not block.flags.writeable or not block.flags.c_contiguous:
            block = np.array(block, order="C")  # torch wants writable, contiguous memory: copy the chunk
        return torch.from_numpy(block).to(self.dtype)

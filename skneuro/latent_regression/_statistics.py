r"""Data statistics of the latent model, read in row chunks (no whole-array copies).

The training objective of a subject with one input and one output group needs its data
only through ``n``, the column means ``x̄``, ``ȳ``, ``diag ỸᵀỸ`` and two projections by the
input modes P (d, K), with ``l̃ = X̃P`` the centred latents:

.. math::

    G = l̃ᵀl̃ = PᵀX̃ᵀX̃P \; (K×K), \qquad C = l̃ᵀỸ = PᵀX̃ᵀỸ \; (K×e).

Two ways to get them:

- from the moments ``X̃ᵀX̃`` (d×d) and ``X̃ᵀỸ`` (d×e), computed once in float64
  (:func:`data_moments`); an evaluation with its gradient then costs O(d(d+e)K) and reads
  the ``8·d·(d+e)`` bytes of the moments about twice;
- in one pass over row chunks of the data (:class:`DataProjections`), which also gives
  the gradient; an evaluation costs O(n(d+e)K), reads the data once, and nothing of size
  d×d or d×e exists.

:func:`passes_over_data` picks the second when the moments would be larger than the data
(d > n·itemsize/8, e.g. more inputs than half the samples in float32), so a fit never holds
statistics larger than its data. Sums over rows are accumulated chunk by chunk in float64,
whatever the data's dtype.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

__all__ = [
    "DataProjections",
    "basis_statistics",
    "column_means",
    "column_moments",
    "data_moments",
    "pass_tensor",
    "passes_over_data",
    "project_rows",
    "projections",
    "row_chunks",
    "shared_tensor",
    "subject_statistics",
]

#: Bytes of one row chunk of a pass over the data: small enough to stay in cache.
PASS_CHUNK_BYTES = 768 << 10
#: Bytes of one float64 chunk of a one-time moment computation.
MOMENT_CHUNK_BYTES = 8 << 20


def row_chunks(n_rows: int, row_bytes: int, chunk_bytes: int | None = None):
    """Slices of consecutive rows, each about ``chunk_bytes`` (default ``MOMENT_CHUNK_BYTES``; at least one row).

    Examples
    --------
    >>> from skneuro.latent_regression._statistics import row_chunks
    >>> [(s.start, s.stop) for s in row_chunks(10, row_bytes=8, chunk_bytes=32)]
    [(0, 4), (4, 8), (8, 10)]
    """
    chunk_bytes = MOMENT_CHUNK_BYTES if chunk_bytes is None else chunk_bytes
    step = max(1, int(chunk_bytes) // max(int(row_bytes), 1))
    return [slice(start, min(start + step, n_rows)) for start in range(0, n_rows, step)]


def column_means(a):
    """Column means of ``a``, summed in float64 chunk by chunk.

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.latent_regression._statistics import column_means
    >>> column_means(np.array([[1, 2], [3, 5]], dtype=np.float32)).tolist()
    [2.0, 3.5]
    """
    n, m = a.shape
    total = np.zeros(m)
    for rows in row_chunks(n, 8 * m):
        total += a[rows].sum(axis=0, dtype=np.float64)
    return total / max(n, 1)


def column_moments(a):
    """Column means, centred sums of squares and largest magnitudes of ``a`` (float64).

    Two chunked passes (means, then squares about them), so a float32 array is never
    copied whole to float64.

    Parameters
    ----------
    a : ndarray of shape (n_rows, n_columns)

    Returns
    -------
    mean, sum_sq, abs_max : ndarray of shape (n_columns,)

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.latent_regression._statistics import column_moments
    >>> a = np.array([[1.0, -4.0], [3.0, 2.0]], dtype=np.float32)
    >>> [v.tolist() for v in column_moments(a)]
    [[2.0, -1.0], [2.0, 18.0], [3.0, 4.0]]
    """
    n, m = a.shape
    chunks = row_chunks(n, 8 * m)
    mean, abs_max = column_means(a), np.zeros(m)
    for rows in chunks:
        np.maximum(abs_max, np.abs(a[rows]).max(axis=0, initial=0.0), out=abs_max)
    sum_sq = np.zeros(m)
    for rows in chunks:
        centred = np.subtract(a[rows], mean, dtype=np.float64)
        sum_sq += np.einsum("ij,ij->j", centred, centred)
    return mean, sum_sq, abs_max


def data_moments(x, y):
    """``(n, x̄, ȳ, X̃ᵀX̃, X̃ᵀỸ, diag ỸᵀỸ)`` of inputs ``x`` and outputs ``y`` (float64).

    Accumulated over row chunks centred in float64: the data are never copied whole.

    Parameters
    ----------
    x : ndarray of shape (n, d)
    y : ndarray of shape (n, e)

    Returns
    -------
    tuple of ndarray
        ``n`` (1,), ``x̄`` (d,), ``ȳ`` (e,), ``X̃ᵀX̃`` (d, d), ``X̃ᵀỸ`` (d, e), ``diag ỸᵀỸ`` (e,).

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.latent_regression._statistics import data_moments
    >>> x = np.array([[0.0], [2.0]], dtype=np.float32)
    >>> n, x_mean, y_mean, sxx, sxy, syy = data_moments(x, 3 * x)
    >>> float(n[0]), float(sxx[0, 0]), float(sxy[0, 0]), float(syy[0])
    (2.0, 2.0, 6.0, 18.0)
    """
    n, (d, e) = x.shape[0], (x.shape[1], y.shape[1])
    x_mean = column_means(x)
    y_mean, syy, _ = column_moments(y)
    sxx, sxy = np.zeros((d, d)), np.zeros((d, e))
    for rows in row_chunks(n, 8 * (d + e)):
        xc = np.subtract(x[rows], x_mean, dtype=np.float64)
        yc = np.subtract(y[rows], y_mean, dtype=np.float64)
        sxx += xc.T @ xc
        sxy += xc.T @ yc
    return np.array([n], dtype=np.float64), x_mean, y_mean, sxx, sxy, syy


def basis_statistics(x, y, basis):
    """Statistics of the inputs expanded on a basis, ``Z = X̃Φ`` (n, B): float64, by chunks.

    What the alternating least-squares start needs: ``ztz = ZᵀZ`` (B, B), ``zty = ZᵀỸ``
    (B, e), the column means ``x_mean``, ``y_mean`` and ``syy = diag ỸᵀỸ``. Nothing of size
    d×e is formed.

    Parameters
    ----------
    x : ndarray of shape (n, d)
    y : ndarray of shape (n, e)
    basis : ndarray of shape (d, B)
        Φ, e.g. bump activations of the input neurons.

    Returns
    -------
    dict
        ``ztz``, ``zty``, ``x_mean``, ``y_mean``, ``syy`` (float64).

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.latent_regression._statistics import basis_statistics
    >>> x = np.array([[0.0, 1.0], [2.0, 1.0]], dtype=np.float32)
    >>> st = basis_statistics(x, x[:, :1], np.ones((2, 1)))
    >>> float(st["ztz"][0, 0]), float(st["zty"][0, 0]), st["x_mean"].tolist()
    (2.0, 2.0, [1.0, 1.0])
    """
    n, d = x.shape
    x_mean = column_means(x)
    y_mean, syy, _ = column_moments(y)
    z = np.empty((n, basis.shape[1]))
    for rows in row_chunks(n, 8 * d):
        z[rows] = np.subtract(x[rows], x_mean, dtype=np.float64) @ basis
    zty = np.zeros((basis.shape[1], y.shape[1]))
    for rows in row_chunks(n, 8 * y.shape[1]):
        zty += z[rows].T @ np.subtract(y[rows], y_mean, dtype=np.float64)
    return {"ztz": z.T @ z, "zty": zty, "x_mean": x_mean, "y_mean": y_mean, "syy": syy}


def project_rows(x, P):
    """``x @ P`` in float64, chunk by chunk (``x`` is never copied whole to float64).

    Parameters
    ----------
    x : ndarray of shape (n, d)
    P : ndarray of shape (d, K)

    Returns
    -------
    ndarray of shape (n, K)

    Examples
    --------
    >>> import numpy as np
    >>> from skneuro.latent_regression._statistics import project_rows
    >>> project_rows(np.ones((3, 2), dtype=np.float32), np.array([[1.0], [2.0]])).ravel().tolist()
    [3.0, 3.0, 3.0]
    """
    out = np.empty((x.shape[0], P.shape[1]))
    for rows in row_chunks(x.shape[0], 8 * x.shape[1]):
        out[rows] = np.asarray(x[rows], dtype=np.float64) @ P
    return out


def passes_over_data(n_samples: int, n_inputs: int, itemsize: int) -> bool:
    """Whether the objective should pass over the data instead of holding its moments.

    The moments ``X̃ᵀX̃``, ``X̃ᵀỸ`` take ``8·d·(d+e)`` bytes; the data at ``itemsize`` bytes
    per value take ``itemsize·n·(d+e)``: the moments are used when they are the smaller
    (then they are also the cheaper to read at every evaluation).

    Examples
    --------
    >>> from skneuro.latent_regression._statistics import passes_over_data
    >>> passes_over_data(5000, 400, 4), passes_over_data(4000, 6000, 4)
    (False, True)
    """
    return 8 * n_inputs > itemsize * n_samples


def shared_tensor(a, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``torch.as_tensor(a, dtype)``: the array's memory itself when the dtype matches.

    Read-only arrays (e.g. ``np.load(..., mmap_mode="r")``) are shared too: skneuro only
    reads the data, so torch's warning about non-writable arrays does not apply.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.as_tensor(a, dtype=dtype)


def pass_tensor(a, dtype: torch.dtype) -> torch.Tensor:
    """``a`` as a tensor for passes at ``dtype``: shared memory when possible.

    An array wider than ``dtype`` (float64 data, float32 training) is copied once at
    ``dtype`` (half its size, and half the bytes to read per pass); an array as wide or
    narrower is used as it is, each chunk converted when used.
    """
    tensor = shared_tensor(a)
    if not tensor.is_floating_point() or tensor.element_size() > torch.finfo(dtype).bits // 8:
        tensor = tensor.to(dtype)
    return tensor


def subject_statistics(x, y, dtype: torch.dtype, wide: torch.dtype):
    """``(over_data, statistics)``: what the moment objectives need of one subject's data.

    ``statistics`` is ``(n, x̄, ȳ, X̃ᵀX̃, X̃ᵀỸ, diag ỸᵀỸ)`` as ``wide`` tensors, or, when
    :func:`passes_over_data` says so (``over_data`` True), the same with the data x and y
    (:func:`pass_tensor` at the training ``dtype``) in place of the two moments.

    Parameters
    ----------
    x : ndarray of shape (n, d)
    y : ndarray of shape (n, e)
    dtype : torch.dtype
        The training dtype (of the products in passes over the data).
    wide : torch.dtype
        The dtype of the sums (float64 where the device has it).

    Returns
    -------
    over_data : bool
    statistics : tuple of torch.Tensor

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skneuro.latent_regression._statistics import subject_statistics
    >>> x = np.ones((10, 40), dtype=np.float32)
    >>> over_data, stats = subject_statistics(x, x[:, :3], torch.float32, torch.float64)
    >>> over_data, stats[3].data_ptr() == x.ctypes.data, stats[5].dtype
    (True, True, torch.float64)
    """
    n, d = x.shape
    if not passes_over_data(n, d, torch.finfo(dtype).bits // 8):
        return False, tuple(torch.tensor(a, dtype=wide) for a in data_moments(x, y))
    y_mean, syy, _ = column_moments(y)
    count = np.array([n], dtype=np.float64)
    n_t, x_mean, y_mean, syy = (torch.tensor(a, dtype=wide) for a in (count, column_means(x), y_mean, syy))
    return True, (n_t, x_mean, y_mean, pass_tensor(x, dtype), pass_tensor(y, dtype), syy)


def _numpy_dtype(dtype: torch.dtype):
    return np.dtype(str(dtype).removeprefix("torch."))


def _chunk_products(x, y, P_t, V_t, dtype, wide):
    """One pass over row chunks of x and y (numpy arrays on CPU, else tensors).

    Returns ``lu = [XP, YV]ᵀ`` (k, n) at ``dtype`` (``k = K`` without V, ``2K`` with),
    ``Σ_t [l_t; u_t] x_tᵀ`` (k, d) and ``Σ_t (l_t − s) y_tᵀ`` (K, e) in ``wide``, and the
    shift s (K, 1): the first chunk's mean latent, which keeps the summed products small
    when the data have large means.
    """
    K, n = P_t.shape[0], x.shape[0]
    k = K if V_t is None else 2 * K
    width = max(x.shape[1], y.shape[1]) * torch.finfo(dtype).bits // 8
    if isinstance(x, np.ndarray):
        np_dtype = _numpy_dtype(dtype)
        lu = np.empty((k, n), dtype=np_dtype)
        x_lu, l_y = np.zeros((k, x.shape[1])), np.zeros((K, y.shape[1]))

        def cast(a):
            return a.astype(np_dtype, copy=False)

    else:
        lu = torch.empty((k, n), dtype=dtype, device=x.device)
        x_lu = torch.zeros((k, x.shape[1]), dtype=wide, device=x.device)
        l_y = torch.zeros((K, y.shape[1]), dtype=wide, device=x.device)

        def cast(a):
            return a.to(dtype)

    shift = None
    for rows in row_chunks(n, width, PASS_CHUNK_BYTES):
        xc, yc = cast(x[rows]), cast(y[rows])
        block = lu[:, rows]
        block[:K] = P_t @ xc.T
        if V_t is not None:
            block[K:] = V_t @ yc.T
        if shift is None:
            shift = block[:K].mean(axis=1, keepdims=True) if isinstance(x, np.ndarray) else block[:K].mean(1, True)
        x_lu += block @ xc
        l_y += (block[:K] - shift) @ yc
    return lu, x_lu, l_y, shift


class DataProjections(torch.autograd.Function):
    """``(G, C, Z) = (l̃ᵀl̃, l̃ᵀỸ, l̃ᵀỸV)`` with ``l̃ = X̃P``, in one chunked pass over the data.

    ``forward(P, V, x, y, x_mean, y_mean)``: modes P (d, K) at the training dtype, weights V
    (e, K) or None, data x (n, d) and y (n, e) of any float dtype (each chunk is converted
    to P's dtype), float64 column means; outputs at the means' dtype (float64 where
    available). One pass computes ``XP``, ``YV`` and, from the same chunks while they are in
    cache, ``Xᵀ[XP, YV]`` and ``(XP)ᵀY``; everything else is K-sized algebra:

    - ``G = l̃ᵀl̃`` and ``Z = l̃ᵀũ``, ``ũ = ỸV``, from the centred rows in float64;
    - the gradient needs no second pass: ``∂P = X̃ᵀl̃(∂G + ∂Gᵀ) + X̃ᵀũ ∂Zᵀ`` and
      ``∂V = Cᵀ∂Z``, with ``X̃ᵀl̃``, ``X̃ᵀũ`` and C kept from the pass.

    A loss that is linear in C (the latent model's: ``Σ_j cross_j/ψ_j = tr Z`` with
    ``V_j = M_j/ψ_j``) goes through Z; a gradient through C itself (``∂C``, e.g. when C
    feeds a nonlinear function) costs two more passes (Y, then X). On CPU the chunk loop
    runs in numpy (fewer per-call overheads than torch at these sizes).
    """

    @staticmethod
    def forward(ctx, P, V, x, y, x_mean, y_mean):
        ctx.set_materialize_grads(False)
        dtype, wide, n, K = P.dtype, x_mean.dtype, x.shape[0], P.shape[1]
        P_t = P.detach().t().contiguous()
        V_t = None if V is None else V.detach().t().to(dtype).contiguous()
        if x.device.type == "cpu":
            lu, x_lu, l_y, shift = _chunk_products(
                x.numpy(), y.numpy(), P_t.numpy(), None if V_t is None else V_t.numpy(), dtype, wide
            )
            lu, x_lu, l_y, shift = (torch.from_numpy(a) for a in (lu, x_lu, l_y, shift))
        else:
            lu, x_lu, l_y, shift = _chunk_products(x, y, P_t, V_t, dtype, wide)
        lu, x_lu, l_y, shift = (a.to(wide) for a in (lu, x_lu, l_y, shift))
        means = lu.mean(dim=1)
        centred = (lu - means[:, None]).t()  # (n, k): [l̃, ũ]
        latents = centred[:, :K]
        gram = latents.t() @ latents
        cross = l_y - n * (means[:K, None] - shift) * y_mean[None, :]  # Σ l̃_t y_tᵀ = l̃ᵀỸ
        x_centred = x_lu.t() - n * x_mean[:, None] * means[None, :]  # X̃ᵀ[l̃, ũ] (d, k)
        z = latents.t() @ centred[:, K:] if V is not None else torch.zeros(K, K, dtype=wide, device=gram.device)
        ctx.save_for_backward(x, y)
        ctx.saved = (x_centred, cross, latents, dtype)
        return gram, cross, z

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_gram, d_cross, d_z):
        x, y = ctx.saved_tensors
        x_centred, cross, latents, dtype = ctx.saved
        K = latents.shape[1]
        d_P = torch.zeros(x_centred.shape[0], K, dtype=x_centred.dtype, device=x_centred.device)
        d_V = None
        if d_gram is not None:
            d_P += x_centred[:, :K] @ (d_gram + d_gram.t())
        if d_z is not None and x_centred.shape[1] > K:
            d_P += x_centred[:, K:] @ d_z.t()
            d_V = cross.t() @ d_z
        if d_cross is not None:
            d_P += _cross_gradient(x, y, d_cross, dtype)
        return d_P.to(dtype), None if d_V is None else d_V.to(dtype), None, None, None, None


def _cross_gradient(x, y, d_cross, dtype):
    """``X̃ᵀ(Y ∂Cᵀ)~``: the gradient of P through C itself, by a pass over Y and one over X."""
    wide = d_cross.dtype
    width = max(x.shape[1], y.shape[1]) * torch.finfo(dtype).bits // 8
    chunks = row_chunks(x.shape[0], width, PASS_CHUNK_BYTES)
    d_cross = d_cross.to(dtype)
    grad = torch.empty(x.shape[0], d_cross.shape[0], dtype=wide, device=d_cross.device)
    for rows in chunks:
        grad[rows] = y[rows].to(dtype) @ d_cross.t()
    grad = (grad - grad.mean(dim=0)).to(dtype)  # centred rows: Xᵀg̃ = X̃ᵀg̃
    total = torch.zeros(d_cross.shape[0], x.shape[1], dtype=wide, device=d_cross.device)
    for rows in chunks:
        total += grad[rows].t() @ x[rows].to(dtype)
    return total.t()


def projections(moments, P, over_data=False, weights=None):
    """``(G, C, Z) = (PᵀX̃ᵀX̃P, PᵀX̃ᵀỸ, C·weights)`` of one subject at the precision of ``moments``.

    Parameters
    ----------
    moments : tuple of tensors
        ``(n, x̄, ȳ, a, b, diag ỸᵀỸ)`` with ``a, b`` the moments ``X̃ᵀX̃`` (d, d) and
        ``X̃ᵀỸ`` (d, e), or, with ``over_data=True``, the data x (n, d) and y (n, e).
    P : tensor of shape (d, K)
        Input modes.
    over_data : bool
        Pass over the data (:class:`DataProjections`) instead of using moments.
    weights : tensor of shape (e, K) or None
        V of ``Z = CV`` (K, K); None: Z is None. A loss linear in C should use Z: over the
        data its gradient then needs no second pass.

    Returns
    -------
    gram : tensor of shape (K, K)
    cross : tensor of shape (K, e)
    z : tensor of shape (K, K) or None
    """
    _, x_mean, y_mean, a, b, syy = moments
    wide = syy.dtype
    if over_data:
        gram, cross, z = DataProjections.apply(P, weights, a, b, x_mean.to(wide), y_mean.to(wide))
        return gram, cross, None if weights is None else z
    P = P.to(wide)
    cross = P.T @ b
    return P.T @ a @ P, cross, None if weights is None else cross @ weights.to(wide)

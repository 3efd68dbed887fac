"""Training checkpoints: written atomically, read without running code.

A checkpoint holds everything :func:`~skneuro._engine.fit_module` needs to continue a run
exactly: the module's and the optimizer's state, the generator state, the epoch, the loss
history and the early-stopping state, plus caller metadata (e.g. a fingerprint of the
data and parameters). Files are written to a temporary name and then moved into place, and
read with ``torch.load(weights_only=True)``, which never executes code from the file.
"""

from __future__ import annotations

import os
import tempfile

import torch

__all__ = ["CHECKPOINT_VERSION", "Checkpointer", "load_checkpoint"]

CHECKPOINT_VERSION = 1


class Checkpointer:
    """Writes a checkpoint after every ``every``-th epoch.

    Parameters
    ----------
    path : str or os.PathLike
    every : int
    extra : dict, optional
        Metadata stored with the checkpoint (plain Python values and tensors).

    Examples
    --------
    >>> import os, tempfile, torch
    >>> from skneuro._engine import fit_module
    >>> from skneuro._engine.checkpoint import Checkpointer, load_checkpoint
    >>> path = os.path.join(tempfile.mkdtemp(), "run.pt")
    >>> lin = torch.nn.Linear(1, 1)
    >>> x = torch.ones(4, 1)
    >>> _ = fit_module(lin, lambda m, x: (m(x) ** 2).sum(), (x,), max_iter=4,
    ...                checkpoint=Checkpointer(path, every=2, extra={"name": "demo"}),
    ...                warn_not_converged=False)
    >>> state = load_checkpoint(path)
    >>> state["epoch"], state["extra"]["name"]
    (4, 'demo')
    """

    def __init__(self, path, every, extra=None):
        if every is None or int(every) < 1:
            raise ValueError(f"checkpoint_every must be a positive integer; got {every!r}.")
        self.path = os.fspath(path)
        self.every = int(every)
        self.extra = dict(extra or {})

    def due(self, epoch: int) -> bool:
        """Whether a checkpoint is written after 0-based ``epoch``."""
        return (epoch + 1) % self.every == 0

    def save(self, state: dict) -> None:
        state = {"format_version": CHECKPOINT_VERSION, "extra": self.extra, **state}
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        handle, tmp = tempfile.mkstemp(prefix=".skneuro-checkpoint-", dir=folder)
        try:
            with os.fdopen(handle, "wb") as f:
                torch.save(state, f)
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise


def load_checkpoint(path, map_location="cpu") -> dict:
    """Read a checkpoint written by :class:`Checkpointer` (never runs code from the file).

    Raises
    ------
    ValueError
        If the file was written by a newer checkpoint format.

    Examples
    --------
    See :class:`Checkpointer`.
    """
    state = torch.load(os.fspath(path), map_location=map_location, weights_only=True)
    version = state.get("format_version") if isinstance(state, dict) else None
    if not isinstance(version, int):
        raise ValueError(f"{os.fspath(path)!r} is not a skneuro checkpoint.")
    if version > CHECKPOINT_VERSION:
        raise ValueError(
            f"checkpoint {os.fspath(path)!r} has format version {version}; this skneuro reads up to "
            f"{CHECKPOINT_VERSION}. Upgrade skneuro to resume from it."
        )
    return state

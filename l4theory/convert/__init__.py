"""Conversion of trained ANNs to spiking networks: datasets, weight files, balancing.

:func:`from_torch` and :func:`to_torch` (PyTorch modules in and out) are imported on first
use, so that ``import l4theory.convert`` never imports torch.
"""

__all__ = ["from_torch", "to_torch"]


def __getattr__(name):
    if name in ("from_torch", "to_torch"):
        from .io import pytorch

        return getattr(pytorch, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

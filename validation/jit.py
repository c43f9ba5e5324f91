"""The jit decorator every kernel in :mod:`validation` uses: the project's one decorator.

See :mod:`l4theory._jit` (``cache=True``, ``nogil=True``, no ``fastmath``; plain Python
under ``NUMBA_DISABLE_JIT=1``).
"""

from __future__ import annotations

from l4theory._jit import DISABLED, jit, prange

__all__ = ["DISABLED", "jit", "prange"]

"""The one Numba decorator of the project (library kernels and the validation oracle).

``jit(parallel=True)`` compiles with ``cache=True``, ``nogil=True`` and strict IEEE
arithmetic (no ``fastmath``), so results do not depend on vectorisation choices. With
``NUMBA_DISABLE_JIT=1`` the decorated functions run as plain Python and :data:`prange` is
``range``; every kernel is written to work in both modes.
"""

from __future__ import annotations

import numba

__all__ = ["DISABLED", "jit", "prange"]

#: True when Numba compilation is switched off (``NUMBA_DISABLE_JIT=1``).
DISABLED: bool = bool(numba.config.DISABLE_JIT)

prange = numba.prange


def jit(func=None, *, parallel: bool = False):
    """Compile ``func`` with the project's Numba settings.

    Parameters
    ----------
    func : callable, optional
        Function to compile; when omitted a decorator is returned.
    parallel : bool
        Enable ``prange`` parallel loops.
    """
    deco = numba.njit(cache=True, nogil=True, parallel=parallel, fastmath=False)
    return deco if func is None else deco(func)

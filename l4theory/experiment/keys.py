"""Task keys: the sha256 of everything a result depends on, code version included.

One function makes every key (:func:`task_key`); a simulation job of a sweep
(:meth:`l4theory.experiment.tasks.Job.keyed`) and a task of the validation study (its
cache key, made by ``_cache_key`` in ``validation/study/tasks.py``) both go through it, so
both change when the library's code changes.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["CODE_FILES", "code_version", "digest_arrays", "network_digest", "task_key"]

_ROOT = Path(__file__).resolve().parent.parent  # the l4theory package

#: Library sources whose change invalidates every cached result (relative to the package):
#: the simulator and its kernels, the layer definitions, the encoders' moments, balancing,
#: every first-layer method, the fidelity measures, and the engine itself. The command
#: line, plots, derivations and testing helpers are left out: no result depends on them.
CODE_FILES = (
    "_checks.py", "adjust.py", "calibrate.py",
    "theory/discrete.py", "theory/norms.py",
    "convert/network.py", "convert/graph.py", "convert/simulate.py", "convert/_plan.py",
    "convert/_kernels.py", "convert/balance.py",
    "convert/fidelity.py", "convert/diagnostics.py", "convert/first_layer.py",
    "experiment/arms.py", "experiment/tasks.py",
)


@lru_cache(maxsize=1)
def code_version() -> str:
    """sha256 of the library sources in :data:`CODE_FILES` (names and bytes).

    Every key made by :func:`task_key` includes it: editing the simulator, a kernel or a
    first-layer method gives new keys, so no cached result of the old code is reused.
    The value is computed once per process.
    """
    h = hashlib.sha256()
    for name in CODE_FILES:
        path = _ROOT / name
        h.update(name.encode() + b"\0")
        if path.is_file():
            h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def _update(h, value) -> None:
    """Feed one value to a hash: arrays by dtype, shape and bytes; sequences item by item."""
    if isinstance(value, np.ndarray):
        a = np.ascontiguousarray(value)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    elif isinstance(value, (list, tuple)):
        h.update(b"[")
        for v in value:
            _update(h, v)
        h.update(b"]")
    else:
        h.update(repr(value).encode())
    h.update(b";")


def digest_arrays(*values) -> str:
    """sha256 (hex) of values hashed as :func:`task_key` does, without the code version.

    Parameters
    ----------
    *values
        Arrays (hashed by dtype, shape and bytes), lists and tuples (item by item), or
        other values (by their ``repr``).

    Returns
    -------
    str
        64 hex digits.
    """
    h = hashlib.sha256()
    for v in values:
        _update(h, v)
    return h.hexdigest()


def network_digest(net) -> str:
    """sha256 of a network: input shape, and every layer's kind and attributes (arrays by bytes).

    Parameters
    ----------
    net : Network
        Any object with ``input_shape`` and ``layers`` (each with a ``kind``).

    Returns
    -------
    str
        64 hex digits (no code version: equal networks give equal digests).
    """
    h = hashlib.sha256()
    _update(h, tuple(net.input_shape))
    for lay in net.layers:
        _update(h, lay.kind)
        for name in sorted(vars(lay)):
            _update(h, name)
            _update(h, getattr(lay, name))
    return h.hexdigest()


def task_key(kind: str, *parts) -> str:
    """The key of one task: sha256 of the code version, its kind and its parts.

    Parameters
    ----------
    kind : str
        What the task computes (``"sim"``, ``"pred"``, ``"fidelity"``, ``"arm"``, ...).
    *parts
        Everything else the result depends on: arrays (hashed by dtype, shape and bytes),
        numbers, strings, and dicts (hashed as canonical JSON with sorted keys).

    Returns
    -------
    str
        64 hex digits.
    """
    h = hashlib.sha256()
    _update(h, code_version())
    _update(h, str(kind))
    for p in parts:
        if isinstance(p, dict):
            p = json.dumps(p, sort_keys=True, default=str)
        _update(h, p)
    return h.hexdigest()

"""Atomic, non-overwriting writes: :func:`l4theory._io.atomic_write`, re-exported here."""

from __future__ import annotations

from ..._io import atomic_write

__all__ = ["atomic_write"]

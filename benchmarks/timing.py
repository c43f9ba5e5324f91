"""Timing helpers shared by the benchmark workloads (not timed tests)."""

from __future__ import annotations

import time

__all__ = ["interleaved"]


def interleaved(impls, rounds, cold=()):
    """Warm every implementation up, then time them round-robin; ``{name: [s, ...]}``.

    Interleaving spreads a shared machine's load swings over all implementations, so the
    ratios of their medians are meaningful even when the absolute times are not. Names in
    ``cold`` (e.g. an external binary, nothing to compile or cache) skip the warm-up.
    """
    for k, fn in impls.items():
        if k not in cold:
            fn()
    times = {k: [] for k in impls}
    for _ in range(rounds):
        for k, fn in impls.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return times

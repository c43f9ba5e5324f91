"""Choosing a threshold scale (and r_s) on selection images: one tie rule, no edge choices.

Ties go to the first candidate in the order given: the lower threshold scale, and the
first listed ``r_s`` (list the weaker corrections first to give ties to them).
:func:`extend_to_interior` keeps running the next grid value while a series' best sits on
the edge of what ran, so a choice is never an artefact of the grid's range.
"""

from __future__ import annotations

import numpy as np

__all__ = ["best_index", "edge", "extend_to_interior", "select_best"]


def select_best(acc) -> tuple:
    """Index of the largest entry of ``acc`` (any shape); ties go to the first in C order.

    Parameters
    ----------
    acc : array_like
        Accuracies (any shape; NaN entries are skipped).

    Returns
    -------
    tuple of int
        The index, one entry per axis of ``acc``.

    Raises
    ------
    ValueError
        ``acc`` is empty or all NaN.
    """
    acc = np.asarray(acc, dtype=np.float64)
    if acc.size == 0 or np.isnan(acc).all():
        raise ValueError("nothing to select from")
    return tuple(int(i) for i in np.unravel_index(int(np.nanargmax(acc)), acc.shape))


def best_index(acc) -> int:
    """Index of the best of a 1-d sequence of accuracies (ties: the first).

    Parameters
    ----------
    acc : array_like
        Accuracies (flattened).

    Returns
    -------
    int
        Index of the largest entry.
    """
    return select_best(np.asarray(acc, np.float64).ravel())[0]


def edge(j: int, n: int) -> str | None:
    """``"low"``/``"high"`` when index ``j`` is the first/last of ``n`` grid values, else None.

    Parameters
    ----------
    j : int
        Index in the grid.
    n : int
        Number of grid values.

    Returns
    -------
    str or None
        ``"low"`` for ``j == 0``, ``"high"`` for ``j == n - 1``, None otherwise.
    """
    return "low" if j == 0 else ("high" if j == n - 1 else None)


def extend_to_interior(grid, series, got: dict, run, key=lambda s: s) -> dict:
    """Run each series at the next ``grid`` value while its best in ``got`` is on an edge.

    Parameters
    ----------
    grid : sequence of float
        Every value that may run (sorted here).
    series : sequence
        The series (e.g. arms).
    got : dict
        ``{(key(series), value): correctness array (seeds, images)}`` of what ran.
    run : callable
        ``run(pairs)`` with a list of new ``(series, value)`` returns the same kind of dict.
    key : callable
        Hashable name of a series in ``got``.

    Returns
    -------
    dict
        ``got`` with the extra runs; each series' best (ties: the lower value) has both
        grid neighbours run, or sits at the end of the grid.
    """
    grid = sorted(grid)
    while True:
        new = []
        for s in series:
            by = {v: got[(k, v)].mean(axis=0).mean() for k, v in sorted(got, key=lambda x: x[1])
                  if k == key(s)}
            i = grid.index(max(by, key=by.get))
            new += [(s, grid[j]) for j in (i - 1, i + 1)
                    if 0 <= j < len(grid) and grid[j] not in by]
        if not new:
            return got
        got = {**got, **run(new)}

"""Seeded, disjoint image splits: calibration, selection, further training blocks, test.

Like scikit-learn's splitters, each function returns sorted ``int64`` index arrays from a
seed, and one permutation of the training set serves every split of an experiment, so a
larger request only appends images and never reshuffles those already used.
"""

from __future__ import annotations

import numpy as np

__all__ = ["blocks", "disjoint_subsets", "folds", "heldout_blocks", "split_indices"]


def disjoint_subsets(n_total: int, sizes, rng) -> list[np.ndarray]:
    """Disjoint random subsets of ``range(n_total)`` of the given sizes (each sorted).

    Parameters
    ----------
    n_total : int
        Number of samples to draw from.
    sizes : sequence of int
        Size of each subset (they add up to at most ``n_total``).
    rng : numpy.random.Generator
        One ``permutation(n_total)`` is drawn; subset ``k`` is its next ``sizes[k]`` entries.

    Returns
    -------
    list of numpy.ndarray
        One sorted index array per size, shape ``(sizes[k],)``.

    Raises
    ------
    ValueError
        The sizes add up to more than ``n_total``.
    """
    need = sum(sizes)
    if need > n_total:
        raise ValueError(f"the requested subsets need {need} samples but only {n_total} exist")
    perm = rng.permutation(n_total)
    out, k = [], 0
    for s in sizes:
        out.append(np.sort(perm[k:k + s]))
        k += s
    return out


def blocks(n: int, size: int | None) -> list[tuple[int, int]]:
    """``[lo, hi)`` blocks covering ``range(n)``, ``size`` each (None: one block).

    Parameters
    ----------
    n : int
        Number of items.
    size : int or None
        Items per block (the last block may be shorter); None puts all in one block.

    Returns
    -------
    list of (int, int)
        The ``(lo, hi)`` bounds, in order.
    """
    size = n if size is None else size
    return [(lo, min(n, lo + size)) for lo in range(0, n, size)]


def split_indices(subset_seed: int, n_calib: int, n_select: int, n_test: int | None,
                  n_train: int = 60_000, n_test_total: int = 10_000,
                  n_pilot: int = 0) -> dict:
    """Disjoint calibration, selection and pilot subsets of the training set; a test subset.

    Parameters
    ----------
    subset_seed : int
        Seed of the draws (``numpy.random.default_rng``).
    n_calib, n_select : int
        Sizes of the calibration (balancing, first-layer fits) and selection subsets.
    n_test : int or None
        Test subset size (None or >= ``n_test_total``: the whole test set).
    n_train, n_test_total : int
        Sizes of the training and test sets.
    n_pilot : int
        Size of a third training subset, disjoint from the other two (the images right
        after the selection subset in the permutation).

    Returns
    -------
    dict
        ``calib``, ``select``, ``pilot`` (training indices), ``test`` (test indices),
        sorted int64.
    """
    if n_calib < 1 or n_select < 1 or n_pilot < 0 or n_calib + n_select + n_pilot > n_train:
        raise ValueError(f"n_calib={n_calib}, n_select={n_select} must be >= 1 and fit in "
                         f"{n_train} training images")
    rng = np.random.default_rng(subset_seed)
    perm = rng.permutation(n_train)
    out = {"calib": np.sort(perm[:n_calib]),
           "select": np.sort(perm[n_calib:n_calib + n_select]),
           "pilot": np.sort(perm[n_calib + n_select:n_calib + n_select + n_pilot])}
    if n_test is None or n_test >= n_test_total:
        out["test"] = np.arange(n_test_total)
    else:
        out["test"] = np.sort(rng.permutation(n_test_total)[:n_test])
    return {k: v.astype(np.int64) for k, v in out.items()}


def heldout_blocks(subset_seed: int, start: int, n: int, block: int,
                   n_train: int = 60_000) -> list[np.ndarray]:
    """Training indices ``perm[start : start + n]`` in blocks of ``block`` (each sorted).

    ``perm`` is the permutation of :func:`split_indices` for ``subset_seed``, whose first
    ``start`` entries are its calibration, selection and pilot subsets, so the blocks are
    disjoint from all three, and a larger ``n`` only appends blocks.

    Parameters
    ----------
    subset_seed : int
        Seed of the permutation (as given to :func:`split_indices`).
    start : int
        Entries of the permutation to skip (``n_calib + n_select + n_pilot``).
    n : int
        Number of held-out images (>= 0).
    block : int
        Images per block (>= 1; the last block may be shorter).
    n_train : int
        Size of the training set.

    Returns
    -------
    list of numpy.ndarray
        Sorted ``int64`` training indices, one array per block.

    Raises
    ------
    ValueError
        The images do not fit in the training set, or ``n < 0`` or ``block < 1``.
    """
    if n < 0 or block < 1 or start + n > n_train:
        raise ValueError(f"n={n} held-out images after the first {start} do not fit in "
                         f"{n_train} training images (block={block})")
    perm = np.random.default_rng(subset_seed).permutation(n_train)[start:start + n]
    return [np.sort(perm[i:i + block]).astype(np.int64) for i in range(0, n, block)]


def folds(n: int, k: int, seed: int) -> list[np.ndarray]:
    """``k`` disjoint folds of ``range(n)`` from one seeded permutation (each sorted).

    Fold ``j`` is ``sort(perm[j * n // k : (j + 1) * n // k])`` of
    ``numpy.random.default_rng(seed).permutation(n)``; the folds cover ``range(n)``.
    Used to cross-fit networks: network ``j`` trains on every image outside fold ``j``
    and is evaluated only on fold ``j`` (and on the test set).

    Parameters
    ----------
    n : int
        Number of samples (>= k).
    k : int
        Number of folds (>= 2).
    seed : int
        Seed of the permutation.

    Returns
    -------
    list of numpy.ndarray
        ``k`` sorted ``int64`` index arrays.

    Raises
    ------
    ValueError
        ``k < 2`` or ``n < k``.
    """
    if k < 2 or n < k:
        raise ValueError(f"k={k} folds of n={n} samples: need 2 <= k <= n")
    perm = np.random.default_rng(seed).permutation(n)
    return [np.sort(perm[j * n // k:(j + 1) * n // k]).astype(np.int64) for j in range(k)]

"""The one result cache and the one way results reach the disk.

:class:`TaskCache` keeps each finished task as ``<folder>/<key>.npz`` (keys from
:func:`l4theory.experiment.keys.task_key`), read back with ``allow_pickle=False``;
:func:`write_json` and :func:`write_npz` write result files. All three go through
:func:`l4theory._io.atomic_write` (a temporary file in the target folder,
then moved into place), so a reader never sees half a file and two processes finishing the
same task cannot interleave their writes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .._io import atomic_write

__all__ = ["TaskCache", "json_default", "write_json", "write_npz"]


def json_default(v):
    """JSON encoder fallback: NumPy scalars and arrays as Python values.

    Parameters
    ----------
    v : object
        A value that ``json.dumps`` cannot encode itself.

    Returns
    -------
    object
        ``v.item()`` for a NumPy scalar, ``v.tolist()`` for an array.

    Raises
    ------
    TypeError
        ``v`` is neither.
    """
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


def write_json(path, doc: dict, *, overwrite: bool = True) -> Path:
    """Write ``doc`` as indented JSON atomically.

    Parameters
    ----------
    path : path-like
        Target file; its folder is created if missing.
    doc : dict
        JSON types, NumPy scalars or arrays.
    overwrite : bool
        Replace an existing file (a result being updated); False raises
        ``FileExistsError`` instead (a user's file named on the command line).

    Returns
    -------
    pathlib.Path
        The file written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(doc, indent=1, default=json_default) + "\n"
    return atomic_write(path, lambda fh: fh.write(text.encode()), overwrite)


def write_npz(path, arrays: dict, *, compress: bool = True, overwrite: bool = True) -> Path:
    """Write arrays to an ``.npz`` file atomically (no object arrays: no pickle on reading).

    Parameters
    ----------
    path : path-like
        Target file; its folder is created if missing.
    arrays : dict
        ``{name: array_like}``; each value is stored as ``numpy.asarray(value)``.
    compress : bool
        Compress the file (``numpy.savez_compressed``).
    overwrite : bool
        Replace an existing file; False raises ``FileExistsError`` instead.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save = np.savez_compressed if compress else np.savez
    return atomic_write(path, lambda fh: save(fh, **{k: np.asarray(v) for k, v in
                                                       arrays.items()}), overwrite)


class TaskCache:
    """Finished task results as ``<folder>/<key>.npz`` (atomic writes, no pickle).

    Parameters
    ----------
    folder : path-like
        Created on the first write.
    names : sequence of str, optional
        The arrays every result holds; a file with other names counts as absent (a result
        of another kind of task, or of an older layout). Default: any names.
    compress : bool
        Compress the files (``numpy.savez_compressed``).
    """

    def __init__(self, folder, names=None, *, compress: bool = False):
        self.folder = Path(folder)
        self.names = None if names is None else tuple(names)
        self.compress = compress

    def path(self, key: str) -> Path:
        """File of one key.

        Parameters
        ----------
        key : str
            A task key (:func:`~l4theory.experiment.keys.task_key`).

        Returns
        -------
        pathlib.Path
            ``<folder>/<key>.npz`` (whether it exists or not).
        """
        return self.folder / f"{key}.npz"

    def get(self, key: str) -> dict | None:
        """The stored result, or None when absent or unreadable.

        Parameters
        ----------
        key : str
            A task key.

        Returns
        -------
        dict or None
            ``{name: numpy.ndarray}``; None when the file is missing, unreadable, or holds
            other names than ``names``.
        """
        p = self.path(key)
        if not p.is_file():
            return None
        try:
            with np.load(p, allow_pickle=False) as f:
                if self.names is not None and set(f.files) != set(self.names):
                    return None
                return {k: f[k] for k in f.files}
        except (OSError, ValueError, EOFError):
            return None

    def put(self, key: str, result: dict) -> None:
        """Store a result atomically (replacing a stale file of the same key).

        Parameters
        ----------
        key : str
            A task key.
        result : dict
            ``{name: array_like}``; only ``names`` are stored when they are set (all of
            them must be present).
        """
        names = self.names if self.names is not None else tuple(result)
        write_npz(self.path(key), {k: result[k] for k in names}, compress=self.compress)

    def cached(self, key: str, compute) -> dict:
        """The result of ``key``: from the cache, else ``compute()`` stored and returned.

        Parameters
        ----------
        key : str
            A task key.
        compute : callable
            ``compute()`` returns the result (a dict of arrays) when it is not cached.

        Returns
        -------
        dict
            The cached result (arrays read back), or the one ``compute()`` returned.
        """
        hit = self.get(key)
        if hit is not None:
            return hit
        out = compute()
        self.put(key, out)
        return out

"""Atomic, non-overwriting writes: a temp file in the target folder, then linked into place."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write"]


def atomic_write(path, write: Callable, overwrite: bool) -> Path:
    """Call ``write(fileobj)`` on a temporary file, then move it to ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        The target file; its folder must exist.
    write : callable
        ``write(fh)`` writes the whole content to the binary file object ``fh``.
    overwrite : bool
        Replace an existing ``path`` (``os.replace``). Otherwise the temp file is
        hard-linked to ``path``, which fails if ``path`` exists, even if it appeared
        while writing: a user's file is never replaced silently.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    FileExistsError
        ``path`` exists and ``overwrite`` is False (nothing is written).
    FileNotFoundError
        The folder of ``path`` does not exist.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.chmod(tmp, 0o644)
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if path appeared meanwhile
            except FileExistsError:
                raise FileExistsError(
                    f"{path} exists; pass overwrite=True to replace it"
                ) from None
            os.unlink(tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path

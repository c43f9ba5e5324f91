"""Atomic file writes: the project's one writer.

A temporary file in the target folder is written, then moved into place; a user's file
is never replaced unless asked to. Files the toolkit writes go through
:func:`atomic_write` (or its text and bytes forms): a reader never sees a half-written
file, a failed write leaves nothing behind, and concurrent writers (processes or
threads) never share a temporary file, because its name holds the process id and a
random suffix (``.<name>.<pid>.<random>.tmp``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text"]


def atomic_write(path, write: Callable, overwrite: bool = False) -> Path:
    """Call ``write(fileobj)`` on a temporary file, then move it to ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        The target file; its folder must exist.
    write : callable
        ``write(fh)`` writes the whole content to the binary file object ``fh``.
    overwrite : bool
        Replace an existing ``path`` (``os.replace``, atomic). Otherwise (the default) the
        temporary file is hard-linked to ``path``, which fails if ``path`` exists, even if
        it appeared while writing: a user's file is never replaced silently.

    Returns
    -------
    pathlib.Path
        ``path``.

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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                               dir=path.parent)
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


def atomic_write_bytes(path, data: bytes, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically; see :func:`atomic_write`.

    Parameters
    ----------
    path : str or os.PathLike
    data : bytes
    overwrite : bool
        Replace an existing file (default: refuse with :class:`FileExistsError`).

    Returns
    -------
    pathlib.Path
    """
    return atomic_write(path, lambda fh: fh.write(data), overwrite)


def atomic_write_text(path, text: str, overwrite: bool = False, *,
                      encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; see :func:`atomic_write`.

    Parameters
    ----------
    path : str or os.PathLike
    text : str
    overwrite : bool
        Replace an existing file (default: refuse with :class:`FileExistsError`).
    encoding : str
        Text encoding.

    Returns
    -------
    pathlib.Path
    """
    return atomic_write(path, lambda fh: fh.write(text.encode(encoding)), overwrite)

"""Read and write ``.npz`` weight archives without unpickling and without trusting headers.

The reader does not call ``numpy.load`` on the archive: it walks the zip directory itself
and, for every member, reads the ``.npy`` magic and header (``numpy.lib.format``), checks
the dtype (no objects, no structured or subarray dtypes), the shape, and that
``prod(shape) * itemsize`` (Python ints, checked) equals the member's uncompressed size
minus its header, and that the compressed bytes can hold that many bytes, all before it
allocates the array. Fortran-order members are read correctly (returned C-ordered).
The spec is an entry ``__l4theory_spec__`` holding UTF-8 JSON bytes as a uint8 array.
"""

from __future__ import annotations

import struct
import tokenize
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from ._atomic import atomic_write
from .safetensors import MAX_FILE_BYTES
from .spec import SPEC_KEY

__all__ = ["NPZ_SPEC_KEY", "read_npz", "write_npz"]

NPZ_SPEC_KEY = "__l4theory_spec__"
_NPY_MAGIC = b"\x93NUMPY"
#: Deflate expands at most about 1032:1, so no honest member decompresses to more.
_MAX_DEFLATE_RATIO = 1032
#: What the zip layer raises on corrupt archives (all turned into ValueError).
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError,
               RuntimeError, UnicodeDecodeError, struct.error, OverflowError)
_HEADER_READERS = {(1, 0): npy_format.read_array_header_1_0,
                   (2, 0): npy_format.read_array_header_2_0}


def _header(f, where: str):
    """Magic, version and header of one member: ``(shape, fortran_order, dtype)``."""
    magic = f.read(len(_NPY_MAGIC))
    if magic != _NPY_MAGIC:
        raise ValueError(f"{where} is not a .npy array (no NPY magic; starts {magic!r})")
    version = tuple(f.read(2))
    if version not in _HEADER_READERS:
        raise ValueError(f"{where}: .npy format version {version} is not supported "
                         "(only 1.0 and 2.0)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # Python-2 era header, re-parsed
            shape, fortran, dtype = _HEADER_READERS[version](f)
    except (ValueError, TypeError, SyntaxError, OverflowError, RecursionError,
            tokenize.TokenError) as exc:  # numpy re-tokenizes unparsable headers
        raise ValueError(f"{where}: invalid .npy header ({exc})") from None
    if dtype.hasobject:
        raise ValueError(f"{where}: dtype {dtype} holds Python objects, which needs "
                         "unpickling; refused")
    if dtype.names is not None or dtype.subdtype is not None or dtype.itemsize == 0:
        raise ValueError(f"{where}: structured, subarray or empty dtype {dtype} is not "
                         "supported")
    if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape):
        raise ValueError(f"{where}: shape {shape} must hold non-negative ints")
    return shape, fortran, dtype


def _checked_nbytes(shape, itemsize: int, limit: int) -> int:
    """``prod(shape) * itemsize``, or ``limit + 1`` as soon as the product exceeds ``limit``."""
    n = itemsize
    for s in shape:
        n *= s
        if n > limit:
            return limit + 1
    return n


def _capacity(info: zipfile.ZipInfo, where: str) -> int:
    """The most bytes the member's compressed data can honestly decompress to."""
    if info.flag_bits & 0x1:
        raise ValueError(f"{where} is encrypted")
    if info.compress_type == zipfile.ZIP_STORED:
        return info.compress_size
    if info.compress_type == zipfile.ZIP_DEFLATED:
        return info.compress_size * _MAX_DEFLATE_RATIO + 1024
    raise ValueError(f"{where}: compression method {info.compress_type} is not supported "
                     "(only stored and deflated, as numpy.savez/savez_compressed write)")


def _read_exact(f, nbytes: int, where: str) -> bytearray:
    """Read exactly ``nbytes`` into one preallocated buffer; refuse short or long data."""
    buf = bytearray(nbytes)
    view, pos = memoryview(buf), 0
    while pos < nbytes:
        chunk = f.read(min(nbytes - pos, 1 << 24))
        if not chunk:
            raise ValueError(f"{where}: data ends after {pos} of {nbytes} bytes")
        view[pos:pos + len(chunk)] = chunk
        pos += len(chunk)
    if f.read(1):  # also makes zipfile check the CRC
        raise ValueError(f"{where}: bytes after the array data")
    return buf


def _read_member(z: zipfile.ZipFile, info: zipfile.ZipInfo, where: str,
                 budget: int) -> np.ndarray:
    """One validated member as a native-endian C-order array of at most ``budget`` bytes."""
    capacity = _capacity(info, where)
    with z.open(info) as f:
        shape, fortran, dtype = _header(f, where)
        avail = info.file_size - f.tell()
        limit = max(avail, MAX_FILE_BYTES)
        nbytes = _checked_nbytes(shape, dtype.itemsize, limit)
        if nbytes != avail:
            need = f"more than {limit}" if nbytes > limit else str(nbytes)
            raise ValueError(f"{where}: shape {shape} of {dtype} needs {need} bytes, but the "
                             f"member holds {avail} after its header (corrupt or lying header)")
        if nbytes > min(capacity, budget):
            raise ValueError(f"{where}: {nbytes} bytes of data cannot come from "
                             f"{info.compress_size} compressed bytes or exceed the limit")
        buf = _read_exact(f, nbytes, where)
    arr = np.frombuffer(buf, dtype=dtype, count=nbytes // dtype.itemsize)
    arr = arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)
    native = dtype if dtype.isnative else dtype.newbyteorder("=")
    return np.asarray(arr, dtype=native, order="C")  # a copy only if Fortran or byte-swapped


def _members(z: zipfile.ZipFile, path: Path) -> dict:
    """``{key: ZipInfo}`` with numpy's keys (``.npy`` stripped); refuse duplicate keys."""
    out = {}
    for info in z.infolist():
        name = info.filename
        key = name[:-4] if name.endswith(".npy") else name
        if key in out:
            raise ValueError(f"{path}: two members are both named {key!r}")
        out[key] = info
    return out


def read_npz(path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read an ``.npz`` archive, validating every member before allocating it.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    tensors : dict of str to numpy.ndarray
        Native-endian C-order arrays keyed like ``numpy.load`` (``.npy`` stripped).
    metadata : dict
        ``{"l4theory_spec": json_text}`` if the archive holds a spec entry.

    Raises
    ------
    ValueError
        Not a zip archive (or a single ``.npy``), a member without the NPY magic, an
        invalid header, an object, structured or subarray dtype, a header whose shape
        needs more or fewer bytes than the member holds, unsupported compression or
        encryption, or a corrupt archive. The message names the file and the member.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        if fh.read(len(_NPY_MAGIC)) == _NPY_MAGIC:
            raise ValueError(f"{path}: a single .npy array, not an npz archive")
        fh.seek(0)
        tensors, budget = {}, MAX_FILE_BYTES
        try:
            with zipfile.ZipFile(fh) as z:
                for key, info in _members(z, path).items():
                    where = f"{path}: member {info.filename!r}"
                    tensors[key] = _read_member(z, info, where, budget)
                    budget -= tensors[key].nbytes
        except _ZIP_ERRORS as exc:
            raise ValueError(f"{path}: not a valid npz archive ({type(exc).__name__}: "
                             f"{exc})") from None
    return tensors, _spec_of(tensors, path)


def _spec_of(tensors: dict, path: Path) -> dict:
    """Pop the spec entry from ``tensors``: ``{"l4theory_spec": text}`` or ``{}``."""
    if NPZ_SPEC_KEY not in tensors:
        return {}
    raw = tensors.pop(NPZ_SPEC_KEY)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ValueError(f"{path}: {NPZ_SPEC_KEY} must be a 1-D uint8 array of UTF-8 JSON")
    try:
        return {SPEC_KEY: raw.tobytes().decode("utf-8")}
    except UnicodeDecodeError:
        raise ValueError(f"{path}: {NPZ_SPEC_KEY} is not UTF-8") from None


def write_npz(path, tensors: dict, metadata: dict | None = None, *,
              overwrite: bool = False) -> Path:
    """Write arrays (and the spec, if ``metadata`` holds one) to an ``.npz`` archive.

    Parameters
    ----------
    path : str or os.PathLike
    tensors : dict of str to array_like
        Arrays of any non-object dtype.
    metadata : dict of str to str, optional
        Only the ``"l4theory_spec"`` entry is stored (as ``__l4theory_spec__``).
    overwrite : bool
        Replace an existing file (otherwise :class:`FileExistsError`).

    Returns
    -------
    pathlib.Path
    """
    arrays = {}
    for k, v in tensors.items():
        a = np.asarray(v)
        if a.dtype.hasobject:
            raise ValueError(f"tensor {k!r} has dtype object; refusing to pickle")
        arrays[k] = a
    if metadata and SPEC_KEY in metadata:
        arrays[NPZ_SPEC_KEY] = np.frombuffer(metadata[SPEC_KEY].encode("utf-8"), dtype=np.uint8)
    return atomic_write(Path(path), lambda fh: np.savez(fh, **arrays), overwrite)

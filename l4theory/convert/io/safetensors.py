"""A small validated reader and writer for the safetensors format, in pure Python.

Layout of a file: an 8-byte little-endian header length ``N``, ``N`` bytes of UTF-8 JSON
(the header: ``{name: {"dtype", "shape", "data_offsets": [begin, end]}}`` plus an optional
``"__metadata__"`` mapping strings to strings), then the data section of raw little-endian
C-order tensor bytes. Offsets are relative to the data section, and the tensors must tile
it exactly: sorted by offset, the first starts at 0, each starts where the previous one
ends, the last ends at the end of the file (no gaps, no overlap, no unused bytes).

The reader checks all of this against the file's length before it allocates anything,
then reads tensor by tensor straight into its output arrays (memory: the tensors, once).
It exists so that the core install (no extras) reads safetensors, decodes BF16, returns
the metadata in the same call and names the tensor in every error.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._atomic import atomic_write

__all__ = ["MAX_FILE_BYTES", "MAX_HEADER_BYTES", "read_safetensors", "write_safetensors"]

#: Refuse safetensors headers above this size (the reference implementation uses 100 MB).
MAX_HEADER_BYTES = 100_000_000
#: Refuse weight files above this size.
MAX_FILE_BYTES = 2**34

_ST_DTYPES = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"), "U8": np.dtype("u1"), "U16": np.dtype("<u2"),
    "U32": np.dtype("<u4"), "U64": np.dtype("<u8"), "BOOL": np.dtype("u1"),
    "BF16": np.dtype("<u2"),  # decoded to float32
}
_NP_TO_ST = {np.dtype(v).newbyteorder("<"): k for k, v in _ST_DTYPES.items()
             if k not in ("BF16", "BOOL")}
_NP_TO_ST[np.dtype("?")] = "BOOL"


@dataclass(frozen=True)
class _Entry:
    """One tensor of the header, validated: dtype code, shape, offsets in the data section."""

    name: str
    dtype: str
    shape: tuple
    begin: int
    end: int


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        dup = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"duplicate keys {dup}")
    return dict(pairs)


def _read_header(fh, size: int, path: Path) -> tuple[dict, int]:
    """The parsed JSON header and its length, checked against the file ``size``."""
    raw_len = fh.read(8)
    if len(raw_len) < 8:
        raise ValueError(f"{path}: too short for a safetensors file ({size} bytes)")
    (hlen,) = struct.unpack("<Q", raw_len)
    if hlen > MAX_HEADER_BYTES:
        raise ValueError(
            f"{path}: header length {hlen} exceeds the limit of {MAX_HEADER_BYTES} bytes")
    if 8 + hlen > size:
        raise ValueError(f"{path}: header length {hlen} runs past the end of the file "
                         f"({size} bytes; truncated?)")
    try:
        header = json.loads(fh.read(hlen).decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValueError(f"{path}: header is not valid UTF-8 JSON ({exc})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: header must be a JSON object")
    return header, hlen


def _entry(name: str, info, data_len: int, path: Path) -> _Entry:
    """Validate one header entry against the data section length ``data_len`` (bytes)."""
    where = f"{path}: tensor {name!r}"
    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        raise ValueError(f"{where}: entry must have exactly dtype, shape, data_offsets")
    dt, shape, offs = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(dt, str) or dt not in _ST_DTYPES:
        raise ValueError(f"{where}: unsupported dtype {dt!r} (known: {sorted(_ST_DTYPES)})")
    if not isinstance(shape, list) or not all(_is_int(s) and s >= 0 for s in shape):
        raise ValueError(f"{where}: shape must be a list of non-negative ints, got {shape!r}")
    if not (isinstance(offs, list) and len(offs) == 2 and all(_is_int(o) for o in offs)):
        raise ValueError(f"{where}: data_offsets must be [begin, end], got {offs!r}")
    begin, end = offs
    if not 0 <= begin <= end <= data_len:
        raise ValueError(f"{where}: data_offsets {offs} outside the data section of "
                         f"{data_len} bytes (truncated file or corrupt header)")
    itemsize, count, limit = _ST_DTYPES[dt].itemsize, 1, max(data_len, MAX_FILE_BYTES)
    for s in shape:  # checked product: stop as soon as it exceeds any possible file
        count *= s
        if count * itemsize > limit:
            break
    nbytes = count * itemsize
    if nbytes != end - begin:
        need = f"more than {limit}" if nbytes > limit else str(nbytes)
        raise ValueError(f"{where}: shape {shape} of {dt} needs {need} bytes but "
                         f"data_offsets span {end - begin}")
    return _Entry(name, dt, tuple(shape), begin, end)


def _check_tiling(entries: list, data_len: int, path: Path) -> list:
    """Sort ``entries`` by offset; refuse overlaps, gaps and unused trailing bytes."""
    entries = sorted(entries, key=lambda e: (e.begin, e.end))
    pos = 0
    for e in entries:
        if e.begin < pos:
            raise ValueError(f"{path}: tensor {e.name!r} overlaps the previous tensor")
        if e.begin > pos:
            raise ValueError(f"{path}: bytes {pos}..{e.begin} of the data section before "
                             f"tensor {e.name!r} belong to no tensor (the format forbids "
                             "gaps)")
        pos = e.end
    if pos != data_len:
        raise ValueError(f"{path}: the last {data_len - pos} bytes of the data section "
                         "belong to no tensor (the format forbids unused bytes)")
    return entries


def _read_tensor(fh, base: int, e: _Entry, path: Path) -> np.ndarray:
    """Read one validated tensor at ``base + e.begin`` into a fresh native-endian array."""
    dt = _ST_DTYPES[e.dtype]
    arr = np.empty(e.shape, dtype=dt)
    fh.seek(base + e.begin)
    got = fh.readinto(arr.reshape(-1).view(np.uint8)) if arr.size else 0
    if got != e.end - e.begin:
        raise ValueError(f"{path}: tensor {e.name!r}: file ended while reading "
                         f"({got} of {e.end - e.begin} bytes)")
    if e.dtype == "BF16":
        return (arr.astype(np.uint32) << 16).view(np.float32)
    if e.dtype == "BOOL":
        return arr != 0
    if not dt.isnative:  # big-endian host
        arr = arr.byteswap().view(dt.newbyteorder("="))
    return arr


def read_safetensors(path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read a safetensors file, validating it against its length first.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    tensors : dict of str to numpy.ndarray
        Native-endian, writable arrays that own their data (BF16 decoded to float32).
    metadata : dict of str to str
        The header's ``__metadata__`` (empty if absent).

    Raises
    ------
    ValueError
        Truncated file, header length beyond the file or above 100 MB, invalid JSON or
        duplicate keys, unknown dtype, negative or non-integer shapes, offsets outside the
        data section, a byte count that does not match the shape, overlapping tensors, or
        bytes of the data section that belong to no tensor. The message names the file
        and, where there is one, the tensor.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > MAX_FILE_BYTES:
            raise ValueError(f"{path}: {size} bytes exceed the limit of {MAX_FILE_BYTES}")
        header, hlen = _read_header(fh, size, path)
        metadata = header.pop("__metadata__", None)
        metadata = {} if metadata is None else metadata
        if not isinstance(metadata, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise ValueError(f"{path}: __metadata__ must map strings to strings")
        data_len = size - 8 - hlen
        entries = [_entry(name, info, data_len, path) for name, info in header.items()]
        entries = _check_tiling(entries, data_len, path)
        tensors = {e.name: _read_tensor(fh, 8 + hlen, e, path) for e in entries}
    return {name: tensors[name] for name in header}, dict(metadata)


def _st_dtype(name: str, arr: np.ndarray) -> tuple[str, np.dtype]:
    le = arr.dtype.newbyteorder("<") if arr.dtype.byteorder not in ("|", "<") else arr.dtype
    if le not in _NP_TO_ST:
        raise ValueError(f"tensor {name!r}: dtype {arr.dtype} cannot be stored in safetensors")
    return _NP_TO_ST[le], le


def write_safetensors(path, tensors: dict, metadata: dict | None = None, *,
                      overwrite: bool = False) -> Path:
    """Write arrays to a safetensors file (tensors sorted by name, tiling the data section).

    Parameters
    ----------
    path : str or os.PathLike
    tensors : dict of str to array_like
        Numeric or bool arrays (stored little-endian, C order).
    metadata : dict of str to str, optional
        Stored as ``__metadata__``.
    overwrite : bool
        Replace an existing file (otherwise :class:`FileExistsError`).

    Returns
    -------
    pathlib.Path
    """
    if metadata is not None and not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise ValueError("metadata must map strings to strings")
    header: dict = {"__metadata__": dict(metadata)} if metadata else {}
    arrays, offset = [], 0
    for name in sorted(tensors):
        if not isinstance(name, str) or name == "__metadata__":
            raise ValueError(f"invalid tensor name {name!r}")
        arr = np.asarray(tensors[name])
        code, le = _st_dtype(name, arr)
        header[name] = {"dtype": code, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + arr.nbytes]}
        arrays.append((arr, le))
        offset += arr.nbytes
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hbytes += b" " * (-len(hbytes) % 8)

    def write(fh):
        fh.write(struct.pack("<Q", len(hbytes)))
        fh.write(hbytes)
        for arr, le in arrays:  # one tensor at a time: no copy of the whole file in memory
            fh.write(np.ascontiguousarray(arr, dtype=le).reshape(-1).view(np.uint8).data)

    return atomic_write(Path(path), write, overwrite)


"""Property: mutated headers of small valid files load cleanly or raise ``ValueError``.

Never MemoryError, OverflowError, struct.error, KeyError, UnicodeDecodeError, ... and never
an allocation beyond what the file can hold (traced with tracemalloc). Runs without any
optional package; the hypothesis profile (tests/conftest.py) is deterministic.
"""

import io as pyio
import json
import re
import struct
import tempfile
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from l4theory.convert import io

from .helpers import write_zip

TENSORS = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([1.5, -2.0]),
           "i": np.array([[1, 2]], np.int16)}
_DIR = Path(tempfile.mkdtemp(prefix="l4theory-mutations-"))
_ST = _DIR / "base.safetensors"
io.write_safetensors(_ST, TENSORS, {"l4theory_spec": "{}", "k": "v"})
ST_BLOB = _ST.read_bytes()
ST_HLEN = struct.unpack("<Q", ST_BLOB[:8])[0]
PEAK_LIMIT = 4_000_000  # bytes: far above these files' tensors, far below any lie


def _check(read, path: Path, max_bytes: int):
    """Run ``read(path)``; a result must be sane and no allocation may exceed the limit."""
    tracemalloc.start()
    try:
        try:
            result = read(path)
        except ValueError:
            result = None
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < PEAK_LIMIT  # refusals included: nothing big is allocated first
    if result is None:
        return
    tensors, meta = result
    assert isinstance(meta, dict)
    assert all(isinstance(k, str) and isinstance(v, np.ndarray) and v.dtype.isnative
               and not v.dtype.hasobject for k, v in tensors.items())
    assert sum(v.nbytes for v in tensors.values()) <= max_bytes


_numbers = st.integers(-(2**70), 2**70)


def _replace_number(text: str, k: int, value: int) -> str:
    spans = [m.span() for m in re.finditer(r"-?\d+", text)]
    a, b = spans[k % len(spans)]
    return text[:a] + str(value) + text[b:]


@st.composite
def safetensors_mutations(draw) -> bytes:
    header = ST_BLOB[8:8 + ST_HLEN]
    kind = draw(st.sampled_from(["bytes", "prefix", "number", "dtype"]))
    if kind == "bytes":
        blob = bytearray(ST_BLOB)
        for pos, val in draw(st.lists(st.tuples(st.integers(0, 8 + ST_HLEN - 1),
                                                st.integers(0, 255)), min_size=1, max_size=6)):
            blob[pos] = val
        return bytes(blob)
    if kind == "prefix":
        return struct.pack("<Q", draw(st.integers(0, 2**64 - 1))) + ST_BLOB[8:]
    text = header.decode()
    if kind == "number":
        text = _replace_number(text, draw(st.integers(0, 100)), draw(_numbers))
    else:
        codes = ["F64", "F32", "F16", "BF16", "I64", "I8", "U8", "BOOL", "X", "", "f32"]
        text = re.sub(r'"(F32|F64|I16)"', lambda m: json.dumps(draw(st.sampled_from(codes))),
                      text, count=1)
    new = text.encode()
    hlen = len(new) if draw(st.booleans()) else ST_HLEN
    return struct.pack("<Q", hlen) + new + ST_BLOB[8 + ST_HLEN:]


@given(safetensors_mutations())
def test_mutated_safetensors_headers(blob):
    p = _DIR / "mutated.safetensors"
    p.write_bytes(blob)
    _check(io.read_safetensors, p, 2 * len(blob))  # BF16 decodes to twice its bytes


def _npy(arr) -> bytes:
    buf = pyio.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=False)
    return buf.getvalue()


NPY = _npy(np.arange(6, dtype="<f4").reshape(2, 3))
NPY_HLEN = NPY.index(b"\n") + 1  # magic, version, length and the header dict


@st.composite
def npy_mutations(draw) -> bytes:
    kind = draw(st.sampled_from(["bytes", "number", "descr"]))
    if kind == "bytes":
        blob = bytearray(NPY)
        for pos, val in draw(st.lists(st.tuples(st.integers(0, NPY_HLEN - 1),
                                                st.integers(0, 255)), min_size=1, max_size=6)):
            blob[pos] = val
        return bytes(blob)
    text = NPY[10:NPY_HLEN].decode("latin1")
    if kind == "number":
        text = _replace_number(text, draw(st.integers(0, 10)), draw(_numbers))
    else:
        descr = draw(st.sampled_from(["'<f8'", "'>f4'", "'|b1'", "'|O'", "'<U2'", "'|V4'",
                                      "[('a', '<f4')]", "('<f4', (2,))", "'<M8[s]'", "1",
                                      "'<f4' if 1 else 0", "{}"]))
        text = text.replace("'<f4'", descr)
    if draw(st.booleans()):
        text = text.replace("False", draw(st.sampled_from(["True", "1", "None"])))
    head = text.encode("latin1")
    return NPY[:8] + struct.pack("<H", len(head)) + head + NPY[NPY_HLEN:]


@given(npy_mutations(), st.booleans())
def test_mutated_npz_member_headers(member, deflate):
    comp = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    p = write_zip(_DIR / "mutated.npz", {"w.npy": member, "b.npy": _npy(np.ones(2))}, comp)
    _check(io.read_npz, p, 2 * sum(len(m) for m in (member, NPY)))


NPZ = _DIR / "base.npz"
io.write_npz(NPZ, TENSORS, {"l4theory_spec": "{}"})
NPZ_BLOBS = [NPZ.read_bytes()]
np.savez_compressed(_DIR / "base_compressed.npz", **TENSORS)
NPZ_BLOBS.append((_DIR / "base_compressed.npz").read_bytes())


@given(st.sampled_from([0, 1]), st.lists(st.tuples(st.floats(0, 1, exclude_max=True),
                                                   st.integers(0, 255)),
                                         min_size=1, max_size=6))
def test_mutated_npz_archives(which, changes):
    """Byte changes anywhere in a stored or deflated archive (zip headers included)."""
    blob = bytearray(NPZ_BLOBS[which])
    for where, val in changes:
        blob[int(where * len(blob))] = val
    p = _DIR / "mutated_archive.npz"
    p.write_bytes(bytes(blob))
    _check(io.read_npz, p, 1032 * len(blob) + 4096)  # deflate expands at most ~1032:1

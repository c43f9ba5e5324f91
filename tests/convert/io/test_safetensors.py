"""The pure-Python safetensors reader/writer: runs without the ``io`` extra, except the
cross-checks against the reference ``safetensors`` package."""

import json
import struct
import tracemalloc

import numpy as np
import pytest

from l4theory.convert import io

from .helpers import st_bytes, tiny_net

TENSORS = {
    "a": np.arange(12, dtype=np.float32).reshape(3, 4) / 7, "b": np.linspace(-1, 1, 5),
    "c": np.arange(6, dtype=np.int16).reshape(2, 3), "d": np.array([True, False]),
    "e": np.zeros((0, 3), np.float32), "f": np.array([0.5, -1.25, 3, 4], np.float16),
    "g": np.array(7, np.uint64),
}


def test_round_trip_own_reader_and_writer(tmp_path):
    p = io.write_safetensors(tmp_path / "t.safetensors", TENSORS, {"k": "v"})
    got, meta = io.read_safetensors(p)
    assert meta == {"k": "v"}
    assert set(got) == set(TENSORS)
    for k, v in TENSORS.items():
        np.testing.assert_array_equal(got[k], v)
        assert got[k].dtype == v.dtype and got[k].shape == v.shape
        assert got[k].flags.writeable and got[k].flags.owndata and got[k].dtype.isnative
    # big-endian input is stored little-endian and read back native
    io.write_safetensors(tmp_path / "be.safetensors", {"x": np.arange(3, dtype=">f8")})
    x = io.read_safetensors(tmp_path / "be.safetensors")[0]["x"]
    assert x.dtype == np.float64 and x.dtype.isnative
    np.testing.assert_array_equal(x, [0, 1, 2])


def test_reference_library_reads_ours_and_we_read_its(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    tensors = {k: v for k, v in TENSORS.items() if v.ndim > 0}
    p = io.write_safetensors(tmp_path / "t.safetensors", tensors, {"k": "v"})
    ref = safetensors_numpy.load_file(str(p))
    for k, v in tensors.items():
        np.testing.assert_array_equal(ref[k], v)
    q = tmp_path / "ref.safetensors"
    safetensors_numpy.save_file(tensors, str(q), metadata={"x": "y"})
    got, meta = io.read_safetensors(q)
    assert meta == {"x": "y"}
    for k, v in tensors.items():
        np.testing.assert_array_equal(got[k], v)


def test_bf16(tmp_path):
    vals = np.array([1.0, -2.5, 3.140625], np.float32)
    raw = (vals.view(np.uint32) >> 16).astype("<u2").tobytes()
    p = tmp_path / "bf.safetensors"
    p.write_bytes(st_bytes({"w": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]}}, raw))
    got, _ = io.read_safetensors(p)
    assert got["w"].dtype == np.float32
    np.testing.assert_array_equal(got["w"], vals)


GOOD = {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}


@pytest.mark.parametrize("blob, msg", [
    (b"\x01\x02", "too short"),
    (st_bytes(GOOD, b"\x00" * 8, hlen=2**62), "exceeds the limit"),
    (st_bytes(GOOD, b"\x00" * 8, hlen=10**6), "runs past the end"),
    (st_bytes(GOOD, b"\x00" * 4), "tensor 'w'.*outside the data section"),  # truncated data
    (struct.pack("<Q", 4) + b"{xx}", "not valid UTF-8 JSON"),
    (struct.pack("<Q", 2) + b"\xff\xfe", "not valid UTF-8 JSON"),
    (struct.pack("<Q", 2) + b"[]", "JSON object"),
    (struct.pack("<Q", 4000) + b"[" * 2000 + b"]" * 2000, "not valid UTF-8 JSON"),
    (st_bytes({"w": {"dtype": "F99", "shape": [2], "data_offsets": [0, 8]}}, b"\x00" * 8),
     "tensor 'w': unsupported dtype"),
    (st_bytes({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\x00" * 8),
     "needs 12 bytes"),
    (st_bytes({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, b"\x00" * 8),
     "non-negative ints"),
    (st_bytes({"w": {"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]}}, b"\x00" * 8),
     "non-negative ints"),
    (st_bytes({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, b"\x00" * 8),
     "outside the data section"),
    (st_bytes({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
               "v": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\x00" * 8),
     "overlaps"),
    (st_bytes({"w": {"dtype": "F32", "shape": [2]}}, b"\x00" * 8), "exactly dtype"),
    (st_bytes({"__metadata__": {"a": 1}, **GOOD}, b"\x00" * 8), "strings to strings"),
    (st_bytes({"__metadata__": [], **GOOD}, b"\x00" * 8), "strings to strings"),
    (st_bytes({"w": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 8]}},
              b"\x00" * 8), "needs more than"),
    (st_bytes({"w": {"dtype": "F32", "shape": [2**62] * 10_000, "data_offsets": [0, 8]}},
              b"\x00" * 8), "needs more than"),
])
def test_malformed(tmp_path, blob, msg):
    p = tmp_path / "bad.safetensors"
    p.write_bytes(blob)
    with pytest.raises(ValueError, match=msg):
        io.read_safetensors(p)


@pytest.mark.parametrize("header, data, msg", [
    # a gap of 4 unused bytes between two tensors
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
      "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}, b"\x00" * 12,
     r"bytes 4\.\.8 .* before tensor 'b' belong to no tensor"),
    # the first tensor does not start at 0
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\x00" * 8,
     r"bytes 0\.\.4 .* before tensor 'a'"),
    # trailing bytes after the last tensor
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\x00" * 9,
     "last 5 bytes of the data section belong to no tensor"),
    # no tensors but data
    ({}, b"\x00" * 3, "last 3 bytes"),
])
def test_gaps_and_unused_bytes_refused(tmp_path, header, data, msg):
    """The format requires the tensors to tile the data section; the old reader accepted
    all three (it only checked overlaps)."""
    p = tmp_path / "gap.safetensors"
    p.write_bytes(st_bytes(header, data))
    with pytest.raises(ValueError, match=msg):
        io.read_safetensors(p)


def test_duplicate_tensor_names_refused(tmp_path):
    h = (b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
         b'"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}')
    p = tmp_path / "dup.safetensors"
    p.write_bytes(struct.pack("<Q", len(h)) + h + b"\x00" * 8)
    with pytest.raises(ValueError, match=r"duplicate keys \['w'\]"):
        io.read_safetensors(p)


def test_zero_size_tensors_may_share_an_offset(tmp_path):
    p = tmp_path / "z.safetensors"
    p.write_bytes(st_bytes({"e": {"dtype": "F32", "shape": [0, 5], "data_offsets": [4, 4]},
                            "a": {"dtype": "I32", "shape": [1], "data_offsets": [0, 4]},
                            "f": {"dtype": "F64", "shape": [0], "data_offsets": [0, 0]}},
                           struct.pack("<i", -3)))
    got, meta = io.read_safetensors(p)
    assert meta == {} and list(got) == ["e", "a", "f"]
    assert got["e"].shape == (0, 5) and got["a"].tolist() == [-3] and got["f"].size == 0


def test_reads_tensor_by_tensor_without_copying_the_file(tmp_path):
    """Peak memory is the tensors themselves (once), not the file plus copies."""
    big = {f"t{i}": np.full(250_000, i, np.float32) for i in range(4)}  # 4 x 1 MB
    p = io.write_safetensors(tmp_path / "big.safetensors", big)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        got, _ = io.read_safetensors(p)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1.25 * 4_000_000  # the old reader peaked near 2x (file bytes + copies)
    assert [float(got[f"t{i}"][-1]) for i in range(4)] == [0.0, 1.0, 2.0, 3.0]


def test_truncated_real_file(tmp_path):
    net = tiny_net(np.random.default_rng(1))
    p = io.save_network(net, tmp_path / "m.safetensors")
    blob = p.read_bytes()
    for cut in (len(blob) - 1, len(blob) // 2, 20, 7):
        q = tmp_path / f"cut{cut}.safetensors"
        q.write_bytes(blob[:cut])
        with pytest.raises(ValueError):
            io.load_network(q)


def test_writer_tiles_and_pads_header(tmp_path):
    p = io.write_safetensors(tmp_path / "t.safetensors", TENSORS, {"k": "v"})
    blob = p.read_bytes()
    (hlen,) = struct.unpack("<Q", blob[:8])
    assert hlen % 8 == 0
    header = json.loads(blob[8:8 + hlen])
    spans = sorted(tuple(v["data_offsets"]) for k, v in header.items() if k != "__metadata__")
    assert spans[0][0] == 0 and spans[-1][1] == len(blob) - 8 - hlen
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))

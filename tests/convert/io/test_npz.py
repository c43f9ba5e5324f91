"""The npz reader: validated .npy headers, no unpickling, no allocation beyond the data
(runs without any optional package)."""

import json
import tracemalloc
import zipfile

import numpy as np
import pytest

from l4theory.convert import io

from .helpers import npy_bytes, tiny_net, write_zip


def test_round_trip_and_spec_entry(tmp_path):
    rng = np.random.default_rng(2)
    net = tiny_net(rng)
    p = io.save_network(net, tmp_path / "m.npz")
    with np.load(p, allow_pickle=False) as z:
        assert z[io.NPZ_SPEC_KEY].dtype == np.uint8
        spec = json.loads(z[io.NPZ_SPEC_KEY].tobytes())
    assert spec["layers"][0] == {"type": "conv2d", "weight": "conv1.weight",
                                 "bias": "conv1.bias", "stride": [1, 1],
                                 "padding": [1, 1, 1, 1], "name": "conv1"}
    back = io.load_network(p)
    x = rng.normal(size=(4, 1, 6, 6)).astype(np.float32)
    np.testing.assert_array_equal(back.forward(x), net.forward(x))


def test_compressed_fortran_and_big_endian_members(tmp_path):
    a = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    p = tmp_path / "c.npz"
    np.savez_compressed(p, f=np.asfortranarray(a), b=a.astype(">f4"), s=np.float32(2.5),
                        z=np.zeros((0, 3), np.int8))
    got, meta = io.read_npz(p)
    assert meta == {}
    np.testing.assert_array_equal(got["f"], a)  # Fortran order read correctly
    assert got["f"].flags.c_contiguous
    np.testing.assert_array_equal(got["b"], a.astype(np.float32))
    assert got["b"].dtype == np.float32 and got["b"].dtype.isnative
    assert got["s"].shape == () and float(got["s"]) == 2.5
    assert got["z"].shape == (0, 3)


def test_pickles_and_non_archives_refused(tmp_path):
    bad = tmp_path / "pickled.npz"
    np.savez(bad, a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError, match="member 'a.npy'.*unpickling"):
        io.read_npz(bad)
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(ValueError, match="not a valid npz"):
        io.read_npz(tmp_path / "junk.npz")
    np.save(tmp_path / "single.npy", np.zeros(3))
    (tmp_path / "single.npz").write_bytes((tmp_path / "single.npy").read_bytes())
    with pytest.raises(ValueError, match="single .npy array"):
        io.read_npz(tmp_path / "single.npz")


def test_header_claiming_more_data_than_the_member_holds(tmp_path):
    """Issue 9, defect 2: shape (2**40,) float32 in a member of a few hundred bytes. The old
    reader asked NumPy for a 4 TiB array; now it is refused before any allocation."""
    member = npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,), }",
                       b"\x00" * 16)
    p = write_zip(tmp_path / "lying.npz", {"w.npy": member})
    assert p.stat().st_size < 1000
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"member 'w.npy': shape \(1099511627776,\) of "
                                             r"float32 needs more than 17179869184 bytes, but the "
                                             r"member holds 16"):
            io.read_npz(p)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


@pytest.mark.parametrize("header, data, msg", [
    ("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", b"\x00" * 8,
     "needs 12 bytes, but the member holds 8"),
    ("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", b"\x00" * 8,
     "needs 4 bytes, but the member holds 8"),  # trailing bytes
    ("{'descr': '<f8', 'fortran_order': True, 'shape': (2147483648, 2147483648, 2147483648), }", b"",
     "needs more than"),
    ("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", b"", "non-negative"),
    ("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", b"\x00" * 8, "unpickling"),
    ("{'descr': [('a', '<f4'), ('b', '|O')], 'fortran_order': False, 'shape': (1,), }",
     b"\x00" * 12, "unpickling"),
    ("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", b"\x00" * 4,
     "structured"),
    ("{'descr': ('<f4', (2,)), 'fortran_order': False, 'shape': (1,), }", b"\x00" * 8,
     "subarray"),
    ("{'descr': ('<f4', (1099511627776,)), 'fortran_order': False, 'shape': (1,), }", b"",
     "invalid .npy header"),
    ("{'descr': '<f99', 'fortran_order': False, 'shape': (1,), }", b"", "invalid .npy header"),
    ("{'descr': '<f4', 'fortran_order': 'no', 'shape': (1,), }", b"", "invalid .npy header"),
    ("{'descr': '<f4', 'shape': (1,), }", b"", "invalid .npy header"),
    ("[1, 2]", b"", "invalid .npy header"),
    ("{'descr': '<f4', 'fortran_order': False, 'shape': (1" + "0" * 5000 + ",), }", b"",
     "invalid .npy header"),
])
def test_bad_member_headers(tmp_path, header, data, msg):
    p = write_zip(tmp_path / "bad.npz", {"w.npy": npy_bytes(header, data)})
    with pytest.raises(ValueError, match=f"member 'w.npy'.*{msg}"):
        io.read_npz(p)


def test_members_that_are_not_npy_arrays(tmp_path):
    """Issue 9, defect 3: members without the NPY magic came back as Python bytes."""
    p = write_zip(tmp_path / "plain.npz", {"w.npy": b"just some text, not an array",
                                            "readme.txt": b"hello"})
    with pytest.raises(ValueError, match=r"member 'w.npy' is not a .npy array \(no NPY magic"):
        io.read_npz(p)
    p = write_zip(tmp_path / "plain2.npz", {"notes": b"hello"})
    with pytest.raises(ValueError, match="member 'notes' is not a .npy array"):
        io.read_npz(p)


def test_unsupported_version_duplicates_and_lying_directory(tmp_path):
    ok = npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", b"\x00" * 4)
    p = write_zip(tmp_path / "v.npz", {"w.npy": ok[:6] + b"\x03\x00" + ok[8:]})
    with pytest.raises(ValueError, match=r"version \(3, 0\) is not supported"):
        io.read_npz(p)
    p = write_zip(tmp_path / "dup.npz", {"w.npy": ok, "w": ok})
    with pytest.raises(ValueError, match="two members are both named 'w'"):
        io.read_npz(p)
    # version 2.0 headers are read
    v2 = npy_bytes("{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }",
                   b"\x01\x00\x02\x00", version=(2, 0))
    assert io.read_npz(write_zip(tmp_path / "v2.npz", {"a.npy": v2}))[0]["a"].tolist() == [1, 2]


def test_directory_size_larger_than_the_compressed_data_can_hold(tmp_path):
    """A zip directory may lie about a member's uncompressed size: the claimed bytes must
    fit what the stored/deflated data can produce, checked before allocating."""
    big = npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000,), }",
                    b"\x00" * 4_000_000)
    p = write_zip(tmp_path / "big.npz", {"w.npy": big}, compression=zipfile.ZIP_DEFLATED)
    got = io.read_npz(p)[0]["w"]
    assert got.shape == (1_000_000,) and not got.any()
    small = npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000,), }",
                      b"\x00" * 16)
    q = write_zip(tmp_path / "lie.npz", {"w.npy": small})
    blob = bytearray(q.read_bytes())
    # patch the uncompressed size in the central directory to what the header claims
    with zipfile.ZipFile(q) as z:
        info = z.getinfo("w.npy")
    cd = blob.rfind(b"PK\x01\x02")
    real = info.file_size.to_bytes(4, "little")
    assert blob[cd + 24:cd + 28] == real
    blob[cd + 24:cd + 28] = (info.file_size - 16 + 4_000_000).to_bytes(4, "little")
    q.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="member 'w.npy'"):
        io.read_npz(q)

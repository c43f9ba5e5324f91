import numpy as np
import pytest

from l4theory.convert import io
from l4theory.convert.io._atomic import atomic_write

from .helpers import listing


def test_no_overwrite_and_nothing_written_on_error(tmp_path):
    p = tmp_path / "x.safetensors"
    io.write_safetensors(p, {"a": np.zeros(2)})
    before = p.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        io.write_safetensors(p, {"a": np.ones(2)})
    assert p.read_bytes() == before
    io.write_safetensors(p, {"a": np.ones(2)}, overwrite=True)
    np.testing.assert_array_equal(io.read_safetensors(p)[0]["a"], np.ones(2))
    with pytest.raises(ValueError, match="cannot be stored"):
        io.write_safetensors(tmp_path / "y.safetensors", {"a": np.array(["s"])})
    with pytest.raises(ValueError, match="refusing to pickle"):
        io.write_npz(tmp_path / "y.npz", {"a": np.array([object()])})
    assert listing(tmp_path) == ["x.safetensors"]  # no partial or temp files


def test_failing_writer_leaves_nothing_and_missing_folder(tmp_path):
    def boom(fh):
        fh.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(tmp_path / "f.bin", boom, overwrite=False)
    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(tmp_path / "f.bin", boom, overwrite=True)
    assert listing(tmp_path) == []
    with pytest.raises(FileNotFoundError, match="does not exist"):
        atomic_write(tmp_path / "no" / "f.bin", lambda fh: None, overwrite=False)


def test_file_appearing_while_writing_is_not_replaced(tmp_path):
    target = tmp_path / "f.bin"

    def racing(fh):
        fh.write(b"new")
        target.write_bytes(b"user's file")  # someone else creates it meanwhile

    with pytest.raises(FileExistsError):
        atomic_write(target, racing, overwrite=False)
    assert target.read_bytes() == b"user's file"
    assert listing(tmp_path) == ["f.bin"]

"""The project's one atomic writer (l4theory._io)."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

from l4theory._io import atomic_write, atomic_write_bytes, atomic_write_text
from l4theory.convert.io import _atomic


def test_io_modules_use_the_one_writer():
    assert _atomic.atomic_write is atomic_write


def test_temp_file_is_in_the_target_folder_and_unique_per_process(tmp_path):
    target = tmp_path / "out.json"
    seen = []

    def write(fh):
        seen.extend(sorted(p.name for p in tmp_path.iterdir()))
        fh.write(b"{}")

    atomic_write(target, write)
    assert len(seen) == 1
    assert re.fullmatch(rf"\.out\.json\.{os.getpid()}\.[^.]+\.tmp", seen[0]), seen
    assert target.read_bytes() == b"{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]

    # two writes in flight at once (nested) get different temporary files
    names = []

    def outer(fh):
        names.append({p.name for p in tmp_path.iterdir()})
        atomic_write(tmp_path / "b.bin", lambda g: names.append({p.name for p in
                                                                 tmp_path.iterdir()}))
        fh.write(b"a")

    atomic_write(tmp_path / "b.bin", outer, overwrite=True)
    inner_tmps = {n for n in names[1] if n.endswith(".tmp")}
    assert len(inner_tmps) == 2 and names[0] < names[1]


def test_text_and_bytes_forms_refuse_to_overwrite_by_default(tmp_path):
    p = tmp_path / "a.txt"
    assert atomic_write_text(p, "héllo\n") == p
    assert p.read_text(encoding="utf-8") == "héllo\n"
    with pytest.raises(FileExistsError, match="overwrite=True"):
        atomic_write_text(p, "other")
    with pytest.raises(FileExistsError):
        atomic_write_bytes(p, b"other")
    assert p.read_text(encoding="utf-8") == "héllo\n"
    atomic_write_bytes(p, b"new", overwrite=True)
    assert p.read_bytes() == b"new"
    q = tmp_path / "arr.npz"
    atomic_write(q, lambda fh: np.savez(fh, a=np.arange(3)))
    with np.load(q, allow_pickle=False) as z:
        np.testing.assert_array_equal(z["a"], np.arange(3))
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.txt", "arr.npz"]

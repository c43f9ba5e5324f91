"""The `make data` step (scripts/ensure-data.sh): finds the data, or says what to run."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "ensure-data.sh"
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
         "t10k-labels-idx1-ubyte")

pytestmark = pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")


def _run(env_folder):
    env = {**os.environ, "L4THEORY_FASHION_MNIST": str(env_folder)}
    return subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True,
                          timeout=30)


def test_env_folder_with_the_four_files_is_accepted(tmp_path):
    for i, name in enumerate(FILES):
        (tmp_path / (name + (".gz" if i % 2 else ""))).write_bytes(b"")
    out = _run(tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""


def test_env_folder_missing_a_file_stops_with_one_line_naming_the_variable(tmp_path):
    for name in FILES[:3]:
        (tmp_path / name).write_bytes(b"")
    out = _run(tmp_path)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1
    assert f"L4THEORY_FASHION_MNIST={tmp_path}" in lines[0]
    assert "t10k-labels-idx1-ubyte" in lines[0]

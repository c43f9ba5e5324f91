"""One provenance module: git revision with a dirty flag, versions, file hashes."""

import hashlib
import shutil
import subprocess

import numpy as np
import pytest

from l4theory import _provenance as prov

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(cwd, *args):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd,
                          capture_output=True, text=True, check=True).stdout.strip()


@needs_git
def test_revision_and_dirty_flag_follow_the_given_path(tmp_path):
    repo = tmp_path / "repo"
    (repo / "l4theory").mkdir(parents=True)
    (repo / "l4theory" / "a.py").write_text("x = 1\n")
    (repo / "notes.txt").write_text("n\n")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "one")
    head = git(repo, "rev-parse", "HEAD")
    # asked from a file deep inside: git runs there, not in the working directory
    assert prov.git_revision(repo / "l4theory" / "a.py") == head
    (repo / "notes.txt").write_text("changed\n")  # outside the code paths: still clean
    assert prov.git_revision(repo) == head
    assert prov.git_revision(repo, paths=()) == head + "-dirty"
    (repo / "l4theory" / "a.py").write_text("x = 2\n")
    assert prov.git_revision(repo) == head + "-dirty"
    outside = tmp_path / "plain"
    outside.mkdir()
    assert prov.git_revision(outside) is None


def test_no_git_gives_none(tmp_path, monkeypatch):
    def missing(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(subprocess, "run", missing)
    assert prov.git_revision(tmp_path) is None


def test_versions_and_file_hash(tmp_path):
    v = prov.versions(extra=("no_such_package_xyz",))
    assert v["numpy"] == np.__version__ and v["no_such_package_xyz"] is None
    assert v["numba_threads"] >= 1 and v["python"].count(".") == 2
    f = tmp_path / "m.bin"
    data = bytes(range(256)) * 5000  # > 1 MiB: more than one chunk
    f.write_bytes(data)
    assert prov.file_sha256(f) == hashlib.sha256(data).hexdigest()
    rec = prov.record("t", files=[f])
    assert rec["files"] == {"m.bin": hashlib.sha256(data).hexdigest()} and rec["tool"] == "t"

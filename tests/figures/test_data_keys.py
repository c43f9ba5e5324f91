"""docs/figures.md documents exactly the keys each paper figure's ``compute`` returns."""

import itertools
import re
from pathlib import Path

import numpy as np
import pytest

from figures import PAPER

DOC = Path(__file__).resolve().parents[2] / "docs" / "figures.md"


def _expand(key):
    parts = re.split(r"\{([^}]*)\}", key)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(c) for c in itertools.product(*choices)]


def documented(name):
    """``{key: shape cell}`` from the table under ``### <name>`` in docs/figures.md."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split(f"### {name}\n", 1)[1].split("\n### ", 1)[0]
    out = {}
    for row in section.splitlines():
        if not row.startswith("| `"):
            continue
        keys, shape = (c.strip() for c in row.strip("|").split("|")[:2])
        for k in re.findall(r"`([^`]+)`", keys):
            out.update(dict.fromkeys(_expand(k), shape))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", PAPER)
def test_documented_keys_are_the_computed_keys(name, quick_data):
    data = quick_data(name)
    doc = documented(name)
    assert set(doc) == set(data), (set(doc) ^ set(data))
    for k, shape in doc.items():
        if shape == "()":
            assert np.ndim(data[k]) == 0, k
        else:
            assert np.ndim(data[k]) >= 1, k

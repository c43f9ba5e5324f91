"""The rule behind the documentation's API check (docs/_ext/l4theory_api.py), without Sphinx.

`make docs` fails when a public name of l4theory has no page; these tests pin what
"public" means and that the check reports exactly the names that are missing.
"""

import importlib
import importlib.util
from pathlib import Path

import pytest

EXT = Path(__file__).resolve().parents[1] / "docs" / "_ext" / "l4theory_api.py"


@pytest.fixture(scope="module")
def api():
    spec = importlib.util.spec_from_file_location("l4theory_api_under_test", EXT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def canonical(api):
    """Every public name under the module whose page documents it (what the site renders)."""
    table = {m: api.public_names(importlib.import_module(m)) for m in api.public_modules()}
    names = set(table)
    for modname, public in table.items():
        for name in public:
            owner = api._owner(modname, name, table)
            names.add(f"{owner}.{name}")
    return names


def test_public_modules_skip_private_parts(api):
    mods = api.public_modules()
    assert mods[0] == "l4theory" and "l4theory.theory.shot_noise" in mods
    assert "l4theory.convert.io.safetensors" in mods
    assert not any(part.startswith("_") for m in mods for part in m.split("."))   # _checks, _kernels, __main__


def test_public_names_follow_all(api):
    norms = importlib.import_module("l4theory.theory.norms")
    assert api.public_names(norms) == list(norms.__all__)
    # a module without __all__: its own functions and classes, nothing imported
    core = importlib.import_module("l4theory.derivations.core")
    assert not hasattr(core, "__all__") and api.public_names(core)
    assert all(getattr(core, n).__module__ == "l4theory.derivations.core"
               for n in api.public_names(core))


def test_full_reference_has_nothing_missing(api, canonical):
    assert api.missing_names(canonical) == []


def test_each_missing_name_is_reported(api, canonical):
    for gone in ("l4theory.theory.shot_noise.ShotNoise", "l4theory.theory.discrete.ENCODERS",
                 "l4theory.convert.datasets.normalize"):
        missing = api.missing_names(canonical - {gone})
        # the defining module's name, and the package re-export that pointed at it
        assert gone in missing
        assert all(m.rpartition(".")[2] == gone.rpartition(".")[2] for m in missing)
    assert api.missing_names(canonical - {"l4theory.theory.rates"}) == ["l4theory.theory.rates"]


def test_reexport_is_covered_by_the_defining_page(api, canonical):
    assert "l4theory.theory.ShotNoise" not in canonical
    assert "l4theory.theory.ShotNoise" not in api.missing_names(canonical)

"""Quick-mode figure data, computed once per test session (not read from results/)."""

import pytest

from figures import get

_CACHE = {}


@pytest.fixture(scope="session")
def quick_data():
    """``quick_data(name)`` -> the dict of arrays ``figures.<name>.compute`` returns (quick)."""

    def load(name):
        if name not in _CACHE:
            mod = get(name)
            _CACHE[name] = mod.compute(mod.CONFIGS["quick"])
        return _CACHE[name]

    return load

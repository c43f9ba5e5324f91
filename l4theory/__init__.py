"""l4theory: shot-noise theory and L4-norm weight adjustment for converted spiking networks.

Subpackages
-----------
theory
    Exact moments, cumulants and distributions of the shot-noise membrane potential,
    norm relations and firing-rate formulas.
derivations
    SymPy derivations of the formulas that :mod:`l4theory.theory` evaluates.
convert
    Reading exported networks, real datasets, threshold balancing and spiking simulation.
adjust
    The paper's L4-norm weight adjustment (Eqs. 6-9).
testing
    Hypothesis strategies and exact oracles for property tests (strategies need the
    ``testing`` extra).
plot
    Explanatory plots (needs the ``plot`` extra, matplotlib).

``__version__`` is the installed distribution's version; in a source tree that is not
installed it is read from ``pyproject.toml``.
"""


def _version() -> str:
    """The installed version, else the source tree's ``pyproject.toml`` version, else ``0+unknown``."""
    from importlib import metadata
    from pathlib import Path

    try:
        return metadata.version("l4theory")
    except metadata.PackageNotFoundError:
        pass
    import tomllib

    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "0+unknown"
    return project["version"] if project.get("name") == "l4theory" else "0+unknown"


__version__ = _version()

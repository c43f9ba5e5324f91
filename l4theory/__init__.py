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
"""

__version__ = "0.1.0.dev0"

"""Monte Carlo validation of :mod:`l4theory.theory` (repo-local, not installed).

Simulators (:mod:`validation.simulators`) are Numba kernels independent of the theory they
check; studies (:mod:`validation.studies`) compare the two and write reports to
``results/validation/``. Run ``python -m validation run all --quick``.
"""

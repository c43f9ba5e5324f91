"""Shared test configuration: the project's deterministic hypothesis profile by default.

The profiles live in :func:`l4theory.testing.load_profile` (``HYPOTHESIS_PROFILE=thorough``
for 1000 random examples per property).
"""

from l4theory.testing import load_profile

load_profile()

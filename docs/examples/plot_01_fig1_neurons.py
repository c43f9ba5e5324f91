"""
Two neurons of the paper's Fig. 1
=================================

Quick test.
"""

from l4theory.theory import ShotNoise

sn = ShotNoise(rates=[1.0], weights=[2.0], tau=1.0)
print(sn.mean(), sn.var())

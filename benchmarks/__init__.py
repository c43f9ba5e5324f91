"""Performance harness (not timed tests): ``python -m benchmarks [w1|w2|all]``."""

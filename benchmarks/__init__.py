"""msus benchmarks: ``python -m benchmarks [NAME ...]``."""

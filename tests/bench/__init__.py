"""Benchmarks run by `make bench` (python -m tests.bench.run); no pytest tests live here."""

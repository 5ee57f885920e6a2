"""Benchmarks for teachraft, runnable as ``python -m bench.<name>``."""

"""Benchmarks: ``python -m bench <name> [options]``; each prints its figures."""

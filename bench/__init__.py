"""Benchmarks run by ``make bench``; each writes its figures to docs/benchmarks.md."""

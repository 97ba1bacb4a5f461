"""Benchmarks: `make bench` (or `python -m bench`) runs every case and renders BENCHMARKS.md."""

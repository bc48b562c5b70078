"""The benchmarks, a package: each runs as `python -m bench.NAME` (what `bench/NAME` does)."""

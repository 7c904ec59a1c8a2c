"""Benchmarks: `python -m benchmarks` (or `make bench`) prints events per CPU-second for
`sloguard replay` and, when installed, for mtail on the same generated request log."""

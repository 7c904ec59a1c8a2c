"""Unit tests of the benchmark harness and the benchmarks' pure parts (no processes, no broker)."""

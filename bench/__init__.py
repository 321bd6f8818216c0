"""Benchmarks: one module per figure group, each printing one JSON object (see docs/performance.md).

Run them all with ``make bench``, or one with ``python -m bench.NAME``.
"""

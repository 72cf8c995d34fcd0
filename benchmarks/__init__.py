"""Benchmarks of vidgo-async against baselines measured in the same run (``python -m benchmarks``)."""

"""Benchmark scripts and the estate generator they measure with; not part of the wheel.

The scripts run as ``python benchmarks/bench_*.py`` and put the repository root on
``sys.path``, so ``benchmarks.scale`` imports the same way there as under pytest
(``pythonpath`` in pyproject.toml) and in mypy.
"""

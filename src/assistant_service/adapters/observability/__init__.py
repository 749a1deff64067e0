"""Observers for metrics (Prometheus, the ``metrics`` or ``server`` extra) and traces (``otel``).

Import :mod:`.prometheus` or :mod:`.otel` directly; each imports its SDK when
first used, so this package imports with the core install alone.
"""

"""Benchmarks: ``make bench`` (``python -m tests.bench``) writes bench-report.json.

Every figure is reported next to a baseline measured in the same run on the same machine, so the
ratio means something on a noisy shared host; absolute numbers are for orientation only.
"""

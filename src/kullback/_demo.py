"""Moved to :mod:`kullback.cli._demo`; kept only for tests/test_compile_counts_reverse.py, which imports it."""

from .cli._demo import DemoTarget, default_targets, run_demo

__all__ = ["DemoTarget", "default_targets", "run_demo"]

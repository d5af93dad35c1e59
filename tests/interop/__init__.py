"""Interop tests against the real Go goomerang library (see conftest.py)."""

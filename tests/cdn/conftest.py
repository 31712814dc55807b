"""Fixtures for tests/cdn/; the ones every package uses are in tests/conftest.py."""

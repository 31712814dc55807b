"""Fixtures for tests/releases/; the ones every package uses are in tests/conftest.py."""

"""Fixtures for tests/downloads/; the ones every package uses are in tests/conftest.py."""

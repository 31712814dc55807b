"""Fixtures for tests/selfhosted/; the ones every package uses are in tests/conftest.py."""

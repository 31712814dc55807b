"""Fixtures for tests/project/; the ones every package uses are in tests/conftest.py."""

"""Fixtures for tests/adoption/; the ones every package uses are in tests/conftest.py."""

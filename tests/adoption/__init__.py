"""Tests of adoption/: the adoption counts and their admin page."""

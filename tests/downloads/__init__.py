"""Tests of downloads/: the download links."""

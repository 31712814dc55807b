"""Tests of cdn/: the update feed (serving, ranges, resolution, staged rollouts), and the real
electron-updater against it."""

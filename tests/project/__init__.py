"""Tests of the repository as a whole: the container files, `make run` itself (also under
faults and slow clients), and the scans of every package's imports."""

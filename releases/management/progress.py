"""Progress bars for the long commands (`stage`, `demo`): tqdm, bytes per file and overall.

The bars are drawn only on a terminal; elsewhere (a pipe, a log, a test) each finished file
is one plain line, and `quiet` silences both.
"""

from __future__ import annotations

import threading
from typing import TextIO

from tqdm import tqdm

NAME_WIDTH = 40
BAR_OPTIONS = {"unit": "B", "unit_scale": True, "unit_divisor": 1024, "dynamic_ncols": True}


def _short(name: str) -> str:
    return name if len(name) <= NAME_WIDTH else name[: NAME_WIDTH - 1] + "…"


class StagingProgress:
    """A `ManualObserver` (releases.services.manual) that draws tqdm bars."""

    def __init__(self, *, stream: TextIO, quiet: bool = False, indent: str = "") -> None:
        self.stream = stream
        self.indent = indent
        self.quiet = quiet
        self.bars_enabled = not quiet and _isatty(stream)
        self.lock = threading.Lock()
        self.sizes: dict[str, int | None] = {}
        self.files: dict[str, tqdm] = {}
        self.overall: tqdm | None = None

    # --- ManualObserver -------------------------------------------------------------------
    def say(self, message: str) -> None:
        if self.quiet:
            return
        with self.lock:
            if self.overall is not None:
                self.overall.write(self.indent + message, file=self.stream)
            else:
                self.stream.write(self.indent + message + "\n")
                self.stream.flush()

    def planned(self, *, sizes: dict[str, int | None]) -> None:
        self.sizes = dict(sizes)
        if not self.bars_enabled:
            return
        total = sum(size for size in sizes.values() if size) or None
        self.overall = tqdm(
            total=total, desc="whole build", position=0, file=self.stream, **BAR_OPTIONS
        )

    def file_started(self, name: str, size: int | None) -> None:
        if not self.bars_enabled:
            return
        with self.lock:
            if self.overall is not None and size and not self.sizes.get(name):
                # A file the manifests give no size for (a blockmap): grow the total.
                self.overall.total = (self.overall.total or 0) + size
                self.overall.refresh()
            self.files[name] = tqdm(
                total=size, desc=_short(name), leave=False, file=self.stream, **BAR_OPTIONS
            )

    def file_advanced(self, name: str, count: int) -> None:
        if not self.bars_enabled:
            return
        with self.lock:
            bar = self.files.get(name)
            if bar is not None:
                bar.update(count)
            if self.overall is not None:
                self.overall.update(count)

    def file_finished(self, name: str, *, skipped: bool) -> None:
        with self.lock:
            bar = self.files.pop(name, None)
            if bar is not None:
                bar.close()
        if not self.bars_enabled and not self.quiet:
            verb = "already staged" if skipped else "staged"
            self.stream.write(f"{self.indent}  {verb}: {name}\n")
            self.stream.flush()

    def close(self) -> None:
        with self.lock:
            for bar in self.files.values():
                bar.close()
            self.files.clear()
            if self.overall is not None:
                self.overall.close()
                self.overall = None


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False

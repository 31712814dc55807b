"""The fake ToDesktop build: it moved to `releases.demo.todesktop_build` (see
`tests.fakes.todesktop_origin`); tests keep importing it from here."""

from __future__ import annotations

from releases.demo.todesktop_build import BLOCK, REAL_HOST, FakeBuild, FakeFile

__all__ = ["BLOCK", "REAL_HOST", "FakeBuild", "FakeFile"]

"""The fake ToDesktop origin: it moved to `releases.demo.todesktop_origin` so that
`manage.py demo` can serve it; tests keep importing it from here."""

from __future__ import annotations

from releases.demo.todesktop_origin import (
    REAL_HOST,
    FakeBuild,
    FakeFile,
    FakeOrigin,
    LoggedRequest,
    start_origin,
)

__all__ = ["REAL_HOST", "FakeBuild", "FakeFile", "FakeOrigin", "LoggedRequest", "start_origin"]

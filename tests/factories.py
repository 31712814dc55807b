"""Small data helpers: `make_build(**overrides)` and friends."""

from __future__ import annotations

import itertools

from releases.models import Build, ReleaseRequest

_counter = itertools.count(1)


def make_build(**overrides) -> Build:
    number = next(_counter)
    fields = {
        "build_id": f"build{number:04d}abc",
        "app_id": "240808w4a9kky77",
        "version": f"1.0.{number}",
        "platforms": ["windows", "mac", "linux"],
    }
    fields.update(overrides)
    return Build.objects.create(**fields)


def make_release(build: Build | None = None, **overrides) -> ReleaseRequest:
    build = build or make_build()
    fields = {"payload": {"buildId": build.build_id}, **overrides}
    return ReleaseRequest.objects.create(build=build, **fields)

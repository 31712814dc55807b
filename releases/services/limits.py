"""How large a staged file may be (README, "Limits").

An installer is capped by `MAX_ARTIFACT_BYTES`, a blockmap by `MAX_BLOCKMAP_BYTES` (manifests
are capped where they are fetched, by `MAX_MANIFEST_BYTES`). A size declared in a manifest
over the cap fails the build before anything is downloaded; a body is cut off at the size its
manifest declares, or at the cap when no manifest declares one.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from releases.services.manifests import BuildPlan, Expectation


@dataclass(frozen=True)
class StreamLimit:
    limit: int  # bytes; one more stops the download
    too_large: str  # the build's failure reason when it does


def file_cap(name: str) -> tuple[str, int]:
    """The setting that caps a file of this name, and its value."""
    if name.endswith(".blockmap"):
        return "MAX_BLOCKMAP_BYTES", settings.MAX_BLOCKMAP_BYTES
    return "MAX_ARTIFACT_BYTES", settings.MAX_ARTIFACT_BYTES


def declared_size(expectations: list[Expectation]) -> int | None:
    """The size the manifests give for a file (the largest, if they disagree), or None."""
    sizes = [int(e.value) for e in expectations if e.field == "size"]
    return max(sizes) if sizes else None


def plan_over_caps(plan: BuildPlan) -> str | None:
    """Why the plan cannot be staged (a declared size over its cap), or None."""
    for name, planned in plan.files.items():
        cap_name, cap = file_cap(name)
        for expectation in planned.expectations:
            if expectation.field == "size" and int(expectation.value) > cap:
                return (
                    f"{name}: {expectation.source} declares {expectation.value} bytes, over "
                    f"{cap_name} ({cap} bytes); not downloaded"
                )
    return None


def stream_limit(name: str, declared: int | None) -> StreamLimit:
    cap_name, cap = file_cap(name)
    if declared is not None and declared <= cap:
        return StreamLimit(
            declared, f"{name}: size expected {declared}, actual more (download stopped)"
        )
    return StreamLimit(cap, f"{name}: larger than {cap_name} ({cap} bytes); download stopped")

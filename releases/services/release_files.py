"""The two release-metadata files a review changes (docs/review.md), as pure functions on their
text.

`desktop-builds.json` is a JSON array of `{id, version, createdAt, isReleased}`;
`desktop-releases.json` is an object with `latestReleaseBuildId` and `releaseRedirections`
(and whatever other keys a team keeps there). A missing or unreadable file starts fresh, and
the result says why, so the PR body can tell the reviewer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from releases.control_files import (
    BUILDS_FILE,
    KINDS,
    RELEASES_FILE,
    ControlFileInvalid,
    control_parse,
    control_text,
)


@dataclass(frozen=True)
class Updated:
    text: str  # the new file content
    problem: str = ""  # why the old content was not used ("" when it was)


def js_iso(moment: datetime) -> str:
    """`2025-02-10T13:15:06.123Z`, the format of JavaScript's `toISOString()`."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _parse(text: str | None, key: str) -> tuple[Any, str]:
    if text is None:
        return KINDS[key](), "missing"
    try:
        return control_parse(key, text), ""
    except ControlFileInvalid as exc:
        if exc.not_json:
            return KINDS[key](), f"not valid JSON ({exc})"
        kind = "an array" if key == BUILDS_FILE else "an object"
        return KINDS[key](), f"not {kind} (found {exc.found})"


def build_entry(*, build_id: str, version: str, created_at: datetime) -> dict[str, Any]:
    return {"id": build_id, "version": version, "createdAt": js_iso(created_at), "isReleased": True}


def builds_update(text: str | None, *, entry: dict[str, Any]) -> Updated:
    """Add `entry`, replacing (in place) any entry with the same id — never a duplicate."""
    builds, problem = _parse(text, BUILDS_FILE)
    same = [
        i
        for i, item in enumerate(builds)
        if isinstance(item, dict) and item.get("id") == entry["id"]
    ]
    if same:
        builds[same[0]] = entry
        builds = [item for i, item in enumerate(builds) if i not in same[1:]]
    else:
        builds.append(entry)
    return Updated(control_text(builds), problem)


def releases_update(text: str | None, *, release_info: dict[str, Any]) -> Updated:
    """Set `latestReleaseBuildId` and/or `releaseRedirections` from the webhook's releaseInfo;
    other keys are kept as they are."""
    releases, problem = _parse(text, RELEASES_FILE)
    if release_info.get("latestReleaseBuildId"):
        releases["latestReleaseBuildId"] = release_info["latestReleaseBuildId"]
    if release_info.get("releaseRedirections") is not None:
        releases["releaseRedirections"] = release_info["releaseRedirections"]
    return Updated(control_text(releases), problem)

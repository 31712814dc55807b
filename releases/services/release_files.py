"""The two release-metadata files a review changes (docs/review.md), as pure functions on their
text.

`desktop-builds.json` is a JSON array of `{id, version, createdAt, isReleased}`;
`desktop-releases.json` is an object with `latestReleaseBuildId` and `releaseRedirections`
(and whatever other keys a team keeps there). A missing or unreadable file starts fresh, and
the result says why, so the PR body can tell the reviewer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class Updated:
    text: str  # the new file content
    problem: str = ""  # why the old content was not used ("" when it was)


def json_text(value: Any) -> str:
    """2-space indented JSON, as the original relay wrote it, with a final newline for git."""
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def js_iso(moment: datetime) -> str:
    """`2025-02-10T13:15:06.123Z`, the format of JavaScript's `toISOString()`."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _parse(text: str | None, expected: type) -> tuple[Any, str]:
    if text is None:
        return expected(), "missing"
    try:
        value = json.loads(text)
    except ValueError as exc:
        return expected(), f"not valid JSON ({exc})"
    if not isinstance(value, expected):
        kind = "an array" if expected is list else "an object"
        return expected(), f"not {kind} (found {type(value).__name__})"
    return value, ""


def build_entry(*, build_id: str, version: str, created_at: datetime) -> dict[str, Any]:
    return {"id": build_id, "version": version, "createdAt": js_iso(created_at), "isReleased": True}


def builds_update(text: str | None, *, entry: dict[str, Any]) -> Updated:
    """Add `entry`, replacing (in place) any entry with the same id — never a duplicate."""
    builds, problem = _parse(text, list)
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
    return Updated(json_text(builds), problem)


def releases_update(text: str | None, *, release_info: dict[str, Any]) -> Updated:
    """Set `latestReleaseBuildId` and/or `releaseRedirections` from the webhook's releaseInfo;
    other keys are kept as they are."""
    releases, problem = _parse(text, dict)
    if release_info.get("latestReleaseBuildId"):
        releases["latestReleaseBuildId"] = release_info["latestReleaseBuildId"]
    if release_info.get("releaseRedirections") is not None:
        releases["releaseRedirections"] = release_info["releaseRedirections"]
    return Updated(json_text(releases), problem)

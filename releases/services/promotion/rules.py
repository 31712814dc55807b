"""Validating the desired state before it is published (README: Desired-state validation).

`desktop-releases.json` decides which build every client gets. Before it is written, every build
it names — `latestReleaseBuildId` and each redirection's `buildId` — must be listed in the
`desktop-builds.json` being published: already in production, or promoted by this very run
(staged, recorded and verified by staging, reviewed, with no name or byte conflict). Otherwise
production keeps its last good state, and the promotion says why.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from typing import Any

from releases.control_files import BUILDS_FILE, RELEASES_FILE, ControlFileInvalid, control_parse
from releases.validation import release_rules_problems


def rules_problems(
    raw: bytes | None, *, listed: Collection[str], refused: Mapping[str, str] | None = None
) -> list[str]:
    """Why `raw` (a desktop-releases.json) must not be published beside a desktop-builds.json
    that lists `listed`; `refused` says why some builds are not promoted. [] when it may."""
    if raw is None:
        return []
    try:
        data = control_parse(RELEASES_FILE, raw)
    except ControlFileInvalid as exc:
        if exc.not_json:
            return [f"{RELEASES_FILE} is not JSON ({str(exc)[:120]})"]
        return [f"{RELEASES_FILE} is not a JSON object"]
    problems = [f"{RELEASES_FILE}: {problem}" for problem in release_rules_problems(data)]
    if problems:
        return problems
    refused = refused or {}
    for where, build_id in _named_builds(data):
        if build_id in listed:
            continue
        if build_id in refused:
            why = f"cannot be promoted: {refused[build_id]}"
        else:
            why = f"is not listed in {BUILDS_FILE}"
        problems.append(f"{RELEASES_FILE}: {where} names build {build_id}, which {why}")
    return problems


def _named_builds(data: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if data.get("latestReleaseBuildId"):
        yield "latestReleaseBuildId", data["latestReleaseBuildId"]
    for index, rule in enumerate(data.get("releaseRedirections") or []):
        if rule["rule"] != "appByIp":  # appByIp names another feed, not a build (ignored)
            yield f"releaseRedirections[{index}] ({rule['rule']})", rule["buildId"]

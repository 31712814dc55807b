"""What production should hold (SPEC §7): the two control files, as exact bytes.

GitHub backend: `desktop-builds.json` and `desktop-releases.json` at the head of the default
branch, read through the API — never from a webhook body, which anyone holding the webhook
secret could shape. Admin backend: the approved (and already live) release requests in the
database, laid over what production holds today.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from django.conf import settings

from releases.models import ReleaseRequest, ReleaseState

BUILDS_FILE = "desktop-builds.json"
RELEASES_FILE = "desktop-releases.json"
BUILD_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Release requests whose content belongs in production (admin backend).
ACCEPTED_STATES = (ReleaseState.APPROVED, ReleaseState.MERGED, ReleaseState.LIVE)


class DesiredStateError(Exception):
    """The desired state cannot be read or is not valid; nothing is promoted."""


@dataclass
class DesiredState:
    builds_json: bytes
    releases_json: bytes | None  # None: the source has no desktop-releases.json
    source: str
    build_ids: list[str] = field(default_factory=list)


def json_bytes(value) -> bytes:
    """JSON as the review writes it: 2-space indent, trailing newline."""
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode()


def build_ids_of(raw: bytes | None, *, strict: bool) -> list[str]:
    """The ids listed in a `desktop-builds.json`; an unreadable file is `[]` unless `strict`."""
    try:
        entries = json.loads(raw) if raw else []
        if not isinstance(entries, list):
            raise ValueError("not a JSON array")
        ids = [entry["id"] for entry in entries]
        bad = [value for value in ids if not isinstance(value, str) or not BUILD_ID.match(value)]
        if bad:
            raise ValueError(f"invalid build id {bad[0]!r}")
    except (ValueError, TypeError, KeyError) as exc:
        if strict:
            raise DesiredStateError(f"{BUILDS_FILE} is not valid: {exc}") from exc
        return []
    return list(dict.fromkeys(ids))


def desired_state_read(*, production) -> DesiredState:
    """The desired state from the configured review backend."""
    if settings.REVIEW_BACKEND == "github":
        state = _from_github()
    else:
        state = _from_database(production=production)
    state.build_ids = build_ids_of(state.builds_json, strict=True)
    if state.releases_json is not None:
        try:
            if not isinstance(json.loads(state.releases_json), dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            raise DesiredStateError(f"{RELEASES_FILE} is not valid: {exc}") from exc
    return state


def _from_github() -> DesiredState:
    from releases import github

    try:
        branch = github.repo_get().default_branch
        # Both files from one commit: a push between the two reads cannot mix two states.
        sha = github.branch_head(branch)
        if sha is None:
            raise DesiredStateError(f"the default branch {branch} does not exist")
        builds = github.file_read(BUILDS_FILE, ref=sha)
        releases = github.file_read(RELEASES_FILE, ref=sha)
    except github.GitHubError as exc:
        raise DesiredStateError(f"cannot read the default branch: {exc}") from exc
    return DesiredState(
        builds_json=builds.text.encode() if builds else b"[]\n",
        releases_json=releases.text.encode() if releases else None,
        source=f"default branch {branch} at {sha[:12]}",
    )


def _read_json(production, key: str, default):
    try:
        raw = production.read_bytes(key)
        value = json.loads(raw)
        return value if isinstance(value, type(default)) else default
    except (KeyError, ValueError):
        return default


def _from_database(*, production) -> DesiredState:
    # Keep what production already lists (e.g. builds promoted before this install) and lay the
    # accepted releases over it, in the order they were accepted: the last word wins.
    entries = {e.get("id"): e for e in _read_json(production, BUILDS_FILE, []) if "id" in e}
    rules = _read_json(production, RELEASES_FILE, {})
    had_rules = bool(rules)
    accepted = (
        ReleaseRequest.objects.filter(state__in=ACCEPTED_STATES)
        .select_related("build")
        .order_by("merged_at", "pk")
    )
    for release in accepted:
        build = release.build
        if release.kind == "release":
            entries[build.build_id] = {
                "id": build.build_id,
                "version": build.version,
                "createdAt": release.payload.get("buildEndedAt") or build.created_at.isoformat(),
                "isReleased": True,
            }
        for key in ("latestReleaseBuildId", "releaseRedirections"):
            if isinstance(release.release_info, dict) and key in release.release_info:
                rules[key] = release.release_info[key]
                had_rules = True
    return DesiredState(
        builds_json=json_bytes(list(entries.values())),
        releases_json=json_bytes(rules) if had_rules else None,
        source="approved releases",
    )

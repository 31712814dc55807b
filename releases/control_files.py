"""Production's two control files (docs/bucket-layout.md): their names, how they are read and
parsed, and the bytes they are written as — defined once.

`desktop-builds.json` lists every build that may be served (a JSON array of
`{id, version, createdAt, isReleased}`); `desktop-releases.json` says which build each client
gets (an object: `latestReleaseBuildId`, `releaseRedirections` with their rollouts, and whatever
other keys a team keeps there). Both sit at the bucket's root.

Every reader parses them here (the feed, promotion, review, rollback, halts, retention, CDN
purges, the admin's preview), so a file that is not JSON, or not of its kind, is the same
`ControlFileInvalid` everywhere; each reader still says in its own words what it does about it.
Every writer serialises them here, so the bytes are the same whoever writes them: 2-space
indented JSON, non-ASCII kept as it is, a final newline (as the original relay wrote them; git
wants the newline). Shape validation of the rules is `releases.validation.release_rules_problems`;
`releases.services.promotion.rules` applies it before a desktop-releases.json is published.
"""

from __future__ import annotations

import json
from typing import Any

from releases.integrations.buckets import Bucket, ObjectNotFound
from releases.validation import ID_RE

BUILDS_FILE = "desktop-builds.json"
RELEASES_FILE = "desktop-releases.json"
CONTROL_FILES = frozenset({BUILDS_FILE, RELEASES_FILE})
# The JSON value each file holds: an array of entries, an object of rules.
KINDS: dict[str, type] = {BUILDS_FILE: list, RELEASES_FILE: dict}
KIND_NAMES = {list: "array", dict: "object"}


class ControlFileInvalid(ValueError):
    """A control file that is not JSON (`not_json`; the message is the parser's), JSON of the
    wrong kind (`found` names the type it holds), or a list of builds without valid ids."""

    def __init__(self, message: str, *, key: str, not_json: bool = False, found: str = "") -> None:
        super().__init__(message)
        self.key = key
        self.not_json = not_json
        self.found = found


def control_bytes(value: Any) -> bytes:
    """A control file's content as it is written: 2-space indent, non-ASCII kept, final newline."""
    return control_text(value).encode()


def control_text(value: Any) -> str:
    """`control_bytes` as text (a file committed through the GitHub API)."""
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def control_read(bucket: Bucket, key: str) -> bytes | None:
    """A control file's bytes as the bucket holds them; None when it has none."""
    try:
        return bucket.read_bytes(key)
    except ObjectNotFound:
        return None


def control_parse(key: str, raw: bytes | str) -> Any:
    """The JSON value of control file `key` (a list or a dict, see `KINDS`), or
    ControlFileInvalid. A document nested past the parser's recursion limit is not JSON either."""
    kind = KINDS[key]
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ControlFileInvalid(str(exc), key=key, not_json=True) from None
    if not isinstance(value, kind):
        found = type(value).__name__
        raise ControlFileInvalid(f"not a JSON {KIND_NAMES[kind]}", key=key, found=found)
    return value


def control_parse_or_empty(key: str, raw: bytes | str | None) -> Any:
    """`control_parse`, with an empty value of the file's kind for a file that is missing,
    empty or invalid (for readers that only look for what the file names)."""
    try:
        return control_parse(key, raw) if raw else KINDS[key]()
    except ControlFileInvalid:
        return KINDS[key]()


def builds_ids(raw: bytes | None) -> list[str]:
    """The ids a desktop-builds.json lists, in order and once each ([] for no file), or
    ControlFileInvalid when an entry has no id or an id that is not a build id."""
    entries = control_parse(BUILDS_FILE, raw) if raw else []
    try:
        ids = [entry["id"] for entry in entries]
    except (TypeError, KeyError) as exc:
        raise ControlFileInvalid(str(exc), key=BUILDS_FILE) from None
    bad = [value for value in ids if not isinstance(value, str) or not ID_RE.fullmatch(value)]
    if bad:
        raise ControlFileInvalid(f"invalid build id {bad[0]!r}", key=BUILDS_FILE)
    return list(dict.fromkeys(ids))


def rules_build_ids(rules: Any) -> set[str]:
    """The build ids a desktop-releases.json value points clients at: `latestReleaseBuildId`
    and every redirection's `buildId` (whatever its rule)."""
    if not isinstance(rules, dict):
        return set()
    named = {rules.get("latestReleaseBuildId")}
    redirections = rules.get("releaseRedirections")
    for rule in redirections if isinstance(redirections, list) else []:
        named.add(rule.get("buildId") if isinstance(rule, dict) else None)
    return {value for value in named if isinstance(value, str) and value}

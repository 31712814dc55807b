"""Which build a file name belongs to (README: Staging names and production immutability).

Promotion copies every build's files to production's root, one flat namespace, and the feed
serves them by name. A build must therefore never stage a name that belongs to another build:
its manifest could list `latest-mac-build-<live id>.yml` or `<App> - Build <live id>.zip`, with
hashes that are correct for other bytes, and replace a live build's files. The rules:

1. A build's channel manifests — `.yml`/`.yaml`/`.json` names that start with `latest` or
   `td-latest`, or contain `-build-` — must end with `-build-<its own id>.<ext>`: those are the
   names the feed resolves clients to.
2. A name that carries the id of another known build (`Build <id>`, `-build-<id>`) is that
   build's.
3. Any other name belongs to the first build that staged it (its `BuildFile` row is the oldest),
   unless it carries the staging build's own id: ToDesktop puts the build id in every file name,
   so a name without one is unusual, and first come keeps it stable.

Staging checks these before it downloads anything (it sees the database, not production: its
credentials stop at the staging bucket); promotion checks them again, and compares every copy
with what production already holds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from releases.models import Build, BuildFile
from releases.validation import ID_RE

MANIFEST_SUFFIXES = (".yml", ".yaml", ".json")
# `Build <id>` and `-build-<id>` as ToDesktop writes them; the id is the run of id characters
# after the marker, or a prefix of it that stops before a `-` or `_` (`-x64`, `_amd64` follow).
MARKED_ID = re.compile(rf"(?<![A-Za-z0-9])build[- ]({ID_RE.pattern})", re.IGNORECASE)


def is_channel_manifest(name: str) -> bool:
    lower = name.lower()
    if not lower.endswith(MANIFEST_SUFFIXES):
        return False
    return lower.startswith(("latest", "td-latest")) or "-build-" in lower


def carries(name: str, build_id: str) -> bool:
    """Whether `name` contains `build_id` as a whole word (not inside a longer id)."""
    pattern = rf"(?<![A-Za-z0-9]){re.escape(build_id)}(?![A-Za-z0-9])"
    return re.search(pattern, name) is not None


def _manifest_is_own(name: str, build_id: str) -> bool:
    stem = name.rsplit(".", 1)[0]
    return stem.endswith(f"-build-{build_id}")


def _marked_ids(name: str, own_id: str) -> set[str]:
    """Ids that `name` may carry after a build marker, other than the staging build's own."""
    found: set[str] = set()
    for match in MARKED_ID.finditer(name):
        run = match.group(1)
        if carries(run, own_id) and run.startswith(own_id):
            continue  # the marker names this build (`Build <own id>-x64`)
        found.add(run)
        found.update(run[:i] for i, ch in enumerate(run) if ch in "-_" and i)
    return found


def names_refusal(*, build: Build, names: Iterable[str]) -> str:
    """Why `build` may not stage or promote one of `names` ("" when it may have them all)."""
    names = sorted(set(names))
    own = build.build_id
    problems = [
        (name, f"a build's manifests must be named for it (…-build-{own}.yml/.json)")
        for name in names
        if is_channel_manifest(name) and not _manifest_is_own(name, own)
    ]
    problems += _carrying_other_ids(build, names)
    problems += _owned_by_others(build, names)
    if not problems:
        return ""
    refused = dict(reversed(problems))  # one reason per name: the first rule it broke
    name, why = problems[0]
    more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
    return f"refused file name {name!r}: {why}{more}"


def _carrying_other_ids(build: Build, names: list[str]) -> list[tuple[str, str]]:
    candidates = {name: _marked_ids(name, build.build_id) for name in names}
    wanted = set().union(*candidates.values()) if candidates else set()
    if not wanted:
        return []
    known = set(
        Build.objects.filter(build_id__in=wanted)
        .exclude(pk=build.pk)
        .values_list("build_id", flat=True)
    )
    return [
        (name, f"it carries the id of build {sorted(ids & known)[0]}")
        for name, ids in candidates.items()
        if ids & known
    ]


def _owned_by_others(build: Build, names: list[str]) -> list[tuple[str, str]]:
    """Names without this build's id that another build staged first."""
    unmarked = [name for name in names if not carries(name, build.build_id)]
    if not unmarked:
        return []
    first: dict[str, tuple[int, str]] = {}
    rows = BuildFile.objects.filter(name__in=unmarked).values_list("name", "pk", "build__build_id")
    for name, pk, build_id in rows:
        if name not in first or pk < first[name][0]:
            first[name] = (pk, build_id)
    return [
        (
            name,
            f"build {owner} staged it first (a build may stage only names that carry its "
            "own id or that no other build owns)",
        )
        for name, (_pk, owner) in sorted(first.items())
        if owner != build.build_id
    ]

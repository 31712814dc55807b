"""The promotion plan: what to copy and write, in the order clients can bear (SPEC §7).

Order: every binary and blockmap first, then the build manifests (`*-build-<id>.yml/json`),
then `desktop-builds.json`, `desktop-releases.json` last. A client that reads a manifest at
any moment therefore finds every file it names already in place.

The plan only contains work still to do (an object already in production with the staged
size and ETag is skipped), so a promotion that died half-way resumes where it stopped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from releases.buckets import Bucket, ObjectInfo
from releases.models import BuildFile, Verification
from releases.services.promotion.desired import (
    BUILDS_FILE,
    RELEASES_FILE,
    DesiredState,
    build_ids_of,
)

MANIFEST_SUFFIXES = (".yml", ".yaml", ".json")
CONTROL_FILES = frozenset({BUILDS_FILE, RELEASES_FILE})
# An S3 multipart ETag (`<md5 of part md5s>-<parts>`) is not a content hash: a copy may get a
# different one for the same bytes, so only the size is compared for those.
MULTIPART_ETAG = re.compile(r"^[0-9a-f]{32}-\d+$")


@dataclass(frozen=True)
class Copy:
    build_id: str
    source: str  # staging key `<id>/<name>`
    key: str  # production key `<name>`
    size: int
    etag: str


@dataclass(frozen=True)
class Write:
    key: str
    data: bytes


@dataclass
class Plan:
    new_build_ids: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)  # build id → reason
    copies: list[Copy] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)

    @property
    def in_sync(self) -> bool:
        return not (self.copies or self.writes or self.missing)

    def describe(self) -> list[str]:
        lines = [f"copy {c.source} → {c.key} ({c.size} bytes)" for c in self.copies]
        lines += [f"write {w.key} ({len(w.data)} bytes)" for w in self.writes]
        lines += [f"cannot promote {bid}: {why}" for bid, why in self.missing.items()]
        return lines


def same_object(source: ObjectInfo, copy: ObjectInfo | None) -> bool:
    """Whether `copy` holds the bytes of `source`, judged by size and (when meaningful) ETag."""
    if copy is None or copy.size != source.size:
        return False
    if MULTIPART_ETAG.match(source.etag) or MULTIPART_ETAG.match(copy.etag):
        return True
    return copy.etag == source.etag


def is_manifest(name: str) -> bool:
    return name.lower().endswith(MANIFEST_SUFFIXES)


def _read_or_none(bucket: Bucket, key: str) -> bytes | None:
    try:
        return bucket.read_bytes(key)
    except KeyError:
        return None


def _build_copies(build_id: str, *, staging: Bucket, production: Bucket) -> list[Copy] | str:
    """The copies still needed for one build, or the reason it cannot be promoted."""
    prefix = f"{build_id}/"
    staged = {info.key[len(prefix) :]: info for info in staging.list(prefix)}
    if not staged:
        if _pruned_but_in_production(
            BuildFile.objects.filter(build__build_id=build_id), production
        ):
            return []
        return f"no files under {prefix} in staging"
    problem = _unverified(staged, BuildFile.objects.filter(build__build_id=build_id))
    if problem:
        return problem
    copies = []
    for name, info in sorted(staged.items()):
        if not same_object(info, production.head(name)):
            copies.append(Copy(build_id, info.key, name, info.size, info.etag))
    return copies


def _pruned_but_in_production(known, production: Bucket) -> bool:
    """Retention removed the build's staged files after it went live (`staged_at` cleared, see
    releases.services.retention), and production holds every one of its verified files: a
    promotion that finds the build new again (production lost `desktop-builds.json`, or the
    default branch lists it anew) has nothing to copy."""
    rows = list(known)
    if not rows or any(
        row.staged_at is not None
        or row.verification not in (Verification.VERIFIED, Verification.UNCHECKED)
        for row in rows
    ):
        return False
    return all(
        (info := production.head(row.name)) is not None and info.size == row.size for row in rows
    )


def _unverified(staged: dict[str, ObjectInfo], known) -> str:
    """Why the staged files of a build must not reach users ("" when they may).

    Bytes that did not match the build's manifests, that were never verified (a staging run
    that failed or stopped half-way), that staging never recorded, or that changed size since,
    must never reach users, whatever the default branch lists: a merge or a push approves a
    build id, not whatever lies under its prefix. Staging writes every file before it verifies
    any, so only the verdict on each file (verified, or no manifest gives a hash) lets it pass."""
    rows = {row.name: row for row in known}
    checks = [
        ("missing from staging", sorted(set(rows) - set(staged))),
        ("failed verification in staging", _named(rows, Verification.MISMATCH)),
        ("never verified in staging", _named(rows, Verification.PENDING)),
        ("in staging but not recorded by staging", sorted(set(staged) - set(rows))),
        # Written only from the desired state, never copied from a build (they would bypass it).
        ("named like a production control file", sorted(set(staged) & CONTROL_FILES)),
        (
            "changed size in staging since they were verified",
            sorted(n for n, row in rows.items() if n in staged and staged[n].size != row.size),
        ),
    ]
    for what, names in checks:
        if names:
            return f"{len(names)} file(s) {what}, e.g. {names[0]}"
    return ""


def _named(rows: dict, verification: str) -> list[str]:
    return sorted(name for name, row in rows.items() if row.verification == verification)


def promotion_plan(*, desired: DesiredState, staging: Bucket, production: Bucket) -> Plan:
    current_builds = _read_or_none(production, BUILDS_FILE)
    current_ids = set(build_ids_of(current_builds, strict=False))
    plan = Plan(new_build_ids=[bid for bid in desired.build_ids if bid not in current_ids])
    copies: list[Copy] = []
    for build_id in plan.new_build_ids:
        found = _build_copies(build_id, staging=staging, production=production)
        if isinstance(found, str):
            plan.missing[build_id] = found
        else:
            copies.extend(found)
    plan.copies = [c for c in copies if not is_manifest(c.key)]
    plan.copies += [c for c in copies if is_manifest(c.key)]
    if plan.missing:
        # Publishing the control files now would point clients at builds that are not there.
        return plan
    if current_builds != desired.builds_json:
        plan.writes.append(Write(BUILDS_FILE, desired.builds_json))
    if desired.releases_json is not None:
        if _read_or_none(production, RELEASES_FILE) != desired.releases_json:
            plan.writes.append(Write(RELEASES_FILE, desired.releases_json))
    return plan

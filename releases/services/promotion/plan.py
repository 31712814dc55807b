"""The promotion plan: what to copy and write, in the order clients can bear (docs/promotion.md).

Order: every binary and blockmap first, then the build manifests (`*-build-<id>.yml/json`),
then `desktop-builds.json`, `desktop-releases.json` last. A client that reads a manifest at
any moment therefore finds every file it names already in place.

The plan only contains work still to do (an object already in production with the staged
bytes is skipped), so a promotion that died half-way resumes where it stopped.

Each new build must be promotable, or it is refused with the reason and nothing is published
for it (no copy, no entry in desktop-builds.json; rules naming it make the desired state
invalid): every staged file recorded and verified by staging, no name that belongs to another
build (`releases.services.ownership`), and no copy that would change an object production
already holds — production is immutable, the two control files excepted. One refused build
never holds back the others.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from releases.control_files import (
    BUILDS_FILE,
    CONTROL_FILES,
    RELEASES_FILE,
    ControlFileInvalid,
    control_bytes,
    control_parse,
    control_read,
)
from releases.integrations.buckets import Bucket, ObjectInfo, hashes_of
from releases.models import Build, BuildFile, Verification
from releases.services.ownership import names_refusal
from releases.services.promotion.desired import (
    DesiredState,
    build_ids_of,
)
from releases.services.promotion.rules import rules_problems

MANIFEST_SUFFIXES = (".yml", ".yaml", ".json")
EMPTY_RULES = control_bytes({})
# An S3 multipart ETag (`<md5 of part md5s>-<parts>`) is not a content hash: a copy may get a
# different one for the same bytes, so only the size is compared for those.
MULTIPART_ETAG = re.compile(r"^[0-9a-f]{32}-\d+$")
# A single-part S3 object's ETag is the MD5 of its bytes (no SSE-KMS here).
MD5_ETAG = re.compile(r"^[0-9a-f]{32}$")


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
    previous: bytes | None = None  # what production held (the CDN purge compares the two)


@dataclass(frozen=True)
class Refusal:
    """Why a build in the desired state is not promoted, and how the trail records it."""

    reason: str
    kind: str = "promotion.failed"  # the audit event's kind
    fails_build: bool = True  # its files are at fault (False: a review or a decision is)
    quiet: bool = False  # expected (withdrawn): not an error, not re-announced
    notified_by: int | None = None  # the audit event that already told people (no 2nd notice)


@dataclass
class Plan:
    new_build_ids: list[str] = field(default_factory=list)
    refused: dict[str, Refusal] = field(default_factory=dict)  # build id → why not
    copies: list[Copy] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)  # why the rules are not published
    listed: list[str] = field(default_factory=list)  # build ids production lists afterwards
    invalid_notified_by: int | None = None  # every reason in `invalid` was announced already

    @property
    def missing(self) -> dict[str, str]:
        """Build id → why it cannot be promoted (every refusal that is an error)."""
        return {bid: r.reason for bid, r in self.refused.items() if not r.quiet}

    @property
    def in_sync(self) -> bool:
        return not (self.copies or self.writes or self.missing or self.invalid)

    def describe(self) -> list[str]:
        lines = [f"copy {c.source} → {c.key} ({c.size} bytes)" for c in self.copies]
        lines += [f"write {w.key} ({len(w.data)} bytes)" for w in self.writes]
        lines += [f"cannot promote {bid}: {r.reason}" for bid, r in self.refused.items()]
        lines += [f"desired state not published: {why}" for why in self.invalid]
        return lines


@dataclass(frozen=True)
class Gate:
    """What the review says before any file is looked at (`ReviewBackend.review_gate`)."""

    refused: dict[str, Refusal] = field(default_factory=dict)
    held: list[str] = field(default_factory=list)  # why desktop-releases.json must wait
    held_notified_by: dict[str, int] = field(default_factory=dict)  # reason → its announcement


def same_object(source: ObjectInfo, copy: ObjectInfo | None) -> bool:
    """Whether `copy` holds the bytes of `source`, judged by size and (when meaningful) ETag."""
    if copy is None or copy.size != source.size:
        return False
    if MULTIPART_ETAG.match(source.etag) or MULTIPART_ETAG.match(copy.etag):
        return True
    return copy.etag == source.etag


def same_bytes(row: BuildFile, staged: ObjectInfo, present: ObjectInfo, production: Bucket) -> bool:
    """Whether production's `present` object holds exactly the bytes staging verified as `row`.

    Cheap when the ETags say so: the staged object's own ETag (a hard link on the filesystem, a
    server-side copy on S3; matching another object's would take an MD5 preimage), or the MD5
    of the staged bytes (a single-part S3 object). Otherwise the object is read and hashed: a
    filesystem mtime or an S3 multipart ETag says nothing about content, and a same-size
    impostor must not pass for the real file. Only a real difference refuses."""
    if present.size != row.size:
        return False
    if present.etag == staged.etag:
        return True
    if MD5_ETAG.match(present.etag) and present.etag == row.md5:
        return True
    return hashes_of(production.read(present.key))["sha256"] == row.sha256


def is_manifest(name: str) -> bool:
    return name.lower().endswith(MANIFEST_SUFFIXES)


def _build_copies(build_id: str, *, staging: Bucket, production: Bucket) -> list[Copy] | Refusal:
    """The copies still needed for one build, or why it cannot be promoted."""
    prefix = f"{build_id}/"
    staged = {info.key[len(prefix) :]: info for info in staging.list(prefix)}
    if not staged:
        if _pruned_but_in_production(
            BuildFile.objects.filter(build__build_id=build_id), production
        ):
            return []
        return Refusal(f"no files under {prefix} in staging")
    rows = {row.name: row for row in BuildFile.objects.filter(build__build_id=build_id)}
    problem = _unverified(staged, rows)
    if problem:
        return Refusal(problem)
    refused = names_refusal(build=Build.objects.get(build_id=build_id), names=staged)
    if refused:
        return Refusal(refused, kind="promotion.name_refused")
    copies = []
    for name, info in sorted(staged.items()):
        present = production.head(name)
        if present is None:
            copies.append(Copy(build_id, info.key, name, info.size, info.etag))
        elif not same_bytes(rows[name], info, present, production):
            return Refusal(
                f"{name}: production already holds other bytes under this name "
                f"({present.size} bytes there, {info.size} staged); a production object is "
                "never overwritten",
                kind="promotion.overwrite_refused",
            )
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


def _unverified(staged: dict[str, ObjectInfo], rows: dict[str, BuildFile]) -> str:
    """Why the staged files of a build must not reach users ("" when they may).

    Bytes that did not match the build's manifests, that were never verified (a staging run
    that failed or stopped half-way), that staging never recorded, or that changed since,
    must never reach users, whatever the default branch lists: a merge or a push approves a
    build id, not whatever lies under its prefix. Staging writes every file before it verifies
    any, so only the verdict on each file (verified, or no manifest gives a hash) lets it pass.
    A file staging stored under a name `list()` skips (a `.tmp-` name) counts as missing."""
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
        ("changed content (MD5) in staging since they were verified", _changed(staged, rows)),
    ]
    for what, names in checks:
        if names:
            return f"{len(names)} file(s) {what}, e.g. {names[0]}"
    return ""


def _named(rows: dict, verification: str) -> list[str]:
    return sorted(name for name, row in rows.items() if row.verification == verification)


def _changed(staged: dict[str, ObjectInfo], rows: dict[str, BuildFile]) -> list[str]:
    """Same size, but (S3, single part) another MD5 than the bytes staging hashed."""
    changed = []
    for name, row in rows.items():
        info = staged.get(name)
        if info is None:
            continue
        if info.size == row.size and MD5_ETAG.match(info.etag) and row.md5 not in ("", info.etag):
            changed.append(name)
    return sorted(changed)


def promotion_plan(
    *,
    desired: DesiredState,
    staging: Bucket,
    production: Bucket,
    review: Callable[[list[str]], Gate] | None = None,
) -> Plan:
    """`review` says which of the new builds the review lets through (GitHub backend)."""
    current_builds = control_read(production, BUILDS_FILE)
    current_ids = build_ids_of(current_builds, strict=False)
    plan = Plan(new_build_ids=[bid for bid in desired.build_ids if bid not in set(current_ids)])
    gate = review(plan.new_build_ids) if review else Gate()
    copies: list[Copy] = []
    for build_id in plan.new_build_ids:
        found = _build_copies(build_id, staging=staging, production=production)
        if not isinstance(found, Refusal) and build_id in gate.refused:
            found = gate.refused[build_id]  # its files are fine; the review is not
        if isinstance(found, Refusal):
            plan.refused[build_id] = found
        else:
            copies.extend(found)
    plan.copies = [c for c in copies if not is_manifest(c.key)]
    plan.copies += [c for c in copies if is_manifest(c.key)]
    plan.listed = current_ids
    _plan_writes(plan, desired.without(plan.refused), current_builds, production, gate=gate)
    announced = [_announced_by(reason, plan, gate) for reason in plan.invalid]
    if announced and all(announced):
        plan.invalid_notified_by = announced[0]
    return plan


def _announced_by(reason: str, plan: Plan, gate: Gate) -> int | None:
    """The event that already announced `reason` (a held merge, or rules naming a build refused
    for a reason announced before), or None."""
    if reason in gate.held_notified_by:
        return gate.held_notified_by[reason]
    for refusal in plan.refused.values():
        if refusal.notified_by and reason.endswith(f"cannot be promoted: {refusal.reason}"):
            return refusal.notified_by
    return None


def _builds_changed(current: bytes | None, desired: bytes, *, filtered: bool) -> bool:
    """Whether desktop-builds.json must be written. With refused builds left out, the list is
    written again by us, so only a change of content counts (not the default branch's layout);
    and a first, empty list is written for a fresh install, not because every build failed."""
    if current == desired:
        return False
    if not filtered:
        return True
    if current is None:
        return bool(control_parse(BUILDS_FILE, desired))
    try:
        return control_parse(BUILDS_FILE, current) != control_parse(BUILDS_FILE, desired)
    except ControlFileInvalid:
        return True


def _plan_writes(
    plan: Plan, desired: DesiredState, current_builds: bytes | None, production: Bucket, *, gate
) -> None:
    """The control files: desktop-builds.json lists what was promoted; desktop-releases.json
    only when every build it names is listed (else production keeps its rules, and says why)."""
    listed = set(desired.build_ids)
    refused = {bid: r.reason for bid, r in plan.refused.items()}
    current_rules = control_read(production, RELEASES_FILE)
    changes_rules = desired.releases_json not in (None, current_rules)
    plan.invalid = [*(gate.held if changes_rules else [])]
    plan.invalid += rules_problems(desired.releases_json, listed=listed, refused=refused)
    if plan.invalid:
        kept = rules_problems(current_rules, listed=listed, refused=refused)
        if kept:
            # Publishing the builds alone would break the rules production keeps serving.
            plan.invalid.append(f"{BUILDS_FILE} is not published either: {kept[0]}")
            return
    plan.listed = desired.build_ids
    if _builds_changed(current_builds, desired.builds_json, filtered=bool(plan.refused)):
        plan.writes.append(Write(BUILDS_FILE, desired.builds_json, current_builds))
    if desired.releases_json is not None and not plan.invalid:
        if current_rules != desired.releases_json:
            plan.writes.append(Write(RELEASES_FILE, desired.releases_json, current_rules))
    elif current_rules is None and (current_builds is not None or plan.writes):
        # The feed reads the two files as a pair: a desktop-builds.json without rules beside it
        # (a fresh install, or releases that never carried rules) gets the empty rules, which
        # name no build and so are valid beside any list.
        plan.writes.append(Write(RELEASES_FILE, EMPTY_RULES, None))

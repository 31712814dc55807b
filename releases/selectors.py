"""What production serves now, and what approving a release request would change.

Both answers come from the feed's own code: production's `desktop-*.json` are parsed by
`releases.control_files` and indexed by `cdn.metadata`, and each channel manifest is resolved
by `cdn.resolve`, for a client that no IP rule matches. The "after" side lays the release
over production exactly as promotion does (`releases.services.promotion.desired.release_apply`).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from cdn.metadata import ProductionMetadata, metadata_build
from cdn.resolve import resolve_key
from releases.control_files import (
    BUILDS_FILE,
    KINDS,
    RELEASES_FILE,
    ControlFileInvalid,
    control_parse,
    control_read,
    control_text,
)
from releases.integrations import buckets
from releases.models import Build, ReleaseRequest
from releases.services.promotion.desired import release_apply

# The channel manifest each platform's updater asks for (electron-updater's names).
CHANNELS = (("windows", "latest.yml"), ("mac", "latest-mac.yml"), ("linux", "latest-linux.yml"))
TARGET_RE = re.compile(r"-build-([A-Za-z0-9_-]+)\.yml$")


@dataclass(frozen=True)
class Served:
    """What one platform's `latest*.yml` resolves to."""

    platform: str
    manifest: str
    build_id: str | None = None
    version: str = ""
    build_pk: int | None = None  # for the admin link; None when the database lacks the build
    present: bool | None = None  # is the resolved manifest in production? (None: not checked)


@dataclass(frozen=True)
class ProductionNow:
    latest_release_build_id: str | None
    redirections: list = field(default_factory=list)
    served: list[Served] = field(default_factory=list)
    errors: tuple[str, ...] = ()


def _parse(raw: bytes | None, key: str) -> tuple:
    kind = KINDS[key]
    if raw is None:
        return kind(), f"{key} is missing from production"
    try:
        return control_parse(key, raw), None
    except ControlFileInvalid as exc:
        if exc.not_json:
            return kind(), f"{key} in production is not valid JSON"
        return kind(), f"{key} in production is not a JSON {kind.__name__}"


def _served(metadata: ProductionMetadata, *, bucket: buckets.Bucket | None) -> list[Served]:
    versions = {entry["id"]: entry.get("version") or "" for entry in metadata.builds}
    rows = []
    for platform, manifest in CHANNELS:
        key = resolve_key(path=manifest, metadata=metadata, client_ip=None)
        match = TARGET_RE.search(key)
        build_id = match.group(1) if match else None
        present = None if bucket is None else bucket.head(key) is not None
        rows.append(Served(platform, manifest, build_id, versions.get(build_id, ""), None, present))
    return _with_links(rows)


def _with_links(rows: list[Served]) -> list[Served]:
    ids = {row.build_id for row in rows if row.build_id}
    known = dict(Build.objects.filter(build_id__in=ids).values_list("build_id", "pk"))
    return [
        Served(r.platform, r.manifest, r.build_id, r.version, known.get(r.build_id), r.present)
        for r in rows
    ]


def production_now() -> ProductionNow:
    """Which build each platform's feed serves today, from production's files."""
    bucket = buckets.production()
    builds, builds_error = _parse(control_read(bucket, BUILDS_FILE), BUILDS_FILE)
    releases, releases_error = _parse(control_read(bucket, RELEASES_FILE), RELEASES_FILE)
    metadata = metadata_build(builds=builds, releases=releases)
    redirections = releases.get("releaseRedirections")
    return ProductionNow(
        latest_release_build_id=releases.get("latestReleaseBuildId"),
        redirections=redirections if isinstance(redirections, list) else [],
        served=_served(metadata, bucket=bucket),
        errors=tuple(e for e in (builds_error, releases_error) if e),
    )


def version_key(version: str) -> tuple[int, ...]:
    """`1.10.2` → (1, 10, 2); pre-release and build suffixes are ignored."""
    core = re.split(r"[-+]", version.strip().lstrip("v"), maxsplit=1)[0]
    return tuple(int(part) for part in re.findall(r"\d+", core))


@dataclass(frozen=True)
class FileDiff:
    name: str
    lines: list[str]  # unified diff lines; empty when the file does not change


@dataclass(frozen=True)
class Preview:
    """Production now against production once this release is accepted."""

    files: list[FileDiff]
    before: list[Served]
    after: list[Served]
    downgrades: list[str]  # "mac: 1.1.0 → 1.0.2"
    errors: tuple[str, ...] = ()

    @property
    def changes(self) -> bool:
        return any(f.lines for f in self.files)


def _diff(name: str, before: str, after: str) -> FileDiff:
    lines = difflib.unified_diff(
        before.splitlines(), after.splitlines(), f"{name} (production now)", f"{name} (after)",
        lineterm="", n=3,
    )  # fmt: skip
    return FileDiff(name, list(lines))


def _downgrades(before: list[Served], after: list[Served]) -> list[str]:
    found = []
    for old, new in zip(before, after, strict=True):
        if old.version and new.version and version_key(new.version) < version_key(old.version):
            found.append(f"{old.platform}: {old.version} → {new.version}")
    return found


def release_preview(*, release: ReleaseRequest) -> Preview:
    """The desktop-*.json diff and the per-platform change that accepting `release` makes."""
    bucket = buckets.production()
    raw_builds = control_read(bucket, BUILDS_FILE)
    raw_releases = control_read(bucket, RELEASES_FILE)
    builds, builds_error = _parse(raw_builds, BUILDS_FILE)
    rules, releases_error = _parse(raw_releases, RELEASES_FILE)
    before_meta = metadata_build(builds=builds, releases=rules)
    entries = {e.get("id"): e for e in builds if isinstance(e, dict) and "id" in e}
    after_rules = dict(rules)
    release_apply(entries, after_rules, release=release)
    after_builds = list(entries.values())
    after_meta = metadata_build(builds=after_builds, releases=after_rules)
    before, after = _served(before_meta, bucket=None), _served(after_meta, bucket=None)
    text = (raw_builds or b"").decode("utf-8", "replace")
    releases_text = (raw_releases or b"").decode("utf-8", "replace")
    files = [
        _diff(RELEASES_FILE, releases_text, control_text(after_rules)),
        _diff(BUILDS_FILE, text, control_text(after_builds)),
    ]
    errors = tuple(e for e in (builds_error, releases_error) if e)
    return Preview(files, before, after, _downgrades(before, after), errors)

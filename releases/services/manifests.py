"""Reading a build's manifests: what to stage and which hashes it must have (docs/staging.md).

ToDesktop publishes, per platform, a td JSON manifest (`td-latest[-mac|-linux]-build-<id>.json`)
and usually its electron-builder twin (`latest[-mac|-linux]-build-<id>.yml`). Together they name
every artifact of the build and give sha256/size (td) and base64 sha512/size (yml) for them.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import yaml

from releases.control_files import CONTROL_FILES
from releases.integrations import todesktop
from releases.integrations.buckets import TEMP_PREFIX
from releases.validation import json_load_bounded

# Platform → the part of the manifest names that follows `latest-`.
PLATFORMS = {"windows": "", "mac": "mac-", "linux": "linux-"}
# Production's control files: promotion copies a build's files to the same root, so a file of
# these names would replace the reviewed release state with whatever a manifest pointed at.
RESERVED_NAMES = frozenset(CONTROL_FILES)
MAX_VERSION_LENGTH = 100  # Build.version
# td JSON and electron-builder yml nest four levels; a deeper manifest is refused before it can
# exhaust Python's recursion limit (a RecursionError would crash staging mid-build).
MAX_MANIFEST_DEPTH = 32


class ManifestError(ValueError):
    """A manifest that cannot be read (the build fails with this reason)."""


class NoManifests(ManifestError):
    """No platform manifest exists for the build."""


@dataclass(frozen=True)
class Expectation:
    field: str  # "sha256" (hex), "sha512" (base64 or hex) or "size"
    value: str | int
    source: str  # the manifest that says so


@dataclass
class PlannedFile:
    name: str
    kind: str  # "artifact" or "blockmap"
    expectations: list[Expectation] = field(default_factory=list)


@dataclass
class BuildPlan:
    version: str = ""
    platforms: list[str] = field(default_factory=list)
    manifests: dict[str, bytes] = field(default_factory=dict)  # staged from memory
    notes: list[str] = field(default_factory=list)  # missing platforms / yml twins
    files: dict[str, PlannedFile] = field(default_factory=dict)  # downloaded

    def expect(self, name: str, expectation: Expectation | None = None) -> PlannedFile:
        planned = self.files.setdefault(name, PlannedFile(name=name, kind="artifact"))
        if expectation is not None and expectation not in planned.expectations:
            planned.expectations.append(expectation)
        return planned

    @property
    def blockmaps(self) -> list[str]:
        """docs/staging.md: every artifact except "Mac Installer" ones may have
        `<name>.blockmap`."""
        return [
            f"{name}.blockmap"
            for name in self.files
            if "Mac Installer" not in name and not name.endswith(".blockmap")
        ]


def td_name(platform: str, build_id: str) -> str:
    return f"td-latest-{PLATFORMS[platform]}build-{build_id}.json"


def yml_name(platform: str, build_id: str) -> str:
    return f"latest-{PLATFORMS[platform]}build-{build_id}.yml"


def build_plan(
    *,
    app_id: str,
    build_id: str,
    progress: Callable[[], None] | None = None,
    platforms: Collection[str] | None = None,
) -> BuildPlan:
    """Fetch the manifests (404 = platform not built) and list every file with its hashes.

    `progress` is called between fetches (the caller renews its claim: retries can be slow).
    `platforms` limits which platforms' manifests are fetched (`manage.py stage --mac`); None
    means all three.
    """
    plan = BuildPlan()
    for platform in PLATFORMS:
        if platforms is not None and platform not in platforms:
            continue
        if progress:
            progress()
        td = td_name(platform, build_id)
        body = todesktop.fetch_small(app_id=app_id, name=td)
        if body is None:
            plan.notes.append(f"{platform}: not built ({td} is 404)")
            continue
        plan.platforms.append(platform)
        plan.manifests[td] = body
        td_manifest_read(plan, name=td, body=body)
        twin = yml_name(platform, build_id)
        twin_body = todesktop.fetch_small(app_id=app_id, name=twin)
        if twin_body is None:
            plan.notes.append(f"{platform}: no electron-builder manifest ({twin} is 404)")
            continue
        plan.manifests[twin] = twin_body
        yml_manifest_read(plan, name=twin, body=twin_body)
    if not plan.platforms:
        searched = "all three are" if platforms is None else f"{', '.join(platforms)}:"
        raise NoManifests(f"no manifest found for build {build_id} ({searched} 404)")
    return plan


def td_manifest_read(plan: BuildPlan, *, name: str, body: bytes) -> None:
    try:
        data = json_load_bounded(body, max_depth=MAX_MANIFEST_DEPTH)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{name}: not JSON ({str(exc)[:200]})")
    if not isinstance(data, dict) or not isinstance(data.get("artifacts", {}), dict):
        raise ManifestError(f"{name}: not a td manifest (expected an object with artifacts)")
    version = _version(name, data.get("version"))
    if version and not plan.version:
        plan.version = version
    for kind, arches in (data.get("artifacts") or {}).items():
        if arches is None:
            continue
        if not isinstance(arches, dict):
            raise ManifestError(f"{name}: artifacts.{kind} is not an object")
        for arch, info in arches.items():
            if info is None:
                continue
            if not isinstance(info, dict) or not isinstance(info.get("url"), str):
                raise ManifestError(f"{name}: artifacts.{kind}.{arch} has no url")
            _add(plan, name, info["url"], sha256=info.get("sha256"), size=info.get("size"))


def _version(source: str, value: Any) -> str:
    """A td manifest's `version` ("" when absent): it becomes `Build.version` (100 characters),
    the version in desktop-builds.json, the PR title and the commit messages."""
    if value is None:
        return ""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_VERSION_LENGTH:
        raise ManifestError(
            f"{source}: version must be a string of 1-{MAX_VERSION_LENGTH} characters"
        )
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ManifestError(
            f"{source}: version {value[:40]!r} contains a space or control character"
        )
    return value


def yml_manifest_read(plan: BuildPlan, *, name: str, body: bytes) -> None:
    try:
        _yaml_depth_check(body)
        data = yaml.safe_load(body)
    except yaml.YAMLError as exc:
        raise ManifestError(f"{name}: not YAML ({str(exc)[:300]})")
    except _TooDeep:
        raise ManifestError(f"{name}: not YAML (nested more than {MAX_MANIFEST_DEPTH} levels)")
    if not isinstance(data, dict):
        raise ManifestError(f"{name}: not an electron-builder manifest (expected a mapping)")
    files = data.get("files") or []
    if not isinstance(files, list):
        raise ManifestError(f"{name}: files is not a list")
    for entry in files:
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            raise ManifestError(f"{name}: an entry of files has no url")
        _add(plan, name, entry["url"], sha512=entry.get("sha512"), size=entry.get("size"))
    if isinstance(data.get("path"), str):
        _add(plan, name, data["path"], sha512=data.get("sha512"))
    # nsis-web: the per-arch `.7z` packages the web installer downloads.
    for entry in (data.get("packages") or {}).values():
        if isinstance(entry, dict) and isinstance(entry.get("path"), str):
            _add(plan, name, entry["path"], sha512=entry.get("sha512"), size=entry.get("size"))


class _TooDeep(Exception):
    pass


def _yaml_depth_check(body: bytes) -> None:
    """Walk the parser's events (a loop, unlike the composer's recursion) and raise _TooDeep
    past MAX_MANIFEST_DEPTH, before `safe_load` builds anything."""
    depth = 0
    for event in yaml.parse(body, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_MANIFEST_DEPTH:
                raise _TooDeep()
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _add(plan: BuildPlan, source: str, url: str, **expected: Any) -> None:
    try:
        file_name = todesktop.file_name_from_url(url)
    except todesktop.UnsafeFileName as exc:
        raise ManifestError(f"{source}: {exc}")
    if file_name.lower() in RESERVED_NAMES:
        raise ManifestError(f"{source}: unsafe file name {file_name!r}: a production control file")
    if file_name.startswith(TEMP_PREFIX):
        # The filesystem bucket writes through `.tmp-*` files and lists none of them: such a
        # file would be staged, yet never seen by promotion.
        raise ManifestError(
            f"{source}: unsafe file name {file_name!r}: reserved for partial writes"
        )
    planned = plan.expect(file_name)
    for key, value in expected.items():
        if value is None:
            continue
        if key == "size" and (not isinstance(value, int) or isinstance(value, bool)):
            raise ManifestError(f"{source}: size of {file_name} is not an integer")
        if key != "size" and not isinstance(value, str):
            raise ManifestError(f"{source}: {key} of {file_name} is not a string")
        expectation = Expectation(field=key, value=value, source=source)
        if expectation not in planned.expectations:
            planned.expectations.append(expectation)


def sha512_base64(hex_digest: str) -> str:
    return base64.b64encode(binascii.unhexlify(hex_digest)).decode()


def expectation_check(expectation: Expectation, actual: dict[str, Any]) -> str | None:
    """None when `actual` (size, sha256 hex, sha512 hex) matches, else a one-line mismatch."""
    if expectation.field == "size":
        got: Any = actual["size"]
        ok = got == expectation.value
    elif expectation.field == "sha256":
        got = actual["sha256"]
        ok = got == str(expectation.value).lower()
    else:
        expected = str(expectation.value)
        hex_form = len(expected) == 128 and all(c in "0123456789abcdefABCDEF" for c in expected)
        got = actual["sha512"] if hex_form else sha512_base64(actual["sha512"])
        ok = got == (expected.lower() if hex_form else expected)
    if ok:
        return None
    return (
        f"{expectation.field} expected {expectation.value}, actual {got} "
        f"(from {expectation.source})"
    )

"""Path resolution (docs/feed.md): which production object answers a feed path.

Mirrors the original desktop-cdn worker (`applyRedirections` + `transformLatestBuildPath`),
with the improvements docs/feed.md lists: IPs compared as addresses, `latest-linux-<arch>` files
count
as linux, and the `latest-build-<id>-<platform>.yml` transform works at any depth.
"""

from __future__ import annotations

import re
import time

from cdn.metadata import PLATFORMS, ProductionMetadata, Rule, parse_ip
from cdn.rollout import cohort_position, in_cohort, percentage_in_force

MANIFEST_SUFFIXES = (".json", ".yml")
# Same pattern as the original: exactly three numeric parts right before the extension.
VERSION_RE = re.compile(r"-(\d+\.\d+\.\d+)(?=\.(?:json|yml)$)", re.IGNORECASE)
EXTENSION_RE = re.compile(r"\.(yml|json)$")
PLATFORM_SUFFIX_RE = re.compile(r"-(\w+)\.(?:json|yml)$", re.IGNORECASE)
LINUX_ARCH_RE = re.compile(r"-linux-[A-Za-z0-9_]+\.(?:json|yml)$")
# What the ToDesktop runtime asks for when pinned to a build (the original's names differ on S3).
LATEST_BUILD_RE = re.compile(r"^(.*/)?latest-build-([a-z0-9]+)-([a-z]+)\.yml$", re.IGNORECASE)


def is_manifest(path: str) -> bool:
    return path.endswith(MANIFEST_SUFFIXES)


def version_of(path: str) -> str | None:
    match = VERSION_RE.search(path)
    return match.group(1) if match else None


def build_path(path: str, build_id: str) -> str:
    """`latest-mac-1.2.3.yml` / `latest-mac.yml` → `latest-mac-build-<id>.yml`."""
    without_version = VERSION_RE.sub("", path, count=1)
    return EXTENSION_RE.sub(lambda m: f"-build-{build_id}.{m.group(1)}", without_version)


def platform_of(path: str) -> str | None:
    """The platform of a channel manifest (`latest.yml` = windows), else None."""
    name = path.rsplit("/", 1)[-1]
    if not is_manifest(name) or not name.startswith(("td-latest", "latest")):
        return None
    if name in ("td-latest.json", "latest.yml"):
        return "windows"
    match = PLATFORM_SUFFIX_RE.search(name)
    if match and match.group(1) in ("mac", "linux"):
        return match.group(1)
    if LINUX_ARCH_RE.search(name):
        return "linux"
    return None


def _rule_target(
    rules: tuple[Rule, ...],
    *,
    path: str,
    client_ip: str | None,
    staging_id: str | None,
    now: float | None,
) -> str | None:
    """Walk the rules in order; later matches override earlier ones, except `build`."""
    address = parse_ip(client_ip) if client_ip is not None else None
    platform = platform_of(path)
    position = cohort_position(staging_id)
    target: str | None = None
    for rule in rules:
        if rule.kind == "build":
            target = target or rule.build_id
        elif rule.kind == "buildByIp":
            if address is not None and address in rule.ips:
                target = rule.build_id
        elif rule.kind == "buildByPlatform":
            if platform in PLATFORMS and platform in rule.platforms:
                target = rule.build_id
        elif rule.kind == "buildByPercentage":
            if _in_rollout(rule, platform=platform, position=position, now=now):
                target = rule.build_id
    return target


def _in_rollout(rule: Rule, *, platform: str | None, position: float | None, now) -> bool:
    if position is None or not (rule.all_platforms or platform in rule.platforms):
        return False
    moment = time.time() if now is None else now
    return in_cohort(position, percentage_in_force(rule.percentage, rule.schedule, now=moment))


def transform_latest_build_path(path: str) -> str:
    """`…/latest-build-<id>-<platform>.yml` → `…/latest-<platform>-build-<id>.yml`."""
    return LATEST_BUILD_RE.sub(lambda m: f"{m[1] or ''}latest-{m[3]}-build-{m[2]}.yml", path)


def resolve_key(
    *,
    path: str,
    metadata: ProductionMetadata,
    client_ip: str | None,
    staging_id: str | None = None,
    now: float | None = None,
) -> str:
    """The production key for a decoded feed path. `client_ip=None`: IP rules do not apply;
    `staging_id=None` (download links, no header): percentage rules do not apply. `now` (epoch
    seconds, default the clock) is when rollout schedules are read."""
    if not is_manifest(path) or "-build-" in path:
        key = path
    elif (version := version_of(path)) is not None:
        build_id = metadata.released_build_by_version.get(version)
        key = build_path(path, build_id) if build_id else path
    else:
        target = _rule_target(
            metadata.rules, path=path, client_ip=client_ip, staging_id=staging_id, now=now
        )
        key = build_path(path, target) if target else path
    return transform_latest_build_path(key)

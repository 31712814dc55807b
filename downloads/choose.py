"""Which installer a download link serves (docs/download-links.md): pure functions, no I/O.

The flow mirrors the original desktop-download-cdn worker: validate the route's parameters,
pick the platform (from the route, else the User-Agent) and the arch (from the route, else
from the macOS version), name the td manifest to read, then pick the artifact and its arch
entry in that manifest. Reading the manifest and serving the file live in
`downloads.services`; everything here is cheap enough to run on every request.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

import ua_parser

PLATFORMS = ("windows", "mac", "linux")
ARCHES = ("ia32", "x64", "arm64", "universal")
# What the original checks to stop XSS through the messages that echo parameters.
PARAMETER = re.compile(r"[A-Za-z0-9.-]+")
# Checked in this order, with the original's camelCase names in the message.
PARAMETER_NAMES = (
    ("app_version", "appVersion"),
    ("arch", "arch"),
    ("artifact_name", "artifactName"),
    ("build_id", "buildId"),
    ("platform", "platform"),
)
# When the route names no arch: try the chosen one, then these (the original's backups).
ARCH_FALLBACKS = ("x64", "arm64")

# First present wins (docs/download-links.md). The universal mac `installer` is a small downloader
# that
# fetches the right build for the machine; it needs macOS 10.15+ and exists for latest only.
ARTIFACTS_LINUX = ("appImage", "deb", "rpm", "snap")
ARTIFACTS_MAC_UNIVERSAL = ("installer", "dmg", "zip", "mas")
ARTIFACTS_MAC = ("dmg", "zip", "pkg")
ARTIFACTS_WINDOWS = ("nsis-web", "nsis", "msi", "appx")

# ua-parser OS families. Android and iOS follow the original's parser (express-useragent),
# which saw "Linux" in Android's and "Mac OS X" in iOS's User-Agent.
MAC_FAMILIES = frozenset({"Mac OS X", "macOS", "iOS", "iPadOS"})
LINUX_FAMILIES = frozenset(
    {
        "Linux", "Ubuntu", "Kubuntu", "Lubuntu", "Debian", "Fedora", "Red Hat", "CentOS",
        "Linux Mint", "Mandriva", "PCLinuxOS", "Puppy", "Arch Linux", "Slackware", "Gentoo",
        "openSUSE", "SUSE", "Mageia", "BackTrack", "Chrome OS", "Android",
    }
)  # fmt: skip


class ChoiceError(Exception):
    """A request the link cannot serve: `status` (400 or 404) and the original's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Route:
    """The parameters of one download link, as given in the URL (None when absent)."""

    platform: str | None = None
    artifact_name: str | None = None
    arch: str | None = None
    app_version: str | None = None
    build_id: str | None = None


@dataclass(frozen=True)
class Plan:
    """What to read before choosing: the manifest, and how to pick inside it."""

    route: Route
    platform: str
    arch: str
    arch_fallbacks: tuple[str, ...]
    installer_allowed: bool
    manifest_name: str


@dataclass(frozen=True)
class Choice:
    """The manifest entry a link resolves to."""

    platform: str
    artifact_name: str
    arch: str  # the arch entry actually used (after fallbacks)
    entry: dict[str, Any] = field(hash=False)
    version: str | None
    created_at: str | None


@dataclass(frozen=True)
class ClientFacts:
    platform: str
    mac_universal: bool  # macOS 10.15 or later: Apple silicon possible, installer supported


@functools.lru_cache(maxsize=4096)
def client_facts(user_agent: str) -> ClientFacts:
    """Platform and mac capability of a User-Agent, through ua-parser (cached: links are hot)."""
    # The OS token comes first in every real User-Agent (< 300 characters); parsing at most
    # 512 keeps a padded header from costing more than a real one.
    os = ua_parser.parse_os(user_agent[:512])
    family = os.family if os else ""
    if family in MAC_FAMILIES:
        platform = "mac"
    elif family in LINUX_FAMILIES:
        platform = "linux"
    else:
        platform = "windows"  # the original's default, Windows included
    return ClientFacts(platform, family == "Mac OS X" and _at_least_10_15(os))


def _at_least_10_15(os: ua_parser.OS) -> bool:
    # Safari and Chrome write `Mac OS X 10_15_7`, Firefox `10.15`, and all of them freeze at
    # 10.15 on macOS 11+ (https://bugs.webkit.org/show_bug.cgi?id=216593); ua-parser reads
    # both spellings. Any later version (11, 14, 26…) counts too.
    try:
        major, minor = int(os.major or 0), int(os.minor or 0)
    except ValueError:
        return False
    return (major, minor) >= (10, 15)


def route_validate(route: Route, user_agent: str | None) -> None:
    """400 for a parameter outside [A-Za-z0-9.-], an unknown platform, or no User-Agent."""
    for attribute, name in PARAMETER_NAMES:
        value = getattr(route, attribute)
        if value is not None and not PARAMETER.fullmatch(value):
            raise ChoiceError(400, f"URL is invalid ({name})")
    if route.platform is not None and route.platform not in PLATFORMS:
        raise ChoiceError(400, f"Unsupported platform ({route.platform})")
    if not user_agent:
        raise ChoiceError(400, "No userAgent argument given")


def plan_make(route: Route, user_agent: str | None) -> Plan:
    """Validate the route, then settle platform, arch and the manifest to read."""
    route_validate(route, user_agent)
    facts = client_facts(user_agent)
    platform = route.platform or facts.platform
    installer_allowed = True
    fallbacks: tuple[str, ...] = ()
    arch = route.arch
    if arch is None:
        if platform == "mac":
            arch = "universal" if facts.mac_universal else "x64"
            installer_allowed = facts.mac_universal
        else:
            arch = "universal"
        fallbacks = ARCH_FALLBACKS
    if platform == "mac" and (route.build_id or route.app_version):
        installer_allowed = False  # the universal installer only ever fetches the latest
    if arch not in ARCHES:
        raise ChoiceError(400, f"Unsupported architecture ({arch})")
    name = manifest_name(platform, app_version=route.app_version, build_id=route.build_id)
    return Plan(route, platform, arch, fallbacks, installer_allowed, name)


def manifest_name(platform: str, *, app_version: str | None, build_id: str | None) -> str:
    """`td-latest[-mac|-linux][-<version>|-build-<id>].json` (Windows has no platform part)."""
    name = "td-latest" if platform == "windows" else f"td-latest-{platform}"
    if app_version:
        name += f"-{app_version}"
    elif build_id:
        name += f"-build-{build_id}"
    return name + ".json"


def artifact_preferences(platform: str, arch: str) -> tuple[str, ...]:
    if platform == "linux":
        return ARTIFACTS_LINUX
    if platform == "mac":
        return ARTIFACTS_MAC_UNIVERSAL if arch == "universal" else ARTIFACTS_MAC
    return ARTIFACTS_WINDOWS


def artifact_choose(plan: Plan, manifest: dict[str, Any]) -> Choice:
    """The artifact and arch entry of `manifest` that the plan asks for (404 when absent)."""
    artifacts = manifest.get("artifacts")
    artifacts = artifacts if isinstance(artifacts, dict) else {}
    name = _artifact_name(plan, artifacts)
    arches = artifacts.get(name)
    arches = arches if isinstance(arches, dict) else {}
    for arch in (plan.arch, *plan.arch_fallbacks):
        entry = arches.get(arch)
        if isinstance(entry, dict) and entry:
            return Choice(
                plan.platform,
                name,
                arch,
                entry,
                _text(manifest.get("version")),
                _text(manifest.get("createdAt")),
            )
    raise ChoiceError(
        404, _with_build(plan, f"Couldn't find {plan.platform} app ({name}-{plan.arch})")
    )


def _artifact_name(plan: Plan, artifacts: dict[str, Any]) -> str:
    preferences = artifact_preferences(plan.platform, plan.arch)
    desired = (plan.route.artifact_name or "").lower()
    for name in preferences:
        # Asked for by name (any case: `appimage` = `appImage`): honoured even for `installer`.
        if name.lower() == desired:
            return name
    if not plan.installer_allowed:
        preferences = tuple(name for name in preferences if name != "installer")
    for name in preferences:
        arches = artifacts.get(name)
        if isinstance(arches, dict) and any(arches.get(a) for a in ("universal", "x64", "arm64")):
            return name
    # Only build and version manifests can lack every artifact of their platform.
    raise ChoiceError(404, f"Couldn't find {plan.platform} app")


def _with_build(plan: Plan, message: str) -> str:
    # The original adds the build id to the messages of build routes.
    build_id = plan.route.build_id
    return f"{message} and build ID {build_id}" if build_id else message


def not_found_message(plan: Plan, manifest_key: str) -> str:
    return _with_build(plan, f"Could not find: {manifest_key}")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None

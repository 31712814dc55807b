"""What production should hold (docs/promotion.md): the two control files, as exact bytes.

The review backend says (`ReviewBackend.desired_state`, releases/services/review_backends/):
GitHub reads `desktop-builds.json` and `desktop-releases.json` at the head of the default
branch; the admin backend lays the approved (and already live) release requests in the database
over what production holds today.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace

from releases.control_files import (
    BUILDS_FILE,
    ControlFileInvalid,
    builds_ids,
    control_bytes,
    control_parse,
)
from releases.models import ReleaseRequest
from releases.services.promotion.halts import halts_overlay
from releases.services.review_backends import review_backend


class DesiredStateError(Exception):
    """The desired state cannot be read or is not valid; nothing is promoted."""


class DesiredStateInvalid(DesiredStateError):
    """The desired state was read but cannot be used (its desktop-builds.json is broken)."""


@dataclass
class DesiredState:
    builds_json: bytes
    releases_json: bytes | None  # None: the source has no desktop-releases.json
    source: str
    build_ids: list[str] = field(default_factory=list)
    # Admin backend: composes the state again without some builds' releases (their rules too).
    compose: Callable[[frozenset[str]], DesiredState] | None = field(default=None, repr=False)

    def without(self, build_ids: Collection[str]) -> DesiredState:
        """The state with `build_ids` left out: nothing is published for a refused build.

        Admin backend: the refused builds' releases are left out, rules included. GitHub: only
        their entries go; rules that still name them make the state invalid (see `plan`)."""
        excluded = frozenset(build_ids) & frozenset(self.build_ids)
        if not excluded:
            return self
        if self.compose is not None:
            return self.compose(excluded)
        entries = control_parse(BUILDS_FILE, self.builds_json)
        entries = [e for e in entries if e["id"] not in excluded]
        kept = [bid for bid in self.build_ids if bid not in excluded]
        return replace(self, builds_json=control_bytes(entries), build_ids=kept)


def build_ids_of(raw: bytes | None, *, strict: bool) -> list[str]:
    """The ids listed in a `desktop-builds.json`; an unreadable file is `[]` unless `strict`."""
    try:
        return builds_ids(raw)
    except ControlFileInvalid as exc:
        if strict:
            raise DesiredStateInvalid(f"{BUILDS_FILE} is not valid: {exc}") from exc
        return []


def desired_state_read(*, production, settle_halts: bool = True) -> DesiredState:
    """The desired state from the configured review backend. Its desktop-releases.json is
    validated by the plan, against the builds that can actually be promoted. Rollouts halted
    from the admin stay halted in it until it carries the halt (`halts.halts_overlay`);
    `settle_halts=False` (a dry run) leaves the halts' records as they are."""
    state = review_backend().desired_state(production=production)
    state.build_ids = build_ids_of(state.builds_json, strict=True)
    return _with_halts(state, settle=settle_halts)


def _with_halts(state: DesiredState, *, settle: bool) -> DesiredState:
    state.releases_json = halts_overlay(state.releases_json, settle=settle)
    if state.compose is not None:
        compose = state.compose
        state.compose = lambda more: _with_halts(compose(more), settle=False)
    return state


def release_apply(entries: dict, rules: dict, *, release: ReleaseRequest) -> bool:
    """Lay one accepted release over the control files' contents, in place: a release adds its
    build's entry, and either kind sets the rules it carries. True when it set a rule."""
    build = release.build
    if release.kind == "release":
        entries[build.build_id] = {
            "id": build.build_id,
            "version": build.version,
            "createdAt": release.payload.get("buildEndedAt") or build.created_at.isoformat(),
            "isReleased": True,
        }
    had_rules = False
    for key in ("latestReleaseBuildId", "releaseRedirections"):
        if isinstance(release.release_info, dict) and key in release.release_info:
            rules[key] = release.release_info[key]
            had_rules = True
    return had_rules

"""Staging a build by hand (docs/cli.md): the original's `release-new-version` tool, as a service.

`manual_stage` checks the build at ToDesktop first (its manifests, for the chosen platforms), so
a mistyped build id or an unreachable origin is a one-line error that leaves no row behind.
Then it records the release as a webhook would (a `ReleaseRequest` of kind `release`, with a
ToDesktop-shaped payload, and an audit event `manual.stage` naming who ran it) and runs the
staging service synchronously, which verifies every file and opens the review.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Protocol

from django.conf import settings
from django.db import transaction

from releases.errors import TransientError
from releases.integrations import todesktop
from releases.models import Build, ReleaseRequest, ReleaseState
from releases.services import lifecycle, manifests
from releases.services.audit import audit_record
from releases.services.staging import build_stage
from releases.services.staging_files import StagingObserver
from releases.validation import PayloadError, payload_parse

PLATFORMS = tuple(manifests.PLATFORMS)  # windows, mac, linux


class ManualStageError(Exception):
    """The build could not be staged; the message is one line for the operator."""


class ManualObserver(StagingObserver, Protocol):
    """What `manual_stage` tells its caller besides the bytes: steps and the plan."""

    def say(self, message: str) -> None: ...

    def planned(self, *, sizes: dict[str, int | None]) -> None: ...


@dataclass
class ManualStage:
    release: ReleaseRequest
    build: Build
    platforms: list[str]
    files: int
    verified: int


def manual_stage(
    *,
    build_id: str,
    actor: str,
    app_id: str = "",
    platforms: Collection[str] | None = None,
    version: str = "",
    release_info: dict[str, Any] | None = None,
    open_review: bool = True,
    observer: ManualObserver | None = None,
) -> ManualStage:
    """Stage `build_id` from TODESKTOP_DOWNLOAD_BASE_URL now, verify it, open its review."""
    app_id = app_id or settings.TODESKTOP_APP_ID
    if not app_id:
        raise ManualStageError("TODESKTOP_APP_ID is not set (or pass --app-id)")
    payload = _payload(app_id=app_id, build_id=build_id, version=version, info=release_info)
    chosen = [p for p in PLATFORMS if platforms is None or p in platforms]
    _say(
        observer, f"reading the manifests of {build_id} ({', '.join(chosen)}) from {_where(app_id)}"
    )
    plan = _probe(app_id=app_id, build_id=build_id, platforms=platforms)
    if version and plan.version and version != plan.version:
        raise ManualStageError(f"--version {version}: the manifests say {plan.version}")
    payload.setdefault("appVersion", plan.version)
    _say(observer, f"found v{plan.version or '?'} for {', '.join(plan.platforms)}")
    if observer is not None:
        observer.planned(sizes=_sizes(plan))
    release = _record(payload=payload, actor=actor, platforms=plan.platforms)
    _say(observer, f"recorded release request #{release.pk}; staging {len(plan.files)} artifacts")
    _run(release=release, platforms=platforms, open_review=open_review, observer=observer)
    return _result(release)


def _say(observer: ManualObserver | None, message: str) -> None:
    if observer is not None:
        observer.say(message)


def _where(app_id: str) -> str:
    return todesktop.shown(f"{settings.TODESKTOP_DOWNLOAD_BASE_URL.rstrip('/')}/{app_id}/")


def _payload(*, app_id: str, build_id: str, version: str, info: dict | None) -> dict[str, Any]:
    """A ToDesktop-shaped body, checked by the webhook's own validation (ids, rules, types)."""
    body: dict[str, Any] = {"appId": app_id, "buildId": build_id}
    if version:
        body["appVersion"] = version
    if info is not None:
        body["releaseInfo"] = info
    try:
        return payload_parse(body=json.dumps(body).encode())
    except PayloadError as exc:
        raise ManualStageError(exc.message.removeprefix("invalid payload: ")) from exc


def _probe(*, app_id: str, build_id: str, platforms: Collection[str] | None):
    try:
        return manifests.build_plan(app_id=app_id, build_id=build_id, platforms=platforms)
    except manifests.NoManifests as exc:
        raise ManualStageError(f"unknown build at {_where(app_id)}: {exc}") from exc
    except manifests.ManifestError as exc:
        raise ManualStageError(f"unreadable manifest: {exc}") from exc
    except todesktop.OriginUnavailable as exc:
        raise ManualStageError(f"cannot reach ToDesktop at {_where(app_id)}: {exc}") from exc
    except todesktop.OriginError as exc:
        raise ManualStageError(f"ToDesktop refused the manifests: {exc}") from exc


def _sizes(plan: manifests.BuildPlan) -> dict[str, int | None]:
    sizes: dict[str, int | None] = {}
    for name, planned in plan.files.items():
        given = [int(e.value) for e in planned.expectations if e.field == "size"]
        sizes[name] = given[0] if given else None
    return sizes


def _record(*, payload: dict[str, Any], actor: str, platforms: list[str]) -> ReleaseRequest:
    with transaction.atomic():
        build, created = Build.objects.get_or_create(
            build_id=payload["buildId"], defaults={"app_id": payload["appId"]}
        )
        release = ReleaseRequest.objects.create(
            build=build,
            kind="release",
            payload=payload,
            release_info=payload.get("releaseInfo"),
            requested_by=actor,
        )
        # Staging by hand is how an operator retries a failed build: give it a fresh start.
        retried = lifecycle.move(build=build, build_step="retry")
        audit_record(
            kind="manual.stage",
            message=(
                f"{actor} staged build {build.build_id} by hand ({', '.join(platforms)})"
                + (" after it had failed" if retried else "")
            ),
            release=release,
            actor=actor,
            data={"platforms": platforms, "new_build": created, "payload": payload},
        )
    return release


def _run(
    *,
    release: ReleaseRequest,
    platforms: Collection[str] | None,
    open_review: bool,
    observer: ManualObserver | None,
) -> None:
    try:
        build_stage(
            release_id=release.pk, platforms=platforms, open_review=open_review, observer=observer
        )
    except TransientError as exc:
        # The build is back to `received`: running the command again resumes it.
        raise ManualStageError(f"staging interrupted, run the command again: {exc}") from exc
    release.refresh_from_db()
    if release.state == ReleaseState.FAILED:
        build = Build.objects.get(pk=release.build_id)
        reason = release.failure_reason or build.failure_reason
        raise ManualStageError(f"build {build.build_id} failed: {reason}")


def _result(release: ReleaseRequest) -> ManualStage:
    build = Build.objects.get(pk=release.build_id)
    files = build.files.filter(staged_at__isnull=False)
    return ManualStage(
        release=release,
        build=build,
        platforms=list(build.platforms),
        files=files.count(),
        verified=files.filter(verification="verified").count(),
    )

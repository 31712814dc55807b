"""Mirroring GitHub into the audit trail and the release state (docs/webhooks.md).

One verified delivery → one stored `WebhookDelivery` (unique by `X-GitHub-Delivery`, so a
redelivery does nothing) → one audit event with GitHub's actor, time and link, and a move of
the release request's state. The state is informational: what promotion copies is always read
from the default branch through the API, never from a webhook body.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.dateparse import parse_datetime

from releases.control_files import CONTROL_FILES
from releases.models import ReleaseRequest, ReleaseState, WebhookDelivery
from releases.queue import enqueue_after_commit
from releases.services import lifecycle
from releases.services.audit import audit_record
from releases.webhook_http import headers_kept

logger = logging.getLogger(__name__)

KEPT_HEADERS = (
    "X-GitHub-Event",
    "X-GitHub-Delivery",
    "X-GitHub-Hook-ID",
    "X-Hub-Signature-256",
    "User-Agent",
)
# A review's verdict → the lifecycle steps of its release and build. A late or replayed event
# does not move a release that is settled (merged, live, failed, withdrawn): the steps' from-states
# leave those out, and a merge never moves one that promotion or a release manager decided.
REVIEW_STEPS = {
    "approved": ("approve_on_github", "approve"),
    "changes_requested": ("request_changes", "back_to_review"),
}


@dataclass
class Outcome:
    """What the receiver answers; `handled` is False for events we log and ignore."""

    handled: bool
    detail: str
    duplicate: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"handled": self.handled, "detail": self.detail, "duplicate": self.duplicate}


def github_delivery_receive(
    *, event: str, delivery_id: str, body: bytes, payload: dict, headers: Mapping[str, str]
) -> Outcome:
    """Store the delivery once and apply it; a delivery id seen before changes nothing."""
    kept = headers_kept(headers, KEPT_HEADERS)
    if _body_seen(kept.get("X-Hub-Signature-256", "")):
        # X-GitHub-Delivery is not covered by the signature: the same signed body under a fresh
        # id is a replay (of a body anyone with admin read access could copy), not a new event.
        logger.warning("github delivery %s replays a body already received; ignored", delivery_id)
        return Outcome(handled=False, detail="body already received", duplicate=True)
    try:
        with transaction.atomic():
            WebhookDelivery.objects.create(
                source=WebhookDelivery.Source.GITHUB,
                delivery_key=delivery_id,
                event=event,
                headers=kept,
                body=body,
            )
            return _dispatch(event, payload, delivery_id)
    except IntegrityError:
        logger.info("github delivery %s already received; ignored", delivery_id)
        return Outcome(handled=False, detail="delivery already received", duplicate=True)


def _body_seen(signature: str) -> bool:
    """Whether a delivery with this body was stored already (its HMAC names the body)."""
    if not signature:
        return False
    lookup = {"headers__X-Hub-Signature-256": signature}
    return WebhookDelivery.objects.filter(source=WebhookDelivery.Source.GITHUB, **lookup).exists()


def _dispatch(event: str, payload: dict, delivery_id: str) -> Outcome:
    if event == "ping":
        return Outcome(handled=True, detail="pong")
    if not _our_repository(payload):
        name = (payload.get("repository") or {}).get("full_name")
        logger.info("github %s from another repository (%s) ignored", event, name)
        return Outcome(handled=False, detail="not the configured repository")
    handler = {
        "pull_request": _pull_request,
        "pull_request_review": _review,
        "push": _push,
    }.get(event)
    if handler is None:
        logger.info("github event %s ignored", event)
        return Outcome(handled=False, detail=f"event {event} is not mirrored")
    return handler(payload, delivery_id)


def _our_repository(payload: dict) -> bool:
    if not (settings.GITHUB_OWNER and settings.GITHUB_REPO):
        return True  # nothing configured to compare with (admin backend)
    name = str((payload.get("repository") or {}).get("full_name", ""))
    return name.lower() == f"{settings.GITHUB_OWNER}/{settings.GITHUB_REPO}".lower()


def _login(user: Any) -> str:
    return str(user.get("login", "")) if isinstance(user, dict) else ""


def _release_for(pr: dict) -> ReleaseRequest | None:
    """The release request this system opened for `pr`: by number, else by head branch."""
    number = pr.get("number")
    release = ReleaseRequest.objects.filter(pr_number=number).select_related("build").first()
    head = pr.get("head") or {}
    branch = head.get("ref")
    # Only a branch of our repository: a fork's PR can carry any branch name, and anyone may
    # open one against a public repository.
    if release is None and branch and _our_repository({"repository": head.get("repo")}):
        release = (
            ReleaseRequest.objects.filter(branch=branch, pr_number__isnull=True)
            .select_related("build")
            .first()
        )
        if release is not None:  # the PR was opened but its number never recorded
            ReleaseRequest.objects.filter(pk=release.pk).update(
                pr_number=number, pr_url=pr.get("html_url", "")
            )
    return release


def _record(kind: str, message: str, *, release, actor, url, when, delivery_id, **data) -> None:
    audit_record(
        kind=kind,
        message=message,
        release=release,
        actor=actor,
        # AuditEvent.url holds 500 characters; a longer link stays in GitHub's stored body.
        url=url if url and len(url) <= 500 else "",
        data={"delivery": delivery_id, "github_time": when, **data},
    )


def _pull_request(payload: dict, delivery_id: str) -> Outcome:
    pr = payload.get("pull_request") or {}
    action = payload.get("action", "")
    release = _release_for(pr)
    if release is None:
        logger.info("github PR #%s (%s) was not opened by us; ignored", pr.get("number"), action)
        return Outcome(handled=False, detail="not a release pull request")
    actor, url = _login(payload.get("sender")), pr.get("html_url", "")
    when = pr.get("updated_at")
    number = pr.get("number")
    if action in ("opened", "reopened"):
        lifecycle.move(release=release, step="reopen", build_step="back_to_review")
        message = f"pull request #{number} {action}"
    elif action in ("edited", "synchronize"):
        message = f"pull request #{number} " + ("edited" if action == "edited" else "updated")
    elif action == "closed" and pr.get("merged"):
        return _merged(release, pr, delivery_id)
    elif action == "closed":
        if lifecycle.move(release=release, step="close"):
            _close_build_if_abandoned(release)
        message, when = f"pull request #{number} closed without merging", pr.get("closed_at")
    else:
        logger.info("github pull_request action %s on #%s ignored", action, number)
        return Outcome(handled=False, detail=f"action {action} is not mirrored")
    _record(
        f"github.pr_{action}",
        message,
        release=release,
        actor=actor,
        url=url,
        when=when,
        delivery_id=delivery_id,
        pr=number,
    )
    return Outcome(handled=True, detail=message)


def _close_build_if_abandoned(release: ReleaseRequest) -> None:
    others = ReleaseRequest.objects.filter(build_id=release.build_id).exclude(pk=release.pk)
    if not others.exclude(state__in=(ReleaseState.CLOSED, ReleaseState.REJECTED)).exists():
        lifecycle.move(build=release.build, build_step="close")


def _merged(release: ReleaseRequest, pr: dict, delivery_id: str) -> Outcome:
    merger = _login(pr.get("merged_by"))
    merged_at = parse_datetime(pr.get("merged_at") or "")
    number = pr.get("number")
    lifecycle.move(
        release=release,
        step="merge",
        build_step="approve",
        fields={"merged_by": merger, "merged_at": merged_at},
    )
    message = f"pull request #{number} merged by {merger or 'someone'}"
    _record(
        "github.pr_merged",
        message,
        release=release,
        actor=merger,
        url=pr.get("html_url"),
        when=pr.get("merged_at"),
        delivery_id=delivery_id,
        pr=number,
    )
    _queue_promotion(reason=f"pull request #{number} merged", actor=merger)
    return Outcome(handled=True, detail=message)


def _review(payload: dict, delivery_id: str) -> Outcome:
    pr = payload.get("pull_request") or {}
    review = payload.get("review") or {}
    action = payload.get("action", "")
    release = _release_for(pr)
    if release is None:
        logger.info("github review on PR #%s was not for us; ignored", pr.get("number"))
        return Outcome(handled=False, detail="not a release pull request")
    state = str(review.get("state", "")).lower()
    reviewer = _login(review.get("user")) or _login(payload.get("sender"))
    if action == "submitted" and state in REVIEW_STEPS:
        step, build_step = REVIEW_STEPS[state]
        lifecycle.move(release=release, step=step, build_step=build_step)
        message = f"{reviewer} " + ("approved" if state == "approved" else "requested changes")
    elif action == "submitted" and state == "commented":
        message = f"{reviewer} commented"
    elif action == "dismissed":
        lifecycle.move(release=release, step="reopen", build_step="back_to_review")
        message = f"review by {reviewer} dismissed by {_login(payload.get('sender'))}"
    else:
        logger.info("github review action %s (%s) ignored", action, state)
        return Outcome(handled=False, detail=f"review action {action} is not mirrored")
    kind = f"github.review_{action if action == 'dismissed' else state}"
    _record(
        kind,
        message,
        release=release,
        actor=reviewer,
        url=review.get("html_url"),
        when=review.get("submitted_at"),
        delivery_id=delivery_id,
        pr=pr.get("number"),
        review_state=state,
        commit_id=str(review.get("commit_id") or ""),
        body=review.get("body") or "",
    )
    if release.state == ReleaseState.MERGED_UNREVIEWED and state == "approved":
        # A review of the merged head may now cover it: promotion checks with GitHub.
        _queue_promotion(
            reason=f"review of merged pull request #{pr.get('number')}", actor=reviewer
        )
    return Outcome(handled=True, detail=message)


def _changed_paths(payload: dict) -> set[str]:
    paths: set[str] = set()
    for commit in payload.get("commits") or []:
        for field in ("added", "modified", "removed"):
            paths.update(commit.get(field) or [])
    return paths


def _push(payload: dict, delivery_id: str) -> Outcome:
    repository = payload.get("repository") or {}
    default = repository.get("default_branch") or repository.get("master_branch") or "main"
    if payload.get("ref") != f"refs/heads/{default}":
        logger.info("github push to %s ignored (not the default branch)", payload.get("ref"))
        return Outcome(handled=False, detail="not the default branch")
    changed = _changed_paths(payload)
    # GitHub lists at most 20 commits per push; with none listed, promote to be safe.
    relevant = sorted(changed & CONTROL_FILES) if payload.get("commits") else []
    if payload.get("commits") and not relevant:
        logger.info("github push to %s without release files ignored", default)
        return Outcome(handled=False, detail="no release file changed")
    actor = _login(payload.get("sender")) or (payload.get("pusher") or {}).get("name", "")
    head = payload.get("head_commit") or {}
    message = f"push to {default} changed {', '.join(relevant) or 'the branch'}"
    _record(
        "github.push",
        message,
        release=None,
        actor=actor,
        url=payload.get("compare"),
        when=head.get("timestamp"),
        delivery_id=delivery_id,
        after=payload.get("after"),
        files=relevant,
    )
    _queue_promotion(reason=message, actor=actor)
    return Outcome(handled=True, detail=message)


def _queue_promotion(*, reason: str, actor: str) -> None:
    # A broker outage is logged, not a 500 to GitHub: the periodic reconcile repairs it.
    enqueue_after_commit("releases.tasks.promote", reason, actor)

"""What a notification says: the JSON payload (the generic webhook's body), and the same facts
as a Slack message and an e-mail. Receivers rely on the payload's keys (README: Notifications).
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db.models import Q
from django.urls import reverse

from releases.integrations.slack import slack_escape
from releases.models import AuditEvent, ReleaseRequest
from releases.services.notifications.kinds import FAILURE_KINDS

TITLES = {
    "release.awaiting_review": "Release awaiting review",
    "release.approved": "Release approved",
    "release.rejected": "Release rejected",
    "release.live": "Release live",
    "rollback.opened": "Rollback awaiting review",
    "staging.failed": "Staging failed",
    "promotion.failed": "Promotion failed",
    "audit.chain_broken": "Audit chain broken",
    "login.locked_out": "Login locked out",
    "rollout.halted": "Rollout halted",
}
REVIEW_KINDS = frozenset({"release.awaiting_review", "rollback.opened"})
CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
SUBJECT_CHARS = 200


def _admin_link(event: AuditEvent) -> str:
    """The page a person acts on: the release request (its review), else the build, else the
    event itself."""
    if event.release_id:
        path = reverse("admin:releases_releaserequest_change", args=[event.release_id])
    elif event.build_id:
        path = reverse("admin:releases_build_change", args=[event.build_id])
    else:
        path = reverse("admin:releases_auditevent_change", args=[event.pk])
    return settings.PUBLIC_BASE_URL + path


def approvers() -> list[str]:
    """Active users who may approve in the admin (directly, by group, or as superusers)."""
    permission = Permission.objects.filter(
        codename="approve_release", content_type__app_label="releases"
    ).first()
    may = Q(is_superuser=True)
    if permission is not None:
        may |= Q(user_permissions=permission) | Q(groups__permissions=permission)
    users = get_user_model().objects.filter(may, is_active=True).distinct()
    return sorted(users.values_list("username", flat=True))


def _review(release: ReleaseRequest | None, *, admin_url: str) -> dict[str, Any]:
    """Who must decide, and where."""
    if release is not None and release.pr_url:
        return {
            "backend": "github",
            "url": release.pr_url,
            "deciders": "the pull request's reviewers",
        }
    return {
        "backend": "admin",
        "url": admin_url,
        "required_approvals": settings.REQUIRED_APPROVALS,
        "deciders": approvers(),
    }


def notification_payload(event: AuditEvent, *, kind: str) -> dict[str, Any]:
    """The facts of one notification, built from its audit event."""
    build, release = event.build, event.release
    url = _admin_link(event)
    payload: dict[str, Any] = {
        "event": kind,
        "build": build.build_id if build else None,
        "version": (build.version or None) if build else None,
        "url": url,
        "at": event.created_at.isoformat(),
        "message": event.message,
        "actor": event.actor or None,
        "audit": {"sequence": event.sequence, "kind": event.kind},
        "release": {"id": release.pk, "kind": release.kind} if release else None,
    }
    if kind in REVIEW_KINDS:
        payload["review"] = _review(release, admin_url=url)
    if kind in FAILURE_KINDS:
        payload["reason"] = event.message
    return payload


def one_line(text: str) -> str:
    """No line breaks or control characters: safe in a mail header or a one-line message."""
    return CONTROL.sub(" ", text).strip()


def headline(payload: dict[str, Any]) -> str:
    title = TITLES.get(payload["event"], payload["event"])
    if payload.get("build"):
        version = f" v{payload['version']}" if payload.get("version") else ""
        title += f": build {payload['build']}{version}"
    return one_line(title)


def _who(review: dict[str, Any]) -> str:
    if review["backend"] == "github":
        return f"Who must decide: {review['deciders']} ({review['url']})"
    names = ", ".join(review["deciders"]) or "nobody holds the approve permission"
    return f"Who must decide: {review['required_approvals']} approval(s) from {names}"


def details(payload: dict[str, Any]) -> list[str]:
    """The lines under the headline, as plain text."""
    lines = [payload["message"]]
    if payload.get("review"):
        lines.append(_who(payload["review"]))
    if payload.get("actor"):
        lines.append(f"By: {payload['actor']}")
    lines.append(f"At: {payload['at']}")
    return lines


def mail_subject(payload: dict[str, Any]) -> str:
    return f"[Desktop releases] {headline(payload)}"[:SUBJECT_CHARS]


def mail_body(payload: dict[str, Any]) -> str:
    return "\n\n".join([headline(payload), *details(payload), f"Open: {payload['url']}"]) + "\n"


def slack_text(payload: dict[str, Any]) -> str:
    """Slack mrkdwn; everything but our own admin link is escaped."""
    lines = [f"*{slack_escape(headline(payload))}*"]
    lines += [slack_escape(line) for line in details(payload)]
    lines.append(f"<{payload['url']}|Open in the admin>")
    return "\n".join(lines)

"""The release request's review page (its admin change page) and its decision view.

In order: a summary, what accepting it changes in production (the desktop-*.json diff and a
warning when a platform goes back to an older version), the build's verification, the pull
request and its reviews, then Approve / Reject and the timeline. Decisions go through
`releases.services.approvals.release_decide`, which enforces the two-person rule.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse

from releases.admin_support import events_table, reviews_table
from releases.models import BuildFile, ReleaseRequest, Verification
from releases.selectors import production_now, release_preview, version_key
from releases.services.approvals import (
    DecisionRefused,
    decision_blocker,
    release_decide,
    release_requesters,
)
from releases.services.review_backends import review_backend, review_backend_hint

VERIFICATION_ORDER = {Verification.MISMATCH: 0, Verification.PENDING: 1, Verification.UNCHECKED: 2}


def release_kind_label(release: ReleaseRequest, *, serving_version: str = "") -> str:
    """release / rollback / roll-forward (a "rollback" to a newer build than production's)."""
    if release.kind != "rollback":
        return "release"
    target = release.build.version
    if serving_version and target and version_key(target) > version_key(serving_version):
        return "roll-forward"
    return "rollback"


def _verification(release: ReleaseRequest) -> dict:
    files = sorted(
        BuildFile.objects.filter(build=release.build_id),
        key=lambda f: (VERIFICATION_ORDER.get(f.verification, 3), f.name),
    )
    counts = {value: 0 for value in Verification.values}
    for row in files:
        counts[row.verification] += 1
    return {
        "counts": counts,
        "mismatched": [f for f in files if f.verification == Verification.MISMATCH],
        "files": files,
    }


def _decision(request, release: ReleaseRequest) -> dict:
    backend = review_backend()
    where = {
        "backend": backend.name,
        "in_admin": backend.decides_in_admin,
        "label": backend.label,
        "hint": review_backend_hint(backend.name),
    }
    if not backend.decides_in_admin:
        return where
    return {
        **where,
        "approve_blocker": decision_blocker(release=release, user=request.user, approve=True),
        "reject_blocker": decision_blocker(release=release, user=request.user, approve=False),
        "url": reverse("admin:releases_releaserequest_decide", args=[release.pk]),
    }


def review_context(request, release: ReleaseRequest) -> dict:
    """Everything the review page shows, above the raw fields."""
    preview = release_preview(release=release)
    serving = max((s.version for s in preview.before if s.version), key=version_key, default="")
    approvals = release.approvals.select_related("user").order_by("created_at")
    return {
        "summary": {
            "requester": release.requested_by or "ToDesktop (release webhook)",
            "retried_by": sorted(release_requesters(release=release) - {release.requested_by}),
            "kind": release_kind_label(release, serving_version=serving),
            "state": release.get_state_display(),
            "approved": sum(1 for a in approvals if a.approved),
            "required": settings.REQUIRED_APPROVALS,
            "backend": review_backend().name,
        },
        "preview": preview,
        "verification": _verification(release),
        "reviews": reviews_table(
            approvals=approvals,
            review_events=release.events.filter(kind__startswith="github.review_"),
        ),
        "decision": _decision(request, release),
        "timeline": events_table(release.events.order_by("sequence")),
    }


def decide_view(model_admin, request, object_id: str):
    """POST: approve (optional comment) or reject (a reason, then a confirmation step)."""
    release = get_object_or_404(ReleaseRequest.objects.select_related("build"), pk=object_id)
    page = reverse("admin:releases_releaserequest_change", args=[release.pk])
    if request.method != "POST":
        return HttpResponseRedirect(page)
    approve = request.POST.get("decision") == "approve"
    comment = request.POST.get("comment", "").strip()
    if not approve and request.POST.get("confirm") != "yes":
        return _confirm_reject(model_admin, request, release, reason=comment)
    try:
        outcome = release_decide(release=release, user=request.user, approve=approve,
                                 comment=comment)  # fmt: skip
    except DecisionRefused as exc:
        model_admin.message_user(request, f"not recorded: {exc}", level=messages.ERROR)
        return HttpResponseRedirect(page)
    model_admin.message_user(request, f"{release}: {outcome}", level=messages.SUCCESS)
    return HttpResponseRedirect(page)


def _confirm_reject(model_admin, request, release: ReleaseRequest, *, reason: str):
    blocker = decision_blocker(release=release, user=request.user, approve=False)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Reject {release}?",
        "opts": model_admin.model._meta,
        "release": release,
        "reason": reason,
        "error": blocker or ("" if reason else "a reason is required to reject"),
        "url": reverse("admin:releases_releaserequest_decide", args=[release.pk]),
    }
    return TemplateResponse(request, "admin/releases/releaserequest/reject.html", context)


def production_now_context() -> dict:
    """For the admin index and the build list."""
    return {"production_now": production_now()}

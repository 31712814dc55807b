"""The Adoption page (admin › Adoption): installs over time, rollouts with their Halt button,
downloads per day and download-link hits. Halts are listed read-only beside it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.contrib import admin, messages
from django.http import HttpResponseForbidden, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from adoption.models import AdoptionCount
from adoption.rollouts import rollouts_now
from adoption.services import adoption_series
from releases.admin_support import (
    FitListColumns,
    ReadOnlyAdmin,
    clipped_column,
    clipped_html,
    moment_html,
)
from releases.models import RolloutHalt
from releases.services.rollouts import HaltRefused, rollout_halt

CHART_DAYS = 7


@admin.register(AdoptionCount)
class AdoptionAdmin(ReadOnlyAdmin):
    """One page instead of a change list: the counts are read as charts and tables."""

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            return HttpResponseForbidden("needs the adoption.view_adoptioncount permission")
        can_halt = request.user.has_perm("releases.halt_rollout")
        if request.method == "POST":
            if not can_halt:
                return HttpResponseForbidden("needs the releases.halt_rollout permission")
            self._halt(request)
            return HttpResponseRedirect(request.path)
        since = datetime.now(UTC) - timedelta(days=CHART_DAYS)
        context = {
            **self.admin_site.each_context(request),
            "title": "Adoption",
            "opts": self.model._meta,
            "series": adoption_series(since=since),
            "rollouts": rollouts_now(),
            "can_halt": can_halt,
            "days": CHART_DAYS,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/adoption/page.html", context)

    def _halt(self, request) -> None:
        build_id = request.POST.get("build_id", "")
        try:
            halt = rollout_halt(
                build_id=build_id,
                actor=request.user.get_username(),
                reason=request.POST.get("reason", ""),
            )
        except HaltRefused as exc:
            self.message_user(request, f"not halted: {exc}", level=messages.ERROR)
            return
        where = halt.release.pr_url or f"release request #{halt.release.pk}" if halt.release else ""
        note = f"; its review: {where}" if where else f"; {halt.review_error}"
        self.message_user(request, f"rollout of {build_id} halted: 0% in production{note}")


@admin.register(RolloutHalt)
class RolloutHaltAdmin(FitListColumns, ReadOnlyAdmin):
    list_display = ["halted", "actor_label", "reason_label", "created", "release_link", "settled"]
    list_filter = ["created_at", "settled_at"]
    search_fields = ["build_id", "actor", "reason"]
    change_list_template = "admin/releases/rollouthalt/change_list.html"

    halted = clipped_column("build_id", "halted build")

    actor_label = clipped_column("actor", "by")

    reason_label = clipped_column("reason", "reason", ordering=False, lines=2, words=True)

    @admin.display(description="its review", ordering="release")
    def release_link(self, obj):
        if obj.release_id is None:
            return clipped_html(obj.review_error, lines=2, words=True)
        url = reverse("admin:releases_releaserequest_change", args=[obj.release_id])
        return format_html('<a href="{}">#{}</a>', url, obj.release_id)

    @admin.display(description="settled", ordering="settled_at")
    def settled(self, obj):
        return moment_html(obj.settled_at)

"""The audit list and event page: newest first, one line per event, the chain's status.

File-level staging events (`staging.file_staged`, one per file) stay stored one per file but
are shown as one line per build; filtering by that kind lists them all.
"""

from __future__ import annotations

import datetime as dt
import json

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Max, OuterRef, Subquery
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from releases.admin_support import (
    EstimatedCountPaginator,
    ReadOnlyAdmin,
    build_ref_html,
    clipped_column,
    clipped_html,
)
from releases.models import AuditEvent
from releases.services.audit import audit_chain_check, audit_row_problems

FOLDED_KIND = "staging.file_staged"
RECENT_ACTORS = 30


def iso(moment) -> str:
    """ISO 8601 to the second with the UTC offset: 2026-12-01T23:29:51+00:00."""
    return timezone.localtime(moment).isoformat(timespec="seconds") if moment else "-"


class ActorFilter(admin.SimpleListFilter):
    title = "actor"
    parameter_name = "actor"

    def lookups(self, request, model_admin):
        recent = (
            AuditEvent.objects.exclude(actor="")
            .values("actor")
            .annotate(last=Max("sequence"))
            .order_by("-last")[:RECENT_ACTORS]
        )
        return [(row["actor"], row["actor"]) for row in recent]

    def queryset(self, request, queryset):
        return queryset.filter(actor=self.value()) if self.value() else queryset


class DateRangeFilter(admin.FieldListFilter):
    """`from` / `to` dates (inclusive), as two date inputs in the filter panel."""

    template = "admin/releases/includes/date_range_filter.html"

    def __init__(self, field, request, params, model, model_admin, field_path):
        self.since_param, self.until_param = f"{field_path}__gte", f"{field_path}__lt"
        super().__init__(field, request, params, model, model_admin, field_path)
        self.title = "date range"
        self.since = self._date(self.used_parameters.get(self.since_param))
        self.until = self._date(self.used_parameters.get(self.until_param))

    @staticmethod
    def _date(value) -> dt.date | None:
        value = value[-1] if isinstance(value, list) else value
        if isinstance(value, dt.datetime):
            return value.date()
        try:
            return dt.date.fromisoformat(str(value)[:10]) if value else None
        except ValueError:
            return None

    def expected_parameters(self):
        return [self.since_param, self.until_param]

    def has_output(self):
        return True

    def queryset(self, request, queryset):
        if self.since:
            queryset = queryset.filter(**{f"{self.field_path}__date__gte": self.since})
        if self.until:
            queryset = queryset.filter(**{f"{self.field_path}__date__lte": self.until})
        return queryset

    def choices(self, changelist):
        yield {
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
            "since_param": self.since_param,
            "until_param": self.until_param,
            "clear": changelist.get_query_string(remove=self.expected_parameters()),
            "keep": [
                (k, v)
                for k, v in changelist.get_filters_params().items()
                if k not in self.expected_parameters()
            ],
        }


class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["number", "when", "kind_label", "actor_short", "build_link", "release_link",
                    "what"]  # fmt: skip
    list_display_links = ["number"]
    list_filter = ["kind", ActorFilter, ("created_at", DateRangeFilter)]
    search_fields = ["message", "actor", "build__build_id"]
    list_select_related = ["build"]
    ordering = ["-sequence"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    change_list_template = "admin/releases/auditevent/change_list.html"
    change_form_template = "admin/releases/auditevent/change_form.html"
    fields = [
        "sequence",
        "when",
        "kind",
        "message",
        "actor",
        "url",
        "build",
        "release",
        "data_pretty",
        "previous_link",
        "previous_hash",
        "hash",
    ]
    readonly_fields = fields

    def lookup_allowed(self, lookup, value, request=None):
        # The build's page links its events here by build id.
        return lookup == "build__build_id" or super().lookup_allowed(lookup, value, request)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.GET.get("kind") == FOLDED_KIND or request.resolver_match.url_name.endswith(
            "_change"
        ):
            return queryset
        # One line per build for the per-file staging events: the newest, with the count.
        newest = (
            AuditEvent.objects.filter(kind=FOLDED_KIND)
            .values("build")
            .annotate(newest=Max("sequence"))
            .values("newest")
        )
        count = (
            AuditEvent.objects.filter(kind=FOLDED_KIND, build=OuterRef("build"))
            .values("build")
            .annotate(n=Count("pk"))
            .values("n")
        )
        kept = queryset.exclude(kind=FOLDED_KIND) | queryset.filter(sequence__in=newest)
        return kept.annotate(folded=Subquery(count[:1]))

    def changelist_view(self, request, extra_context=None):
        # The trail needs the width: the models' sidebar stays folded away on this list.
        extra = {"is_nav_sidebar_enabled": False, **(extra_context or {})}
        return super().changelist_view(request, extra)

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        paginator = super().get_paginator(request, queryset, per_page, orphans,
                                          allow_empty_first_page)  # fmt: skip
        # Paging and sorting only: the folding is the only condition, keep the estimate.
        paginator.unfiltered = not (set(request.GET) - {"p", "o"})
        return paginator

    def get_urls(self):
        view = self.admin_site.admin_view(self.check_view)
        check = path("check/", view, name="releases_auditevent_check")
        return [check, *super().get_urls()]

    def check_view(self, request):
        """POST: verify the chain now; the result is recorded like the periodic one."""
        if request.method != "POST" or not self.has_view_permission(request):
            raise PermissionDenied
        report = audit_chain_check(actor=request.user.get_username())
        if report.ok:
            self.message_user(request, f"audit chain intact up to #{report.last}")
        else:
            self.message_user(request, f"audit chain broken at #{report.first_broken}", "error")
        return HttpResponseRedirect(reverse("admin:releases_auditevent_changelist"))

    def changeview_context(self, obj) -> dict:
        return {"row_problems": audit_row_problems(event=obj)}

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        extra = {**(extra_context or {}), **(self.changeview_context(obj) if obj else {})}
        return super().change_view(request, object_id, form_url, extra)

    @admin.display(description="#", ordering="sequence")
    def number(self, obj):
        return f"#{obj.sequence}"

    @admin.display(description="time", ordering="created_at")
    def when(self, obj):
        return format_html('<span style="white-space:nowrap">{}</span>', iso(obj.created_at))

    kind_label = clipped_column("kind", "kind")

    actor_short = clipped_column("actor", "actor")

    @admin.display(description="build")
    def build_link(self, obj):
        return build_ref_html(obj.build)

    @admin.display(description="release")
    def release_link(self, obj):
        if not obj.release_id:
            return "-"
        url = reverse("admin:releases_releaserequest_change", args=[obj.release_id])
        return format_html('<a href="{}">#{}</a>', url, obj.release_id)

    @admin.display(description="what")
    def what(self, obj):
        folded = getattr(obj, "folded", None)
        if obj.kind == FOLDED_KIND and folded and folded > 1:
            url = reverse("admin:releases_auditevent_changelist")
            return format_html(
                '{} files staged <a href="{}?kind={}&build__build_id={}">(show each)</a>',
                folded,
                url,
                FOLDED_KIND,
                obj.build.build_id,
            )
        return clipped_html(obj.message, lines=2, words=True)

    @admin.display(description="data")
    def data_pretty(self, obj):
        return format_html(
            "<pre style='white-space:pre-wrap;overflow-wrap:anywhere'>{}</pre>",
            json.dumps(obj.data, indent=2),
        )

    @admin.display(description="previous event")
    def previous_link(self, obj):
        previous = AuditEvent.objects.filter(sequence__lt=obj.sequence).order_by("-sequence")
        previous = previous.only("pk", "sequence", "kind").first()
        if previous is None:
            return "none (the first event)"
        url = reverse("admin:releases_auditevent_change", args=[previous.pk])
        return format_html('<a href="{}">#{} {}</a>', url, previous.sequence, previous.kind)

"""The admin is the audit trail (SPEC §10): everything here is read-only."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.db.models import OuterRef, Subquery
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy

from releases.admin_support import (
    EstimatedCountPaginator,
    events_table,
    hashes_html,
    reviews_table,
)
from releases.models import (
    ApiToken,
    Approval,
    AuditEvent,
    Build,
    BuildFile,
    CdnPurge,
    Notification,
    ReleaseRequest,
    WebhookDelivery,
)


def _pretty(value) -> str:
    return format_html("<pre style='white-space:pre-wrap'>{}</pre>", json.dumps(value, indent=2))


def _pr_or_admin(release: ReleaseRequest) -> str:
    if release.pr_url:
        return format_html('pull request <a href="{}">#{}</a>', release.pr_url, release.pr_number)
    if release.branch:
        return format_html("branch {}, no pull request recorded", release.branch)
    return "reviewed in the admin"


def _link(obj, label=None) -> str:
    if obj is None:
        return "-"
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, label or str(obj))


class ReadOnlyAdmin(admin.ModelAdmin):
    """Nobody, superusers included, adds, edits or deletes these rows through the admin."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class BuildFileInline(admin.TabularInline):
    model = BuildFile
    extra = 0
    can_delete = False
    fields = ["name", "size", "hashes", "verification", "verification_detail", "staged_at"]
    readonly_fields = fields
    show_change_link = True  # "View": the file's own page with its events

    @admin.display(description="hashes")
    def hashes(self, obj):
        return hashes_html(sha256=obj.sha256, sha512=obj.sha512)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ReleaseRequestInline(admin.TabularInline):
    model = ReleaseRequest
    extra = 0
    can_delete = False
    fields = ["link", "kind", "state", "pr", "merged_by", "live_at", "created_at"]
    readonly_fields = fields

    @admin.display(description="release")
    def link(self, obj):
        return _link(obj, f"release #{obj.pk}")

    def get_queryset(self, request):
        # Each row's heading is str(release), which names the build: one query, not one a row.
        return super().get_queryset(request).select_related("build")

    @admin.display(description="pull request")
    def pr(self, obj):
        if obj.pr_url:
            return format_html('<a href="{}">#{}</a>', obj.pr_url, obj.pr_number)
        return "-"

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Build)
class BuildAdmin(ReadOnlyAdmin):
    list_display = [
        "build_id",
        "version",
        "status",
        "platform_list",
        "pr_link",
        "created_at",
        "live_at",
    ]
    list_filter = ["status", "created_at", "live_at"]
    search_fields = ["build_id", "version", "app_id"]
    date_hierarchy = "created_at"
    inlines = [BuildFileInline, ReleaseRequestInline]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "build_id",
                    "app_id",
                    "version",
                    "platform_list",
                    "status",
                    "failure_reason",
                ]
            },
        ),
        ("Times", {"fields": ["created_at", "staged_at", "live_at", "updated_at"]}),
        ("Review", {"fields": ["pull_requests", "reviews"]}),
        ("Adoption (last 24 hours)", {"fields": ["adoption"]}),
        ("Webhook payload (latest release request)", {"fields": ["payload"]}),
    ]
    readonly_fields = ["platform_list", "payload", "pull_requests", "reviews", "adoption"]
    # The timeline comes last, after the files and release requests (see the template).
    change_form_template = "admin/releases/build/change_form.html"
    actions = ["rollback_to_build", "reconcile_production"]

    @admin.action(description="Open a rollback to this live build", permissions=["rollback"])
    def rollback_to_build(self, request, queryset):
        from releases.services.rollback import RollbackError, rollback_open

        for build in queryset:
            try:
                release = rollback_open(build=build, actor=request.user.get_username())
            except RollbackError as exc:
                self.message_user(request, str(exc), level=messages.ERROR)
                continue
            where = f"pull request #{release.pr_number}" if release.pr_number else "the admin"
            self.message_user(request, f"rollback to {build} opened for review in {where}")

    def has_rollback_permission(self, request):
        return request.user.has_perm("releases.rollback_build")

    @admin.action(description="Reconcile production now", permissions=["reconcile"])
    def reconcile_production(self, request, queryset):
        from releases import tasks

        tasks.reconcile.delay()
        self.message_user(request, "reconcile queued; its result appears in the audit trail")

    def has_reconcile_permission(self, request):
        return request.user.has_perm("releases.reconcile_production")

    @admin.display(description="served to")
    def adoption(self, obj):
        from adoption.services import adoption_summary, day_ago

        numbers = adoption_summary(build_id=obj.build_id, since=day_ago())
        return (
            f"{numbers['unique_installs']} installs, {numbers['polls']} polls, "
            f"{numbers['full_downloads']} full and {numbers['differential_downloads']} "
            "differential (ranged) downloads"
        )

    @admin.display(description="payload")
    def payload(self, obj):
        release = obj.release_requests.order_by("-created_at").first()
        return _pretty(release.payload) if release else "-"

    @admin.display(description="platforms")
    def platform_list(self, obj):
        return ", ".join(obj.platforms or []) or "-"

    def get_queryset(self, request):
        # The list's PR column comes from the newest release request with a PR: annotated
        # here so that a page of builds costs one query, not one per row.
        with_pr = ReleaseRequest.objects.filter(build=OuterRef("pk")).exclude(pr_url="")
        newest = with_pr.order_by("-created_at", "-pk")
        return (
            super()
            .get_queryset(request)
            .annotate(
                latest_pr_url=Subquery(newest.values("pr_url")[:1]),
                latest_pr_number=Subquery(newest.values("pr_number")[:1]),
            )
        )

    @admin.display(description="pull request")
    def pr_link(self, obj):
        if not obj.latest_pr_url:
            return "-"
        return format_html('<a href="{}">#{}</a>', obj.latest_pr_url, obj.latest_pr_number)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["timeline"] = events_table(obj.events.order_by("sequence"))
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description="pull requests")
    def pull_requests(self, obj):
        releases = obj.release_requests.order_by("created_at")
        return (
            format_html_join(
                mark_safe("<br>"),
                "{}: {} ({})",
                (
                    (
                        _link(r, f"release #{r.pk} ({r.kind})"),
                        _pr_or_admin(r),
                        r.get_state_display(),
                    )
                    for r in releases
                ),
            )
            or "-"
        )

    @admin.display(description="reviews")
    def reviews(self, obj):
        return reviews_table(
            approvals=Approval.objects.filter(release__build=obj).select_related("user"),
            review_events=obj.events.filter(kind__startswith="github.review_"),
        )


@admin.register(BuildFile)
class BuildFileAdmin(ReadOnlyAdmin):
    list_display = ["name", "build", "size", "verification", "staged_at"]
    list_filter = ["verification"]
    search_fields = ["name", "build__build_id", "sha512", "sha256"]
    list_select_related = ["build"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    fields = [
        "build",
        "name",
        "size",
        "hashes",
        "md5",
        "content_type",
        "source_url",
        "verification",
        "verification_detail",
        "staged_at",
        "events",
    ]
    readonly_fields = ["hashes", "events"]

    @admin.display(description="hashes")
    def hashes(self, obj):
        return hashes_html(sha256=obj.sha256, sha512=obj.sha512)

    @admin.display(description="events")
    def events(self, obj):
        return events_table(obj.build.events.filter(data__name=obj.name).order_by("sequence"))


@admin.register(ReleaseRequest)
class ReleaseRequestAdmin(ReadOnlyAdmin):
    list_display = [
        "__str__",
        "build",
        "kind",
        "state",
        "pr_number",
        "merged_by",
        "created_at",
        "live_at",
    ]
    list_filter = ["state", "kind"]
    search_fields = ["build__build_id", "build__version", "pr_number", "merged_by"]
    list_select_related = ["build"]
    readonly_fields = ["payload_pretty", "reviews", "timeline"]
    exclude = ["payload"]
    actions = [
        "retry_review",
        "retry_staging",
        "approve_releases",
        "reject_releases",
        "withdraw_releases",
    ]

    @admin.display(description="payload")
    def payload_pretty(self, obj):
        return _pretty(obj.payload)

    @admin.display(description="reviews")
    def reviews(self, obj):
        return reviews_table(
            approvals=obj.approvals.select_related("user"),
            review_events=obj.events.filter(kind__startswith="github.review_"),
        )

    @admin.display(description="events")
    def timeline(self, obj):
        return events_table(obj.events.order_by("sequence"))

    @admin.action(description="Retry opening the review (PR)", permissions=["retry_review"])
    def retry_review(self, request, queryset):
        from releases.services.review import review_retry

        result = review_retry(
            releases=queryset.select_related("build"), actor=request.user.get_username()
        )
        self._report_retry(request, *result, done="queued the review of {} release(s)")

    def has_retry_review_permission(self, request):
        return request.user.has_perm("releases.retry_build")

    @admin.action(description="Retry staging of failed builds", permissions=["retry_staging"])
    def retry_staging(self, request, queryset):
        from releases.services.intake import staging_retry

        result = staging_retry(
            releases=queryset.select_related("build"), actor=request.user.get_username()
        )
        self._report_retry(request, *result, done="queued staging of {} release(s) again")

    def _report_retry(self, request, queued: int, skipped: list[str], *, done: str) -> None:
        if queued:
            self.message_user(request, done.format(queued))
        if skipped:
            self.message_user(request, "not retried: " + ", ".join(skipped), level=messages.WARNING)

    def has_retry_staging_permission(self, request):
        return request.user.has_perm("releases.retry_build")

    @admin.action(description="Approve (admin review)", permissions=["approve"])
    def approve_releases(self, request, queryset):
        self._decide(request, queryset, approve=True)

    @admin.action(description="Reject (admin review)", permissions=["approve"])
    def reject_releases(self, request, queryset):
        self._decide(request, queryset, approve=False)

    def _decide(self, request, queryset, *, approve: bool) -> None:
        from releases.services.approvals import DecisionRefused, release_decide

        for release in queryset:
            try:
                outcome = release_decide(release=release, user=request.user, approve=approve)
            except DecisionRefused as exc:
                self.message_user(request, f"{release}: {exc}", level=messages.WARNING)
                continue
            self.message_user(request, f"{release}: {outcome}")

    def has_approve_permission(self, request):
        return request.user.has_perm("releases.approve_release")

    @admin.action(description="Withdraw (take out of the desired state)", permissions=["withdraw"])
    def withdraw_releases(self, request, queryset):
        from releases.services.withdrawal import WithdrawRefused, release_withdraw, withdraw_blocker

        reason = request.POST.get("reason", "")
        if request.POST.get("confirm") != "yes" or not reason.strip():
            rows = [(r, withdraw_blocker(release=r)) for r in queryset.select_related("build")]
            error = "a reason is required" if request.POST.get("confirm") == "yes" else ""
            context = {**self.admin_site.each_context(request), "title": "Withdraw releases"}
            context.update(opts=self.model._meta, releases=rows, error=error)
            return TemplateResponse(request, "admin/releases/releaserequest/withdraw.html", context)
        actor = request.user.get_username()
        for release in queryset.select_related("build"):
            try:
                release_withdraw(release=release, actor=actor, reason=reason)
            except (WithdrawRefused, ValueError) as exc:
                self.message_user(request, f"{release}: not withdrawn: {exc}", messages.WARNING)
                continue
            self.message_user(request, f"{release}: withdrawn")

    def has_withdraw_permission(self, request):
        return request.user.has_perm("releases.withdraw_release")


@admin.register(Approval)
class ApprovalAdmin(ReadOnlyAdmin):
    list_display = ["release", "user", "approved", "created_at"]
    list_select_related = ["release__build", "user"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "source", "event", "received_at"]
    list_filter = ["source", "event"]
    search_fields = ["delivery_key"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    exclude = ["body"]
    readonly_fields = ["release_link", "body_pretty"]

    @admin.display(description="release request")
    def release_link(self, obj):
        release = ReleaseRequest.objects.filter(delivery=obj).select_related("build").first()
        return _link(release)

    @admin.display(description="body")
    def body_pretty(self, obj):
        try:
            return _pretty(json.loads(obj.body_text))
        except ValueError:
            return format_html("<pre>{}</pre>", obj.body_text)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["sequence", "created_at", "kind", "actor", "build", "release_link", "what"]
    list_filter = ["kind", "created_at"]
    search_fields = ["message", "actor", "build__build_id"]
    list_select_related = ["build"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    fields = [
        "sequence",
        "created_at",
        "kind",
        "message",
        "actor",
        "url",
        "build",
        "release",
        "data_pretty",
        "previous_hash",
        "hash",
    ]
    readonly_fields = fields

    @admin.display(description="data")
    def data_pretty(self, obj):
        return _pretty(obj.data)

    @admin.display(description="release")
    def release_link(self, obj):
        if not obj.release_id:
            return "-"
        url = reverse("admin:releases_releaserequest_change", args=[obj.release_id])
        return format_html('<a href="{}">#{}</a>', url, obj.release_id)

    @admin.display(description="what")
    def what(self, obj):
        # Messages carry hashes and file names without spaces: let them wrap so that the
        # column stays on screen beside the filters.
        return format_html('<span style="overflow-wrap:anywhere">{}</span>', obj.message)


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    """Each notification of an event on a channel, with its final outcome (README:
    Notifications). Channel addresses are secrets and are never stored here."""

    list_display = ["kind", "channel", "status", "attempts", "build", "event_link", "created_at"]
    list_filter = ["status", "channel", "kind", "created_at"]
    search_fields = ["kind", "event__build__build_id", "delivery_id"]
    list_select_related = ["event__build"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    fields = [
        "kind",
        "channel",
        "status",
        "attempts",
        "response_status",
        "last_error",
        "recipients",
        "delivery_id",
        "event_link",
        "created_at",
        "finished_at",
        "payload_pretty",
    ]
    readonly_fields = fields

    @admin.display(description="build")
    def build(self, obj):
        return _link(obj.event.build)

    @admin.display(description="audit event")
    def event_link(self, obj):
        return _link(obj.event, f"#{obj.event.sequence} {obj.event.kind}")

    @admin.display(description="payload")
    def payload_pretty(self, obj):
        return _pretty(obj.payload)


@admin.register(CdnPurge)
class CdnPurgeAdmin(ReadOnlyAdmin):
    """Each purge of the CDN after a change to production, with its outcome."""

    list_display = ["__str__", "backend", "status", "attempts", "reason", "created_at"]
    list_filter = ["status", "backend", "created_at"]
    search_fields = ["reason", "actor"]
    fields = [
        "backend",
        "status",
        "attempts",
        "last_error",
        "reason",
        "actor",
        "reference",
        "created_at",
        "finished_at",
        "urls_pretty",
    ]
    readonly_fields = fields
    actions = ["purge_again"]

    @admin.display(description="URLs")
    def urls_pretty(self, obj):
        return _pretty(obj.urls)

    @admin.action(description="Purge failed ones again", permissions=["reconcile"])
    def purge_again(self, request, queryset):
        from releases.services.cdn_purge import cdn_purge_again

        again = cdn_purge_again(purges=queryset, actor=request.user.get_username())
        self.message_user(request, f"queued {again} purge(s) again; failed ones only")

    def has_reconcile_permission(self, request):
        return request.user.has_perm("releases.reconcile_production")


if admin.site.is_registered(TokenProxy):
    admin.site.unregister(TokenProxy)  # it lists every key in clear


@admin.register(ApiToken)
class ApiTokenAdmin(TokenAdmin):
    """DRF's token admin without the keys: a new key is shown once, right after it is made."""

    list_display = ("__str__", "user", "created")

    def response_add(self, request, obj, post_url_continue=None):
        self.message_user(
            request,
            f"The new key of {obj}: {obj.key} (copy it now; the admin never shows it again)",
            level=messages.WARNING,
        )
        return super().response_add(request, obj, post_url_continue)

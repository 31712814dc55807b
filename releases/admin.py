"""The admin is the audit trail (docs/audit.md): everything here is read-only."""

from __future__ import annotations

import json

from axes.admin import AccessAttemptAdmin, AccessFailureLogAdmin, AccessLogAdmin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import Count, OuterRef, Q, Subquery
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import Truncator
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy

from adoption.services import adoption_summary, day_ago
from releases.admin_audit import AuditEventAdmin
from releases.admin_review import decide_view, review_context
from releases.admin_support import (
    EstimatedCountPaginator,
    FitListColumns,
    ReadOnlyAdmin,
    build_ref_html,
    clipped_column,
    clipped_html,
    events_table,
    hashes_html,
    moment_html,
    reviews_table,
)
from releases.models import (
    ApiToken,
    Approval,
    AuditEvent,
    Build,
    BuildFile,
    BuildStatus,
    CdnPurge,
    Notification,
    ReleaseRequest,
    ReleaseState,
    Verification,
    WebhookDelivery,
)
from releases.selectors import production_now
from releases.services.approvals import DecisionRefused, release_decide
from releases.services.cdn_purge import cdn_purge_again
from releases.services.intake import staging_retry
from releases.services.reconcile import reconcile_request
from releases.services.review import review_retry
from releases.services.review_backends import review_backend
from releases.services.rollback import RollbackError, rollback_open
from releases.services.withdrawal import WithdrawRefused, release_withdraw, withdraw_blocker


def _pretty(value) -> str:
    return format_html("<pre style='white-space:pre-wrap'>{}</pre>", json.dumps(value, indent=2))


# States of a release request whose review never opened.
NEVER_REVIEWED = (ReleaseState.PENDING, ReleaseState.AWAITING_REVIEW, ReleaseState.FAILED)


def _pr_or_admin(release: ReleaseRequest) -> str:
    if release.pr_url:
        return format_html('pull request <a href="{}">#{}</a>', release.pr_url, release.pr_number)
    if release.branch:
        return format_html("branch {}, no pull request recorded", release.branch)
    if release.state in NEVER_REVIEWED:
        return "never reached review"
    return "reviewed in the admin"


def _link(obj, label=None) -> str:
    if obj is None:
        return "-"
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, label or str(obj))


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
class BuildAdmin(FitListColumns, ReadOnlyAdmin):
    list_display = [
        "build_ref",
        "version_label",
        "status_label",
        "platform_list",
        "pr_link",
        "created",
        "live",
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
    # Production now above the list, and "Reconcile production now" as a button (no ticking).
    change_list_template = "admin/releases/build/change_list.html"
    actions = ["rollback_to_build"]

    @admin.action(description="Open a rollback to this live build", permissions=["rollback"])
    def rollback_to_build(self, request, queryset):
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

    def get_urls(self):
        view = self.admin_site.admin_view(self.reconcile_view)
        reconcile = path("reconcile/", view, name="releases_build_reconcile")
        return [reconcile, *super().get_urls()]

    def reconcile_view(self, request):
        """POST: queue a reconcile, recorded with the user's name (even when in sync)."""
        if request.method != "POST" or not self.has_reconcile_permission(request):
            raise PermissionDenied
        reconcile_request(actor=request.user.get_username())
        self.message_user(request, "reconcile queued; its result appears in the audit trail")
        return HttpResponseRedirect(reverse("admin:releases_build_changelist"))

    def has_reconcile_permission(self, request):
        return request.user.has_perm("releases.reconcile_production")

    @admin.display(description="served to")
    def adoption(self, obj):
        numbers = adoption_summary(build_id=obj.build_id, since=day_ago())
        return (
            f"{numbers['unique_installs']} installs, {numbers['polls']} polls, "
            f"{numbers['full_downloads']} full and {numbers['differential_downloads']} "
            "differential (ranged) downloads"
        )

    def changelist_view(self, request, extra_context=None):
        extra = {
            "production_now": production_now(),
            "can_reconcile": self.has_reconcile_permission(request),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra)

    build_ref = clipped_column("build_id", "ToDesktop build id")

    version_label = clipped_column("version", "version", lines=2)

    @admin.display(description="status", ordering="status")
    def status_label(self, obj):
        if obj.status != BuildStatus.FAILED:
            return obj.get_status_display()
        if obj.mismatches:
            return format_html('<b style="color:#ba2121">failed: hash mismatch</b>')
        reason = obj.failure_reason.strip().splitlines()[0] if obj.failure_reason else "unknown"
        return format_html(
            '<span class="clamp clamp-3" style="color:#ba2121" title="{}">failed: {}</span>',
            obj.failure_reason,
            Truncator(reason).chars(70),
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
                mismatches=Count("files", filter=Q(files__verification=Verification.MISMATCH)),
            )
        )

    @admin.display(description="PR")
    def pr_link(self, obj):
        if not obj.latest_pr_url:
            return "-"
        return format_html('<a href="{}">#{}</a>', obj.latest_pr_url, obj.latest_pr_number)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["timeline"] = events_table(obj.events.order_by("sequence"))
            context["mismatched"] = obj.files.filter(verification=Verification.MISMATCH)
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
    # A file's name is shown whole (wrapped): its end tells the architectures apart.
    list_display = ["name", "build_ref", "size", "verification", "staged"]
    list_filter = ["verification"]
    search_fields = ["name", "build__build_id", "sha512", "sha256"]
    list_select_related = ["build"]
    change_list_template = "admin/releases/buildfile/change_list.html"
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

    @admin.display(description="build", ordering="build__build_id")
    def build_ref(self, obj):
        return build_ref_html(obj.build)

    @admin.display(description="staged", ordering="staged_at")
    def staged(self, obj):
        return moment_html(obj.staged_at)


@admin.register(ReleaseRequest)
class ReleaseRequestAdmin(FitListColumns, ReadOnlyAdmin):
    list_display = [
        "release_ref",
        "build_ref",
        "state",
        "people",
        "pr_link",
        "created",
        "live",
    ]
    list_filter = ["state", "kind"]
    search_fields = [
        "build__build_id",
        "build__version",
        "pr_number",
        "merged_by",
        "requested_by",
    ]
    list_select_related = ["build"]
    change_list_template = "admin/releases/releaserequest/change_list.html"
    # The review page (summary, diff, verification, reviews, decision, timeline) comes first;
    # these raw fields follow it.
    change_form_template = "admin/releases/releaserequest/change_form.html"
    fieldsets = [
        (
            "Details",
            {
                "fields": [
                    "build",
                    "kind",
                    "state",
                    "failure_reason",
                    "requested_by",
                    "release_info_pretty",
                    "branch",
                    "pr_number",
                    "pr_url",
                    "merged_by",
                    "merged_at",
                    "merged_head_sha",
                    "reviewed_head_sha",
                    "delivery",
                    "created_at",
                    "updated_at",
                    "live_at",
                ]
            },
        ),
        ("Webhook payload", {"fields": ["payload_pretty"], "classes": ["collapse"]}),
    ]
    readonly_fields = ["payload_pretty", "release_info_pretty", "created_at", "updated_at"]
    actions = ["retry_review", "retry_staging", "approve_releases", "withdraw_releases"]

    def get_urls(self):
        view = self.admin_site.admin_view(lambda request, object_id: decide_view(
            self, request, object_id))  # fmt: skip
        decide = path("<path:object_id>/decide/", view, name="releases_releaserequest_decide")
        return [decide, *super().get_urls()]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            review = review_context(request, obj)
            review["platforms"] = list(
                zip(review["preview"].before, review["preview"].after, strict=True)
            )
            context["review"] = review
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description="release", ordering="pk")
    def release_ref(self, obj):
        return format_html('#{}<br><span class="quiet">{}</span>', obj.pk, obj.kind)

    @admin.display(description="build", ordering="build__build_id")
    def build_ref(self, obj):
        build = obj.build
        version = clipped_html(f"v{build.version}") if build.version else ""
        url = build.get_admin_url()
        return format_html('<a href="{}">{}</a>{}', url, clipped_html(build.build_id), version)

    @admin.display(description="requested / merged by")
    def people(self, obj):
        named = [
            (what, who)
            for what, who in (("requested by", obj.requested_by), ("merged by", obj.merged_by))
            if who
        ]
        if not named:
            return "-"
        return format_html_join(
            "",
            '<span class="clamp clamp-2" title="{1}"><span class="quiet">{0}</span> {1}</span>',
            named,
        )

    @admin.display(description="PR", ordering="pr_number")
    def pr_link(self, obj):
        if obj.pr_url:
            return format_html('<a href="{}">#{}</a>', obj.pr_url, obj.pr_number)
        return f"#{obj.pr_number}" if obj.pr_number else "-"

    @admin.display(description="release info")
    def release_info_pretty(self, obj):
        return _pretty(obj.release_info)

    @admin.display(description="payload")
    def payload_pretty(self, obj):
        return _pretty(obj.payload)

    @admin.action(description="Retry opening the review (PR)", permissions=["retry_review"])
    def retry_review(self, request, queryset):
        result = review_retry(
            releases=queryset.select_related("build"), actor=request.user.get_username()
        )
        self._report_retry(request, *result, done="queued the review of {} release(s)")

    def has_retry_review_permission(self, request):
        return request.user.has_perm("releases.retry_build")

    @admin.action(description="Retry staging of failed builds", permissions=["retry_staging"])
    def retry_staging(self, request, queryset):
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
        """Approve from the list (rejecting needs a reason: use the release's page)."""
        for release in queryset:
            try:
                outcome = release_decide(release=release, user=request.user, approve=True)
            except DecisionRefused as exc:
                self.message_user(request, f"{release}: {exc}", level=messages.WARNING)
                continue
            self.message_user(request, f"{release}: {outcome}")

    def has_approve_permission(self, request):
        # GitHub mode: decisions are made on the pull request, so none are offered here.
        return review_backend().decides_in_admin and request.user.has_perm(
            "releases.approve_release"
        )

    @admin.action(description="Withdraw (take out of the desired state)", permissions=["withdraw"])
    def withdraw_releases(self, request, queryset):
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
class ApprovalAdmin(FitListColumns, ReadOnlyAdmin):
    list_display = ["verdict", "release_ref", "reviewer", "comment_short", "created"]
    list_filter = ["approved", "created_at", "user"]
    search_fields = ["release__build__build_id", "user__username", "comment"]
    list_select_related = ["release__build", "user"]
    change_list_template = "admin/releases/approval/change_list.html"

    @admin.display(description="decision", ordering="approved")
    def verdict(self, obj):
        return "approved" if obj.approved else "rejected"

    @admin.display(description="release", ordering="release")
    def release_ref(self, obj):
        url = reverse("admin:releases_releaserequest_change", args=[obj.release_id])
        return format_html('<a href="{}">#{}</a>{}', url, obj.release_id,
                           build_ref_html(obj.release.build))  # fmt: skip

    @admin.display(description="reviewer", ordering="user__username")
    def reviewer(self, obj):
        return clipped_html(obj.user.get_username())

    comment_short = clipped_column("comment", "comment", ordering=False, lines=2, words=True)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    # The key: ToDesktop's is the body's sha256, GitHub's the X-GitHub-Delivery id.
    list_display = ["delivery_ref", "source", "event_label", "received"]
    list_filter = ["source", "event"]
    # By build id: the release request a ToDesktop delivery became.
    search_fields = ["delivery_key", "release__build__build_id"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    exclude = ["body"]
    readonly_fields = ["release_link", "body_pretty"]
    change_list_template = "admin/releases/webhookdelivery/change_list.html"

    delivery_ref = clipped_column("delivery_key", "delivery")

    event_label = clipped_column("event", "event")

    @admin.display(description="received", ordering="received_at")
    def received(self, obj):
        return moment_html(obj.received_at)

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


# The audit list and event page (newest first, folded staging lines, chain status).
admin.site.register(AuditEvent, AuditEventAdmin)


@admin.register(Notification)
class NotificationAdmin(FitListColumns, ReadOnlyAdmin):
    """Each notification of an event on a channel, with its final outcome (README:
    Notifications). Channel addresses are secrets and are never stored here."""

    list_display = ["kind_label", "channel", "outcome", "build", "event_link", "created"]
    list_filter = ["status", "channel", "kind", "created_at"]
    search_fields = ["kind", "event__build__build_id", "delivery_id"]
    list_select_related = ["event__build"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    change_list_template = "admin/releases/notification/change_list.html"
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

    kind_label = clipped_column("kind", "kind")

    @admin.display(description="build")
    def build(self, obj):
        return build_ref_html(obj.event.build)

    @admin.display(description="audit event")
    def event_link(self, obj):
        url = reverse("admin:releases_auditevent_change", args=[obj.event_id])
        return format_html('<a href="{}">#{}</a>{}', url, obj.event.sequence,
                           clipped_html(obj.event.kind))  # fmt: skip

    @admin.display(description="payload")
    def payload_pretty(self, obj):
        return _pretty(obj.payload)


@admin.register(CdnPurge)
class CdnPurgeAdmin(FitListColumns, ReadOnlyAdmin):
    """Each purge of the CDN after a change to production, with its outcome."""

    list_display = ["__str__", "backend", "outcome", "reason_label", "created"]
    list_filter = ["status", "backend", "created_at"]
    search_fields = ["reason", "actor"]
    change_list_template = "admin/releases/cdnpurge/change_list.html"
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

    reason_label = clipped_column("reason", "reason", lines=2, words=True)

    @admin.action(description="Purge failed ones again", permissions=["reconcile"])
    def purge_again(self, request, queryset):
        again = cdn_purge_again(purges=queryset, actor=request.user.get_username())
        self.message_user(request, f"queued {again} purge(s) again; failed ones only")

    def has_reconcile_permission(self, request):
        return request.user.has_perm("releases.reconcile_production")


if admin.site.is_registered(TokenProxy):
    admin.site.unregister(TokenProxy)  # it lists every key in clear


@admin.register(ApiToken)
class ApiTokenAdmin(TokenAdmin):
    """DRF's token admin without the keys: a new key is shown once, right after it is made."""

    list_display = ("token", "owner", "issued")
    change_list_template = "admin/releases/apitoken/change_list.html"

    @admin.display(description="API token", ordering="user__username")
    def token(self, obj):
        return clipped_html(str(obj))

    @admin.display(description="user", ordering="user__username")
    def owner(self, obj):
        return clipped_html(obj.user.get_username())

    @admin.display(description="created", ordering="created")
    def issued(self, obj):
        return moment_html(obj.created)

    def response_add(self, request, obj, post_url_continue=None):
        # The key goes into this one answer only: not into a message, which Django keeps in a
        # cookie (signed, not encrypted) until the next page shows it. The row holds its digest;
        # the secret is on the instance that was just saved (services/api_tokens.py).
        context = {
            **self.admin_site.each_context(request),
            "title": f"API token of {obj.user}",
            "opts": self.opts,
            "token_user": obj.user,
            "new_key": obj.secret,
        }
        # Never cached: the admin's views answer with Cache-Control: no-store already.
        return TemplateResponse(request, "admin/releases/apitoken/created.html", context)


# The accounts and the login throttling's lists (superusers only) fit the same way: Django's and
# django-axes's own admins with their long columns cut (README: The review console).
def _refit(model, model_admin) -> None:
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)


class AccountAdmin(UserAdmin):
    list_display = ["username_label", "email_label", "first_name_label", "last_name_label",
                    "is_staff"]  # fmt: skip
    change_list_template = "admin/auth/user/change_list.html"

    username_label = clipped_column("username", "username")

    email_label = clipped_column("email", "email address")

    first_name_label = clipped_column("first_name", "first name")

    last_name_label = clipped_column("last_name", "last name")


class LoginColumns:
    """Who tried (user name, and the address under it), from where and with what, cut."""

    @admin.display(description="attempted", ordering="attempt_time")
    def attempted(self, obj):
        return moment_html(obj.attempt_time)

    @admin.display(description="user name / address", ordering="username")
    def who(self, obj):
        address = clipped_html(obj.ip_address or "")
        return format_html('{}<span class="quiet">{}</span>', clipped_html(obj.username), address)

    user_agent_label = clipped_column("user_agent", "user agent", lines=2, words=True)

    path = clipped_column("path_info", "path")


class LoginAttemptAdmin(LoginColumns, AccessAttemptAdmin):
    list_display = ["attempted", "who", "user_agent_label", "path", "failures_since_start",
                    "status"]  # fmt: skip
    change_list_template = "admin/axes/change_list.html"


class LoginLogAdmin(LoginColumns, AccessLogAdmin):
    list_display = ["attempted", "logged_out", "who", "user_agent_label", "path"]
    change_list_template = "admin/axes/change_list.html"

    @admin.display(description="logged out", ordering="logout_time")
    def logged_out(self, obj):
        return moment_html(obj.logout_time)


class LoginFailureAdmin(LoginColumns, AccessFailureLogAdmin):
    list_display = ["attempted", "who", "user_agent_label", "path", "locked_out"]
    change_list_template = "admin/axes/change_list.html"


_refit(User, AccountAdmin)
_refit(AccessAttempt, LoginAttemptAdmin)
_refit(AccessLog, LoginLogAdmin)
_refit(AccessFailureLog, LoginFailureAdmin)

"""Builds, their files, release requests, webhook deliveries and the audit trail (docs/audit.md)."""

from __future__ import annotations

import hashlib
import json
import uuid

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.urls import reverse
from rest_framework.authtoken.models import TokenProxy


class BuildStatus(models.TextChoices):
    RECEIVED = "received", "received"
    STAGING = "staging", "staging"
    STAGED = "staged", "staged"
    IN_REVIEW = "in_review", "in review"
    APPROVED = "approved", "approved"
    LIVE = "live", "live"
    FAILED = "failed", "failed"
    REJECTED = "rejected", "rejected"
    CLOSED = "closed", "closed"


class Build(models.Model):
    """One ToDesktop build: the unit that is staged, reviewed and promoted."""

    build_id = models.CharField("ToDesktop build id", max_length=64, unique=True)
    app_id = models.CharField(max_length=64)
    version = models.CharField(max_length=100, blank=True)
    platforms = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=20, choices=BuildStatus, default=BuildStatus.RECEIVED)
    failure_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    staged_at = models.DateTimeField(null=True, blank=True)
    live_at = models.DateTimeField(null=True, blank=True)
    # The staging lease (releases.services.lifecycle): the release whose run stages the build,
    # and when that run last said it is alive. Set only while the build is `staging`.
    lease_holder = models.PositiveIntegerField(null=True, blank=True, editable=False)
    lease_renewed_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("retry_build", "Can retry staging or review of a build"),
            ("rollback_build", "Can open a rollback to a live build"),
            ("reconcile_production", "Can reconcile production with the desired state"),
        ]

    def __str__(self) -> str:
        return f"{self.build_id} (v{self.version})" if self.version else self.build_id

    @property
    def staging_prefix(self) -> str:
        return f"{self.build_id}/"

    def get_admin_url(self) -> str:
        return reverse("admin:releases_build_change", args=[self.pk])


class Verification(models.TextChoices):
    PENDING = "pending", "pending"
    # every hash and size the manifests give matched the staged bytes
    VERIFIED = "verified", "verified"
    # staged, but no manifest names a hash for it (e.g. a blockmap)
    UNCHECKED = "unchecked", "unchecked"
    MISMATCH = "mismatch", "mismatch"


class BuildFile(models.Model):
    """One file of a build as staged at `<buildId>/<name>`."""

    build = models.ForeignKey(Build, on_delete=models.PROTECT, related_name="files")
    name = models.CharField(max_length=255)
    size = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    sha512 = models.CharField(max_length=128, blank=True)
    md5 = models.CharField(max_length=32, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    source_url = models.URLField(max_length=1000, blank=True)
    verification = models.CharField(
        max_length=20, choices=Verification, default=Verification.PENDING
    )
    verification_detail = models.TextField(blank=True)
    staged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["build", "name"], name="unique_file_per_build")
        ]
        # Staging and promotion ask "which other build owns this name?" (production is flat).
        indexes = [models.Index(fields=["name"], name="buildfile_name")]

    def __str__(self) -> str:
        return self.name

    @property
    def key(self) -> str:
        """The staging key."""
        return f"{self.build.build_id}/{self.name}"


class WebhookDelivery(models.Model):
    """Every accepted webhook body, kept verbatim (ToDesktop and GitHub)."""

    class Source(models.TextChoices):
        TODESKTOP = "todesktop", "ToDesktop"
        GITHUB = "github", "GitHub"

    source = models.CharField(max_length=20, choices=Source)
    # ToDesktop: sha256 of the raw body (the same body twice is one delivery);
    # GitHub: the X-GitHub-Delivery id.
    delivery_key = models.CharField(max_length=128)
    event = models.CharField(max_length=64, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    body = models.BinaryField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["source", "delivery_key"], name="unique_delivery")
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.event or ''} {self.delivery_key[:12]}".strip()

    @property
    def body_text(self) -> str:
        return bytes(self.body).decode("utf-8", errors="replace")


class ReleaseState(models.TextChoices):
    PENDING = "pending", "pending"  # accepted; the build is being staged
    AWAITING_REVIEW = "awaiting_review", "awaiting review"  # staged, review not opened yet
    IN_REVIEW = "in_review", "in review"
    CHANGES_REQUESTED = "changes_requested", "changes requested"
    APPROVED = "approved", "approved"
    MERGED = "merged", "merged"
    # GitHub: merged, but the head commit is not the one the last approving review covered
    # (REQUIRE_REVIEWED_HEAD keeps it out of production until a review covers it or it is
    # withdrawn).
    MERGED_UNREVIEWED = "merged_unreviewed", "merged with unreviewed commits"
    LIVE = "live", "live"
    CLOSED = "closed", "closed"
    REJECTED = "rejected", "rejected"
    FAILED = "failed", "failed"
    # a release manager took an accepted release out of the desired state
    WITHDRAWN = "withdrawn", "withdrawn"


class ReleaseRequest(models.Model):
    """One accepted release webhook body → one review (a PR, or approvals in the admin)."""

    build = models.ForeignKey(Build, on_delete=models.PROTECT, related_name="release_requests")
    delivery = models.OneToOneField(
        WebhookDelivery, on_delete=models.PROTECT, null=True, blank=True, related_name="release"
    )
    kind = models.CharField(
        max_length=20,
        # halt: the review record of a staged rollout a release manager halted (README: Staged
        # rollouts); it brings the desired state in line with production.
        choices=[("release", "release"), ("rollback", "rollback"), ("halt", "halt")],
        default="release",
    )
    payload = models.JSONField(default=dict, blank=True)
    release_info = models.JSONField(null=True, blank=True)
    state = models.CharField(max_length=30, choices=ReleaseState, default=ReleaseState.PENDING)
    # The person who asked for it (opened the rollback, staged by hand); blank for a webhook.
    # The two-person rule keeps them, and whoever retried it, from approving it.
    requested_by = models.CharField(max_length=255, blank=True)
    failure_reason = models.TextField(blank=True)
    branch = models.CharField(max_length=255, blank=True)
    pr_number = models.PositiveIntegerField("PR number", null=True, blank=True)
    pr_url = models.URLField("PR URL", max_length=500, blank=True)
    merged_by = models.CharField(max_length=255, blank=True)
    merged_at = models.DateTimeField(null=True, blank=True)
    # GitHub: the PR's head commit when it was merged, and the commit its last approving review
    # was given on (blank: no approval). Set once promotion has checked the merge's review.
    merged_head_sha = models.CharField(max_length=40, blank=True)
    reviewed_head_sha = models.CharField(max_length=40, blank=True)
    live_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("approve_release", "Can approve or reject a release in the admin"),
            ("withdraw_release", "Can withdraw an accepted release that is not live"),
        ]

    def __str__(self) -> str:
        return f"release #{self.pk} of {self.build.build_id}"


class RolloutHalt(models.Model):
    """A staged rollout (`buildByPercentage`) a release manager stopped from the admin.

    Production's cohort is 0% from the moment it is recorded. Until the desired state carries
    it too (its review record, `release`, merged or approved), every promotion and reconcile
    lays it over the desired state, so nothing undoes it; `settled_at` marks that moment.
    Written only by `releases.services.rollouts`.
    """

    build_id = models.CharField("halted build", max_length=64, db_index=True)
    actor = models.CharField(max_length=255)
    reason = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    release = models.ForeignKey(
        ReleaseRequest, on_delete=models.PROTECT, null=True, blank=True, related_name="halts"
    )
    review_error = models.TextField(blank=True)  # why its review record could not be opened
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        permissions = [("halt_rollout", "Can halt a staged rollout (release managers)")]

    def __str__(self) -> str:
        return f"halt of the rollout of {self.build_id}"

    @property
    def active(self) -> bool:
        return self.settled_at is None


class Approval(models.Model):
    """An approval or rejection given in the admin (the admin review backend)."""

    release = models.ForeignKey(ReleaseRequest, on_delete=models.PROTECT, related_name="approvals")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    approved = models.BooleanField()
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["release", "user"], name="one_decision_per_user")
        ]

    def __str__(self) -> str:
        return f"{'approved' if self.approved else 'rejected'} by {self.user}"


class AppendOnlyError(Exception):
    """Audit events cannot be changed or deleted."""


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("audit events cannot be changed")

    def delete(self):
        raise AppendOnlyError("audit events cannot be deleted")

    def bulk_update(self, *args, **kwargs):
        raise AppendOnlyError("audit events cannot be changed")


GENESIS_HASH = "0" * 64


class AuditEvent(models.Model):
    """An append-only, hash-chained record of something that happened (docs/audit.md).

    `hash` = sha256(previous row's hash + this row's canonical content), so editing or removing
    a row behind the ORM's back breaks the chain at that row (`manage.py audit_verify`).
    Rows are written only through `releases.services.audit.audit_record`.
    """

    sequence = models.PositiveBigIntegerField(unique=True, editable=False)
    created_at = models.DateTimeField(editable=False)
    kind = models.CharField(max_length=64, db_index=True, editable=False)
    message = models.TextField(editable=False)
    actor = models.CharField(max_length=255, blank=True, editable=False)
    url = models.URLField(max_length=500, blank=True, editable=False)
    build = models.ForeignKey(
        Build,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="events",
        editable=False,
    )
    release = models.ForeignKey(
        ReleaseRequest,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="events",
        editable=False,
    )
    data = models.JSONField(default=dict, blank=True, editable=False, encoder=DjangoJSONEncoder)
    previous_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(max_length=64, unique=True, editable=False)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["sequence"]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.kind}"

    def canonical(self) -> str:
        """The content the hash covers, as stable JSON."""
        content = {
            "sequence": self.sequence,
            "created_at": self.created_at.isoformat(),
            "kind": self.kind,
            "message": self.message,
            "actor": self.actor,
            "url": self.url,
            "build": self.build.build_id if self.build_id else None,
            "release": self.release_id,
            "data": self.data,
        }
        return json.dumps(content, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)

    def compute_hash(self) -> str:
        return hashlib.sha256((self.previous_hash + self.canonical()).encode()).hexdigest()

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("audit events cannot be changed")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("audit events cannot be deleted")


class AuditChainHead(models.Model):
    """A single row that serialises appends to the audit chain (a row lock on PostgreSQL,
    SQLite's write lock otherwise)."""

    sequence = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)

    def __str__(self) -> str:
        return f"audit chain head #{self.sequence}"


class ApiToken(TokenProxy):
    """An API token as the admin lists it: by its user, never by its key (a secret,
    docs/configuration.md;
    DRF's own str() is the key, which the admin would print in titles and its history)."""

    class Meta:
        proxy = True
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"API token of {self.user}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "pending"  # queued, or waiting for its next retry
    DELIVERED = "delivered", "delivered"
    FAILED = "failed", "failed"  # out of retries, or refused for good (a 4xx, nobody to send to)


class Notification(models.Model):
    """One notification of one audit event on one channel, with its final outcome.

    Written only by the `notify` worker (releases.services.notifications); read-only in the
    admin. The delivery id stays the same across retries, so a receiver can drop duplicates.
    """

    class Channel(models.TextChoices):
        EMAIL = "email", "e-mail"
        SLACK = "slack", "Slack"
        WEBHOOK = "webhook", "webhook"

    event = models.ForeignKey(
        AuditEvent, on_delete=models.PROTECT, related_name="notifications", editable=False
    )
    kind = models.CharField(max_length=64, db_index=True)
    channel = models.CharField(max_length=20, choices=Channel)
    delivery_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    payload = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    status = models.CharField(
        max_length=20, choices=DeliveryStatus, default=DeliveryStatus.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    response_status = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    recipients = models.JSONField(default=list, blank=True)  # e-mail addresses (e-mail only)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["event", "channel"], name="one_notification_per_channel"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} by {self.get_channel_display()}"


class CdnPurge(models.Model):
    """One purge of the CDN's cached copies after a change to production, with its outcome."""

    backend = models.CharField(max_length=20)
    urls = models.JSONField(default=dict)  # public base → its URLs
    reason = models.CharField(max_length=500, blank=True)
    actor = models.CharField(max_length=255, blank=True)
    reference = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    status = models.CharField(
        max_length=20, choices=DeliveryStatus, default=DeliveryStatus.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "CDN purge"

    def __str__(self) -> str:
        return f"CDN purge #{self.pk} ({len(self.urls)} URLs)"

"""Read-only JSON API for builds, files, release requests and audit events (docs/api.md).

Token-authenticated (`Authorization: Token <key>`), paginated, filterable; the schema is at
`/api/schema/`. Users need the matching `view_*` permission (the `auditors` group has them).
"""

from __future__ import annotations

from django.urls import include, path
from drf_spectacular.utils import extend_schema, inline_serializer
from drf_spectacular.views import SpectacularAPIView
from rest_framework import permissions, routers, serializers, status, viewsets
from rest_framework.decorators import action, api_view, permission_classes
from rest_framework.response import Response

from releases.models import AuditEvent, Build, BuildFile, ReleaseRequest
from releases.services.approvals import DecisionRefused, release_decide
from releases.services.intake import staging_retry
from releases.services.reconcile import reconcile_request
from releases.services.review import review_retry
from releases.services.withdrawal import WithdrawRefused, release_withdraw


class ViewPermission(permissions.DjangoModelPermissions):
    """Reading needs the model's `view` permission too (DRF's default lets any user read)."""

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }


class BuildFileSerializer(serializers.ModelSerializer):
    build_id = serializers.CharField(source="build.build_id", read_only=True)

    class Meta:
        model = BuildFile
        fields = [
            "id",
            "build_id",
            "name",
            "size",
            "sha256",
            "sha512",
            "md5",
            "content_type",
            "source_url",
            "verification",
            "verification_detail",
            "staged_at",
        ]


class BuildSerializer(serializers.ModelSerializer):
    files = BuildFileSerializer(many=True, read_only=True)

    class Meta:
        model = Build
        fields = [
            "id",
            "build_id",
            "app_id",
            "version",
            "platforms",
            "status",
            "failure_reason",
            "created_at",
            "updated_at",
            "staged_at",
            "live_at",
            "files",
        ]


class ReleaseRequestSerializer(serializers.ModelSerializer):
    build_id = serializers.CharField(source="build.build_id", read_only=True)

    class Meta:
        model = ReleaseRequest
        fields = [
            "id",
            "build_id",
            "kind",
            "state",
            "failure_reason",
            "release_info",
            "requested_by",
            "branch",
            "pr_number",
            "pr_url",
            "merged_by",
            "merged_at",
            "merged_head_sha",
            "reviewed_head_sha",
            "live_at",
            "created_at",
        ]


class AuditEventSerializer(serializers.ModelSerializer):
    build_id = serializers.CharField(source="build.build_id", read_only=True, default=None)

    class Meta:
        model = AuditEvent
        fields = [
            "sequence",
            "created_at",
            "kind",
            "message",
            "actor",
            "url",
            "build_id",
            "release",
            "data",
            "previous_hash",
            "hash",
        ]


class BuildViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Build.objects.prefetch_related("files").order_by("-created_at")
    serializer_class = BuildSerializer
    permission_classes = [ViewPermission]
    lookup_field = "build_id"
    filterset_fields = ["status", "version", "app_id"]
    search_fields = ["build_id", "version"]
    ordering_fields = ["created_at", "live_at", "version"]


class BuildFileViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = BuildFile.objects.select_related("build").order_by("build_id", "name")
    serializer_class = BuildFileSerializer
    permission_classes = [ViewPermission]
    filterset_fields = {"build__build_id": ["exact"], "verification": ["exact"]}
    search_fields = ["name", "sha512", "sha256"]


def _needs(perm: str) -> type[permissions.BasePermission]:
    class HasPermission(permissions.BasePermission):
        message = f"needs the {perm} permission (release managers)"

        def has_permission(self, request, view):
            return bool(request.user and request.user.has_perm(perm))

    return HasPermission


def _queued_or_conflict(queued: int, skipped: list[str]) -> Response:
    if queued:
        return Response({"queued": queued}, status=status.HTTP_202_ACCEPTED)
    return Response({"error": "cannot be retried: " + ", ".join(skipped)}, status=409)


class ReleaseRequestViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = ReleaseRequest.objects.select_related("build").order_by("-created_at")
    serializer_class = ReleaseRequestSerializer
    permission_classes = [ViewPermission]
    filterset_fields = {"state": ["exact"], "kind": ["exact"], "build__build_id": ["exact"]}

    @action(
        detail=True,
        methods=["post"],
        url_path="retry-staging",
        permission_classes=[_needs("releases.retry_build")],
    )
    def retry_staging(self, request, pk=None):
        """Queue staging again for a release whose build or request failed."""
        release = self.get_object()
        return _queued_or_conflict(
            *staging_retry(releases=[release], actor=request.user.get_username())
        )

    @action(
        detail=True,
        methods=["post"],
        url_path="retry-review",
        permission_classes=[_needs("releases.retry_build")],
    )
    def retry_review(self, request, pk=None):
        """Queue opening the review (PR) again for a staged release whose review failed."""
        release = self.get_object()
        return _queued_or_conflict(
            *review_retry(releases=[release], actor=request.user.get_username())
        )

    @action(detail=True, methods=["post"], permission_classes=[_needs("releases.approve_release")])
    def approve(self, request, pk=None):
        """Approve (admin review). Body: `{"comment": "..."}` (optional). 200 when recorded,
        409 with the reason when refused (two-person rule, already decided, not in review)."""
        return self._decide(request, approve=True)

    @action(detail=True, methods=["post"], permission_classes=[_needs("releases.approve_release")])
    def reject(self, request, pk=None):
        """Reject (admin review). Body: `{"comment": "<reason>"}` (required). 200 when
        recorded, 400 without a reason, 409 with the reason when refused."""
        return self._decide(request, approve=False)

    def _decide(self, request, *, approve: bool) -> Response:
        release = self.get_object()
        body = request.data if isinstance(request.data, dict) else {}
        comment = body.get("comment", "")
        if not isinstance(comment, str):
            return Response({"error": "comment must be a string"}, status=400)
        if not approve and not comment.strip():
            return Response({"error": "a reason is required to reject"}, status=400)
        try:
            outcome = release_decide(
                release=release, user=request.user, approve=approve, comment=comment
            )
        except DecisionRefused as exc:
            return Response({"error": f"not recorded: {exc}"}, status=409)
        release.refresh_from_db()
        return Response({"outcome": outcome, "release": self.get_serializer(release).data})

    @action(
        detail=True,
        methods=["post"],
        permission_classes=[_needs("releases.withdraw_release")],
    )
    def withdraw(self, request, pk=None):
        """Take an accepted release that is not live out of the desired state. Body:
        `{"reason": "..."}` (required). 200 with the release; 409 when it cannot be withdrawn."""
        release = self.get_object()
        reason = request.data.get("reason") if isinstance(request.data, dict) else None
        if not isinstance(reason, str):
            return Response({"error": "a reason is required"}, status=400)
        try:
            release = release_withdraw(
                release=release, actor=request.user.get_username(), reason=reason
            )
        except ValueError as exc:
            return Response({"error": str(exc)}, status=400)
        except WithdrawRefused as exc:
            return Response({"error": f"cannot be withdrawn: {exc}"}, status=409)
        return Response(self.get_serializer(release).data)


@extend_schema(
    request=None,
    responses={202: inline_serializer("ReconcileQueued", {"queued": serializers.IntegerField()})},
)
@api_view(["POST"])
@permission_classes([_needs("releases.reconcile_production")])
def reconcile(request):
    """Queue a reconcile of production with the desired state; the request and its result
    are audited with the caller's name."""
    reconcile_request(actor=request.user.get_username())
    return Response({"queued": 1}, status=status.HTTP_202_ACCEPTED)


class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = AuditEvent.objects.select_related("build").order_by("sequence")
    serializer_class = AuditEventSerializer
    permission_classes = [ViewPermission]
    lookup_field = "sequence"
    filterset_fields = {"kind": ["exact"], "build__build_id": ["exact"], "sequence": ["gt"]}
    search_fields = ["message", "actor"]


router = routers.DefaultRouter()
router.register("builds", BuildViewSet)
router.register("files", BuildFileViewSet)
router.register("releases", ReleaseRequestViewSet)
router.register("events", AuditEventViewSet)

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("reconcile/", reconcile, name="reconcile"),
    path("", include(router.urls)),
]

"""Read-only JSON API for builds, files, release requests and audit events (SPEC §11).

Token-authenticated (`Authorization: Token <key>`), paginated, filterable; the schema is at
`/api/schema/`. Users need the matching `view_*` permission (the `reviewers` group has them).
"""

from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework import permissions, routers, serializers, viewsets

from releases.models import AuditEvent, Build, BuildFile, ReleaseRequest


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
            "branch",
            "pr_number",
            "pr_url",
            "merged_by",
            "merged_at",
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


class ReleaseRequestViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = ReleaseRequest.objects.select_related("build").order_by("-created_at")
    serializer_class = ReleaseRequestSerializer
    permission_classes = [ViewPermission]
    filterset_fields = {"state": ["exact"], "kind": ["exact"], "build__build_id": ["exact"]}


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
    path("", include(router.urls)),
]

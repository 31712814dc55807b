"""`GET /api/adoption/?build=<id>&since=<ISO 8601>` (README: Adoption)."""

from __future__ import annotations

from datetime import UTC, datetime

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import permissions, serializers
from rest_framework.decorators import api_view, permission_classes
from rest_framework.response import Response

from adoption.services import adoption_summary, day_ago
from releases.validation import ID_RE


class CanViewAdoption(permissions.BasePermission):
    message = (
        "needs the adoption.view_adoptioncount permission (auditors, approvers, release managers)"
    )

    def has_permission(self, request, view):
        return bool(request.user and request.user.has_perm("adoption.view_adoptioncount"))


def _since(raw: str | None) -> datetime:
    if not raw:
        return day_ago()
    moment = datetime.fromisoformat(raw.replace(" ", "+"))  # `+` arrives as a space if unescaped
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@extend_schema(
    parameters=[
        OpenApiParameter("build", str, required=True, description="a build id"),
        OpenApiParameter("since", str, description="ISO 8601; default: 24 hours ago"),
    ],
    responses={
        200: inline_serializer(
            "AdoptionSummary",
            {
                "build": serializers.CharField(),
                "since": serializers.DateTimeField(),
                "until": serializers.DateTimeField(),
                "polls": serializers.IntegerField(),
                "unique_installs": serializers.IntegerField(),
                "full_downloads": serializers.IntegerField(),
                "differential_downloads": serializers.IntegerField(),
            },
        ),
        400: inline_serializer("AdoptionQueryError", {"error": serializers.CharField()}),
    },
)
@api_view(["GET"])
@permission_classes([CanViewAdoption])
def adoption(request):
    """Polls, unique installs and downloads of one build since `since` (whole hours)."""
    build = request.query_params.get("build", "")
    if not ID_RE.fullmatch(build):
        return Response({"error": "build: give a build id (1-64 of A-Z a-z 0-9 _ -)"}, status=400)
    try:
        since = _since(request.query_params.get("since"))
    except ValueError:
        return Response({"error": "since: must be an ISO-8601 date and time"}, status=400)
    if since > datetime.now(UTC):
        return Response({"error": "since: must not be in the future"}, status=400)
    return Response(adoption_summary(build_id=build, since=since))

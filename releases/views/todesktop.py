"""`POST /new-release-webhook` (SPEC §4): parse the request, call the intake, answer JSON."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from releases.services.intake import SIGNATURE_HEADER, WebhookRejected, release_receive


@csrf_exempt
@require_POST
def release_webhook(request: HttpRequest) -> JsonResponse:
    try:
        intake = release_receive(
            # The raw stream, not request.body: the intake reads at most the size limit.
            stream=request,
            content_length=_content_length(request),
            signature=request.headers.get(SIGNATURE_HEADER),
            headers=dict(request.headers),
            client=request.META.get("REMOTE_ADDR", ""),
        )
    except WebhookRejected as exc:
        answer = {"error": exc.message}
        if exc.errors:
            answer["errors"] = exc.errors
        return JsonResponse(answer, status=exc.status)
    release = intake.release
    answer = {
        "release_id": release.pk,
        "build_id": release.build.build_id,
        "state": release.state,
        "admin_url": intake.admin_url,
        "duplicate": not intake.created,
    }
    # 202: accepted, staging happens later. 200: this body was delivered before.
    return JsonResponse(answer, status=202 if intake.created else 200)


def _content_length(request: HttpRequest) -> int | None:
    try:
        return int(request.META["CONTENT_LENGTH"])
    except (KeyError, ValueError, TypeError):
        return None

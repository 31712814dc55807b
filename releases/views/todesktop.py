"""`POST /new-release-webhook` (docs/webhooks.md): parse the request, call the intake, answer
JSON."""

from __future__ import annotations

from typing import BinaryIO

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from releases.models import ReleaseState
from releases.services.intake import SIGNATURE_HEADER, Intake, release_receive
from releases.webhook_http import webhook_answer


@csrf_exempt
@require_POST
def release_webhook(request: HttpRequest) -> JsonResponse:
    def receive(stream: BinaryIO, length: int | None) -> JsonResponse:
        intake = release_receive(
            # The raw stream, not request.body: the intake reads at most the size limit.
            stream=stream,
            content_length=length,
            signature=request.headers.get(SIGNATURE_HEADER),
            headers=request.headers,
            client=request.META.get("REMOTE_ADDR", ""),
        )
        return _accepted(intake)

    return webhook_answer(request, receive)


def _accepted(intake: Intake) -> JsonResponse:
    release = intake.release
    answer = {
        "release_id": release.pk,
        "build_id": release.build.build_id,
        "state": release.state,
        "admin_url": intake.admin_url,
        "duplicate": not intake.created,
    }
    if release.state == ReleaseState.FAILED:
        answer["failure_reason"] = release.failure_reason
    # 202: accepted, staging happens later. 200: this body was delivered before.
    return JsonResponse(answer, status=202 if intake.created else 200)

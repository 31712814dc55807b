"""`POST /github-webhook` (docs/webhooks.md): hand the raw body to the GitHub intake, answer JSON.

The checks (signature on the raw bytes first, then headers and body) live in
`releases.services.github_intake`.
"""

from __future__ import annotations

from typing import BinaryIO

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from releases.services.github_intake import github_webhook_receive
from releases.webhook_http import webhook_answer


@csrf_exempt
@require_POST
def github_webhook(request: HttpRequest) -> JsonResponse:
    def receive(stream: BinaryIO, length: int | None) -> JsonResponse:
        outcome = github_webhook_receive(
            stream=stream, content_length=length, headers=request.headers
        )
        # 2xx for every verified delivery: GitHub shows anything else as a failed delivery.
        return JsonResponse(outcome.as_json(), status=200)

    return webhook_answer(request, receive)

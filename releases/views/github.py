"""`POST /github-webhook` (docs/webhooks.md): hand the raw body to the GitHub intake, answer JSON.

The checks (signature on the raw bytes first, then headers and body) live in
`releases.services.github_intake`.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from releases.errors import WebhookRejected
from releases.services.github_intake import github_webhook_receive
from releases.webhook_http import BodyRefused, body_discard, body_source


@csrf_exempt
@require_POST
def github_webhook(request: HttpRequest) -> JsonResponse:
    stream, length = request, None
    try:
        stream, length = body_source(request)
        outcome = github_webhook_receive(
            stream=stream, content_length=length, headers=request.headers
        )
    except (WebhookRejected, BodyRefused) as exc:
        body_discard(stream, length=length)  # so the client reads this answer, not a reset
        return JsonResponse({"error": exc.message}, status=exc.status)
    # 2xx for every verified delivery: GitHub shows anything else as a failed delivery.
    return JsonResponse(outcome.as_json(), status=200)

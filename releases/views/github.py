"""`POST /github-webhook` (SPEC §6, mirroring): verify, parse, hand to the mirror service.

Order matters: the signature is checked on the raw bytes before anything is parsed, so an
unsigned request cannot make us parse (or store) anything.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from releases.github_payloads import GitHubPayloadError, github_payload_check
from releases.services.mirror import github_delivery_receive
from releases.signatures import github_signature_valid
from releases.validation import JsonTooDeep, json_load_bounded
from releases.webhook_http import BodyRefused, body_discard, body_read, body_source

logger = logging.getLogger(__name__)


def _error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


@csrf_exempt
@require_POST
def github_webhook(request: HttpRequest) -> JsonResponse:
    stream, length = request, None
    try:
        stream, length = body_source(request)
        return _receive(request, stream, length)
    except BodyRefused as exc:
        body_discard(stream, length=length)  # so the client reads this answer, not a reset
        return _error(exc.message, exc.status)


def _receive(request: HttpRequest, stream, length: int | None) -> JsonResponse:
    secret = settings.GITHUB_WEBHOOK_SECRET
    if not secret:
        raise BodyRefused(503, "GITHUB_WEBHOOK_SECRET is not set; no GitHub delivery is accepted")
    body = body_read(stream, length=length, limit=settings.WEBHOOK_MAX_BODY_BYTES)
    signature = request.headers.get("X-Hub-Signature-256")
    if not github_signature_valid(secret=secret, body=body, header=signature):
        logger.warning("github webhook with a missing or wrong signature rejected")
        reason = "missing signature" if not signature else "invalid signature"
        return _error(f"{reason} (X-Hub-Signature-256)", 401)
    event = request.headers.get("X-GitHub-Event", "").strip()
    delivery_id = request.headers.get("X-GitHub-Delivery", "").strip()
    if not event or not delivery_id or len(delivery_id) > 128:
        return _error("missing X-GitHub-Event or X-GitHub-Delivery header", 400)
    try:
        payload = json_load_bounded(body)
    except JsonTooDeep as exc:
        return _error(f"body is not JSON ({exc})", 400)
    except (ValueError, UnicodeDecodeError):
        return _error("body is not JSON (set the webhook's content type to application/json)", 400)
    if not isinstance(payload, dict):
        return _error("body is not a JSON object", 400)
    try:
        github_payload_check(event=event, payload=payload)
    except GitHubPayloadError as exc:
        logger.warning("github %s delivery %r rejected: %s", event, delivery_id, exc)
        return _error(str(exc), 400)
    outcome = github_delivery_receive(
        event=event,
        delivery_id=delivery_id,
        body=body,
        payload=payload,
        headers=request.headers,
    )
    # 2xx for every verified delivery: GitHub shows anything else as a failed delivery.
    return JsonResponse(outcome.as_json(), status=200)

"""`POST /github-webhook` (SPEC §6, mirroring): verify, parse, hand to the mirror service.

Order matters: the signature is checked on the raw bytes before anything is parsed, so an
unsigned request cannot make us parse (or store) anything.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from releases.github_payloads import GitHubPayloadError, github_payload_check
from releases.services.mirror import github_delivery_receive
from releases.signatures import github_signature_valid

logger = logging.getLogger(__name__)


def _error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


@csrf_exempt
@require_POST
def github_webhook(request: HttpRequest) -> JsonResponse:
    secret = settings.GITHUB_WEBHOOK_SECRET
    if not secret:
        return _error("GITHUB_WEBHOOK_SECRET is not set; no GitHub delivery is accepted", 503)
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _error("invalid content-length", 400)
    if length > settings.WEBHOOK_MAX_BODY_BYTES:
        return _error(f"body over {settings.WEBHOOK_MAX_BODY_BYTES} bytes", 413)
    body = request.body
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
        payload = json.loads(body)
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
        headers=dict(request.headers),
    )
    # 2xx for every verified delivery: GitHub shows anything else as a failed delivery.
    return JsonResponse(outcome.as_json(), status=200)

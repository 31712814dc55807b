"""Cloudflare's cache purge by URL: `POST /zones/<zone id>/purge_cache {"files": [...]}`.

https://developers.cloudflare.com/api/resources/cache/methods/purge/ — a token with the
"Cache Purge" permission on the zone; at most 30 URLs per call (the limit of every plan but
Enterprise), so longer lists go in several calls. `CLOUDFLARE_API_BASE_URL` points the tests at
a local fake.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from django.conf import settings

from releases.integrations import outbound
from releases.integrations.outbound import DeliveryError

URLS_PER_CALL = 30


def cloudflare_purge(urls: list[str]) -> int:
    """Purge `urls` from the zone's cache; returns the number of API calls made."""
    endpoint = (
        f"{settings.CLOUDFLARE_API_BASE_URL}/zones/{quote(settings.CLOUDFLARE_ZONE_ID, safe='')}"
        "/purge_cache"
    )
    token = settings.CLOUDFLARE_API_TOKEN
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    calls = 0
    for start in range(0, len(urls), URLS_PER_CALL):
        body = json.dumps({"files": urls[start : start + URLS_PER_CALL]}).encode()
        response = outbound.send("POST", endpoint, body=body, headers=headers, secrets=[token])
        _check(response)
        calls += 1
    return calls


def _check(response) -> None:
    """A 2xx whose JSON does not say `"success": true` did not purge anything."""
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or answer.get("success") is not True:
        errors = answer.get("errors") if isinstance(answer, dict) else None
        raise DeliveryError(f"Cloudflare did not confirm the purge: {errors}", transient=True)

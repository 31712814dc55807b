"""A generic HTTP purge request, for a CDN or cache without a backend of its own.

`CDN_PURGE_HTTP_URL` with a `{url}` placeholder: one request per purged URL, the URL
percent-encoded in its place (Bunny's `…/purge?url={url}`, a Varnish or nginx purge location).
Without it: one request per public base, with the JSON body `{"urls": [...]}`. The method is
`CDN_PURGE_HTTP_METHOD` (POST; `PURGE` for Varnish and Fastly) and
`CDN_PURGE_HTTP_AUTHORIZATION`, when set, is sent as the `Authorization` header.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from django.conf import settings

from releases.integrations import outbound

PLACEHOLDER = "{url}"


def http_purge(groups: list[list[str]]) -> int:
    """Purge each group of URLs (one group per public base); returns the requests made."""
    template = settings.CDN_PURGE_HTTP_URL
    authorization = settings.CDN_PURGE_HTTP_AUTHORIZATION
    headers = {"Authorization": authorization} if authorization else {}
    secrets = [authorization] if authorization else []
    method = settings.CDN_PURGE_HTTP_METHOD
    requests_made = 0
    for urls in groups:
        if PLACEHOLDER in template:
            for url in urls:
                target = template.replace(PLACEHOLDER, quote(url, safe=""))
                outbound.send(method, target, headers=headers, secrets=secrets)
                requests_made += 1
            continue
        body = json.dumps({"urls": urls}).encode()
        json_headers = {**headers, "Content-Type": "application/json"}
        outbound.send(method, template, body=body, headers=json_headers, secrets=secrets)
        requests_made += 1
    return requests_made

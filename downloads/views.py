"""Download-link views (docs/download-links.md): parse the route, call `download_resolve`, format
the answer.

The file itself goes through the feed's single serving path (`cdn.serving.serve_object`:
ranges, conditionals, HEAD) under its real name. With `Accept: application/json` the answer
is a small JSON description instead (README, "Download links").
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import NoReverseMatch, reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from adoption.counting import count_link
from cdn.serving import serve_object
from downloads.choose import PARAMETER, ChoiceError, Route
from downloads.services import Resolved, download_resolve
from releases.integrations import buckets

logger = logging.getLogger(__name__)
# What a storage failure can raise while reading the manifest (answered 503, as the feed does).
STORAGE_ERRORS = (buckets.BucketError, OSError)

# A link is a pointer that moves with every release and depends on the User-Agent, and some
# shared caches ignore `Vary: User-Agent`: never store it (the original sends the same).
CACHE_CONTROL = "no-store"
VARY = ("User-Agent", "Accept")


@csrf_exempt  # nothing changes state here; other methods must get 405, not a CSRF 403
@require_http_methods(["GET", "HEAD"])
def download(request: HttpRequest, **params: str) -> HttpResponse:
    route = Route(**params)
    wants_json = accepts_json(request.headers.get("Accept", ""))
    try:
        resolved = download_resolve(
            route=route, user_agent=request.headers.get("User-Agent"), with_info=wants_json
        )
    except ChoiceError as error:
        response = _error(error, wants_json=wants_json)
    except STORAGE_ERRORS as exc:
        logger.warning("download link %s failed: %s", request.path, exc)
        response = _error(ChoiceError(503, "Storage unavailable"), wants_json=wants_json)
    else:
        if wants_json:
            response = JsonResponse(describe(request, resolved))
            response["Cache-Control"] = CACHE_CONTROL
            # Public data, no credentials: any website may read it from its own pages.
            response["Access-Control-Allow-Origin"] = "*"
        else:
            if request.method == "GET":
                count_link(
                    platform=resolved.choice.platform, artifact=resolved.choice.artifact_name
                )
            response = serve_object(
                request,
                bucket=buckets.production(),
                key=resolved.key,
                filename=resolved.file_name,  # the real name, build id included
                # (docs/download-links.md)
                cache_control=CACHE_CONTROL,
            )
    patch_vary_headers(response, VARY)
    return response


@csrf_exempt
def trailing_slash(request: HttpRequest, rest: str) -> HttpResponse:
    """301 to the same URL without its trailing slash (the query string kept)."""
    full_path = request.get_full_path()
    path, question, query = full_path.partition("?")
    # `//evil.example/` must not become a protocol-relative redirect to another host.
    location = "/" + path[:-1].lstrip("/") + question + query
    response = HttpResponse("redirect", status=301, content_type="text/plain; charset=utf-8")
    response["Location"] = location
    return response


@csrf_exempt
def not_found(request: HttpRequest) -> HttpResponse:
    return HttpResponse("not found", status=404, content_type="text/plain; charset=utf-8")


def accepts_json(accept: str) -> bool:
    """True when the client lists `application/json` (with q > 0) in `Accept`."""
    for item in accept.split(","):
        media, *parameters = (part.strip() for part in item.split(";"))
        if media.lower() != "application/json":
            continue
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q" and value.strip() in ("0", "0.0", "0.00", "0.000"):
                return False
        return True
    return False


def describe(request: HttpRequest, resolved: Resolved) -> dict:
    choice = resolved.choice
    sha256 = choice.entry.get("sha256")
    return {
        "fileName": resolved.file_name,
        "version": choice.version,
        "size": resolved.info.size if resolved.info else None,
        "url": request.build_absolute_uri(pinned_path(request, resolved)),
        "platform": choice.platform,
        "artifactName": choice.artifact_name,
        "arch": choice.arch,
        "buildId": resolved.build_id,
        "createdAt": choice.created_at,
        "sha256": sha256 if isinstance(sha256, str) else None,
    }


def pinned_path(request: HttpRequest, resolved: Resolved) -> str:
    """A link to exactly this file: by build when known, else by version, else as asked."""
    choice = resolved.choice
    tail = {"platform": choice.platform, "artifact_name": choice.artifact_name}
    tail["arch"] = choice.arch
    build_id, version = resolved.build_id, resolved.plan.route.app_version
    if build_id and PARAMETER.fullmatch(build_id):
        name, kwargs = "downloads:build-platform-artifact-arch", {"build_id": build_id, **tail}
    elif version:
        name, kwargs = "downloads:version-platform-artifact-arch", {"app_version": version, **tail}
    else:
        return request.path
    # The request's own urlconf: `/download/…`, or `/…` on a DOWNLOAD_HOSTS host name (also
    # when a middleware calls this view directly, without Django activating that urlconf).
    try:
        return reverse(name, kwargs=kwargs, urlconf=getattr(request, "urlconf", None))
    except NoReverseMatch:
        return request.path


def _error(error: ChoiceError, *, wants_json: bool) -> HttpResponse:
    if wants_json:
        response: HttpResponse = JsonResponse({"error": error.message}, status=error.status)
        response["Access-Control-Allow-Origin"] = "*"
    else:
        response = HttpResponse(
            error.message, status=error.status, content_type="text/plain; charset=utf-8"
        )
    response["Cache-Control"] = CACHE_CONTROL
    return response

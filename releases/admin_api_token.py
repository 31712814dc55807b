"""The admin page *My API token* (`/admin/my-api-token/`, docs/api.md): any active staff user
creates, rotates or revokes their own API token; nobody else's can be named here.

Create and rotate answer with the page showing the new key, once: the key is never stored
anywhere it could be shown again (not in a message, which lives in a cookie, nor in the trail).
Reloading that answer posts the form again, which finds the token changed and does nothing.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib import admin, messages
from django.http import HttpResponseBadRequest, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from releases.services.api_tokens import (
    TokenChanged,
    api_token_create,
    api_token_of,
    api_token_revoke,
    api_token_rotate,
)

ACTIONS = ("create", "rotate", "revoke")


def _seen(request) -> datetime | None:
    """The creation time of the token the form was shown with (aware), or None."""
    try:
        seen = datetime.fromisoformat(request.POST.get("created", ""))
    except ValueError:
        return None
    return seen if seen.tzinfo is not None else None


def _act(request, action: str) -> str:
    """Run `action` for the logged-in user; the new key after create or rotate, else ""."""
    user = request.user
    if action == "create":
        return api_token_create(user=user)
    seen = _seen(request)
    if seen is None:
        raise ValueError("the form does not say which token it was shown with")
    if action == "rotate":
        return api_token_rotate(user=user, seen=seen)
    api_token_revoke(user=user, seen=seen)
    return ""


def my_api_token_view(request):
    if request.method not in ("GET", "POST"):
        return HttpResponseNotAllowed(["GET", "POST"])
    key = ""
    if request.method == "POST":
        action = request.POST.get("action", "")
        if action not in ACTIONS:
            return HttpResponseBadRequest("unknown action: expected create, rotate or revoke")
        try:
            key = _act(request, action)
        except ValueError as exc:
            return HttpResponseBadRequest(str(exc))
        except TokenChanged as exc:
            messages.warning(request, str(exc))
            return HttpResponseRedirect(reverse("my-api-token"))
        if not key:  # revoked
            messages.success(request, "your API token was revoked: its key no longer works")
            return HttpResponseRedirect(reverse("my-api-token"))
    user = request.user
    context = {
        **admin.site.each_context(request),
        "title": "My API token",
        "token": api_token_of(user=user),
        "new_key": key,
        "rotated": request.POST.get("action") == "rotate",
        "groups": sorted(user.groups.values_list("name", flat=True)),
    }
    return TemplateResponse(request, "admin/releases/my_api_token.html", context)


# The admin's own checks: an active staff user, else the login page; CSRF; never cached.
my_api_token = admin.site.admin_view(my_api_token_view)

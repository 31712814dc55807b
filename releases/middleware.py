"""Who is acting in this request, for the audit records that signals write."""

from __future__ import annotations

from releases.services.access import current_actor


class AuditActorMiddleware:
    """Remembers the logged-in user's name for the length of the request (after
    AuthenticationMiddleware). API token users are set by DRF later, so API views pass their
    actor explicitly."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        name = user.get_username() if user is not None and user.is_authenticated else ""
        token = current_actor.set(name)
        try:
            return self.get_response(request)
        finally:
            current_actor.reset(token)

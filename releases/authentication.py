"""API token authentication against digests (docs/api.md, README: Security model).

`Authorization: Token <key>` as DRF reads it; the token is found by the digest of the key
presented (`releases.services.api_tokens.token_digest`), since the database holds digests only.
The lookup is an indexed equality on a digest, so its time says nothing about how much of a
stored key a guess shares; a digest presented as a key is itself hashed and matches nothing.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

from releases.services.api_tokens import token_digest


class DigestTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key):
        try:
            token = Token.objects.select_related("user").get(key=token_digest(key))
        except Token.DoesNotExist:
            raise exceptions.AuthenticationFailed(_("Invalid token.")) from None
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return (token.user, token)

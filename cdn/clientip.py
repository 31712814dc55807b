"""The client's IP address for IP rules and `my-ip` (docs/configuration.md).

Only the header the operator configured is trusted (`TRUSTED_CLIENT_IP_HEADER`); without one the
socket address is the client. `X-Forwarded-For` is read from the right: each of the
`TRUSTED_PROXY_COUNT` proxies appends the address it saw, so the entry that many places from the
end was written by our outermost proxy, and anything left of it may be forged by the client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from cdn.metadata import IPAddress, parse_ip


def _meta_name(header: str) -> str:
    return "HTTP_" + header.upper().replace("-", "_")


def _strip_port(value: str) -> str:
    # Some proxies write "1.2.3.4:5678" or "[2001:db8::1]:443".
    value = value.strip()
    if value.startswith("[") and "]" in value:
        return value[1 : value.index("]")]
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value


def _from_header(meta: Mapping[str, Any], header: str) -> IPAddress | None:
    raw = meta.get(_meta_name(header))
    if not raw:
        return None
    if header.lower() != "x-forwarded-for":
        return parse_ip(_strip_port(raw))
    hops = [hop for hop in (part.strip() for part in raw.split(",")) if hop]
    count = max(settings.TRUSTED_PROXY_COUNT, 1)
    if len(hops) < count:
        return None  # fewer hops than proxies: the header did not come through our proxies
    return parse_ip(_strip_port(hops[-count]))


def client_address_of(meta: Mapping[str, Any]) -> IPAddress | None:
    """The client address from a request's WSGI environ (Django's `request.META`)."""
    header = settings.TRUSTED_CLIENT_IP_HEADER
    address = _from_header(meta, header) if header else None
    return address or parse_ip(meta.get("REMOTE_ADDR"))


def client_ip(request: HttpRequest) -> str | None:
    """The client address as text (normalised: `2001:DB8::7` → `2001:db8::7`), or None."""
    return client_ip_of(request.META)


def client_ip_of(meta: Mapping[str, Any]) -> str | None:
    address = client_address_of(meta)
    return str(address) if address is not None else None

"""Where a download from ToDesktop may go: origins for redirects, addresses for connections.

Two rules, checked at two moments (README, "Downloads from ToDesktop"):

1. A redirect is followed only to a **trusted origin** — the origin (scheme, host, port) of
   `TODESKTOP_DOWNLOAD_BASE_URL`, or a full origin listed in `TODESKTOP_REDIRECT_HOSTS`
   (`http://10.0.0.5:9000`) — or to `https://<host>` on port 443 for a **host name** listed
   there (`dl.example.com`, `*.cdn.example.com`). Anything else is refused before any request.
2. A connection to a listed host name goes only to a public address. The name is resolved
   once, every address is checked, and the socket connects to the checked address itself
   (so a DNS answer that changes between check and connect — rebinding — cannot slip in);
   TLS still verifies the certificate for the name (SNI and Host are the name). Trusted
   origins are configured by the operator, so they are not checked (a test origin or a
   mirror on the private network is allowed by writing it as a full origin).

With an HTTP(S) proxy from the environment, the proxy makes the connections: rule 1 still
holds, rule 2 is then the proxy's job.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urljoin

from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from selfhosted.redaction import url_redact

DEFAULT_PORTS = {"http": 80, "https": 443}
# Cloud metadata services that are not in a link-local or private range.
METADATA_ADDRESSES = frozenset({ipaddress.ip_address("100.100.100.200")})


class Refused(Exception):
    """A redirect or a connection that the policy refuses (never retried).

    Not an OSError on purpose: urllib3 and requests would retry or wrap an OSError."""


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def origin_of(url: str) -> Origin:
    """The origin of an absolute http(s) URL, normalised; ValueError if it has none."""
    try:
        parts = parse_url(url)
    except LocationParseError as exc:
        raise ValueError(f"not a URL ({exc})") from None
    scheme = (parts.scheme or "").lower()
    if scheme not in DEFAULT_PORTS or not parts.host:
        raise ValueError("not an absolute http(s) URL")
    host = parts.host.lower().strip("[]").rstrip(".")
    return Origin(scheme, host, parts.port or DEFAULT_PORTS[scheme])


def _trusted_origins() -> set[Origin]:
    entries = [settings.TODESKTOP_DOWNLOAD_BASE_URL]
    entries += [entry for entry in settings.TODESKTOP_REDIRECT_HOSTS if "://" in entry]
    return {origin_of(entry) for entry in entries}


def _listed_host(host: str) -> bool:
    for entry in settings.TODESKTOP_REDIRECT_HOSTS:
        entry = entry.lower().rstrip(".")
        if "://" in entry:
            continue
        if entry.startswith("*.") and host.endswith(entry[1:]) and host != entry[2:]:
            return True
        if host == entry:
            return True
    return False


def origin_trusted(origin: Origin) -> bool:
    return origin in _trusted_origins()


def redirect_target(*, current: str, location: str | None) -> str:
    """The URL to follow for a redirect from `current` to `location`, or `Refused`.

    The URL returned is rebuilt from the parsed parts that were checked (no userinfo, no
    fragment), so the request goes exactly where the check looked."""
    if not location:
        raise Refused("redirect without a Location")
    if any(ch in location for ch in "\\\r\n\t ") or not location.isprintable():
        raise Refused(f"redirect to an ill-formed location {url_redact(location)[:200]!r}")
    target = urljoin(current, location)
    shown = url_redact(target, keep_query=False)[:300]
    try:
        parts = parse_url(target)
        origin = origin_of(target)
        given_credentials = parse_url(location).auth
    except (ValueError, LocationParseError) as exc:
        raise Refused(f"redirect to {shown} refused: {exc}") from None
    if given_credentials:
        raise Refused(f"redirect to {shown} refused: the location carries credentials")
    listed = origin.scheme == "https" and origin.port == 443 and _listed_host(origin.host)
    if not (origin_trusted(origin) or listed):
        raise Refused(
            f"redirect to {shown} refused: {origin} is not the download host's origin "
            "and not in TODESKTOP_REDIRECT_HOSTS"
        )
    # The base URL's own credentials (a mirror behind basic auth) go to its origin only.
    base = parse_url(settings.TODESKTOP_DOWNLOAD_BASE_URL)
    auth = f"{base.auth}@" if base.auth and origin == origin_of(str(base)) else ""
    host = f"[{origin.host}]" if ":" in origin.host else origin.host
    return f"{origin.scheme}://{auth}{host}:{origin.port}{parts.request_uri}"


def address_refusal(address: str) -> str | None:
    """Why a connection to `address` is refused (loopback, private, …), or None if public."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local (cloud metadata)", ip.is_link_local),
        ("private", ip.is_private),
        ("multicast", ip.is_multicast),
        ("cloud metadata", ip in METADATA_ADDRESSES),
        ("not a public address", not ip.is_global),
    )
    return next((reason for reason, hit in checks if hit), None)


def _public_addresses(host: str, port: int) -> list[str]:
    """Resolve `host`; every address must be public, or the connection is refused."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise  # urllib3 reports it as a name resolution error (retried as transient)
    addresses = list(dict.fromkeys(info[4][0] for info in found))
    for address in addresses:
        reason = address_refusal(address)
        if reason:
            raise Refused(f"{host} resolves to {address} ({reason}); not connecting")
    return addresses


class _CheckedConnectionMixin:
    """Connect to an address checked by `_public_addresses`, unless the origin is trusted."""

    scheme = "http"

    def _new_conn(self):
        origin = Origin(self.scheme, self.host.lower().strip("[]").rstrip("."), self.port)
        if origin_trusted(origin):
            return super()._new_conn()
        addresses = _public_addresses(self._dns_host, self.port)
        name = self._dns_host
        try:
            self._dns_host = addresses[0]  # connect to the very address that was checked
            return super()._new_conn()
        finally:
            self._dns_host = name


class _CheckedHTTPConnection(_CheckedConnectionMixin, HTTPConnection):
    scheme = "http"


class _CheckedHTTPSConnection(_CheckedConnectionMixin, HTTPSConnection):
    scheme = "https"


class _CheckedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _CheckedHTTPConnection


class _CheckedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _CheckedHTTPSConnection


class CheckedAdapter(HTTPAdapter):
    """requests' adapter whose connections follow rule 2 (mount it on a Session)."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _CheckedHTTPPool,
            "https": _CheckedHTTPSPool,
        }

"""Credentials in URLs never reach logs, the audit trail, the database or a page.

Operators put credentials in URLs (`postgres://user:password@…`, a mirror behind basic auth in
`TODESKTOP_DOWNLOAD_BASE_URL`, `https://key:secret@minio…`), and libraries quote those URLs in
their error messages. Every place that shows or stores a URL or an error text goes through
these helpers; the log formatter applies them to every log line as a last line of defence.

A userinfo with a password keeps its user name (it helps to tell accounts apart) and loses the
password; a userinfo without a password is removed whole, since a lone "user" is often a token
(`https://ghp_…@github.com`).
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit, urlunsplit

MASK = "***"

# `scheme:` (also a mistyped `scheme:/`) then an authority with userinfo. The password part is
# greedy up to the last `@` before a space or quote: a password may itself contain `@`.
_WITH_PASSWORD = re.compile(r"(?P<before>[A-Za-z][A-Za-z0-9+.-]*:/*[^/@\s:'\"]*:)[^\s'\"]*@")
_USER_ONLY = re.compile(r"(?P<before>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s:'\"]+@")


def text_redact(text: str) -> str:
    """`text` with the credentials of every URL in it masked."""
    text = _WITH_PASSWORD.sub(rf"\g<before>{MASK}@", text)
    return _USER_ONLY.sub(rf"\g<before>{MASK}@", text)


def url_redact(url: str, *, keep_query: bool = True) -> str:
    """One URL fit to show or store: credentials masked; the query (which may carry a signed
    token, e.g. a CDN's presigned link) replaced by `?…` when `keep_query` is False."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return text_redact(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{hostport}" if has_password else f"{MASK}@{hostport}"
    query = parts.query if keep_query or not parts.query else "…"
    return text_redact(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))


class RedactingFormatter(logging.Formatter):
    """Formats a record (message, arguments and traceback), then masks URL credentials."""

    def format(self, record: logging.LogRecord) -> str:
        return text_redact(super().format(record))

"""`/healthz`: is everything this process depends on working?

Each check does what the real work does, and never repairs anything: the broker check
publishes a message to a `healthz` queue and purges it (a read-only or missing SQLite broker
file fails here exactly as an enqueue would, and the file is never created), the bucket checks
look without creating (a vanished bucket directory is a failure, not a new empty bucket).

Anyone may ask (load balancers, container health checks): the anonymous answer says which
component is ok, and the `degraded` notices (written to be public). Why a check failed — an
exception's text names hosts, paths and buckets — is shown to staff users and to
`Authorization: Bearer <METRICS_TOKEN>`, with URL credentials masked.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, wait

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_safe
from kombu import Exchange, Queue

from cdn.metadata import metadata_health
from releases.integrations import buckets
from releases.services.cdn_purge import cdn_purge_health
from releases.services.notifications import notifications_health
from releases.services.promotion.verdict import verdict_health
from selfhosted.broker import embedded_broker_file
from selfhosted.celery import app
from selfhosted.metrics import metrics_token_given
from selfhosted.redaction import text_redact

CHECK_TIMEOUT_SECONDS = 5.0
# The broker's own network timeouts, well inside the check's: a server that accepts the
# connection and never answers fails the check instead of holding its thread.
BROKER_SOCKET_TIMEOUT_SECONDS = 3.0
ON_REQUEST_THREAD = ("database", "desired_state", "cdn_purge", "notifications")
HEALTH_QUEUE = "healthz"
# Each database check's own limit on PostgreSQL (a query waiting behind a migration's lock, a
# server that stopped answering mid-query): a failed check, never a request that hangs.
DATABASE_STATEMENT_TIMEOUT_MS = 2000
# At most one run of each check at a time: a check still running (wedged) from an earlier
# request is waited on again rather than started once more, so a dependency that never answers
# holds one thread, never all of them, and never delays the other checks.
_running: dict[str, Future] = {}
_running_lock = threading.Lock()


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _broker() -> None:
    # The URL from settings (not the app's cached conf) so the check follows the live configuration.
    url = settings.CELERY_BROKER_URL
    _broker_file_check(url)
    queue = Queue(HEALTH_QUEUE, Exchange(HEALTH_QUEUE, type="direct"), routing_key=HEALTH_QUEUE)
    timeouts = {}
    if url.startswith(("redis", "rediss")):
        timeouts = {
            "socket_timeout": BROKER_SOCKET_TIMEOUT_SECONDS,
            "socket_connect_timeout": BROKER_SOCKET_TIMEOUT_SECONDS,
        }
    with app.connection_for_write(
        url, connect_timeout=BROKER_SOCKET_TIMEOUT_SECONDS, transport_options=timeouts
    ) as conn:
        conn.ensure_connection(
            max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_SOCKET_TIMEOUT_SECONDS
        )
        conn.Producer(serializer="json").publish(
            {"healthz": time.time()},
            exchange=queue.exchange,
            routing_key=HEALTH_QUEUE,
            declare=[queue],
            retry=False,
        )
        queue(conn.default_channel).purge()


def _broker_file_check(url: str) -> None:
    """The embedded broker is a SQLite file: connecting would create a missing one (empty, so
    the worker would never see what the web process queues there)."""
    path = embedded_broker_file(url)
    if path is not None and not path.is_file():
        raise RuntimeError(f"the broker database file {path} is missing")


def _bucket(getter: Callable) -> Callable[[], None]:
    def check() -> None:
        getter().check()

    return check


def checks() -> dict[str, Callable[[], str | None]]:
    """Each check raises when what it checks is down (503), or returns a notice when it works
    but not as wanted (`degraded`, still 200: production keeps serving)."""
    return {
        "database": _database,
        "broker": _broker,
        "staging_bucket": _bucket(buckets.staging),
        "production_bucket": _bucket(buckets.production),
        # production's desktop-builds.json / desktop-releases.json missing or corrupt (docs/feed.md)
        "feed_metadata": metadata_health,
        # production kept its last good state: the desired state is invalid (audit has why)
        "desired_state": verdict_health,
        # the latest CDN purge failed or is being retried: a CDN may serve old manifests
        "cdn_purge": cdn_purge_health,
        # a notification channel's latest delivery failed: people may not have been told
        "notifications": notifications_health,
    }


def _run(check: Callable[[], str | None]) -> dict:
    started = time.monotonic()
    try:
        notice = check()
    except Exception as exc:  # a health check reports every failure, it never raises
        return {"ok": False, "error": text_redact(f"{type(exc).__name__}: {exc}")[:300]}
    result = {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}
    if notice:
        result["degraded"] = text_redact(notice)[:300]
    return result


def _started(name: str, check: Callable[[], str | None]) -> Future:
    """A run of `check`: the one still going since an earlier request, or a new one on its own
    (daemon) thread."""
    with _running_lock:
        running = _running.get(name)
        if running is not None and not running.done():
            return running
        future: Future = Future()
        _running[name] = future

    def run() -> None:
        future.set_result(_run(check))

    threading.Thread(target=run, name=f"healthz-{name}", daemon=True).start()
    return future


def _details_allowed(request: HttpRequest) -> bool:
    if metrics_token_given(request, required=True):
        return True
    try:
        user = request.user  # a session lookup: the database may be the thing that is down
        return bool(user.is_active and user.is_staff)
    except Exception:
        return False


def _anonymous(result: dict) -> dict:
    """What anyone may see of a check: whether it works, and its `degraded` notice (notices are
    written for anyone: no error texts, ids or configuration; exception texts are not)."""
    return {key: value for key, value in result.items() if key in ("ok", "degraded")}


def _bounded(check: Callable[[], str | None]) -> Callable[[], str | None]:
    """`check` with its queries under DATABASE_STATEMENT_TIMEOUT_MS on PostgreSQL, in a
    transaction of its own (SET LOCAL ends with it; a timed-out query rolls back only that).
    SQLite's readers never wait (WAL), and a transaction there would take the write lock."""

    def bounded() -> str | None:
        if connection.vendor != "postgresql":
            return check()
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL statement_timeout = {DATABASE_STATEMENT_TIMEOUT_MS}")
            return check()

    return bounded


@require_safe
def healthz(request):
    results = {}
    everything = checks()
    # Checks that query the database run on this thread: Django connections are per thread.
    for name in ON_REQUEST_THREAD:
        if name != "database" and not results["database"]["ok"]:
            # Each would wait out the connect timeout again on a server that is not answering.
            results[name] = {"ok": False, "error": "not checked: the database check failed"}
            continue
        results[name] = _run(_bounded(everything[name]))
    futures = {
        name: _started(name, fn) for name, fn in everything.items() if name not in ON_REQUEST_THREAD
    }
    wait(futures.values(), timeout=CHECK_TIMEOUT_SECONDS)  # one deadline for them all
    for name, future in futures.items():
        if future.done():
            results[name] = future.result()
        else:
            results[name] = {"ok": False, "error": f"no answer within {CHECK_TIMEOUT_SECONDS}s"}
    healthy = all(result["ok"] for result in results.values())
    degraded = any(result.get("degraded") for result in results.values())
    status = "unavailable" if not healthy else "degraded" if degraded else "ok"
    if not _details_allowed(request):
        results = {name: _anonymous(result) for name, result in results.items()}
    body = {"status": status, "checks": results}
    response = JsonResponse(body, status=200 if healthy else 503)
    response["Cache-Control"] = "no-store"
    return response

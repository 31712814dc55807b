"""`/healthz`: is everything this process depends on reachable?"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_safe

CHECK_TIMEOUT_SECONDS = 5.0
ON_REQUEST_THREAD = ("database", "desired_state", "cdn_purge", "notifications")
_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="healthz")


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _broker() -> None:
    from selfhosted.celery import app

    # The URL from settings (not the app's cached conf) so the check follows the live configuration.
    with app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=3)


def _bucket(getter: Callable) -> Callable[[], None]:
    def check() -> None:
        getter().check()

    return check


def checks() -> dict[str, Callable[[], str | None]]:
    """Each check raises when what it checks is down (503), or returns a notice when it works
    but not as wanted (`degraded`, still 200: production keeps serving)."""
    from cdn.metadata import metadata_health
    from releases import buckets
    from releases.services.cdn_purge import cdn_purge_health
    from releases.services.notifications import notifications_health
    from releases.services.promotion.verdict import verdict_health

    return {
        "database": _database,
        "broker": _broker,
        "staging_bucket": _bucket(buckets.staging),
        "production_bucket": _bucket(buckets.production),
        # production's desktop-builds.json / desktop-releases.json missing or corrupt (SPEC §8)
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
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    result = {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}
    if notice:
        result["degraded"] = notice[:300]
    return result


@require_safe
def healthz(request):
    results = {}
    everything = checks()
    # Checks that query the database run on this thread: Django connections are per thread.
    for name in ON_REQUEST_THREAD:
        results[name] = _run(everything[name])
    futures = {
        name: _pool.submit(_run, fn)
        for name, fn in everything.items()
        if name not in ON_REQUEST_THREAD
    }
    for name, future in futures.items():
        try:
            results[name] = future.result(timeout=CHECK_TIMEOUT_SECONDS)
        except FutureTimeout:
            results[name] = {"ok": False, "error": f"no answer within {CHECK_TIMEOUT_SECONDS}s"}
    healthy = all(result["ok"] for result in results.values())
    degraded = any(result.get("degraded") for result in results.values())
    status = "unavailable" if not healthy else "degraded" if degraded else "ok"
    body = {"status": status, "checks": results}
    response = JsonResponse(body, status=200 if healthy else 503)
    response["Cache-Control"] = "no-store"
    return response

"""`/metrics`: Prometheus gauges computed at scrape time from the database and the broker.

Open when `METRICS_TOKEN` is unset (keep it on an internal network then); otherwise it needs
`Authorization: Bearer <METRICS_TOKEN>`.
"""

from __future__ import annotations

import hmac

import redis
from django.conf import settings
from django.db.models import Count
from django.http import HttpResponse
from django.views.decorators.http import require_safe
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from adoption.services import adoption_totals
from releases.models import AuditEvent, Build, BuildStatus, ReleaseRequest, ReleaseState


def _queue_lengths() -> dict[str, int]:
    """Messages waiting per queue (Redis brokers only; other brokers report nothing)."""
    if not settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        return {}
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=2)
    try:
        return {
            name: int(client.llen(name)) for name in ("staging", "promotion", "notify", "default")
        }
    except redis.RedisError:
        return {}
    finally:
        client.close()


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    builds = Gauge("releases_builds", "Builds by status", ["status"], registry=registry)
    counts = dict(Build.objects.values_list("status").annotate(n=Count("id")))
    for status in BuildStatus.values:
        builds.labels(status).set(counts.get(status, 0))
    requests = Gauge("releases_requests", "Release requests by state", ["state"], registry=registry)
    counts = dict(ReleaseRequest.objects.values_list("state").annotate(n=Count("id")))
    for state in ReleaseState.values:
        requests.labels(state).set(counts.get(state, 0))
    last = AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True).first()
    Gauge("releases_audit_events", "Audit events recorded", registry=registry).set(last or 0)
    queued = Gauge("releases_queue_length", "Tasks waiting per queue", ["queue"], registry=registry)
    for name, length in _queue_lengths().items():
        queued.labels(name).set(length)
    registry.register(_AdoptionCounters())
    return registry


class _AdoptionCounters:
    """The adoption counts (README: Adoption) as counters: totals since the install, flushed
    by every web process, so one scrape of any replica sees all of them."""

    HELP = {
        "poll": "Channel manifests served to the updater",
        "full_download": "Files served whole by the feed",
        "differential_download": "Ranged requests for files (differential updates)",
        "link_hit": "Download links that served or described a file",
    }

    def collect(self):
        totals = adoption_totals()
        for metric, description in self.HELP.items():
            family = CounterMetricFamily(f"adoption_{metric}s", description, labels=["platform"])
            for (kind, platform), total in sorted(totals.items()):
                if kind == metric:
                    family.add_metric([platform or "unknown"], total)
            yield family


def metrics_token_given(request, *, required: bool = False) -> bool:
    """Whether the request carries `Authorization: Bearer <METRICS_TOKEN>`. With no token
    configured: True (metrics are open then), or False when `required`."""
    token = settings.METRICS_TOKEN
    if not token:
        return not required
    given = request.headers.get("Authorization", "")
    return hmac.compare_digest(given.encode("utf-8", "replace"), f"Bearer {token}".encode())


@require_safe
def metrics(request):
    if not metrics_token_given(request):
        return HttpResponse("metrics need a bearer token\n", status=401, content_type="text/plain")
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)

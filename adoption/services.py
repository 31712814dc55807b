"""Adoption data: flushing batches, the rotating secret, and reading the numbers back."""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from datasketches import hll_sketch, hll_union
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum

from adoption.batch import LG_K, Batch
from adoption.models import AdoptionCount, AdoptionSecret, AdoptionSketch
from releases.models import BuildFile

logger = logging.getLogger(__name__)

DAY_SECONDS = 86400


# --- The secret staging ids are hashed with --------------------------------------------------


def secret_period(now: float) -> int:
    return int(now // DAY_SECONDS) // settings.ADOPTION_SECRET_ROTATION_DAYS


def secret_period_end(period: int) -> float:
    return float((period + 1) * settings.ADOPTION_SECRET_ROTATION_DAYS * DAY_SECONDS)


def secret_for(period: int) -> bytes:
    """The period's key, shared by every process through the database. Older keys are deleted:
    after a rotation nobody, not even the database's owner, can link a sketch to an id."""
    row, _ = AdoptionSecret.objects.get_or_create(
        period=period, defaults={"secret": os.urandom(32)}
    )
    AdoptionSecret.objects.filter(period__lt=period).delete()
    return bytes(row.secret)


# --- Flushing a batch --------------------------------------------------------------------------


def _when(hour: int) -> datetime:
    return datetime.fromtimestamp(hour, tz=UTC)


def _builds_of(names: set[str]) -> dict[str, str]:
    """File name → the build that owns it (production names are unique to one build)."""
    rows = BuildFile.objects.filter(name__in=names).values_list("name", "build__build_id")
    return dict(rows)


def adoption_flush(*, batch: Batch) -> None:
    """Add one process's counts and sketches to the database (safe across replicas).

    One transaction: a reader never sees a batch's polls without its installs, and a failed
    flush leaves nothing half-written. Rows are written in key order, so two replicas flushing
    the same hours lock them in the same order and never deadlock."""
    files = {key[4] for key in batch.counts if key[3] in ("full_download", "differential_download")}
    owners = _builds_of(files) if files else {}
    rows = defaultdict(int)
    for (hour, platform, build, metric, name), count in batch.counts.items():
        if metric in ("full_download", "differential_download"):
            build = owners.get(name, "")
        rows[(hour, platform, build, metric, name)] += count
    with transaction.atomic():
        _add_counts(rows)
        for (hour, platform, build), sketch in sorted(batch.sketches.items(), key=_by_key):
            _merge_sketch(_when(hour), platform, build, sketch)


def _by_key(item: tuple) -> tuple:
    return item[0]


def _add_counts(rows: dict[tuple[int, str, str, str, str], int]) -> None:
    table = AdoptionCount._meta.db_table
    # One statement per row, additive: two replicas flushing the same hour both count.
    sql = (
        f"INSERT INTO {table} (hour, platform, build_id, metric, name, count) "
        "VALUES (%s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (hour, platform, build_id, metric, name) "
        f"DO UPDATE SET count = {table}.count + excluded.count"
    )
    adapt = connection.ops.adapt_datetimefield_value
    params = [
        (adapt(_when(hour)), platform[:16], build[:64], metric, name[:255], count)
        for (hour, platform, build, metric, name), count in sorted(rows.items())
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(sql, params)


def _merge_sketch(hour: datetime, platform: str, build: str, sketch: hll_sketch) -> None:
    for _ in range(3):
        try:
            with transaction.atomic():
                row = (
                    AdoptionSketch.objects.select_for_update()
                    .filter(hour=hour, platform=platform, build_id=build)
                    .first()
                )
                if row is None:
                    data = sketch.serialize_compact()
                    AdoptionSketch.objects.create(
                        hour=hour, platform=platform, build_id=build, sketch=data
                    )
                    return
                union = hll_union(LG_K)
                try:
                    union.update(hll_sketch.deserialize(bytes(row.sketch)))
                except Exception:  # a row that no longer reads: the new sketch replaces it
                    logger.warning(
                        "adoption sketch %s/%s/%s unreadable; replaced", hour, platform, build
                    )
                union.update(sketch)
                row.sketch = union.get_result().serialize_compact()
                row.save(update_fields=["sketch"])
                return
        except IntegrityError:
            continue  # another replica created the row first: merge into it


# --- Reading ------------------------------------------------------------------------------------


def _floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def unique_installs(*, since: datetime, until: datetime, **filters) -> int:
    """Distinct installs in the window: the union of the hourly sketches."""
    union = hll_union(LG_K)
    found = False
    sketches = AdoptionSketch.objects.filter(hour__gte=_floor_hour(since), hour__lt=until)
    for data in sketches.filter(**filters).values_list("sketch", flat=True):
        union.update(hll_sketch.deserialize(bytes(data)))
        found = True
    return round(union.get_result().get_estimate()) if found else 0


def adoption_summary(*, build_id: str, since: datetime, until: datetime | None = None) -> dict:
    """The numbers `/api/adoption/` answers for one build and window (hours it overlaps)."""
    until = until or datetime.now(UTC)
    counts = AdoptionCount.objects.filter(
        build_id=build_id, hour__gte=_floor_hour(since), hour__lt=until
    )
    totals = dict(counts.values_list("metric").annotate(total=Sum("count")))
    return {
        "build": build_id,
        "since": _floor_hour(since).isoformat(),
        "until": until.isoformat(),
        "polls": totals.get("poll", 0),
        "unique_installs": unique_installs(since=since, until=until, build_id=build_id),
        "full_downloads": totals.get("full_download", 0),
        "differential_downloads": totals.get("differential_download", 0),
    }


def adoption_series(*, since: datetime, until: datetime | None = None) -> dict:
    """For the Adoption page: installs polling per hour, per build and platform; downloads per
    day and build; link hits per platform and artifact."""
    until = until or datetime.now(UTC)
    installs: dict[str, dict[str, float]] = defaultdict(dict)
    sketches = AdoptionSketch.objects.filter(hour__gte=_floor_hour(since), hour__lt=until)
    for hour, platform, build, data in sketches.values_list(
        "hour", "platform", "build_id", "sketch"
    ).order_by("hour"):
        estimate = hll_sketch.deserialize(bytes(data)).get_estimate()
        installs[f"{build} · {platform or 'any'}"][hour.isoformat()] = round(estimate)
    counts = AdoptionCount.objects.filter(hour__gte=_floor_hour(since), hour__lt=until)
    downloads: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for hour, build, metric, total in counts.filter(
        metric__in=("full_download", "differential_download")
    ).values_list("hour", "build_id", "metric", "count"):
        downloads[(hour.date().isoformat(), build or "(unknown)")][metric] += total
    links = counts.filter(metric="link_hit").values("platform", "name").annotate(hits=Sum("count"))
    return {
        "installs": {label: dict(points) for label, points in installs.items()},
        "downloads": [
            {"day": day, "build": build, **dict(values)}
            for (day, build), values in sorted(downloads.items(), reverse=True)
        ],
        "links": sorted(links, key=lambda row: -row["hits"]),
    }


def adoption_totals() -> dict[tuple[str, str], int]:
    """(metric, platform) → all-time count, for the Prometheus counters."""
    rows = AdoptionCount.objects.values_list("metric", "platform").annotate(total=Sum("count"))
    return {(metric, platform): total for metric, platform, total in rows}


def day_ago() -> datetime:
    return datetime.now(UTC) - timedelta(days=1)

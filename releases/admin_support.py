"""Helpers of the admin (releases/admin.py): a cheap paginator and readable hashes."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property

# Below this many rows an exact COUNT(*) is cheap and better than an estimate.
ESTIMATE_ABOVE = 10_000


class EstimatedCountPaginator(Paginator):
    """Pages of a large table without counting it: an unfiltered list takes PostgreSQL's
    row estimate (pg_class.reltuples, kept by autovacuum) instead of a COUNT(*) that reads
    every row; a filtered or searched list, and any other database, counts as usual."""

    @cached_property
    def count(self) -> int:
        estimate = self._estimate()
        if estimate is not None and estimate > ESTIMATE_ABOVE:
            return estimate
        return super().count

    def _estimate(self) -> int | None:
        queryset = self.object_list
        query = getattr(queryset, "query", None)
        if query is None or query.where or query.distinct:
            return None
        connection = connections[queryset.db]
        if connection.vendor != "postgresql":
            return None
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                [connection.ops.quote_name(queryset.model._meta.db_table)],
            )
            row = cursor.fetchone()
        return int(row[0]) if row else None

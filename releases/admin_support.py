"""Helpers of the admin (releases/admin.py): a cheap paginator and readable hashes."""

from __future__ import annotations

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join

# Below this many rows an exact COUNT(*) is cheap and better than an estimate.
ESTIMATE_ABOVE = 10_000


class EstimatedCountPaginator(Paginator):
    """Pages of a large table without counting it: an unfiltered list takes PostgreSQL's
    row estimate (pg_class.reltuples, kept by autovacuum) instead of a COUNT(*) that reads
    every row; a filtered or searched list, and any other database, counts as usual."""

    # Set for a list whose only condition is one the admin adds itself (the audit list's
    # folding of per-file staging lines): the table's estimate still stands for its size.
    unfiltered = False

    @cached_property
    def count(self) -> int:
        estimate = self._estimate()
        if estimate is not None and estimate > ESTIMATE_ABOVE:
            return estimate
        return super().count

    def _estimate(self) -> int | None:
        queryset = self.object_list
        query = getattr(queryset, "query", None)
        if query is None or (query.where and not self.unfiltered) or query.distinct:
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


# Hashes are long unbroken strings: without a break they push every later column off-screen.
HASH_STYLE = "font-family:monospace;font-size:11px;word-break:break-all;display:block;"
CELL_STYLE = "vertical-align:top;"


def hashes_html(**hashes: str) -> str:
    """`sha256 …` / `sha512 …` lines, monospace and wrapped, for comparing by eye."""
    shown = [(name, value) for name, value in hashes.items() if value]
    if not shown:
        return "-"
    return format_html_join(
        "", '<span style="{}"><b>{}</b> {}</span>', ((HASH_STYLE, n, v) for n, v in shown)
    )


def clipped_html(value: str, *, title: str = "", lines: int = 1, words: bool = False) -> str:
    """A long value cut to its column with an ellipsis (one line) or to `lines` lines; the whole
    value in the title (hover) and in the text that is copied. Cut lines fill up to the last
    character (ids, versions, file names); `words`: prose (a reason, an error, a comment) breaks
    between words, and only an unbroken part (a URL) anywhere. The lists' CSS:
    templates/admin/releases/includes/fit_list.css.html."""
    if not value:
        return "-"
    css = "clip" if lines == 1 else f"clamp clamp-{lines}{'' if words else ' cut'}"
    return format_html('<span class="{}" title="{}">{}</span>', css, title or value, value)


def clipped_column(
    field: str, description: str, *, ordering: bool = True, lines: int = 1, words: bool = False
):
    """A list column showing `obj.<field>` through clipped_html (sortable by the field unless
    `ordering` is false): `username_label = clipped_column("username", "username")`."""

    @admin.display(description=description, ordering=field if ordering else None)
    def column(self, obj):
        return clipped_html(getattr(obj, field), lines=lines, words=words)

    return column


def build_ref_html(build) -> str:
    """A build in a list's column: its id, cut to one line, linking to the build's page."""
    if build is None:
        return "-"
    return format_html('<a href="{}">{}</a>', build.get_admin_url(), clipped_html(build.build_id))


def moment_html(moment) -> str:
    """`2026-12-02 05:50` for a list column (the date and the time may wrap apart), the ISO 8601
    time to the second with its offset in the title."""
    if moment is None:
        return "-"
    local = timezone.localtime(moment)
    iso = local.isoformat(timespec="seconds")
    return format_html(
        '<time datetime="{}" title="{}">{} {}</time>',
        iso,
        iso,
        local.strftime("%Y-%m-%d"),
        local.strftime("%H:%M"),
    )


class FitListColumns:
    """Columns the lists share, narrow enough that every column stays on screen at
    1440 px (README: The review console); the detail page shows each value whole."""

    @admin.display(description="created", ordering="created_at")
    def created(self, obj):
        return moment_html(obj.created_at)

    @admin.display(description="live", ordering="live_at")
    def live(self, obj):
        return moment_html(obj.live_at)

    @admin.display(description="status", ordering="status")
    def outcome(self, obj):
        """A delivery's status with its attempts under it (notifications, CDN purges)."""
        return format_html(
            '{}<br><span class="quiet">{} attempt{}</span>',
            obj.get_status_display(),
            obj.attempts,
            "" if obj.attempts == 1 else "s",
        )


def admin_url(model: str, pk) -> str:
    return reverse(f"admin:releases_{model}_change", args=[pk])


def _when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "-"


def _event_row(event) -> tuple:
    what = format_html("{}", event.message)
    if event.url:
        what = format_html('{} <a href="{}" rel="noreferrer">↗ link</a>', what, event.url)
    release = "-"
    if event.release_id:
        release = format_html(
            '<a href="{}">#{}</a>', admin_url("releaserequest", event.release_id), event.release_id
        )
    return (
        admin_url("auditevent", event.pk),
        event.sequence,
        _when(event.created_at),
        event.kind,
        event.actor or "-",
        release,
        what,
    )


def events_table(events) -> str:
    """The timeline: every event with its time, actor, release and full message."""
    rows = [_event_row(event) for event in events]
    if not rows:
        return "-"
    body = format_html_join(
        "",
        '<tr><td><a href="{}">#{}</a></td><td style="white-space:nowrap">{}</td><td>{}</td>'
        '<td>{}</td><td>{}</td><td style="overflow-wrap:anywhere">{}</td></tr>',
        rows,
    )
    return format_html(
        '<table style="width:100%;table-layout:auto"><tr><th>#</th><th>time</th><th>event</th>'
        "<th>actor</th><th>release</th><th>what</th></tr>{}</table>",
        body,
    )


def reviews_table(*, approvals, review_events) -> str:
    """Every review of a build's or release's requests: admin approvals and GitHub reviews."""
    rows = [
        (
            _when(a.created_at),
            admin_url("releaserequest", a.release_id),
            a.release_id,
            a.user.get_username(),
            "approved" if a.approved else "rejected",
            format_html('<a href="{}">in the admin</a>', admin_url("approval", a.pk)),
            a.comment or "",
        )
        for a in approvals
    ] + [
        (
            _when(e.created_at),
            admin_url("releaserequest", e.release_id),
            e.release_id,
            e.actor or "-",
            e.kind.removeprefix("github.review_").replace("_", " "),
            format_html('<a href="{}" rel="noreferrer">on GitHub</a>', e.url) if e.url else "-",
            (e.data or {}).get("body", ""),
        )
        for e in review_events
    ]
    if not rows:
        return "no reviews yet"
    rows.sort(key=lambda row: row[0])
    body = format_html_join(
        "",
        '<tr><td style="white-space:nowrap">{}</td><td><a href="{}">#{}</a></td><td>{}</td>'
        '<td><b>{}</b></td><td>{}</td><td style="overflow-wrap:anywhere">{}</td></tr>',
        rows,
    )
    return format_html(
        "<table><tr><th>time</th><th>release</th><th>reviewer</th><th>verdict</th>"
        "<th>where</th><th>comment</th></tr>{}</table>",
        body,
    )


class ReadOnlyAdmin(admin.ModelAdmin):
    """Nobody, superusers included, adds, edits or deletes these rows through the admin."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

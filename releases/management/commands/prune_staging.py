"""`manage.py prune_staging [--dry-run]`: apply staging's retention now (README, Operations)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from releases.management.commands.reconcile import _user
from releases.services.retention import staging_prune


class Command(BaseCommand):
    help = (
        "Remove from the staging bucket what retention allows: unfinished uploads and temp "
        "files older than a day, and the staged files of rejected, failed, closed and long "
        "superseded live builds (STAGING_RETENTION_DAYS, STAGING_KEEP_LIVE_BUILDS). Never "
        "touches production. --dry-run lists exactly what a run would remove."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="list only; remove nothing")

    def handle(self, *args, dry_run: bool = False, **options):
        actor = f"{_user()} (manage.py prune_staging)"
        try:
            result = staging_prune(actor=actor, dry_run=dry_run)
        except Exception as exc:  # a bucket or database failure: one line, non-zero exit
            raise CommandError(f"prune_staging failed: {type(exc).__name__}: {exc}") from exc
        for note in result.notes:
            self.stderr.write(note)
        for line in result.describe():
            self.stdout.write(line)
        count = len(result.describe())
        summary = f"{count} removal(s), {result.bytes} bytes of staged build files"
        if dry_run:
            self.stdout.write(f"dry run: {summary} listed; nothing was removed")
        else:
            self.stdout.write(self.style.SUCCESS(f"removed: {summary}"))

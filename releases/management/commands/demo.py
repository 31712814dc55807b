"""`manage.py demo`: the whole release flow on this install, without any external account
(docs/cli.md)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from releases.demo.run import DemoFailed, DemoResult, demo_run
from releases.integrations import buckets
from releases.management.progress import StagingProgress
from releases.services.manual import ManualStageError


class Command(BaseCommand):
    help = (
        "Show the whole flow with a demo build: a fake ToDesktop serves it, it is staged and "
        "verified, approved in the admin, promoted to production, then the update feed and a "
        "download link are fetched. Uses this install's database and buckets (as `make run`)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--size-kb", type=int, default=4096, help="size of each demo installer (KiB)"
        )
        parser.add_argument("--quiet", action="store_true", help="no progress bars")

    def handle(self, *args, size_kb: int, quiet: bool, verbosity: int = 1, **options):
        if size_kb < 1:
            raise CommandError("--size-kb must be 1 or more")
        self.stdout.write(f"Demo on {settings.DATABASES['default']['NAME']}, {_buckets()}.")
        call_command("migrate", interactive=False, verbosity=0)
        progress = StagingProgress(stream=self.stdout._out, quiet=quiet, indent="   ")
        try:
            with _narrating(verbose=verbosity > 1):
                result = demo_run(say=self.stdout.write, observer=progress, size=size_kb * 1024)
        except (DemoFailed, ManualStageError) as exc:
            raise CommandError(f"demo failed: {' '.join(str(exc).split())}") from exc
        finally:
            progress.close()
        for line in _summary(result):
            self.stdout.write(line)


@contextlib.contextmanager
def _narrating(*, verbose: bool) -> Iterator[None]:
    """The demo tells the story itself: the services' INFO log lines only with -v 2."""
    if verbose:
        yield
        return
    logging.disable(logging.INFO)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def _buckets() -> str:
    return f"staging {buckets.staging().location}, production {buckets.production().location}"


def _summary(result: DemoResult) -> list[str]:
    base = settings.PUBLIC_BASE_URL if result.temporary else result.server
    lines = ["", f"Build {result.build_id} (v{result.version}) is live."]
    if result.temporary:
        lines.append("Start `make run` and open (the demo's temporary server has stopped):")
    lines += [
        f"  update feed    {base}/update/latest.yml",
        f"  download link  {base}/download/mac",
        f"  admin          {settings.PUBLIC_BASE_URL}/admin/releases/build/"
        "  (files, hashes, audit trail)",
        "Next: `python manage.py audit_verify` checks the audit chain; "
        "`python manage.py stage <buildId>` stages a real build once TODESKTOP_APP_ID is set.",
    ]
    return lines

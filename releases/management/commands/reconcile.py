"""`manage.py reconcile [--dry-run]`: bring production to the desired state now (docs/promotion.md,
docs/cli.md)."""

from __future__ import annotations

import getpass

from django.core.management.base import BaseCommand, CommandError

from releases.services.promotion import PromotionFailed
from releases.services.reconcile import reconcile_run


class Command(BaseCommand):
    help = (
        "Compare the desired state (default branch, or approved releases) with production and "
        "repair any drift; --dry-run prints the plan and changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="print the plan only")

    def handle(self, *args, dry_run: bool = False, **options):
        actor = f"{_user()} (manage.py reconcile)"
        try:
            result = reconcile_run(actor=actor, dry_run=dry_run)
        except PromotionFailed as exc:
            if exc.result is not None:  # the other builds were promoted: say what was done
                self._report(exc.result, dry_run=False)
            raise CommandError(f"reconcile failed: {exc}") from exc
        if result.in_sync:
            self.stdout.write(self.style.SUCCESS("in sync"))
            return
        self._report(result, dry_run=dry_run)

    def _report(self, result, *, dry_run: bool) -> None:
        for line in result.plan.describe():
            would = dry_run and line.startswith(("copy ", "write "))
            self.stdout.write(("would " if would else "") + line)
        if not dry_run:
            self.stdout.write(
                self.style.SUCCESS(
                    f"repaired: {len(result.copied)} file(s) copied, "
                    f"{len(result.written)} control file(s) written"
                )
            )


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"

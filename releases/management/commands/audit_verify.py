from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from releases.services.audit import audit_verify


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain; exits non-zero and names each broken row."

    def handle(self, *args, **options):
        report = audit_verify()
        for problem in report.problems:
            self.stderr.write(problem)
        if not report.ok:
            raise CommandError(
                f"audit chain broken: {len(report.problems)} problem(s) in {report.checked} events"
            )
        self.stdout.write(self.style.SUCCESS(f"audit chain intact: {report.checked} events"))

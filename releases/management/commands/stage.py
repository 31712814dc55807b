"""`manage.py stage <buildId> [--mac] [--linux] [--windows]`: stage a build by hand (docs/cli.md).

The original's `release-new-version` tool: fetch a build from ToDesktop, verify it, then open
its review — here into the staging bucket through the same staging service the webhook uses.
"""

from __future__ import annotations

import getpass
import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from releases.management.progress import StagingProgress
from releases.models import ReleaseState
from releases.services.manual import PLATFORMS, ManualStage, ManualStageError, manual_stage


class Command(BaseCommand):
    help = (
        "Stage a ToDesktop build by id from TODESKTOP_DOWNLOAD_BASE_URL, verify every file, "
        "then open its review. Without --mac/--linux/--windows all three platforms are staged."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        # `--version X` is the app version (as in the webhook), not Django's version flag.
        kwargs.setdefault("conflict_handler", "resolve")
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("build_id", metavar="buildId", help="the ToDesktop build id")
        for platform in PLATFORMS:
            parser.add_argument(
                f"--{platform}", action="store_true", help=f"stage the {platform} files"
            )
        parser.add_argument(
            "--version",
            dest="app_version",
            default="",
            metavar="X",
            help="the app version; refused when the manifests give another",
        )
        parser.add_argument(
            "--release-info",
            default=None,
            metavar="JSON",
            help='releaseInfo as in the webhook, e.g. \'{"latestReleaseBuildId": "<id>"}\'',
        )
        parser.add_argument("--no-review", action="store_true", help="stage only")
        parser.add_argument("--app-id", default="", help="default: TODESKTOP_APP_ID")
        parser.add_argument("--quiet", action="store_true", help="no progress output")

    def handle(self, *args, build_id: str, **options):
        platforms = [p for p in PLATFORMS if options[p]] or None
        progress = StagingProgress(stream=self.stdout._out, quiet=options["quiet"])
        try:
            staged = manual_stage(
                build_id=build_id,
                actor=f"{os_user()} (manage.py stage)",
                app_id=options["app_id"],
                platforms=platforms,
                version=options["app_version"],
                release_info=_release_info(options["release_info"]),
                open_review=not options["no_review"],
                observer=progress,
            )
        except ManualStageError as exc:
            raise CommandError(" ".join(str(exc).split())) from exc
        finally:
            progress.close()
        for line in summary(staged):
            self.stdout.write(line)


def _release_info(text: str | None) -> dict | None:
    if text is None:
        return None
    try:
        info = json.loads(text)
    except ValueError as exc:
        raise CommandError(f"--release-info is not JSON: {exc}") from exc
    if not isinstance(info, dict):
        raise CommandError("--release-info must be a JSON object")
    return info


def summary(staged: ManualStage) -> list[str]:
    """What happened, for a person: the build, its files, and where its review is."""
    build, release = staged.build, staged.release
    admin = settings.PUBLIC_BASE_URL + reverse(
        "admin:releases_releaserequest_change", args=[release.pk]
    )
    lines = [
        f"staged build {build.build_id} (v{build.version}) for {', '.join(staged.platforms)}: "
        f"{staged.files} files, {staged.verified} verified against the manifests"
    ]
    if release.state == ReleaseState.AWAITING_REVIEW:
        lines.append(f"review not opened (--no-review); open it from the admin: {admin}")
    elif release.pr_url:
        lines.append(f"review: pull request #{release.pr_number} {release.pr_url}")
    else:
        lines.append(f"review: approve it in the admin: {admin}")
    return lines


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"

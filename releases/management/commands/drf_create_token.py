"""`manage.py drf_create_token <username> [-r]`: DRF's command of that name, printing the secret.

DRF's own prints `token.key`, which holds only the key's digest here (README: Security model).
Django runs the command of the app listed first in INSTALLED_APPS, so `releases` comes before
`rest_framework.authtoken` there. A user who has a token keeps it unless `-r` replaces it: its
key cannot be shown again.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from releases.services.api_tokens import TokenChanged, api_token_issue


class Command(BaseCommand):
    help = "Create a user's API token and print its key, once (-r replaces their token)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "-r",
            "--reset",
            action="store_true",
            dest="reset_token",
            help="Replace the user's token: the old key stops working",
        )

    def handle(self, *args, username: str, reset_token: bool, **options):
        User = get_user_model()
        try:
            user = User._default_manager.get_by_natural_key(username)
        except User.DoesNotExist:
            raise CommandError(f"Cannot create the Token: user {username} does not exist") from None
        try:
            secret = api_token_issue(user=user, replace=reset_token)
        except TokenChanged:
            raise CommandError(
                f"user {username} already has an API token; its key cannot be shown again "
                "(only its digest is stored): replace it with -r"
            ) from None
        self.stdout.write(f"Generated token {secret} for user {username}")

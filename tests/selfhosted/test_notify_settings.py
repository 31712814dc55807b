"""The notification and CDN purge settings: a wrong or missing value stops start-up with one line
naming the variable, and a secret in it is never printed."""

from __future__ import annotations

import pytest

from tests.selfhosted.test_settings import start

CLOUDFLARE = {"CDN_PURGE_BACKEND": "cloudflare", "CDN_PUBLIC_BASE_URLS": "https://u.example.com"}


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"NOTIFY_WEBHOOK_URL": "https://hooks.example.com/r"}, "NOTIFY_WEBHOOK_SECRET"),
        (
            {"NOTIFY_WEBHOOK_URL": "hooks.example.com/r", "NOTIFY_WEBHOOK_SECRET": "s"},
            "NOTIFY_WEBHOOK_URL",
        ),
        ({"NOTIFY_SLACK_WEBHOOK_URL": "ftp://hooks.slack.com/x"}, "NOTIFY_SLACK_WEBHOOK_URL"),
        ({"EMAIL_URL": "carrier-pigeon://coop"}, "EMAIL_URL"),
        ({"CDN_PURGE_BACKEND": "fastly"}, "CDN_PURGE_BACKEND"),
        (
            {"CDN_PURGE_BACKEND": "http", "CDN_PURGE_HTTP_URL": "https://p.example.com"},
            "CDN_PUBLIC_BASE_URLS",
        ),
        ({"CDN_PUBLIC_BASE_URLS": "https://u.example.com/?cache=no"}, "CDN_PUBLIC_BASE_URLS"),
        ({"CDN_PUBLIC_BASE_URLS": "u.example.com"}, "CDN_PUBLIC_BASE_URLS"),
        ({**CLOUDFLARE, "CLOUDFLARE_API_TOKEN": "t"}, "CLOUDFLARE_ZONE_ID"),
        ({**CLOUDFLARE, "CLOUDFLARE_ZONE_ID": "z"}, "CLOUDFLARE_API_TOKEN"),
        ({**CLOUDFLARE, "CDN_PURGE_BACKEND": "cloudfront"}, "CLOUDFRONT_DISTRIBUTION_ID"),
        ({**CLOUDFLARE, "CDN_PURGE_BACKEND": "http"}, "CDN_PURGE_HTTP_URL"),
        ({"CDN_PURGE_HTTP_METHOD": "PURGE /x"}, "CDN_PURGE_HTTP_METHOD"),
        ({"CLOUDFLARE_API_BASE_URL": "api.cloudflare.com"}, "CLOUDFLARE_API_BASE_URL"),
    ],
)
def test_a_wrong_value_stops_start_up_with_one_line_naming_it(tmp_path, env, variable):
    result = start(tmp_path, **env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"configuration error: {variable}: ")


def test_a_bad_email_url_does_not_print_its_password(tmp_path):
    result = start(tmp_path, EMAIL_URL="smtps+x://mailer:hunter2-secret@mail.example.com:465")
    assert result.returncode == 2
    assert result.stderr.startswith("configuration error: EMAIL_URL: ")
    assert "hunter2-secret" not in result.stderr


def test_complete_settings_start(tmp_path):
    env = {
        **CLOUDFLARE,
        "CLOUDFLARE_ZONE_ID": "z",
        "CLOUDFLARE_API_TOKEN": "t",
        "NOTIFY_WEBHOOK_URL": "https://hooks.example.com/releases",
        "NOTIFY_WEBHOOK_SECRET": "s",
        "NOTIFY_SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/x",
        "NOTIFY_EMAIL_GROUP": "release managers",
        "EMAIL_URL": "smtp+tls://mailer:pw@mail.example.com:587",
    }
    result = start(tmp_path, **env)
    assert result.returncode == 0, result.stderr

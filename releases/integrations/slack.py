"""Slack-compatible incoming webhooks (Slack, Mattermost, Rocket.Chat, Discord's /slack)."""

from __future__ import annotations

import json

from releases.integrations import outbound


def slack_escape(text: str) -> str:
    """Slack's three control characters, escaped as its docs ask: text from a build, a GitHub
    user or an error can then not form a link (`<https://…|Approve>`) or ping (`<!channel>`)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_post(*, url: str, text: str) -> int:
    """Post one message (`text` in Slack's mrkdwn, already escaped); returns the HTTP status."""
    body = json.dumps({"text": text}).encode()
    headers = {"Content-Type": "application/json"}
    return outbound.send("POST", url, body=body, headers=headers).status_code

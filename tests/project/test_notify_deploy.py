"""The deployment runs the notify worker, and each secret reaches only the process that uses it."""

from __future__ import annotations

from pathlib import Path

import yaml

from selfhosted.celery import app

ROOT = Path(__file__).resolve().parents[2]
NOTIFY_SECRETS = {
    "NOTIFY_WEBHOOK_URL",
    "NOTIFY_WEBHOOK_SECRET",
    "NOTIFY_SLACK_WEBHOOK_URL",
    "EMAIL_URL",
}
CDN_SECRETS = {
    "CLOUDFLARE_API_TOKEN",
    "CDN_PURGE_HTTP_AUTHORIZATION",
    "CLOUDFRONT_AWS_SECRET_ACCESS_KEY",
}


def test_compose_runs_a_notify_worker_that_alone_holds_the_channels_secrets():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    command = services["worker-notify"]["command"]
    assert command[command.index("-Q") + 1] == "notify"
    for name, service in services.items():
        env = set(service.get("environment") or {})
        assert bool(env & NOTIFY_SECRETS) == (name == "worker-notify"), name
        assert bool(env & CDN_SECRETS) == (name == "worker-promotion"), name
    assert services["worker-notify"]["environment"]["CELERY_BROKER_URL"].startswith("redis://")


def test_notifications_go_to_the_notify_queue_and_purges_to_the_promotion_queue():
    router = app.amqp.router
    for task in ("notify_event", "notify_deliver", "notify_sweep"):
        assert router.route({}, f"releases.tasks.{task}")["queue"].name == "notify"
    for task in ("cdn_purge", "cdn_purge_send"):
        assert router.route({}, f"releases.tasks.{task}")["queue"].name == "promotion"
    assert app.conf.beat_schedule["notify-sweep"]["task"] == "releases.tasks.notify_sweep"

"""The container files parse and describe the deployment the README promises."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_the_compose_file_runs_every_process_of_a_deployment():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {
        "postgres",
        "redis",
        "minio",
        "web",
        "worker-staging",
        "worker-promotion",
        "beat",
    } <= set(services)
    assert "-Q" in services["worker-staging"]["command"]
    assert "staging,default" in services["worker-staging"]["command"]
    assert "promotion" in services["worker-promotion"]["command"]
    assert "beat" in services["beat"]["command"]
    # the YAML anchor gives every app process the same configuration
    for name in ("web", "worker-staging", "worker-promotion", "beat", "migrate"):
        env = services[name]["environment"]
        assert env["CELERY_BROKER_URL"].startswith("redis://")
        assert env["DATABASE_URL"].startswith("postgres://")
        assert env["STORAGE_BACKEND"] == "s3"


def test_the_image_runs_gunicorn_as_a_non_root_user():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.count("FROM ") >= 2  # multi-stage
    assert "\nUSER app\n" in dockerfile
    assert '"gunicorn", "-c", "selfhosted/gunicorn.conf.py", "selfhosted.wsgi"' in dockerfile
    assert "runserver" not in dockerfile


def test_the_gunicorn_settings_are_valid_and_follow_the_environment(monkeypatch):
    from gunicorn.config import Config

    monkeypatch.setenv("PORT", "9123")
    monkeypatch.setenv("BIND_ADDRESS", "0.0.0.0")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    namespace: dict = {}
    exec((ROOT / "selfhosted" / "gunicorn.conf.py").read_text(), namespace)
    config = Config()
    for name in ("bind", "workers", "worker_class", "threads", "reuse_port", "keepalive"):
        config.set(name, namespace[name])
    assert config.bind == ["0.0.0.0:9123"]
    assert config.workers == 3
    assert config.threads == 4
    assert config.reuse_port is True

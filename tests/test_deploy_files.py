"""The container files parse and describe the deployment the README promises."""

from __future__ import annotations

import os
import subprocess
import sys
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
    monkeypatch.setenv("WEB_CONNECTIONS", "500")
    namespace: dict = {}
    exec((ROOT / "selfhosted" / "gunicorn.conf.py").read_text(), namespace)
    config = Config()
    names = ("bind", "workers", "worker_class", "worker_connections", "reuse_port", "keepalive")
    for name in names:
        config.set(name, namespace[name])
    assert config.bind == ["0.0.0.0:9123"]
    assert config.workers == 3
    # Downloads hold a greenlet each, not one of a few threads (README, "Production").
    assert config.worker_class_str == "gevent"
    assert config.worker_connections == 500
    assert config.reuse_port is True


def container_environment() -> dict[str, str]:
    """The `ENV` of the Dockerfile's runtime stage (the last `ENV` instruction)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    line = [row for row in text.splitlines() if row.startswith("ENV ")][-1]
    return dict(pair.split("=", 1) for pair in line.removeprefix("ENV ").split())


def test_the_container_settings_pass_django_deploy_checks(tmp_path):
    env = {
        **container_environment(),
        "PATH": os.environ["PATH"],
        "DATA_DIR": str(tmp_path),  # the container's /data, with its generated secret key
        "STATIC_ROOT": str(tmp_path / "static"),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout
    assert env["SECURE_COOKIES"] == "true" and int(env["SECURE_HSTS_SECONDS"]) >= 15_552_000

"""The container files parse and describe the deployment the README promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow]  # runs gunicorn and manage.py in subprocesses


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


def dockerfile_runtime_stage() -> list[tuple[str, str]]:
    """The instructions of the Dockerfile's last stage, as (INSTRUCTION, arguments) pairs."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    instructions = [
        tuple(line.split(None, 1)) if " " in line else (line, "")
        for line in (row.strip() for row in text.splitlines())
        if line and not line.startswith("#")
    ]
    stages = [i for i, (op, _) in enumerate(instructions) if op.upper() == "FROM"]
    assert len(stages) >= 2, "multi-stage: the runtime image has no compiler"
    return [(op.upper(), args) for op, args in instructions[stages[-1] :]]


def test_the_image_runs_its_command_as_a_non_root_user_and_gunicorn_accepts_it(tmp_path):
    stage = dockerfile_runtime_stage()
    users = [args for op, args in stage if op == "USER"]
    assert users and users[-1] not in ("root", "0"), "the runtime stage must drop root"
    command = json.loads([args for op, args in stage if op == "CMD"][-1])  # exec form
    assert command[0] == "gunicorn"
    # Run that very command's configuration check with the container's environment: gunicorn
    # loads the config file and imports the WSGI application, or exits non-zero.
    env = {
        **container_environment(),
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
        "DATA_DIR": str(tmp_path),
        "STATIC_ROOT": str(tmp_path / "static"),
    }
    result = subprocess.run(
        [*command[:-1], "--check-config", command[-1]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_queue_a_task_is_routed_to_has_a_worker_in_the_compose_file():
    from selfhosted.celery import app

    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    consumed: set[str] = set()
    for service in services.values():
        command = service.get("command")
        if isinstance(command, list) and "worker" in command and "-Q" in command:
            consumed |= set(command[command.index("-Q") + 1].split(","))
    app.loader.import_default_modules()
    ours = [name for name in app.tasks if name.startswith("releases.")]
    assert len(ours) >= 8
    routed = {name: app.amqp.router.route({}, name)["queue"].name for name in ours}
    assert {name: queue for name, queue in routed.items() if queue not in consumed} == {}


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

"""`make run`: web (gunicorn) and a worker (Celery, with beat) in the foreground, together.

The web process is what users and apps reach, so nothing the worker does may take it down: a
worker that exits (the embedded broker unwritable for a while makes Celery give up) is started
again after a backoff that doubles up to a minute, while gunicorn keeps serving. Only the web
process exiting, Ctrl-C or SIGTERM stop everything.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import OperationalError

from selfhosted.celery import app

STOP_TIMEOUT_SECONDS = 20
GUNICORN_CONFIG = settings.BASE_DIR / "selfhosted" / "gunicorn.conf.py"
RESTART_BACKOFF_FIRST_SECONDS = 1.0
RESTART_BACKOFF_MAX_SECONDS = 60.0
# A worker that ran this long before exiting starts the backoff over (it was not crash-looping).
RESTART_STABLE_SECONDS = 60.0


class _Restarted:
    """A child process started again, after a growing pause, whenever it exits."""

    def __init__(self, name: str, command: list[str]) -> None:
        self.name = name
        self.command = command
        self.backoff = RESTART_BACKOFF_FIRST_SECONDS
        self.restart_at: float | None = None
        self.process = self._start()

    def _start(self) -> subprocess.Popen:
        self.started = time.monotonic()
        return subprocess.Popen(self.command, start_new_session=True)

    def watch(self, say) -> None:
        """Called every tick: notice an exit, and restart once the backoff has passed."""
        now = time.monotonic()
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.restart_at = None
                self.process = self._start()
                say(f"{self.name} restarted")
            return
        code = self.process.poll()
        if code is None:
            return
        if now - self.started >= RESTART_STABLE_SECONDS:
            self.backoff = RESTART_BACKOFF_FIRST_SECONDS
        say(f"{self.name} exited with status {code}; restarting it in {self.backoff:.0f}s")
        self.restart_at = now + self.backoff
        self.backoff = min(self.backoff * 2, RESTART_BACKOFF_MAX_SECONDS)


class Command(BaseCommand):
    help = "Migrate, make sure an admin exists, then run web + worker until Ctrl-C or SIGTERM."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default=os.environ.get("BIND_ADDRESS", "127.0.0.1"))

    def handle(self, *args, bind: str, **options):
        self._prepare()
        self._broker_prepare()
        port = settings.PORT
        python = sys.executable
        web = subprocess.Popen(
            [python, "-m", "gunicorn", "-c", str(GUNICORN_CONFIG), "selfhosted.wsgi"],
            env={**os.environ, "BIND_ADDRESS": bind, "PORT": str(port)},
            start_new_session=True,
        )
        worker = _Restarted("worker", self._worker_command(python))
        self._print_urls(bind, port)
        stopping = []

        def stop(signum, frame):
            stopping.append(signum)

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        exit_code = 0
        while not stopping:
            if web.poll() is not None:
                self.stderr.write(f"web exited with status {web.returncode}; stopping")
                exit_code = 1
                break
            worker.watch(self.stderr.write)
            time.sleep(0.3)
        self._stop({"web": web, "worker": worker.process})
        sys.exit(exit_code)

    def _prepare(self) -> None:
        """Migrate and make sure an admin exists. A data directory or database that cannot be
        used stops start-up with one line naming the variable, like a wrong setting."""
        try:
            settings.DATA_DIR.mkdir(parents=True, exist_ok=True)  # beat's schedule lives there
        except OSError as exc:
            _stop_start_up(f"DATA_DIR: cannot create the directory {settings.DATA_DIR} ({exc})")
        try:
            call_command("migrate", interactive=False, verbosity=0)
        except OperationalError as exc:
            reason = " ".join(str(exc).split())
            _stop_start_up(f"DATABASE_URL: cannot use the database ({reason})")
        call_command("bootstrap_admin")

    def _broker_prepare(self) -> None:
        """Declare the queues once, so the embedded broker's file exists before anyone uses it
        (/healthz reports a missing file as a failure rather than create it)."""
        try:
            with app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=2)
                for queue in app.conf.task_queues:
                    queue(conn.default_channel).declare()
        except Exception as exc:  # the worker keeps retrying; /healthz shows the broker down
            self.stderr.write(f"broker not reachable yet: {type(exc).__name__}: {exc}")

    def _worker_command(self, python: str) -> list[str]:
        return [
            python,
            "-m",
            "celery",
            "-A",
            "selfhosted",
            "worker",
            "--beat",
            "--queues",
            "staging,promotion,notify,default",
            "--concurrency",
            "2",
            "--loglevel",
            "INFO",
            "--schedule",
            str(settings.DATA_DIR / "celerybeat-schedule"),
        ]

    def _stop(self, children: dict[str, subprocess.Popen]) -> None:
        self.stdout.write("stopping web and worker…")
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)  # graceful: gunicorn drains, Celery warm-stops
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for name, child in children.items():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stderr.write(f"{name} did not stop in {STOP_TIMEOUT_SECONDS}s; killing it")
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        self.stdout.write("stopped")

    def _print_urls(self, bind: str, port: int) -> None:
        host = "localhost" if bind in ("127.0.0.1", "0.0.0.0", "::") else bind
        base = f"http://{host}:{port}"
        lines = [
            "",
            f"  admin            {base}/admin/",
            f"  update feed      {base}/update/latest.yml",
            f"  download links   {base}/download/",
            f"  ToDesktop hook   {base}/new-release-webhook",
            f"  GitHub hook      {base}/github-webhook",
            f"  API              {base}/api/",
            f"  health           {base}/healthz",
            f"  data             {settings.DATA_DIR}  (buckets: {settings.STORAGE_BACKEND})",
            "",
        ]
        if not (settings.WEBHOOK_HMAC_KEY and settings.TODESKTOP_APP_ID):
            lines.append(
                "  The ToDesktop webhook answers 503 until WEBHOOK_HMAC_KEY and TODESKTOP_APP_ID "
                "are set, e.g. WEBHOOK_HMAC_KEY=… TODESKTOP_APP_ID=… make run"
            )
        lines.append("  Ctrl-C stops web and worker.")
        self.stdout.write("\n".join(lines), style_func=None)
        self.stdout.flush()


def _stop_start_up(message: str) -> None:
    sys.stderr.write(f"configuration error: {message}\n")
    raise SystemExit(2)

"""`make run`: web (gunicorn) and a worker (Celery, with beat) in the foreground, together."""

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

STOP_TIMEOUT_SECONDS = 20
GUNICORN_CONFIG = settings.BASE_DIR / "selfhosted" / "gunicorn.conf.py"


class Command(BaseCommand):
    help = "Migrate, make sure an admin exists, then run web + worker until Ctrl-C or SIGTERM."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default=os.environ.get("BIND_ADDRESS", "127.0.0.1"))

    def handle(self, *args, bind: str, **options):
        self._prepare()
        port = settings.PORT
        python = sys.executable
        children = {
            "web": subprocess.Popen(
                [python, "-m", "gunicorn", "-c", str(GUNICORN_CONFIG), "selfhosted.wsgi"],
                env={**os.environ, "BIND_ADDRESS": bind, "PORT": str(port)},
                start_new_session=True,
            ),
            "worker": subprocess.Popen(
                [
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
                ],
                start_new_session=True,
            ),
        }
        self._print_urls(bind, port)
        stopping = []

        def stop(signum, frame):
            stopping.append(signum)

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        exit_code = 0
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    self.stderr.write(f"{name} exited with status {child.returncode}; stopping")
                    stopping.append(0)
                    exit_code = 1
            time.sleep(0.3)
        self._stop(children)
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

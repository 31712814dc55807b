"""The demo: one build from a fake ToDesktop to a working download link, on this install.

Everything runs in this process against the configured database and buckets (those of
`make run`): the fake origin on loopback stands in for ToDesktop, the release is recorded and
staged by the same service as `manage.py stage`, approved in the admin backend by demo
reviewers, promoted by the promotion service, then the update feed and a download link are
fetched over real HTTP — from the running server when `make run` is up, else from a temporary
one.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import requests
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.wsgi import get_wsgi_application
from django.test.utils import override_settings
from django.urls import reverse
from django.utils import timezone

from releases.demo.todesktop_origin import FakeBuild, start_origin
from releases.integrations import buckets
from releases.models import AuditEvent, Build, BuildFile, ReleaseRequest, ReleaseState
from releases.roles import APPROVERS, roles_sync
from releases.services.approvals import release_decide
from releases.services.manual import ManualObserver, manual_stage
from releases.services.review_backends import review_backend, review_backend_hint
from selfhosted import health
from selfhosted.celery import app

MAC_SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Safari/605.1.15"
)
REVIEWER = "demo-reviewer-{}"


class DemoFailed(Exception):
    """A step of the demo did not work; the message says which and why."""


@dataclass
class DemoResult:
    build_id: str
    version: str
    server: str
    temporary: bool  # the server was started by the demo and is gone now
    feed_url: str
    download_url: str
    download_name: str
    download_size: int
    production: list[str] = field(default_factory=list)


def demo_run(*, say: Callable[[str], None], observer: ManualObserver, size: int) -> DemoResult:
    """Walk one demo build through every step; `say` narrates, `observer` draws the bytes."""
    if not review_backend().decides_in_admin:
        raise DemoFailed(
            f"the demo approves in the admin: run it with {review_backend_hint('admin')} on a "
            "local install (it would otherwise promote into the production bucket of a GitHub "
            "setup)"
        )
    fake = _demo_build(size)
    origin = start_origin(fake)
    try:
        say(f"1. A fake ToDesktop download host serves build {fake.build_id} (v{fake.version})")
        say(f"   at {origin.url}/{fake.app_id}/: installers and manifests for 3 platforms.")
        with override_settings(TODESKTOP_DOWNLOAD_BASE_URL=origin.url), _tasks_in_process():
            release = _stage(fake, say=say, observer=observer)
            _approve(release, say=say)
    finally:
        origin.stop()
    production = sorted(info.key for info in buckets.production().list())
    say(f"5. Production ({buckets.production().location}) now holds {len(production)} objects.")
    with _web_server(say) as (base, temporary):
        result = _fetch(fake, base=base, production=production, say=say)
    result.temporary = temporary
    return result


def _demo_build(size: int) -> FakeBuild:
    number = Build.objects.filter(build_id__startswith="demo").count() + 1
    stamp = timezone.now().strftime("%y%m%d%H%M%S")
    return FakeBuild(
        app_id=settings.TODESKTOP_APP_ID or "demo-app",
        build_id=f"demo{stamp}{secrets.token_hex(2)}",
        version=f"1.0.{number}",
        product="Demo App",
        size=size,
        created_at=timezone.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


@contextlib.contextmanager
def _tasks_in_process() -> Iterator[None]:
    """The approval queues the promotion task; run it here, so the demo needs no broker and
    no worker (and a worker of `make run`, if any, is not raced)."""
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = previous


def _stage(fake: FakeBuild, *, say, observer: ManualObserver) -> ReleaseRequest:
    say("2. ToDesktop would now send its signed release webhook; the demo records the same")
    say("   release request directly, with releaseInfo making it the latest release.")
    say("3. Staging: every file is streamed into the staging bucket, hashed and verified.")
    staged = manual_stage(
        build_id=fake.build_id,
        actor="demo (manage.py demo)",
        app_id=fake.app_id,
        release_info={"latestReleaseBuildId": fake.build_id},
        observer=observer,
    )
    say(f"   {staged.files} files staged, {staged.verified} verified against the manifests;")
    say(f"   the build waits for review: {_admin_url(staged.release)}")
    return staged.release


def _approve(release: ReleaseRequest, *, say) -> None:
    needed = settings.REQUIRED_APPROVALS
    say(f"4. Review: {needed} approval(s) needed (REQUIRED_APPROVALS); demo reviewers approve.")
    outcome = ""
    for number in range(1, needed + 1):
        user = _reviewer(REVIEWER.format(number))
        outcome = release_decide(
            release=release, user=user, approve=True, comment="approved by manage.py demo"
        )
        say(f"   {user.get_username()} approved ({outcome})")
    release.refresh_from_db()
    if release.state != ReleaseState.LIVE:
        failure = AuditEvent.objects.filter(kind="promotion.failed").order_by("-sequence").first()
        reason = failure.message if failure else f"the release is {release.state}"
        raise DemoFailed(f"promotion did not make the build live: {reason}")
    say("   the approval triggered the promotion: staging → production, binaries first,")
    say("   then the build manifests, then desktop-builds.json and desktop-releases.json.")


def _reviewer(username: str):
    user, created = get_user_model().objects.get_or_create(username=username)
    if created:
        user.set_unusable_password()  # a name in the audit trail, not an account to log into
        user.save(update_fields=["password"])
    # An approver like any other: the two-person rule holds for the demo too.
    if not Group.objects.filter(name=APPROVERS).exists():
        roles_sync(apps)  # the migration's groups were removed: make them again
    user.groups.add(Group.objects.get(name=APPROVERS))
    return user


def _admin_url(release: ReleaseRequest) -> str:
    path = reverse("admin:releases_build_change", args=[release.build_id])
    return settings.PUBLIC_BASE_URL + path


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # the demo narrates; no access log lines
        pass


@contextlib.contextmanager
def _web_server(say) -> Iterator[tuple[str, bool]]:
    running = f"http://127.0.0.1:{settings.PORT}"
    if _answers(running):
        say(f"6. Fetching from the running server ({running}):")
        yield running, False
        return
    server = make_server(
        "127.0.0.1",
        0,
        get_wsgi_application(),
        server_class=_ThreadingServer,
        handler_class=_QuietHandler,
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    say(f"6. No server on port {settings.PORT} (`make run`); fetching from a temporary one:")
    try:
        yield base, True
    finally:
        server.shutdown()
        server.server_close()


# Connecting fails at once when nothing listens. An answer takes its time: the first request
# of a fresh gunicorn worker loads the URLs and opens the broker, and /healthz waits up to
# CHECK_TIMEOUT_SECONDS for each dependency (a 1-second limit made the demo miss a server that
# had just started).
HEALTHZ_TIMEOUT = (2, health.CHECK_TIMEOUT_SECONDS + 10)


def _answers(base: str) -> bool:
    """Whether this install's server listens at `base` (/healthz answers, 200 or 503)."""
    try:
        response = requests.get(f"{base}/healthz", timeout=HEALTHZ_TIMEOUT)
        return "checks" in response.json()
    except (requests.RequestException, ValueError, TypeError):
        return False


def _fetch(fake: FakeBuild, *, base: str, production: list[str], say) -> DemoResult:
    feed_url = f"{base}/update/latest.yml"
    feed = _feed_text(feed_url, version=fake.version)
    say(f"   GET {feed_url} → 200, what electron-updater reads:")
    for line in feed.splitlines()[:3]:
        say(f"     {line}")
    download_url = f"{base}/download/mac"
    name, size = _download(download_url, build=fake.build_id)
    say(f"   GET {download_url} (Safari on macOS) → 200, {size} bytes:")
    say(f"     {name}")
    say("     sha256 identical to the staged and verified file.")
    return DemoResult(
        build_id=fake.build_id,
        version=fake.version,
        server=base,
        temporary=False,
        feed_url=feed_url,
        download_url=download_url,
        download_name=name,
        download_size=size,
        production=production,
    )


def _feed_text(url: str, *, version: str) -> str:
    # A running server notices the new production files within a second (cdn.metadata).
    deadline = time.monotonic() + 5
    while True:
        response = requests.get(url, timeout=10)
        if response.status_code == 200 and f"version: {version}" in response.text:
            return response.text
        if time.monotonic() > deadline:
            raise DemoFailed(
                f"{url} answered {response.status_code} without version {version}: is that "
                "server using this install's DATA_DIR / buckets?"
            )
        time.sleep(0.25)


def _download(url: str, *, build: str) -> tuple[str, int]:
    with requests.get(url, headers={"User-Agent": MAC_SAFARI}, stream=True, timeout=30) as got:
        if got.status_code != 200:
            raise DemoFailed(f"{url} answered {got.status_code}: {got.text[:200]}")
        digest, size = hashlib.sha256(), 0
        for chunk in got.iter_content(256 * 1024):
            digest.update(chunk)
            size += len(chunk)
        disposition = got.headers.get("Content-Disposition", "")
    name = disposition.split('filename="', 1)[-1].rstrip('"') if disposition else ""
    staged = BuildFile.objects.filter(build__build_id=build, name=name).first()
    if staged is None or staged.sha256 != digest.hexdigest():
        raise DemoFailed(f"{url} served {name!r}, which is not the staged file of {build}")
    return name, size

"""`make run`'s program: embedded defaults, admin login with the printed password, healthz,
two instances side by side, and a clean stop on SIGTERM."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.fakes.s3_server import free_port

pytestmark = [pytest.mark.slow]  # runs make run (gunicorn + a worker)

ROOT = Path(__file__).resolve().parents[2]
EMBEDDED = ("DATABASE_URL", "CELERY_BROKER_URL", "STORAGE_BACKEND", "SECRET_KEY", "DATA_DIR")


class Instance:
    def __init__(self, data_dir: Path, **extra_env: str) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        env = {k: v for k, v in os.environ.items() if k not in EMBEDDED}
        env.update(
            {
                "PORT": str(self.port),
                "DATA_DIR": str(data_dir),
                "PYTHONUNBUFFERED": "1",
                "CELERY_TASK_ALWAYS_EAGER": "false",
                **extra_env,
            }
        )
        self.env = env
        self.log = open(data_dir.with_suffix(".log"), "w+")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "runall"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.base = f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()

    def wait_healthy(self, seconds: float = 60) -> dict:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            try:
                answer = requests.get(f"{self.base}/healthz", timeout=5)
                if answer.status_code == 200:
                    return answer.json()
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise AssertionError(f"/healthz not 200 within {seconds}s:\n{self.output()}")

    def password(self) -> str:
        found = re.search(r"admin account created: admin / (\S+)", self.output())
        assert found, self.output()
        return found.group(1)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=40)


def processes_using(data_dir: Path) -> list[int]:
    """PIDs whose environment points at `data_dir` (the web and worker children)."""
    found = []
    marker = f"DATA_DIR={data_dir}".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def admin_login(base: str, password: str) -> requests.Response:
    session = requests.Session()
    page = session.get(f"{base}/admin/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    return session.post(
        f"{base}/admin/login/?next=/admin/",
        data={
            "csrfmiddlewaretoken": token,
            "username": "admin",
            "password": password,
            "next": "/admin/",
        },
        headers={"Referer": f"{base}/admin/login/"},
        timeout=10,
    )


@pytest.mark.timeout(240)
def test_run_serves_the_admin_and_healthz_and_stops_cleanly(tmp_path):
    first = Instance(tmp_path / "one")
    second = Instance(tmp_path / "two")
    try:
        started = time.monotonic()
        health = first.wait_healthy()
        assert time.monotonic() - started < 60
        assert all(check["ok"] for check in health["checks"].values())
        second.wait_healthy()
        for instance in (first, second):
            out = instance.output()
            for url in ("/admin/", "/update/", "/download/", "/new-release-webhook", "/healthz"):
                assert f"http://localhost:{instance.port}{url}" in out
        # each instance has its own admin, database and buckets
        assert first.password() != second.password()
        assert (tmp_path / "one" / "db.sqlite3").exists()
        assert (tmp_path / "two" / "db.sqlite3").exists()
        landed = admin_login(first.base, first.password())
        assert landed.url.endswith("/admin/"), landed.url
        assert "Audit trail" in landed.text
        refused = admin_login(first.base, "wrong-password")
        assert "/admin/login/" in refused.url
        assert requests.get(f"{first.base}/static/admin/css/base.css", timeout=5).ok
        assert processes_using(tmp_path / "one")
    finally:
        codes = [first.stop(), second.stop()]
    assert codes == [0, 0]
    for instance in (first, second):
        assert "stopped" in instance.output()
    time.sleep(0.5)
    assert processes_using(tmp_path / "one") == []
    assert processes_using(tmp_path / "two") == []
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{first.base}/healthz", timeout=2)


@pytest.mark.timeout(120)
def test_a_second_start_keeps_the_admin_and_does_not_print_a_password(tmp_path):
    data = tmp_path / "again"
    first = Instance(data)
    first.wait_healthy()
    password = first.password()
    assert first.stop() == 0
    again = Instance(data)
    try:
        again.wait_healthy()
        assert "admin account created" not in again.output()
        assert password not in again.output()
        assert "exists" in again.output()
    finally:
        assert again.stop() == 0


def children_of_runall(data_dir: Path, program: bytes) -> list[int]:
    """The processes runall started for this instance that run `program` (not their own
    children: gunicorn's and Celery's workers)."""
    pids = []
    for pid in processes_using(data_dir):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            parent_command = Path(f"/proc/{parent}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if program in command and b"runall" in parent_command:
            pids.append(pid)
    return pids


def worker_pids(data_dir: Path) -> list[int]:
    return children_of_runall(data_dir, b"celery")


def wait_for(predicate, seconds: float, what: str, instance: Instance):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"{what} within {seconds}s:\n{instance.output()[-4000:]}")


def answered(instance: Instance) -> bool:
    """The web answers (any status: 503 while the broker is down is an answer)."""
    try:
        requests.get(f"{instance.base}/healthz", timeout=10)
        return True
    except requests.RequestException:
        return False


@pytest.mark.timeout(180)
def test_a_worker_that_exits_is_restarted_and_the_web_keeps_serving(tmp_path):
    instance = Instance(tmp_path / "restart")
    try:
        instance.wait_healthy()
        [first] = wait_for(lambda: worker_pids(instance.data_dir), 30, "a worker", instance)
        [web] = children_of_runall(instance.data_dir, b"gunicorn")

        for _ in range(2):  # twice: the second restart waits longer (backoff)
            worker = wait_for(lambda: worker_pids(instance.data_dir), 60, "a worker", instance)[0]
            os.killpg(os.getpgid(worker), signal.SIGKILL)
            assert answered(instance)
            wait_for(
                lambda w=worker: [p for p in worker_pids(instance.data_dir) if p != w],
                60,
                "a new worker",
                instance,
            )

        assert instance.process.poll() is None  # runall itself kept running
        assert answered(instance)
        assert children_of_runall(instance.data_dir, b"gunicorn") == [web]  # never restarted
        out = instance.output()
        assert "worker exited with status -9; restarting it in 1s" in out
        assert "worker exited with status -9; restarting it in 2s" in out
    finally:
        assert instance.stop() == 0


def broker_ok(instance: Instance) -> bool:
    try:
        answer = requests.get(
            f"{instance.base}/healthz", headers={"Authorization": "Bearer t"}, timeout=10
        )
    except requests.RequestException:
        return False
    return answer.json()["checks"]["broker"]["ok"]


@pytest.mark.timeout(300)
@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("chattr"),
    reason="only root (chattr +i) can make a file unwritable to descriptors already open",
)
def test_a_broker_file_unwritable_for_24_seconds_never_stops_the_web(tmp_path):
    """The outage of the issue: beat and the worker fail to write the embedded broker. gunicorn
    answers throughout, and once the file is writable again the periodic work resumes: beat
    sends and the worker receives, whether the worker recovered in place or gave up
    (RestartFreqExceeded) and runall started it again. A pooled SQLite connection that had
    met the file read-only used to keep beat failing until its process was restarted."""
    instance = Instance(tmp_path / "outage", RECONCILE_INTERVAL_SECONDS="1", METRICS_TOKEN="t")
    broker = instance.data_dir / "broker.sqlite3"
    try:
        # Not wait_healthy: only the broker matters here.
        wait_for(lambda: broker_ok(instance), 60, "the broker check ok", instance)
        wait_for(lambda: worker_pids(instance.data_dir), 60, "a worker", instance)
        unanswered = 0
        subprocess.run(["chattr", "+i", str(broker)], check=True)
        try:
            for _ in range(24):
                unanswered += not answered(instance)
                time.sleep(1)
        finally:
            subprocess.run(["chattr", "-i", str(broker)], check=True)
        assert "attempt to write a readonly database" in instance.output()  # the outage hit
        mark = len(instance.output())

        def resumed() -> bool:
            # A reconcile beat sent after the outage, received by a worker; nothing failing.
            after = instance.output()[mark:]
            tail = after[after.rfind("Sending due task reconcile") :]
            return "Task releases.tasks.reconcile[" in tail and "readonly database" not in tail

        for _ in range(120):
            unanswered += not answered(instance)
            if resumed():
                break
            time.sleep(1)
        output = instance.output()
        assert resumed(), output[-4000:]
        if "worker exited with status" in output[mark:]:
            assert "worker restarted" in output[mark:]
        assert unanswered == 0 and instance.process.poll() is None, output[-4000:]
        wait_for(lambda: worker_pids(instance.data_dir), 90, "a worker running", instance)
        wait_for(lambda: broker_ok(instance), 60, "the broker check ok again", instance)
    finally:
        assert instance.stop() == 0

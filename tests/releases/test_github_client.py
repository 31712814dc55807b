"""releases.integrations.github through PyGithub against the fake GitHub: the boundary's
small functions, authentication (token, GitHub App installation) and retries."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from releases.integrations import github


def test_it_reads_the_repository_and_its_default_branch(fake_github):
    repo = github.repo_get()
    assert repo.full_name == "acme/desktop-releases"
    assert repo.default_branch == "main"
    assert github.branch_head("main") == fake_github.branches["main"]
    assert github.branch_head("nope") is None


def test_it_reads_a_file_and_reports_a_missing_one(fake_github):
    fake_github.commit("main", {"desktop-builds.json": "[]\n"}, "seed")
    found = github.file_read("desktop-builds.json", ref="main")
    assert found.text == "[]\n"
    assert github.file_read("desktop-releases.json", ref="main") is None


def test_it_creates_a_branch_once_and_reports_a_taken_name(fake_github):
    sha = github.branch_head("main")
    assert github.branch_create("feature", sha=sha) is True
    assert github.branch_create("feature", sha=sha) is False
    assert fake_github.branches["feature"] == sha


def test_it_writes_files_and_refuses_a_stale_sha(fake_github):
    sha = github.branch_head("main")
    github.branch_create("work", sha=sha)
    github.file_write("a.json", text="1\n", message="add a", branch="work", sha=None)
    first = github.file_read("a.json", ref="work")
    github.file_write("a.json", text="2\n", message="change a", branch="work", sha=first.sha)
    with pytest.raises(github.FileConflict):
        github.file_write("a.json", text="3\n", message="stale", branch="work", sha=first.sha)
    assert fake_github.file("a.json", "work") == "2\n"
    assert fake_github.history("work") == ["change a", "add a"]


def test_it_opens_a_pull_request_once_and_finds_it_by_branch(fake_github):
    fake_github.branch_create("topic", files={"x.txt": "x"})
    assert github.pull_find_by_branch("topic") is None
    pull = github.pull_open(title="t", body="b", head="topic", base="main")
    again = github.pull_open(title="t", body="b", head="topic", base="main")
    assert again.number == pull.number
    assert len(fake_github.pulls()) == 1
    found = github.pull_find_by_branch("topic")
    assert (found.number, found.url, found.head_ref, found.base_ref) == (
        pull.number,
        f"{fake_github.web_url}/acme/desktop-releases/pull/{pull.number}",
        "topic",
        "main",
    )
    fake_github.merge(pull.number)
    assert github.pull_get(pull.number).merged is True
    assert fake_github.file("x.txt", "main") == "x"


def test_it_retries_a_502_and_succeeds(fake_github):
    fake_github.fail(502, method="GET")
    assert github.repo_get().default_branch == "main"
    assert [r.status for r in fake_github.requests] == [502, 200]


def test_it_waits_for_retry_after_on_a_secondary_rate_limit(fake_github):
    fake_github.rate_limit(retry_after=1)
    started = time.monotonic()
    assert github.repo_get().default_branch == "main"
    assert time.monotonic() - started >= 1.0
    assert [r.status for r in fake_github.requests] == [403, 200]


def test_it_waits_for_x_ratelimit_reset_on_the_primary_rate_limit(fake_github):
    fake_github.rate_limit_exhausted(reset_in=1)
    started = time.monotonic()
    assert github.repo_get().default_branch == "main"
    assert time.monotonic() - started >= 1.0
    assert [r.status for r in fake_github.requests] == [403, 200]


def test_a_rate_limit_longer_than_the_allowed_wait_fails_at_once(fake_github, settings):
    settings.GITHUB_MAX_RATE_LIMIT_WAIT_SECONDS = 5
    fake_github.rate_limit_exhausted(reset_in=3600)
    started = time.monotonic()
    with pytest.raises(github.GitHubError, match="GitHub 403: API rate limit exceeded"):
        github.repo_get()
    assert time.monotonic() - started < 5


def test_it_gives_up_after_the_retries_with_githubs_message(fake_github, settings):
    settings.GITHUB_MAX_RETRIES = 1
    fake_github.fail(502, times=None)
    with pytest.raises(github.GitHubError, match="GitHub 502: Server Error"):
        github.repo_get()
    assert len(fake_github.requests) == 2


def test_it_does_not_retry_bad_credentials(fake_github, settings):
    settings.GITHUB_TOKEN = "ghp_revoked"
    with pytest.raises(github.GitHubError, match="GitHub 401: Bad credentials") as caught:
        github.repo_get()
    assert caught.value.status == 401
    assert len(fake_github.requests) == 1


def test_it_authenticates_as_a_github_app_installation(fake_github, settings):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    fake_github.app_register(app_id=4242, public_key_pem=public_pem, installation_id=77)
    settings.GITHUB_TOKEN = ""
    settings.GITHUB_APP_ID = "4242"
    settings.GITHUB_APP_PRIVATE_KEY = private_pem
    settings.GITHUB_APP_INSTALLATION_ID = 77

    assert github.repo_get().default_branch == "main"

    token_call, repo_call = fake_github.requests
    assert token_call.path == "/api/v3/app/installations/77/access_tokens"
    assert token_call.authorization.startswith("Bearer ")
    assert repo_call.authorization.startswith("token ghs_")


def test_an_app_key_github_does_not_know_is_refused(fake_github, settings):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    fake_github.app_register(
        app_id=4242,
        public_key_pem=other.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode(),
        installation_id=77,
    )
    settings.GITHUB_TOKEN = ""
    settings.GITHUB_APP_ID = "4242"
    settings.GITHUB_APP_PRIVATE_KEY = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    settings.GITHUB_APP_INSTALLATION_ID = 77
    with pytest.raises(github.GitHubError, match="GitHub 401"):
        github.repo_get()


def test_an_unreachable_github_is_a_github_error_naming_the_url(fake_github, settings):
    from tests.fakes.s3_server import free_port

    settings.GITHUB_MAX_RETRIES = 0
    settings.GITHUB_API_URL = f"http://127.0.0.1:{free_port()}/api/v3"
    with pytest.raises(github.GitHubError, match="cannot reach GitHub at http://127.0.0.1:"):
        github.repo_get()

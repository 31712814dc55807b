"""The review backend is chosen in one place: `releases.services.review_backends`."""

from __future__ import annotations

from pathlib import Path

from releases.services.review_backends import ReviewBackend, review_backend
from releases.services.review_backends.admin import AdminReview
from releases.services.review_backends.github import GitHubReview

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("releases", "cdn", "downloads", "selfhosted")
# Where the setting may be named: where it is read and validated, and where the backend is chosen.
ALLOWED = {
    Path("selfhosted/settings.py"),
    Path("releases/services/review_backends/__init__.py"),
}


def test_only_the_chooser_names_the_review_backend_setting():
    naming = sorted(
        str(path.relative_to(ROOT))
        for package in PRODUCT
        for path in (ROOT / package).rglob("*")
        if path.is_file()
        and path.suffix in (".py", ".html", ".txt")
        and "REVIEW_BACKEND" in path.read_text(errors="replace")
        and path.relative_to(ROOT) not in ALLOWED
    )
    assert naming == [], f"branch on review_backend() instead of the setting in: {naming}"
    for allowed in ALLOWED:  # the scan looks where the setting really is
        assert "REVIEW_BACKEND" in (ROOT / allowed).read_text()


def test_the_backend_follows_the_setting_and_is_built_once(settings):
    settings.REVIEW_BACKEND = "github"
    github = review_backend()
    assert isinstance(github, GitHubReview)
    assert review_backend() is github
    settings.REVIEW_BACKEND = "admin"
    admin = review_backend()
    assert isinstance(admin, AdminReview)
    assert review_backend() is admin


def test_each_backend_says_where_decisions_are_made(settings):
    settings.REVIEW_BACKEND = "github"
    assert not review_backend().decides_in_admin
    assert review_backend().decision_blocker() == (
        "reviews happen on GitHub (REVIEW_BACKEND=github)"
    )
    settings.REVIEW_BACKEND = "admin"
    assert review_backend().decides_in_admin
    assert review_backend().decision_blocker() is None


def test_every_backend_implements_the_whole_interface():
    interface = {
        name
        for name, value in vars(ReviewBackend).items()
        if callable(value) and not name.startswith("_") and name != "decision_blocker"
    }
    assert interface == {
        "release_open", "rollback_open", "halt_open", "desired_state", "review_gate"
    }  # fmt: skip
    for backend in (GitHubReview, AdminReview):
        missing = {name for name in interface if name not in vars(backend)}
        assert missing == set(), f"{backend.__name__} lacks {missing}"

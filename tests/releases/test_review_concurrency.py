"""Two workers opening the same review at once (a double-clicked admin retry, a redelivered
task) still make one branch and one PR."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from releases.models import ReleaseRequest, ReleaseState
from releases.services.review import review_open
from tests.releases.test_review_github import BRANCH, staged_release

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_concurrent_runs_open_one_pr(fake_github):
    release = staged_release()
    fake_github.latency = 0.05
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start.wait()
            review_open(release=ReleaseRequest.objects.select_related("build").get(pk=release.pk))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    release.refresh_from_db()
    assert (release.state, release.branch, release.pr_number) == (ReleaseState.IN_REVIEW, BRANCH, 1)
    assert len(fake_github.pulls()) == 1
    assert sorted(fake_github.branches) == ["main", BRANCH]
    assert len(fake_github.history(BRANCH)) == 2

"""The admin as the audit trail (docs/audit.md): list pages, the build page, who sees what."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from releases.models import Approval, BuildFile, ReleaseState, WebhookDelivery
from releases.services.audit import audit_record
from tests.factories import make_build, make_release

pytestmark = pytest.mark.django_db

MODELS = ["build", "buildfile", "releaserequest", "approval", "webhookdelivery", "auditevent"]


def _reviewed_builds(count: int) -> None:
    reviewer, _ = User.objects.get_or_create(username="reviewer-of-many")
    for number in range(count):
        build = make_build()
        BuildFile.objects.create(build=build, name=f"App Setup {number}.exe", size=10)
        delivery = WebhookDelivery.objects.create(
            source="todesktop", delivery_key=f"key-{build.build_id}", event="release", body=b"{}"
        )
        release = make_release(
            build,
            delivery=delivery,
            pr_number=number + 1,
            pr_url=f"https://github.com/o/r/pull/{number + 1}",
        )
        Approval.objects.create(release=release, user=reviewer, approved=True)
        audit_record(kind="review.approved", message="ok", build=build, release=release)


@pytest.mark.parametrize("model", MODELS)
def test_a_list_page_costs_the_same_queries_for_many_rows_as_for_few(
    admin_client, django_assert_max_num_queries, model
):
    url = reverse(f"admin:releases_{model}_changelist")
    _reviewed_builds(2)
    admin_client.get(url)  # warm the caches (content types) that only the first page fills
    with django_assert_max_num_queries(100) as few:
        assert admin_client.get(url).status_code == 200
    _reviewed_builds(30)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert admin_client.get(url).status_code == 200


def test_the_build_list_links_the_newest_pull_request_of_each_build(admin_client):
    build = make_build()
    make_release(build, pr_number=7, pr_url="https://github.com/o/r/pull/7")
    make_release(build, pr_number=9, pr_url="https://github.com/o/r/pull/9", kind="rollback")
    make_release(build)  # an admin-reviewed request has no PR and does not hide the last one
    page = admin_client.get(reverse("admin:releases_build_changelist"))
    assert b'<a href="https://github.com/o/r/pull/9">#9</a>' in page.content


def _staff_in(client, group: str) -> None:
    user = User.objects.create_user(f"someone in {group}", is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    client.force_login(user)


def test_a_reviewer_reads_every_page_but_is_offered_no_action(client):
    _staff_in(client, "auditors")
    _reviewed_builds(1)
    for model in MODELS:
        page = client.get(reverse(f"admin:releases_{model}_changelist"))
        assert page.status_code == 200
        assert b'name="action"' not in page.content
    build = make_build()
    assert client.get(reverse("admin:releases_build_change", args=[build.pk])).status_code == 200


def test_a_release_manager_is_offered_retry_rollback_reconcile_and_approve(client):
    _staff_in(client, "release managers")
    _reviewed_builds(1)
    builds = client.get(reverse("admin:releases_build_changelist")).content
    assert b'value="rollback_to_build"' in builds
    assert b'id="reconcile-button"' in builds  # a button: nothing to tick first
    releases = client.get(reverse("admin:releases_releaserequest_changelist")).content
    for action in (b"retry_review", b"retry_staging", b"approve_releases"):
        assert b'value="' + action + b'"' in releases
    events = client.get(reverse("admin:releases_auditevent_changelist")).content
    assert b'name="action"' not in events


def _pretend_the_table_holds(table: str, rows: int) -> None:
    """What autovacuum would record for a table this big (rolled back with the test)."""
    with connection.cursor() as cursor:
        cursor.execute("UPDATE pg_class SET reltuples = %s WHERE relname = %s", [rows, table])


@pytest.mark.parametrize(
    ("model", "table"),
    [
        ("auditevent", "releases_auditevent"),
        ("buildfile", "releases_buildfile"),
        ("webhookdelivery", "releases_webhookdelivery"),
    ],
)
def test_a_large_table_is_paged_from_the_estimate_without_counting_it(admin_client, model, table):
    _reviewed_builds(3)
    _pretend_the_table_holds(table, 2_000_000)
    with CaptureQueriesContext(connection) as queries:
        page = admin_client.get(reverse(f"admin:releases_{model}_changelist"))
    assert page.status_code == 200
    # No COUNT(*) of the table (the audit list's per-build count of folded lines is indexed).
    counts = [q["sql"] for q in queries if "COUNT(*)" in q["sql"].upper() and table in q["sql"]]
    assert counts == []
    assert page.context["cl"].result_count == 2_000_000


def test_a_filtered_list_of_a_large_table_counts_exactly(admin_client):
    _reviewed_builds(3)
    _pretend_the_table_holds("releases_auditevent", 2_000_000)
    page = admin_client.get(reverse("admin:releases_auditevent_changelist"), {"q": "ok"})
    assert page.context["cl"].result_count == 3


def _github_reviewed_build():
    build = make_build()
    BuildFile.objects.create(
        build=build, name="App Setup.exe", size=10, sha256="a" * 64, sha512="b" * 128
    )
    release = make_release(
        build, pr_number=12, pr_url="https://github.com/o/r/pull/12", branch="release/x"
    )
    audit_record(
        kind="github.review_changes_requested",
        message="alice requested changes",
        release=release,
        actor="alice",
        url="https://github.com/o/r/pull/12#pullrequestreview-1",
        data={"body": "the notarisation is missing"},
    )
    audit_record(
        kind="staging.file_staged", message="staged", build=build, data={"name": "App Setup.exe"}
    )
    audit_record(kind="staging.file_staged", message="other", build=build, data={"name": "x.yml"})
    return build, release


def test_the_build_page_shows_the_pull_request_and_its_reviews(admin_client):
    build, release = _github_reviewed_build()
    reviewer = User.objects.create_user("bob")
    admin_release = make_release(build, state=ReleaseState.REJECTED)
    Approval.objects.create(
        release=admin_release, user=reviewer, approved=False, comment="wrong icon"
    )
    page = admin_client.get(
        reverse("admin:releases_build_change", args=[build.pk])
    ).content.decode()
    assert 'pull request <a href="https://github.com/o/r/pull/12">#12</a>' in page
    assert "reviewed in the admin" in page
    assert "<td>alice</td><td><b>changes requested</b></td>" in page
    assert 'href="https://github.com/o/r/pull/12#pullrequestreview-1"' in page
    assert "the notarisation is missing" in page
    assert "<td>bob</td><td><b>rejected</b></td>" in page
    assert "wrong icon" in page


def test_the_build_page_links_each_file_and_shows_its_hashes_whole(admin_client):
    build, _ = _github_reviewed_build()
    file = build.files.get()
    page = admin_client.get(
        reverse("admin:releases_build_change", args=[build.pk])
    ).content.decode()
    assert reverse("admin:releases_buildfile_change", args=[file.pk]) in page
    assert f"<b>sha256</b> {'a' * 64}" in page
    assert f"<b>sha512</b> {'b' * 128}" in page


def test_the_build_timeline_comes_after_the_files_and_links_each_event_and_release(admin_client):
    build, release = _github_reviewed_build()
    page = admin_client.get(
        reverse("admin:releases_build_change", args=[build.pk])
    ).content.decode()
    timeline = page[page.index('id="timeline"') :]
    assert page.index("App Setup.exe") < page.index('id="timeline"')
    for event in build.events.all():
        assert reverse("admin:releases_auditevent_change", args=[event.pk]) in timeline
    assert reverse("admin:releases_releaserequest_change", args=[release.pk]) in timeline
    assert "alice requested changes" in timeline


def test_a_file_page_shows_the_events_of_that_file_only(admin_client):
    build, _ = _github_reviewed_build()
    page = admin_client.get(
        reverse("admin:releases_buildfile_change", args=[build.files.get().pk])
    ).content.decode()
    assert ">staged<" in page
    assert ">other<" not in page
    assert f"<b>sha512</b> {'b' * 128}" in page


def test_a_release_request_page_shows_its_reviews_and_events(admin_client):
    _, release = _github_reviewed_build()
    page = admin_client.get(
        reverse("admin:releases_releaserequest_change", args=[release.pk])
    ).content.decode()
    assert "<td>alice</td><td><b>changes requested</b></td>" in page
    assert "alice requested changes" in page


def test_the_build_page_costs_the_same_queries_for_many_files_and_events(
    admin_client, django_assert_max_num_queries
):
    build, release = _github_reviewed_build()
    url = reverse("admin:releases_build_change", args=[build.pk])
    admin_client.get(url)  # warm the caches (content types) that only the first page fills
    with django_assert_max_num_queries(100) as few:
        assert admin_client.get(url).status_code == 200
    for number in range(30):
        BuildFile.objects.create(build=build, name=f"file{number}.exe", size=1)
        audit_record(kind="staging.file_staged", message=f"file{number}", release=release)
    reviewer = User.objects.create_user("carol")
    Approval.objects.create(release=make_release(build), user=reviewer, approved=True)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert admin_client.get(url).status_code == 200


def test_the_event_list_wraps_long_messages_and_links_each_release(admin_client):
    _, release = _github_reviewed_build()
    page = admin_client.get(reverse("admin:releases_auditevent_changelist")).content.decode()
    assert '<span class="clamp clamp-2" title="alice requested changes">' in page
    assert reverse("admin:releases_releaserequest_change", args=[release.pk]) in page


def test_a_delivery_page_links_the_release_request_it_opened(admin_client):
    _reviewed_builds(1)
    delivery = WebhookDelivery.objects.get()
    page = admin_client.get(reverse("admin:releases_webhookdelivery_change", args=[delivery.pk]))
    release = delivery.release
    assert (
        reverse("admin:releases_releaserequest_change", args=[release.pk]) in page.content.decode()
    )

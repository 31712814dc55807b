"""The admin as the audit trail (SPEC §10): list pages, the build page, who sees what."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from releases.models import Approval, BuildFile, WebhookDelivery
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
    _staff_in(client, "reviewers")
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
    assert b'value="reconcile_production"' in builds
    releases = client.get(reverse("admin:releases_releaserequest_changelist")).content
    for action in (b"retry_review", b"retry_staging", b"approve_releases", b"reject_releases"):
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
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper() and table in q["sql"]]
    assert counts == []
    assert page.context["cl"].result_count == 2_000_000


def test_a_filtered_list_of_a_large_table_counts_exactly(admin_client):
    _reviewed_builds(3)
    _pretend_the_table_holds("releases_auditevent", 2_000_000)
    page = admin_client.get(reverse("admin:releases_auditevent_changelist"), {"q": "ok"})
    assert page.context["cl"].result_count == 3

"""The review console: production now, the release request's review page, the decisions and
the two-person rule, through the admin and the API."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from releases.integrations import buckets
from releases.models import Approval, AuditEvent, BuildFile, ReleaseRequest, ReleaseState
from releases.services.approvals import DecisionRefused, release_decide
from releases.services.rollback import rollback_open
from tests.promotion_support import approve, stage_build

pytestmark = pytest.mark.django_db


def member(name: str, *groups: str) -> User:
    user = User.objects.create_user(name, password="pw", is_staff=True)
    user.groups.set(Group.objects.filter(name__in=groups))
    return user


def api(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).secret}")
    return client


def live(build_id: str, version: str):
    build, _ = stage_build(build_id, version)
    approve(build, release_info={"latestReleaseBuildId": build_id})
    call_command("reconcile", stdout=StringIO())
    build.refresh_from_db()
    return build


def in_review(build_id: str, version: str, **fields) -> ReleaseRequest:
    build, _ = stage_build(build_id, version)
    return ReleaseRequest.objects.create(
        build=build,
        state=ReleaseState.IN_REVIEW,
        release_info={"latestReleaseBuildId": build_id},
        payload={"buildId": build_id},
        **fields,
    )


def page_of(client, release: ReleaseRequest) -> str:
    return client.get(f"/admin/releases/releaserequest/{release.pk}/change/").content.decode()


def test_production_now_names_the_build_the_feed_serves(client, fs_buckets):
    live("old1", "1.0.0")
    live("new2", "1.1.0")
    client.force_login(member("ann", "auditors"))

    page = client.get("/admin/releases/build/").content.decode()

    feed = client.get("/update/latest.yml")
    assert b"version: 1.1.0" in feed.content
    row = page.split('class="served-windows"', 1)[1].split("</tr>", 1)[0]
    assert ">new2</a>" in row and "1.1.0" in row
    assert "<code>new2</code>" in page  # latestReleaseBuildId
    assert "production now" in client.get("/admin/").content.decode().lower()


def test_production_now_says_when_production_json_is_corrupt(client, fs_buckets):
    live("old1", "1.0.0")
    buckets.production(role="promoter").write_bytes("desktop-releases.json", b"{not json")
    client.force_login(member("ann", "auditors"))

    page = client.get("/admin/").content.decode()

    assert "desktop-releases.json in production is not valid JSON" in page


def test_the_review_page_shows_the_diff_and_warns_when_the_feed_goes_backwards(client, fs_buckets):
    live("new2", "1.1.0")
    stale = in_review("old1", "1.0.2")
    client.force_login(member("ann", "approvers"))

    page = page_of(client, stale)

    assert 'id="downgrade-warning"' in page
    assert "windows: 1.1.0 → 1.0.2" in page
    assert "-  &quot;latestReleaseBuildId&quot;: &quot;new2&quot;" in page
    assert "+  &quot;latestReleaseBuildId&quot;: &quot;old1&quot;" in page
    assert page.index('id="summary"') < page.index('id="changes"') < page.index('id="timeline"')


def test_a_newer_release_shows_no_downgrade_warning(client, fs_buckets):
    live("old1", "1.0.0")
    newer = in_review("new2", "1.1.0")
    client.force_login(member("ann", "approvers"))

    assert 'id="downgrade-warning"' not in page_of(client, newer)


def test_mismatched_files_come_first_in_red_with_their_hashes(client, fs_buckets):
    release = in_review("bad1", "1.0.0")
    BuildFile.objects.filter(build=release.build, name="latest-build-bad1.yml").update(
        verification="mismatch", verification_detail="sha512 expected AAAA, got BBBB"
    )
    client.force_login(member("ann", "approvers"))

    page = page_of(client, release)

    assert '<tr class="mismatch">' in page and "sha512 expected AAAA, got BBBB" in page
    assert "1 mismatched" in page


def test_approve_with_a_comment_on_the_page(client, fs_buckets, django_capture_on_commit_callbacks):
    release = in_review("new2", "1.1.0")
    client.force_login(member("ann", "approvers"))

    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            f"/admin/releases/releaserequest/{release.pk}/decide/",
            {"decision": "approve", "comment": "checked the notarisation"},
        )

    release.refresh_from_db()
    assert release.state == ReleaseState.LIVE
    event = AuditEvent.objects.get(kind="review.approved")
    assert event.actor == "ann" and event.data == {"comment": "checked the notarisation"}


def test_reject_needs_a_reason_and_a_confirmation(client, fs_buckets):
    release = in_review("new2", "1.1.0")
    client.force_login(member("ann", "approvers"))
    url = f"/admin/releases/releaserequest/{release.pk}/decide/"

    asked = client.post(url, {"decision": "reject", "comment": "broken icon"})
    no_reason = client.post(url, {"decision": "reject", "comment": " ", "confirm": "yes"})

    assert "Yes, reject" in asked.content.decode()
    assert "not recorded: a reason is required to reject" in " ".join(
        map(str, no_reason.wsgi_request._messages)
    )
    release.refresh_from_db()
    assert release.state == ReleaseState.IN_REVIEW and not Approval.objects.exists()

    client.post(url, {"decision": "reject", "comment": "broken icon", "confirm": "yes"})
    release.refresh_from_db()
    assert release.state == ReleaseState.REJECTED
    assert AuditEvent.objects.get(kind="review.rejected").data == {"comment": "broken icon"}


def test_the_same_person_approving_twice_is_refused_and_writes_nothing(settings, fs_buckets):
    settings.REQUIRED_APPROVALS = 2
    release = in_review("new2", "1.1.0")
    ann = member("ann", "approvers")
    release_decide(release=release, user=ann, approve=True)
    ann_api = api(ann)
    events = AuditEvent.objects.count()

    with pytest.raises(DecisionRefused, match="ann already approved it"):
        release_decide(release=release, user=ann, approve=True)

    answer = ann_api.post(f"/api/releases/{release.pk}/approve/", {}, format="json")
    assert answer.status_code == 409 and "already approved" in answer.json()["error"]
    assert AuditEvent.objects.count() == events and Approval.objects.count() == 1


def test_the_requester_of_a_rollback_cannot_approve_it_but_another_person_can(
    fs_buckets, django_capture_on_commit_callbacks, client
):
    old = live("old1", "1.0.0")
    live("new2", "1.1.0")
    mona = member("mona", "release managers")
    rollback = rollback_open(build=old, actor="mona")

    answer = api(mona).post(f"/api/releases/{rollback.pk}/approve/", {}, format="json")
    client.force_login(mona)
    page = page_of(client, rollback)

    assert answer.status_code == 409 and "two-person rule" in answer.json()["error"]
    assert 'id="approve-button" disabled' in page and "two-person rule" in page
    assert not Approval.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        answer = api(member("ann", "approvers")).post(
            f"/api/releases/{rollback.pk}/approve/", {"comment": "ok"}, format="json"
        )
    assert answer.status_code == 200 and answer.json()["outcome"] == "approved"
    rollback.refresh_from_db()
    assert rollback.state == ReleaseState.LIVE and rollback.requested_by == "mona"


def test_whoever_retried_a_release_cannot_approve_it(fs_buckets):
    release = in_review("new2", "1.1.0")
    AuditEvent.objects.none()  # retried by mona (the event is what the retry services write)
    from releases.services.audit import audit_record

    audit_record(kind="review.retry", message="review retry requested", actor="mona",
                 release=release)  # fmt: skip
    with pytest.raises(DecisionRefused, match="two-person rule"):
        release_decide(release=release, user=member("mona", "release managers"), approve=True)


def test_a_person_who_staged_by_hand_with_manage_py_cannot_approve(fs_buckets):
    release = in_review("new2", "1.1.0", requested_by="mona (manage.py stage)")
    with pytest.raises(DecisionRefused, match="two-person rule"):
        release_decide(release=release, user=member("mona", "approvers"), approve=True)


def test_in_github_mode_the_page_links_to_the_pull_request_and_offers_no_decision(
    client, settings, fs_buckets
):
    release = in_review("new2", "1.1.0", pr_number=7, pr_url="https://github.com/o/r/pull/7")
    settings.REVIEW_BACKEND = "github"
    ann = member("ann", "approvers")
    client.force_login(ann)

    page = page_of(client, release)
    answer = api(ann).post(f"/api/releases/{release.pk}/approve/", {}, format="json")

    assert 'id="approve-button"' not in page and 'id="reject-button"' not in page
    assert 'Decide on <a href="https://github.com/o/r/pull/7"' in page
    assert answer.status_code == 409 and "GitHub" in answer.json()["error"]


def test_the_api_refuses_a_decision_without_the_permission_and_a_reject_without_reason(
    fs_buckets,
):
    release = in_review("new2", "1.1.0")
    auditor_answer = api(member("ann", "auditors")).post(
        f"/api/releases/{release.pk}/approve/", {}, format="json"
    )
    no_reason = api(member("bob", "approvers")).post(
        f"/api/releases/{release.pk}/reject/", {"comment": ""}, format="json"
    )
    assert auditor_answer.status_code == 403
    assert no_reason.status_code == 400 and no_reason.json() == {
        "error": "a reason is required to reject"
    }
    assert not Approval.objects.exists()
    assert not AuditEvent.objects.filter(kind__startswith="review.").exists()


def test_a_reconcile_a_person_asks_for_is_recorded_with_them_even_in_sync(
    fs_buckets, django_capture_on_commit_callbacks
):
    live("old1", "1.0.0")
    manager = api(member("mona", "release managers"))

    with django_capture_on_commit_callbacks(execute=True):
        assert manager.post("/api/reconcile/").status_code == 202

    assert AuditEvent.objects.get(kind="reconcile.requested").actor == "mona"
    in_sync = AuditEvent.objects.get(kind="reconcile.in_sync")
    assert in_sync.actor == "mona" and "already matches" in in_sync.message


def test_the_review_diff_matches_what_promotion_then_writes(fs_buckets):
    live("old1", "1.0.0")
    release = in_review("new2", "1.1.0")
    from releases.selectors import release_preview

    preview = release_preview(release=release)
    release_decide(release=release, user=member("ann", "approvers"), approve=True)
    call_command("reconcile", stdout=StringIO())

    after = json.loads(buckets.production().read_bytes("desktop-releases.json"))
    added = [line[1:] for line in preview.files[0].lines if line.startswith("+ ")]
    assert after == {"latestReleaseBuildId": "new2"} and any("new2" in line for line in added)
    # The rule names no platform: every channel resolves to new2 (mac and linux would 404).
    assert [s.build_id for s in preview.after] == ["new2", "new2", "new2"]

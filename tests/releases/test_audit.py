"""The audit trail is append-only and its hash chain exposes edits made behind the ORM."""

from __future__ import annotations

import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections

from releases.models import AppendOnlyError, AuditEvent
from releases.services.audit import audit_record, audit_verify
from tests.factories import make_build

pytestmark = pytest.mark.django_db


def _three_events():
    build = make_build()
    return [
        audit_record(kind="webhook.received", message="release webhook accepted", build=build),
        audit_record(kind="file.staged", message="staged a.exe", build=build, data={"size": 3}),
        audit_record(
            kind="build.staged", message="all files verified", build=build, actor="worker"
        ),
    ]


def test_events_chain_each_to_the_previous_one():
    first, second, third = _three_events()
    assert [e.sequence for e in (first, second, third)] == [1, 2, 3]
    assert second.previous_hash == first.hash
    assert third.previous_hash == second.hash
    assert len({first.hash, second.hash, third.hash}) == 3
    assert audit_verify().ok


def test_an_event_cannot_be_saved_again_through_the_orm():
    event = _three_events()[0]
    event.message = "something else"
    with pytest.raises(AppendOnlyError):
        event.save()
    assert AuditEvent.objects.get(pk=event.pk).message == "release webhook accepted"


def test_an_event_cannot_be_deleted_through_the_orm():
    event = _three_events()[0]
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().update(message="rewritten")
    assert AuditEvent.objects.count() == 3


def test_the_chain_check_detects_a_row_edited_with_raw_sql():
    _three_events()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE releases_auditevent SET message = %s WHERE sequence = %s", ["forged", 2]
        )
    report = audit_verify()
    assert not report.ok
    assert report.problems == ["event #2: content does not match its hash"]


def test_the_chain_check_detects_a_row_removed_with_raw_sql():
    _three_events()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM releases_auditevent WHERE sequence = 2")
    report = audit_verify()
    assert "event #2 is missing (next is #3)" in report.problems
    assert "event #3: link to the previous event is broken" in report.problems


def test_the_chain_check_detects_the_last_rows_removed():
    _three_events()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM releases_auditevent WHERE sequence = 3")
    report = audit_verify()
    assert report.problems == ["the chain head is #3 but the last event is #2"]


def test_a_rehashed_forgery_still_breaks_the_link_to_the_next_event():
    events = _three_events()
    forged = AuditEvent.objects.get(sequence=2)
    forged.message = "forged"
    new_hash = forged.compute_hash()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE releases_auditevent SET message = %s, hash = %s WHERE sequence = 2",
            ["forged", new_hash],
        )
    report = audit_verify()
    assert report.problems == ["event #3: link to the previous event is broken"]
    assert events[2].previous_hash != new_hash


def test_the_management_command_reports_an_intact_and_a_broken_chain(capsys):
    _three_events()
    call_command("audit_verify")
    assert "audit chain intact: 3 events" in capsys.readouterr().out
    with connection.cursor() as cursor:
        cursor.execute("UPDATE releases_auditevent SET actor = 'mallory' WHERE sequence = 3")
    with pytest.raises(CommandError, match="audit chain broken: 1 problem"):
        call_command("audit_verify")
    assert "event #3: content does not match its hash" in capsys.readouterr().err


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_fork_the_chain():
    build = make_build()
    errors = []

    def write(n):
        try:
            for i in range(10):
                audit_record(kind="test", message=f"writer {n} event {i}", build=build)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert AuditEvent.objects.count() == 40
    report = audit_verify()
    assert report.ok, report.problems


def test_a_chain_head_set_back_behind_the_events_does_not_stop_appends():
    """An older copy of the head's row restored (a fixture, a partial restore) while the events
    stay: the next event chains onto the last stored one instead of colliding with it."""
    first, second, third = _three_events()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE releases_auditchainhead SET sequence = 1, hash = %s", [first.hash])
    fourth = audit_record(kind="build.live", message="live")
    assert (fourth.sequence, fourth.previous_hash) == (4, third.hash)
    assert audit_verify().ok
    # The discrepancy stays in the trail, covered by the event's hash.
    assert fourth.data["chain_head_behind"] == {"head": 1, "last": 3}
    assert audit_record(kind="build.live", message="again").data == {}

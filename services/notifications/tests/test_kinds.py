"""A kind of message is one entry in one registry (domain/kinds.py): a made-up one, added
by that entry alone at test time, is planned on the event it names, sent with the wording
its entry names, listed in the delivery log and accepted as a `kind` filter. And the planner
depends on the events only: rebuilt, it plans what the live one planned."""

import time
from datetime import UTC, datetime, timedelta

import pytest

from services.notifications.domain import KINDS, Facts, Kind, plans
from services.notifications.projections import Planner
from shared.consumer import ProjectionRunner, rebuild
from testkit.plugin import Workers

from .conftest import notification_events, wait


def _nudge(facts: Facts) -> list[dict]:
    """After an attended session, a nudge towards the week's homework."""
    d = facts.data
    return plans.to_client(
        "homework_nudge",
        f"nudge:{d['session_id']}",
        facts.contact,
        facts.now,
        client_id=d["client_id"],
        therapist_id=d["therapist_id"],
        refs={"session_id": d["session_id"]},
        context={"due_at": d["starts_at"] + timedelta(days=7)},
    )


NUDGE = Kind("homework_nudge", "task_reminder", {"SessionAttended": _nudge})


@pytest.fixture
def made_up_kind(monkeypatch):
    """One registry entry, removed again after the test."""
    monkeypatch.setitem(KINDS, NUDGE.name, NUDGE)
    return NUDGE


def test_a_new_kind_is_one_registry_entry(
    made_up_kind, running_service, nsettings, feed, mail, book, api, auth_header
):
    feed.therapist()
    feed.client(channels=("email",))
    # the session's topic is not the client's: let the planner know the client first
    lead = auth_header("clinical_lead")
    wait(lambda: api.get("/clients/c1/preferences", headers=lead).status_code == 200)
    starts = datetime.now(UTC) - timedelta(hours=1)
    feed(
        "scheduling",
        "session-s9",
        "SessionAttended",
        session_id="s9",
        client_id="c1",
        therapist_id="t1",
        starts_at=starts,
        ends_at=starts + timedelta(minutes=50),
        kind="treatment",
    )
    key = "nudge:s9:email"
    wait(lambda: (book.find_one({"_id": key}) or {}).get("status") == "sent")
    [sent] = mail.to("c1@client.test")
    assert sent["Subject"].startswith("A reminder from") and "before" in sent.get_content()
    wait(lambda: "NotificationSent" in notification_events(nsettings, key))

    logged = api.get("/notifications?kind=homework_nudge", headers=auth_header("admin"))
    assert logged.status_code == 200 and [m["id"] for m in logged.json] == [key]
    unknown = api.get("/notifications?kind=no_such_kind", headers=auth_header("admin"))
    assert unknown.status_code == 422


def test_an_unregistered_kind_is_refused_naming_the_field(api, auth_header):
    r = api.get("/scheduled?kind=homework_nudge", headers=auth_header("clinical_lead"))
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "query.kind"


def test_a_rebuilt_planner_plans_what_the_live_one_planned(nsettings, feed, book):
    """Issue 16: the homework reminder was planned with the clock's "now", so a rebuild gave
    a reminder due inside the lead time a later due time than the live projection had."""
    feed.therapist()
    feed.client(channels=("email",))
    feed(
        "records",
        "client-c1",
        "TaskAssigned",
        client_id="c1",
        task_id="k1",
        description="call my sister",
        due_at=datetime.now(UTC) + timedelta(hours=3),  # inside the 24 h lead: due at once
        session_id=None,
    )
    live = Workers().start(*feed.relays(), ProjectionRunner(nsettings, Planner()).run)
    try:
        wait(lambda: book.find_one({"_id": "task:k1:email"}))
    finally:
        live.close()
    planned = _planning(book)
    time.sleep(1.5)  # a clock read during the rebuild would now differ
    rebuild(nsettings, Planner())
    assert _planning(book) == planned


def _planning(book) -> list[dict]:
    fields = {"_id": 1, "kind": 1, "status": 1, "due_at": 1, "next_at": 1, "as_of": 1}
    return list(book.find({}, fields).sort("_id", 1))

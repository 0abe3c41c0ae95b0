"""Service tier: the planner and dispatcher against the real broker, store and SMTP server."""

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from services.notifications.application import book as states
from services.notifications.application.book import forget_client
from services.notifications.workers.dispatcher import Dispatcher
from shared.crypto import cipher_for
from testkit.plugin import service_workers

from .conftest import LEAD_EMAIL, notification_events, wait


def subjects(mail, address):
    return [m["Subject"] for m in mail.to(address)]


def test_booking_confirms_and_reminds_rescheduling_moves_the_reminder_cancelling_voids_it(
    running_service, feed, mail, sms, api, auth_header, book, nsettings
):
    feed.therapist()
    feed.client()
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    feed.booked(starts=starts)
    wait(
        lambda: any("is booked" in s for s in subjects(mail, "c1@client.test")),
        message="confirmation",
    )
    wait(lambda: len(sms.delivered) == 1, message="SMS confirmation")
    assert "meet.test/room-s1" in mail.to("c1@client.test")[0].get_content()

    scheduled = api.get("/scheduled?kind=reminder", headers=auth_header("admin")).json
    assert {(n["channel"], n["due_at"]) for n in scheduled} == {
        (ch, (starts - timedelta(hours=24)).isoformat()) for ch in ("email", "sms")
    }

    moved = starts + timedelta(days=1)
    feed.rescheduled(starts, moved, modality="face_to_face", room="Room 2")

    def reminder_moved():
        due = {
            n["due_at"]
            for n in api.get("/scheduled?kind=reminder", headers=auth_header("admin")).json
        }
        return due == {(moved - timedelta(hours=24)).isoformat()}

    wait(reminder_moved, message="reminder moved with the session")
    wait(lambda: any("has moved" in s for s in subjects(mail, "c1@client.test")), message="notice")
    assert "Room 2" in mail.to("c1@client.test")[-1].get_content()

    feed(
        "scheduling",
        "session-s1",
        "SessionCancelled",
        session_id="s1",
        client_id="c1",
        therapist_id="t1",
        starts_at=moved,
        ends_at=moved + timedelta(minutes=50),
        by="client",
        reason="unwell",
        late=False,
    )

    def scheduled_now():
        return [
            (n["kind"], n["channel"], n["status"], n["due_at"])
            for n in api.get("/scheduled", headers=auth_header("admin")).json
        ]

    wait(
        lambda: not scheduled_now(),
        message="voided",
        describe=lambda: (scheduled_now(), running_service.alive()),
    )
    wait(lambda: any("is cancelled" in s for s in subjects(mail, "c1@client.test")))
    voided = api.get(
        "/notifications?status=voided&kind=reminder", headers=auth_header("clinical_lead")
    ).json
    assert len(voided) == 4 and {n["void_reason"] for n in voided} == {
        "appointment rescheduled",
        "appointment cancelled",
    }
    key = f"reminder:s1:{moved.strftime('%Y%m%dT%H%MZ')}:email"
    wait(
        lambda: (
            notification_events(nsettings, key) == ["NotificationScheduled", "NotificationVoided"]
        )
    )


def test_a_reminder_goes_when_due_with_the_video_link(running_service, feed, mail):
    feed.therapist()
    feed.client(channels=("email",))
    # booked three hours ahead: inside the 24 h lead time, so the reminder is due at once
    feed.booked(starts=datetime.now(UTC) + timedelta(hours=3))
    wait(lambda: any(s.startswith("Reminder") for s in subjects(mail, "c1@client.test")))
    reminder = next(m for m in mail.to("c1@client.test") if m["Subject"].startswith("Reminder"))
    assert "By video: https://meet.test/room-s1" in reminder.get_content()


def test_a_risk_answer_reaches_therapist_and_lead_by_email_and_inbox_within_seconds(
    running_service, feed, mail, api, auth_header, nsettings, monkeypatch
):
    feed.therapist(email="dr.a@practice.test")
    feed.client()
    wait(
        lambda: api.get("/clients/c1/preferences", headers=auth_header("admin")).status_code == 200
    )
    # in the middle of the practice's quiet hours: they never hold back a risk alert
    now = datetime.now(ZoneInfo("Europe/London"))
    quiet = f"{(now - timedelta(hours=1)):%H:%M}-{(now + timedelta(hours=1)):%H:%M}"
    monkeypatch.setenv("RAPPORT_QUIET_HOURS", quiet)
    feed.risk()
    wait(
        lambda: mail.to("dr.a@practice.test") and mail.to(LEAD_EMAIL),
        timeout=20,
        message="both mailboxes",
    )
    assert mail.to(LEAD_EMAIL)[0]["Subject"].startswith("Risk alert")
    # defect 10 (issue 13): staff are told whom it is about and where the record is, but the
    # clinical detail stays in the portal
    for message in (mail.to(LEAD_EMAIL)[0], mail.to("dr.a@practice.test")[0]):
        body = message.get_content()
        assert "Emma Example" in body and "Client reference" not in body
        assert "Record: https://portal.practice.test/clients/c1" in body
        assert "PHQ-9" not in body and "item 9" not in body and "Emma" not in message["Subject"]

    mine = wait(lambda: api.get("/inbox", headers=auth_header("therapist", therapist_id="t1")).json)
    assert mine[0]["client_name"] == "Emma Example" and mine[0]["details"]["item"] == 9
    lead = wait(lambda: api.get("/inbox", headers=auth_header("clinical_lead")).json)
    assert lead[0]["alert_id"] == "a1"
    assert api.get("/inbox", headers=auth_header("therapist", therapist_id="t2")).json == []
    assert api.get("/inbox", headers=auth_header("admin")).status_code == 403
    assert api.get("/notifications?kind=risk_alert", headers=auth_header("admin")).json == []

    r = api.post(
        f"/inbox/{mine[0]['id']}/read", headers=auth_header("therapist", therapist_id="t1")
    )
    assert r.status_code == 200 and r.json["read_at"]
    assert (
        api.get("/inbox?unread=true", headers=auth_header("therapist", therapist_id="t1")).json
        == []
    )
    assert api.get(
        "/inbox?unread=true", headers=auth_header("clinical_lead")
    ).json  # the lead's is unread
    other = api.post(
        f"/inbox/{mine[0]['id']}/read", headers=auth_header("therapist", therapist_id="t2")
    )
    assert other.status_code == 404


def test_a_questionnaire_link_is_fetched_at_send_time_and_never_stored(
    running_service, feed, mail, sms, measures, book, nsettings
):
    feed.therapist()
    feed.client()
    now = datetime.now(UTC)
    feed(
        "measures",
        "request-q1",
        "QuestionnaireRequested",
        request_id="q1",
        client_id="c1",
        therapist_id="t1",
        session_id="s1",
        instruments=["PHQ-9", "GAD-7"],
        due_at=now,
        session_starts_at=now + timedelta(days=1),
        expires_at=now + timedelta(days=1),
    )
    wait(lambda: mail.to("c1@client.test") and sms.delivered, message="link sent")
    issued = {url: rid for rid, url in measures.issued}
    assert len(measures.issued) == 2  # one fresh link per message, fetched when it went
    email_url = next(u for u in issued if u in mail.to("c1@client.test")[0].get_content())
    assert "short form" in mail.to("c1@client.test")[0]["Subject"]
    assert any(u in sms.delivered[0]["body"] for u in issued) and issued[email_url] == "q1"
    stored = repr(list(book.database["messages"].find())) + repr(
        list(book.database["events"].find())
    )
    assert "forms.test" not in stored

    # staff resent it: a fresh link on each of the client's channels, at once
    feed(
        "measures",
        "request-q1",
        "QuestionnaireResent",
        request_id="q1",
        client_id="c1",
        therapist_id="t1",
        resend=1,
        resent_at=datetime.now(UTC),
        session_starts_at=now + timedelta(days=1),
        expires_at=now + timedelta(days=1),
    )
    wait(
        lambda: len(mail.to("c1@client.test")) == 2 and len(sms.delivered) == 2,
        message="link resent",
    )
    wait(
        lambda: book.count_documents({"request_id": "q1", "status": "sent"}) == 4,
        message="resend recorded",
    )
    assert len(measures.issued) == 4 and all(rid == "q1" for rid, _ in measures.issued)

    # withdrawn before it is due: voided, measures never asked
    feed(
        "measures",
        "request-q2",
        "QuestionnaireRequested",
        request_id="q2",
        client_id="c1",
        therapist_id="t1",
        session_id="s2",
        instruments=["PHQ-9"],
        due_at=now + timedelta(hours=5),
        session_starts_at=now + timedelta(days=1),
        expires_at=now + timedelta(days=1),
    )
    wait(lambda: book.count_documents({"request_id": "q2"}) == 2)
    feed(
        "measures",
        "request-q2",
        "QuestionnaireWithdrawn",
        request_id="q2",
        client_id="c1",
        reason="session cancelled",
    )
    wait(lambda: book.count_documents({"request_id": "q2", "status": "voided"}) == 2)

    # withdrawn at measures but the event not seen yet: measures answers 410 at send time
    measures.withdrawn.add("q3")
    feed(
        "measures",
        "request-q3",
        "QuestionnaireRequested",
        request_id="q3",
        client_id="c1",
        therapist_id="t1",
        session_id="s3",
        instruments=["PHQ-9"],
        due_at=now,
        session_starts_at=now + timedelta(days=1),
        expires_at=now + timedelta(days=1),
    )
    wait(lambda: book.count_documents({"request_id": "q3", "status": "voided"}) == 2)
    assert all(rid != "q2" for rid, _ in measures.issued)


def test_homework_reminders_and_booster_invitations_go_and_discharge_voids_what_is_pending(
    running_service, feed, mail, book
):
    feed.therapist()
    feed.client(channels=("email",))
    now = datetime.now(UTC)
    feed(
        "records",
        "client-c1",
        "TaskAssigned",
        client_id="c1",
        task_id="k1",
        description="call my sister",
        due_at=now + timedelta(hours=3),
        session_id=None,
    )
    wait(lambda: any("reminder from" in s for s in subjects(mail, "c1@client.test")))
    assert "sister" not in mail.to("c1@client.test")[0].get_content()

    first = now + timedelta(days=60)
    feed.booked(sid="b1", starts=first, kind="booster", plan_id="p1")
    feed(
        "scheduling",
        "boosters-c1",
        "BoostersPlanned",
        client_id="c1",
        therapist_id="t1",
        session_ids=["b1"],
        count=1,
        interval_months=2,
        plan_id="p1",
    )
    wait(lambda: any("follow-up" in s for s in subjects(mail, "c1@client.test")))
    invitation = next(m for m in mail.to("c1@client.test") if "follow-up" in m["Subject"])
    assert (
        first.astimezone(ZoneInfo("Europe/London")).strftime("%A %-d %B %Y at %H:%M")
        in invitation.get_content()
    )
    assert not any(
        "is booked" in s for s in subjects(mail, "c1@client.test")
    )  # no single confirmation
    wait(
        lambda: (
            book.count_documents({"session_id": "b1", "kind": "reminder", "status": "pending"}) == 1
        )
    )

    feed(
        "records",
        "client-c1",
        "ClientDischarged",
        client_id="c1",
        therapist_id="t1",
        reason="ended",
        outcome_summary="well",
        discharged_at=now,
    )
    wait(lambda: book.count_documents({"session_id": "b1", "status": "voided"}) == 1)


def test_a_booster_booked_on_its_own_is_confirmed_like_any_session(running_service, feed, mail):
    # issue 13: a booster booked from the portal (one at a time) sent the client nothing
    feed.therapist()
    feed.client(channels=("email",))
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=60)
    feed.booked(sid="b9", starts=starts, kind="booster")
    wait(
        lambda: any("is booked" in s for s in subjects(mail, "c1@client.test")),
        message="booster confirmation",
    )
    body = mail.to("c1@client.test")[0].get_content()
    assert starts.astimezone(ZoneInfo("Europe/London")).strftime("%A %-d %B %Y at %H:%M") in body


def test_a_course_message_says_what_was_booked_not_what_was_asked_for(running_service, feed, mail):
    # issue 13, defect 11: "16 ... first 2 June" above a list of 10 dates from 14 July
    feed.therapist()
    feed.client(channels=("email", "sms"))
    asked = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    booked = [asked + timedelta(weeks=w) for w in range(6, 16)]  # the first six could not be booked
    for n, starts in enumerate(booked, start=7):
        feed.booked(sid=f"k1-{n:02d}", starts=starts, course_id="k1", number=n)
    feed(
        "scheduling",
        "course-k1",
        "CourseBooked",
        course_id="k1",
        client_id="c1",
        therapist_id="t1",
        session_ids=[f"k1-{n:02d}" for n in range(7, 17)],
        count=16,
        interval_weeks=1,
        first_starts_at=asked,
        unbooked=[
            {
                "number": n,
                "wanted_at": asked + timedelta(weeks=n - 1),
                "reason": "therapist on leave",
                "alternatives": [],
            }
            for n in range(1, 7)
        ],
    )
    wait(lambda: subjects(mail, "c1@client.test"), message="course summary")
    body = mail.to("c1@client.test")[0].get_content()
    london = ZoneInfo("Europe/London")
    first = booked[0].astimezone(london).strftime("%A %-d %B %Y at %H:%M")
    assert "We have booked 10 appointments" in body and f"The first is on {first}." in body, body
    assert "16 appointments" not in body
    assert body.count(" at ") >= 11  # ten dates listed, and the first again above them


def test_an_alert_written_to_the_inbox_as_its_client_is_disposed_of_is_taken_back(
    nsettings, feed, mail, book, workers, monkeypatch
):
    """A disposal between a dispatcher's claim of a risk alert and its write to the staff
    inbox (CI, session 28): the sweep deleted the client's inbox items before the item was
    written, and the answer stayed readable. The item written after the key was destroyed is
    taken back and the message voided."""
    workers.start(*feed.relays(), *service_workers(nsettings, "notifications", loops=False))
    feed.therapist(email="dr.a@practice.test")
    feed.client()
    feed.risk()
    inbox = {"kind": "risk_alert", "channel": "inbox"}
    wait(lambda: book.count_documents(inbox) == 2, message="the alerts planned")
    lane = Dispatcher(nsettings, urgent_only=True)
    lane._setup()
    compose, swept, once = lane.delivery.compose, [], threading.Lock()

    def disposed_meanwhile(message, directory):
        made = compose(message, directory)
        if message["channel"] == "inbox":  # the disposal and its sweep, after the claim
            with once:
                if not swept:
                    cipher_for(nsettings).keys.destroy("c1")
                    forget_client(book.database, "c1")
                swept.append(message["_id"])
        return made

    monkeypatch.setattr(lane.delivery, "compose", disposed_meanwhile)
    while lane.step():
        pass
    assert len(swept) == 2
    assert book.database["inbox"].count_documents({}) == 0
    assert {m["status"] for m in book.find(inbox)} == {states.VOIDED}
    assert wait(lambda: mail.to(LEAD_EMAIL), message="the lead's email still went")

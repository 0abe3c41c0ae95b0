"""Scheduling end to end within the service, on the real local broker and store: records'
events reach the client directory over Kafka, sessions are booked, moved, cancelled,
attended and missed through HTTP, and the diary projection follows; a discharge cancels
the client's future sessions exactly once."""

from __future__ import annotations

from datetime import timedelta

from services.scheduling.projections import Discharges, directory
from services.scheduling.workers import make_canceller
from shared.consumer import ProjectionRunner
from shared.run import make_relay
from shared.web import ServiceContext
from testkit.plugin import eventually, running, service_workers

from .conftest import at, discharge_client, monday, register_client


def start_workers(settings, workers):
    workers.start(make_relay(settings, "records").run, *service_workers(settings, "scheduling"))


def wait_for_clients(settings, count):
    clients = ServiceContext("scheduling", settings).projection(directory()).reader("clients")
    eventually(lambda: clients.count_documents({}) == count, timeout=60, message="directory filled")


def post(client, url, headers, **body):
    r = client.post(url, headers=headers, json=body)
    assert r.status_code in (200, 201), (url, r.status_code, r.json)
    return r.json


def test_booking_moving_cancelling_attending_and_missing_and_the_diary_follows(
    client, settings, auth_header, therapist, clock, workers
):
    therapist()
    register_client(settings, "c1", "t1", "Emma", "Stone")
    register_client(settings, "c2", "t1", "John", "Hale")
    start_workers(settings, workers)
    wait_for_clients(settings, 2)
    admin, mine = auth_header("admin"), auth_header("therapist", therapist_id="t1")
    first = monday()
    video = {"kind": "treatment", "modality": "video", "therapist_id": "t1"}
    a = post(
        client, "/sessions", admin, client_id="c1", starts_at=at(first, 10).isoformat(), **video
    )["session_id"]
    b = post(
        client,
        "/sessions",
        admin,
        client_id="c2",
        starts_at=at(first, 11).isoformat(),
        kind="assessment",
        therapist_id="t1",
        modality="face_to_face",
        room="Room 1",
    )["session_id"]
    c = post(
        client,
        "/sessions",
        mine,
        client_id="c1",
        starts_at=at(first + timedelta(days=1), 10).isoformat(),
        **video,
    )["session_id"]

    wednesday = at(first + timedelta(days=2), 14)
    moved = post(
        client,
        f"/sessions/{a}/reschedule",
        mine,
        starts_at=wednesday.isoformat(),
        reason="school run",
    )
    assert moved["starts_at"] == wednesday.isoformat()
    cancelled = post(client, f"/sessions/{b}/cancel", admin, by="client", reason="unwell")
    assert cancelled["status"] == "cancelled" and cancelled["late"] is False
    r = client.post(f"/sessions/{c}/attend", headers=mine)
    assert r.status_code == 409 and "not started" in r.json["detail"]

    clock.move_past(wednesday + timedelta(minutes=50))
    assert post(client, f"/sessions/{a}/attend", mine)["status"] == "attended"
    assert post(client, f"/sessions/{c}/miss", mine)["status"] == "missed"
    r = client.post(
        f"/sessions/{a}/reschedule", headers=mine, json={"starts_at": at(first, 15).isoformat()}
    )
    assert r.status_code == 409 and "attended" in r.json["detail"]
    assert client.post(f"/sessions/{b}/attend", headers=mine).status_code == 409

    def diary():
        r = client.get(f"/therapists/t1/diary?date={first}&view=week", headers=mine)
        assert r.status_code == 200, r.json
        statuses = {s["session_id"]: s["status"] for s in r.json["sessions"]}
        return r.json if statuses == {a: "attended", b: "cancelled", c: "missed"} else None

    week = eventually(diary, timeout=60, message="diary follows the events")
    entry = {s["session_id"]: s for s in week["sessions"]}
    assert (
        entry[a]["starts_at"] == wednesday.isoformat() and entry[a]["client_name"] == "Emma Stone"
    )
    assert entry[b]["room"] == "Room 1" and entry[b]["cancelled_by"] == "client"
    assert [s["session_id"] for s in week["sessions"]] == [b, c, a]  # in time order

    day = client.get(f"/therapists/t1/diary?date={first}", headers=admin).json
    assert [s["session_id"] for s in day["sessions"]] == [b]
    mine_c1 = client.get("/clients/c1/sessions", headers=mine).json
    assert {s["session_id"] for s in mine_c1} == {a, c}

    use = client.get(
        f"/therapists/t1/utilisation?from={first}&to={first + timedelta(days=4)}", headers=admin
    ).json
    assert use["available_hours"] == 40 and use["booked_hours"] == round(100 / 60, 2)
    assert (
        use["dna_rate"] == 0.5 and use["cancellations"] == 1 and use["late_cancellation_rate"] == 0
    )
    check_calendar_feed(client, auth_header, a, b)
    listed = eventually(
        lambda: client.get("/therapists", headers=admin).json, message="therapists listed"
    )
    assert listed[0]["therapist_id"] == "t1" and listed[0]["weekly_hours"][0]["start"] == "09:00"


def check_calendar_feed(client, auth_header, attended_id, cancelled_id):
    mine = auth_header("therapist", therapist_id="t1")
    assert (
        client.post(
            "/therapists/t1/calendar-token", headers=auth_header("therapist", therapist_id="t2")
        ).status_code
        == 403
    )
    issued = client.post("/therapists/t1/calendar-token", headers=mine)
    assert issued.status_code == 201
    feed = client.get(issued.json["url"])
    assert feed.status_code == 200 and feed.mimetype == "text/calendar"
    text = feed.get_data(as_text=True).replace("\r\n ", "")
    assert f"UID:{attended_id}@scheduling.rapport" in text and "STATUS:CANCELLED" in text
    assert "– ES" in text and "Stone" not in text and "Hale" not in text  # initials only
    assert "DTSTART:" in text and "Z\r\n" in text  # UTC times
    assert client.get("/therapists/t1/calendar.ics?token=wrong").status_code == 404
    assert client.get("/therapists/t9/calendar.ics?token=wrong").status_code == 404
    # issue 15 (#16): nobody but the therapist mints their token (and so revokes their feed)
    for role in ("admin", "clinical_lead"):
        assert (
            client.post("/therapists/t1/calendar-token", headers=auth_header(role)).status_code
            == 403
        ), role
    assert client.get(issued.json["url"]).status_code == 200, (
        "the therapist's subscription still works"
    )
    client.post("/therapists/t1/calendar-token", headers=mine)
    assert client.get(issued.json["url"]).status_code == 404, "a new token revokes the old one"


def test_a_discharge_cancels_the_future_sessions_exactly_once(
    client, settings, auth_header, therapist, workers
):
    therapist()
    register_client(settings, "c1", "t1")
    register_client(settings, "c2", "t1", "John", "Hale")
    start_workers(settings, workers)
    wait_for_clients(settings, 2)
    admin = auth_header("admin")
    first = monday()
    course = post(
        client,
        "/courses",
        admin,
        client_id="c1",
        therapist_id="t1",
        modality="video",
        first_starts_at=at(first, 10).isoformat(),
        count=3,
    )
    ids = [s["session_id"] for s in course["sessions"]]
    other = post(
        client,
        "/sessions",
        admin,
        client_id="c2",
        therapist_id="t1",
        kind="treatment",
        modality="video",
        starts_at=at(first, 12).isoformat(),
    )["session_id"]

    discharge_client(settings, "c1", "t1")  # the running records relay publishes it

    def all_cancelled():
        states = [client.get(f"/sessions/{i}", headers=admin).json for i in ids]
        return all(s["status"] == "cancelled" and s["cancelled_by"] == "practice" for s in states)

    eventually(all_cancelled, timeout=60, message="future sessions cancelled by the practice")
    assert client.get(f"/sessions/{other}", headers=admin).json["status"] == "booked"

    store = ServiceContext("scheduling", settings).store
    cancellations = lambda: store.events.count_documents({"type": "SessionCancelled"})  # noqa: E731
    assert cancellations() == 3
    # run the work again, as after a crash before it was marked done: nothing more happens
    queue = ServiceContext("scheduling", settings).projection(Discharges()).reader("discharges")
    assert (
        queue.update_one({"client_id": "c1"}, {"$set": {"status": "pending"}}).modified_count == 1
    )
    assert make_canceller(settings).step() == 0
    assert cancellations() == 3
    r = client.post(
        "/sessions",
        headers=admin,
        json={
            "client_id": "c1",
            "therapist_id": "t1",
            "kind": "booster",
            "modality": "video",
            "starts_at": at(first + timedelta(weeks=8), 10).isoformat(),
        },
    )
    assert r.status_code == 409 and r.json["code"] == "client_discharged"


def test_a_discharge_of_a_client_disposed_of_meanwhile_is_closed_not_fatal(
    client, settings, auth_header, therapist, workers
):
    """Seen as a dead canceller thread in the disposal test: the client's key was destroyed
    (retention disposal) before their discharge was worked through."""
    from shared.crypto import cipher_for

    therapist()
    register_client(settings, "c1", "t1")
    start_workers(settings, workers)
    wait_for_clients(settings, 1)
    admin = auth_header("admin")
    first = monday()
    session = post(
        client,
        "/sessions",
        admin,
        client_id="c1",
        therapist_id="t1",
        kind="treatment",
        modality="video",
        starts_at=at(first, 10).isoformat(),
    )["session_id"]
    workers.close()  # no canceller running: the discharge waits in the queue
    discharge_client(settings, "c1", "t1")
    queue = ServiceContext("scheduling", settings).projection(Discharges())
    with running(make_relay(settings, "records").run, ProjectionRunner(settings, Discharges()).run):
        eventually(
            lambda: queue.reader("discharges").find_one({"client_id": "c1", "status": "pending"}),
            timeout=60,
            message="the discharge queued",
        )
    assert cipher_for(settings).keys.destroy("c1")
    assert make_canceller(settings).step() == 0
    job = queue.reader("discharges").find_one({"client_id": "c1"})
    assert job["status"] == "done" and job["outcome"] == "client disposed of"
    store = ServiceContext("scheduling", settings).store
    assert store.events.count_documents({"type": "SessionCancelled"}) == 0 and session


def test_a_discharge_keeps_the_clients_boosters_unless_staff_confirmed_their_cancelling(
    client, settings, auth_header, therapist, workers
):
    """Boosters are the client's choice (issue 17): a discharge that did not say
    `cancel_boosters` cancels the treatment sessions ahead and keeps the boosters; one that
    did cancels those too."""
    therapist()
    register_client(settings, "c1", "t1", "John", "Hale")
    register_client(settings, "c2", "t1", "Emma", "Wood")
    start_workers(settings, workers)
    wait_for_clients(settings, 2)
    admin, first = auth_header("admin"), monday()

    def book(client_id, kind, weeks, hour=10):
        return post(
            client,
            "/sessions",
            admin,
            client_id=client_id,
            therapist_id="t1",
            kind=kind,
            modality="video",
            starts_at=at(first + timedelta(weeks=weeks), hour).isoformat(),
        )["session_id"]

    treatment, booster = book("c1", "treatment", 0), book("c1", "booster", 8)
    confirmed = book("c2", "booster", 8, hour=12)

    discharge_client(settings, "c1", "t1")
    discharge_client(settings, "c2", "t1", cancel_boosters=True)

    def status(session_id):
        return client.get(f"/sessions/{session_id}", headers=admin).json["status"]

    eventually(
        lambda: status(treatment) == "cancelled" and status(confirmed) == "cancelled",
        timeout=60,
        message="the treatment session and the confirmed booster cancelled",
    )
    assert make_canceller(settings).step() == 0
    assert status(booster) == "booked", "a booster the client chose is not silently cancelled"

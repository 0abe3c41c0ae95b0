"""Scheduling's HTTP API on the real local store: validation, access, the double-booking
race, courses and slots. (The diary projection through the broker: test_service.py.)"""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path

from services.scheduling.domain import diary

from .conftest import apply_records_directly, at, discharge_client, monday, register_client


def booking(client_id="c1", therapist_id="t1", start=None, **extra):
    start = start or at(monday(), 10)
    return {
        "client_id": client_id,
        "therapist_id": therapist_id,
        "kind": "treatment",
        "modality": "video",
        "starts_at": start.isoformat(),
        **extra,
    }


def test_a_session_is_booked_with_a_location(client, settings, auth_header, therapist):
    therapist()
    register_client(settings, "c1", "t1")
    apply_records_directly(settings)
    r = client.post("/sessions", headers=auth_header("admin"), json=booking())
    assert r.status_code == 201, r.json
    assert r.headers["Location"] == f"/sessions/{r.json['session_id']}"
    assert r.json["ends_at"] == (at(monday(), 10) + timedelta(minutes=50)).isoformat()
    assert r.json["video_link"] is None, "reception is not given a link to the room"
    got = client.get(r.headers["Location"], headers=auth_header("therapist", therapist_id="t1"))
    assert got.status_code == 200 and got.json["status"] == "booked"
    assert got.json["video_link"].startswith("https://meet.rapport.test/"), "the therapist's own"
    assert (
        got.json["client_name"] == "Emma Stone"
    )  # issue 13, defect 8: the session page names the client


def test_bad_input_is_a_clear_problem_never_a_500(client, settings, auth_header, therapist):
    therapist()
    register_client(settings, "c1", "t1")
    apply_records_directly(settings)
    admin = auth_header("admin")
    r = client.post("/sessions", headers=admin, data="{oops", content_type="application/json")
    assert r.status_code == 400 and r.mimetype == "application/problem+json"
    r = client.post(
        "/sessions", headers=admin, json={"client_id": "c1", "starts_at": "2030-01-07T10:00:00"}
    )
    assert r.status_code == 422
    fields = {e["field"] for e in r.json["errors"]}
    assert {"therapist_id", "kind", "modality", "starts_at"} <= fields  # naive time refused too
    r = client.post("/sessions", headers=admin, json=booking(start=at(monday(), 10, 5)))
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "starts_at"
    r = client.post("/sessions", headers=admin, json=booking(modality="face_to_face"))
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "room"
    r = client.post("/sessions", headers=admin, json=booking(start=at(monday(), 7)))
    assert r.status_code == 409 and "working hours" in r.json["detail"]
    assert client.post("/sessions", json=booking()).status_code == 401
    assert (
        client.post(
            "/sessions/nope/cancel", headers=admin, json={"by": "client", "reason": "x"}
        ).status_code
        == 404
    )
    # found by the fuzzer: year 9999 overflowed the search window around the course (500)
    r = client.post(
        "/courses",
        headers=admin,
        json={
            "client_id": "c1",
            "therapist_id": "t1",
            "modality": "video",
            "count": 16,
            "first_starts_at": "9999-12-31T10:00:00+00:00",
        },
    )
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "first_starts_at"
    assert "between 2000-01-01 and 2099-12-31" in str(r.json["errors"][0])
    r = client.get("/slots?therapist_id=t1&from=0001-01-01&to=0001-01-02", headers=admin)
    assert r.status_code == 422, r.json


def test_unknown_and_discharged_clients_cannot_be_booked(client, settings, auth_header, therapist):
    therapist()
    register_client(settings, "c1", "t1")
    discharge_client(settings, "c1", "t1")
    apply_records_directly(settings)
    r = client.post("/sessions", headers=auth_header("admin"), json=booking(client_id="c9"))
    assert r.status_code == 404 and "register" in r.json["detail"]
    r = client.post("/sessions", headers=auth_header("admin"), json=booking())
    assert r.status_code == 409 and r.json["code"] == "client_discharged"


def test_a_therapist_reaches_only_their_own_diary(client, settings, auth_header, therapist):
    therapist("t1")
    therapist("t2", name="Bob Therapist", rooms=("Room 2",))
    register_client(settings, "c1", "t1")
    apply_records_directly(settings)
    other = auth_header("therapist", therapist_id="t2")
    assert client.post("/sessions", headers=other, json=booking()).status_code == 403
    assert (
        client.post("/sessions", headers=other, json=booking(therapist_id="t2")).status_code == 403
    )  # not their client
    r = client.post(
        "/sessions", headers=auth_header("therapist", therapist_id="t1"), json=booking()
    )
    assert r.status_code == 201
    sid = r.json["session_id"]
    assert client.get(f"/sessions/{sid}", headers=other).status_code == 403
    assert (
        client.post(
            f"/sessions/{sid}/cancel", headers=other, json={"by": "therapist", "reason": "x"}
        ).status_code
        == 403
    )
    assert client.get("/therapists/t1/diary?date=2030-01-07", headers=other).status_code == 403
    assert (
        client.put(
            "/therapists/t1/availability", headers=other, json={"weekly_hours": []}
        ).status_code
        == 403
    )
    assert client.post("/therapists", headers=other, json={}).status_code == 403


def test_the_same_slot_for_another_client_or_room_is_a_409_with_the_reason(
    client, settings, auth_header, therapist
):
    therapist("t1")
    therapist("t2", name="Bob Therapist", rooms=("Room 1",))
    for cid, tid in (("c1", "t1"), ("c2", "t1"), ("c3", "t2")):
        register_client(settings, cid, tid)
    apply_records_directly(settings)
    admin = auth_header("admin")
    in_room = {"modality": "face_to_face", "room": "Room 1"}
    assert client.post("/sessions", headers=admin, json=booking(**in_room)).status_code == 201
    r = client.post("/sessions", headers=admin, json=booking(client_id="c2"))
    assert (
        r.status_code == 409
        and r.json["detail"] == "the therapist already has a session at that time"
    )
    r = client.post(
        "/sessions", headers=admin, json=booking(client_id="c3", therapist_id="t2", **in_room)
    )
    assert r.status_code == 409 and "room Room 1" in r.json["detail"]
    r = client.post(
        "/sessions", headers=admin, json=booking(start=at(monday(), 10, 40) + timedelta(days=1))
    )
    assert r.status_code == 201
    r = client.post(
        "/sessions",
        headers=admin,
        json=booking(therapist_id="t1", client_id="c1", start=at(monday(), 10) + timedelta(days=1)),
    )
    assert r.status_code == 409, "a session from 10:00 overlaps the one from 10:40 by ten minutes"
    assert r.json["detail"] == "the therapist already has a session at that time"


def test_twenty_concurrent_bookings_of_one_slot_exactly_one_wins(
    app, settings, auth_header, therapist
):
    therapist()
    for n in range(20):
        register_client(settings, f"c{n}", "t1")
    apply_records_directly(settings)
    admin = auth_header("admin")
    start = at(monday(), 14)
    statuses, barrier = [], threading.Barrier(20)

    def attempt(n):
        client = app.test_client()
        barrier.wait()
        r = client.post("/sessions", headers=admin, json=booking(client_id=f"c{n}", start=start))
        statuses.append((r.status_code, r.json.get("detail")))

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(s for s, _ in statuses).count(201) == 1, statuses
    assert [s for s, _ in statuses].count(409) == 19, statuses
    assert {d for s, d in statuses if s == 409} == {
        "the therapist already has a session at that time"
    }
    claims = app.extensions["rapport"].db["slot_claims"]
    assert claims.count_documents({"scope": "therapist:t1"}) == 5  # one session's five buckets


def test_a_course_reports_what_it_could_not_book(client, settings, auth_header, therapist):
    first = monday()
    leave_day = first + timedelta(weeks=3)
    therapist(
        exceptions=[
            {
                "start_date": leave_day.isoformat(),
                "end_date": leave_day.isoformat(),
                "reason": "annual leave",
            }
        ]
    )
    register_client(settings, "c1", "t1")
    apply_records_directly(settings)
    admin = auth_header("admin")
    r = client.post(
        "/courses",
        headers=admin,
        json={
            "client_id": "c1",
            "therapist_id": "t1",
            "modality": "video",
            "first_starts_at": at(first, 10).isoformat(),
        },
    )
    assert r.status_code == 201, r.json
    assert len(r.json["sessions"]) == 15
    (gap,) = r.json["unbooked"]
    assert gap["number"] == 4 and "annual leave" in gap["reason"] and len(gap["alternatives"]) == 3
    assert [s["number"] for s in r.json["sessions"]] == [n for n in range(1, 17) if n != 4]
    # the course holds its slots: a single booking at session 2's time is refused
    clash = client.post(
        "/sessions", headers=admin, json=booking(start=at(first + timedelta(weeks=1), 10))
    )
    assert clash.status_code == 409
    # and the course's own alternative is free to book
    alt = client.post(
        "/sessions", headers=admin, json=booking(start=_parse(gap["alternatives"][0]))
    )
    assert alt.status_code == 201, alt.json


def _parse(text):
    from datetime import datetime

    return datetime.fromisoformat(text)


def test_free_slots_skip_booked_sessions_leave_and_taken_rooms(
    client, settings, auth_header, therapist
):
    first = monday()
    therapist(
        exceptions=[
            {
                "start_date": (first + timedelta(days=1)).isoformat(),
                "end_date": (first + timedelta(days=1)).isoformat(),
                "reason": "training",
            }
        ]
    )
    register_client(settings, "c1", "t1")
    apply_records_directly(settings)
    admin = auth_header("admin")
    assert (
        client.post("/sessions", headers=admin, json=booking(start=at(first, 11))).status_code
        == 201
    )
    r = client.get(
        f"/slots?therapist_id=t1&modality=face_to_face&from={first}&to={first + timedelta(days=1)}",
        headers=admin,
    )
    assert r.status_code == 200, r.json
    starts = [_parse(s["starts_at"]) for s in r.json]
    assert starts == [at(first, h) for h in (9, 10, 12, 13, 14, 15, 16)]  # Tuesday is training
    assert all(s["rooms"] == ["Room 1"] for s in r.json)
    r = client.get(
        f"/slots?therapist_id=t1&modality=video&from={first}&to={first - timedelta(days=1)}",
        headers=admin,
    )
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "query.to"


def test_the_committed_openapi_document_is_the_live_one(client):
    committed = json.loads((Path(__file__).parents[1] / "openapi.json").read_text())
    assert client.get("/openapi.json").json == committed


def test_a_failed_reschedule_changes_nothing_and_a_small_move_may_overlap_itself(
    client, settings, auth_header, therapist
):
    therapist()
    register_client(settings, "c1", "t1")
    register_client(settings, "c2", "t1")
    apply_records_directly(settings)
    admin = auth_header("admin")
    first = monday()
    assert (
        client.post("/sessions", headers=admin, json=booking(start=at(first, 10))).status_code
        == 201
    )
    b = client.post(
        "/sessions", headers=admin, json=booking(client_id="c2", start=at(first, 11))
    ).json["session_id"]
    r = client.post(
        f"/sessions/{b}/reschedule", headers=admin, json={"starts_at": at(first, 10).isoformat()}
    )
    assert r.status_code == 409 and "therapist already" in r.json["detail"]
    assert (
        client.get(f"/sessions/{b}", headers=admin).json["starts_at"] == at(first, 11).isoformat()
    )
    r = client.post(
        "/sessions", headers=admin, json=booking(client_id="c2", start=at(first, 11, 30))
    )
    assert r.status_code == 409, "the session kept its claims after the refused move"
    r = client.post(
        f"/sessions/{b}/reschedule",
        headers=admin,
        json={"starts_at": at(first, 11, 20).isoformat()},
    )
    assert r.status_code == 200 and r.json["starts_at"] == at(first, 11, 20).isoformat()
    r = client.post(
        "/sessions", headers=admin, json=booking(client_id="c2", start=at(first, 12, 10))
    )
    assert r.status_code == 201, "the move released 11:00-11:20 and holds 11:20-12:10"


def test_boosters_are_planned_every_two_months(client, settings, auth_header, therapist):
    therapist()
    register_client(settings, "c1", "t1")
    apply_records_directly(settings)
    first = monday(weeks_ahead=4)
    r = client.post(
        "/boosters",
        headers=auth_header("therapist", therapist_id="t1"),
        json={
            "client_id": "c1",
            "therapist_id": "t1",
            "modality": "telephone",
            "first_starts_at": at(first, 9).isoformat(),
            "count": 3,
        },
    )
    assert r.status_code == 201, r.json
    sessions = r.json["sessions"]
    assert [s["kind"] for s in sessions] == ["booster"] * 3 and r.json["unbooked"] == []
    gaps = [
        (_parse(b["starts_at"]) - _parse(a["starts_at"])).days
        for a, b in zip(sessions, sessions[1:], strict=False)
    ]
    assert all(52 <= g <= 70 for g in gaps), gaps  # two months, moved at most 3 days to the weekday
    locals_ = [diary.local(_parse(s["starts_at"])) for s in sessions]
    assert {(t.weekday(), t.hour) for t in locals_} == {(0, 9)}
    r = client.post(
        "/boosters",
        headers=auth_header("admin"),
        json={
            "client_id": "c1",
            "therapist_id": "t1",
            "modality": "telephone",
            "first_starts_at": at(first, 9).isoformat(),
            "interval_months": 0,
        },
    )
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "interval_months"


def test_every_route_declares_who_may_call_it(app):
    mine = [
        rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint.split(".")[0] in ("scheduling", "scheduling_views", "calendar")
    ]
    assert len(mine) >= 16
    for rule in mine:
        roles = getattr(app.view_functions[rule.endpoint], "_rapport_roles", None)
        assert roles, f"{rule} has no @requires/@public"
        if "public" in roles:
            assert rule.rule == "/therapists/<therapist_id>/calendar.ics", rule


def apply_own_events(settings, projection) -> None:
    """Scheduling's own stored events through a projection's code, without the broker."""
    from shared.outbox import message_from_document
    from shared.projections import Record
    from shared.web import ServiceContext

    ctx = ServiceContext("scheduling", settings)
    view = ctx.projection(projection)
    docs = list(ctx.store.events.find().sort("position", 1))
    view.apply(
        [Record("scheduling-direct", 0, d["position"], message_from_document(d)) for d in docs],
        view.active_generation(),
    )


def test_the_therapist_list_shows_leave_rather_than_failing(
    client, settings, auth_header, therapist
):
    # issue 13, defect 1: one therapist with leave made GET /therapists answer 500 (the
    # projection keeps leave dates as ISO strings; the response schema called isoformat on them)
    from services.scheduling.projections import Therapists

    therapist(
        exceptions=[
            {"start_date": "2030-08-05", "end_date": "2030-08-16", "reason": "Annual leave"}
        ]
    )
    therapist("t2", name="Bob Therapist", rooms=("Room 2",))
    apply_own_events(settings, Therapists())
    r = client.get("/therapists", headers=auth_header("admin"))
    assert r.status_code == 200, r.json
    ann = next(t for t in r.json if t["therapist_id"] == "t1")
    assert ann["exceptions"] == [
        {"start_date": "2030-08-05", "end_date": "2030-08-16", "reason": "Annual leave"}
    ]
    assert ann["weekly_hours"][0] == {"weekday": 0, "start": "09:00", "end": "17:00"}

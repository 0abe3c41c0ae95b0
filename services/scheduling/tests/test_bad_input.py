"""Issue 15 (#11) in scheduling: unsafe therapist ids, control and direction characters in
names and reasons, a course count of 1.5 silently truncated, a course or booster plan running
past the range every date lies in. Each refused with 422 naming the field, nothing written."""

from __future__ import annotations

import pytest

from shared.web import ServiceContext

from .conftest import apply_records_directly, at, monday, register_client


def _events(settings) -> int:
    return ServiceContext("scheduling", settings).store.events.count_documents({})


def _fields(response) -> dict:
    return {e["field"]: e["reason"] for e in response.json.get("errors") or []}


@pytest.mark.parametrize(
    "change, field",
    [
        ({"therapist_id": "../x"}, "therapist_id"),
        ({"therapist_id": "a/b"}, "therapist_id"),
        ({"therapist_id": " "}, "therapist_id"),
        ({"name": "Ann\x00Therapist"}, "name"),
        ({"name": "Ann \u202eTherapist"}, "name"),
    ],
)
def test_an_unsafe_therapist_is_refused(client, settings, auth_header, change, field):
    body = {
        "therapist_id": "t1",
        "name": "Ann Therapist",
        "email": "t1@rapport.test",
        "modalities": ["video"],
        **change,
    }
    r = client.post("/therapists", headers=auth_header("admin"), json=body)
    assert r.status_code == 422 and field in _fields(r), r.json
    assert _events(settings) == 0


@pytest.mark.parametrize(
    "change, field",
    [
        ({"count": 1.5}, "count"),
        ({"count": "16"}, "count"),
        ({"interval_weeks": 1.5}, "interval_weeks"),
        (
            {"first_starts_at": "2099-11-02T10:00:00+00:00"},
            "count",
        ),  # 16 weekly sessions leave 2099
        ({"first_starts_at": "9999-12-31T23:59:59-01:00"}, "first_starts_at"),
    ],
)
def test_a_course_that_cannot_be_booked_as_asked_is_refused(
    client, settings, auth_header, therapist, change, field
):
    therapist()
    register_client(settings, "c1", "t1")
    apply_records_directly(settings)
    before = _events(settings)
    body = {
        "client_id": "c1",
        "therapist_id": "t1",
        "modality": "video",
        "first_starts_at": at(monday(), 10).isoformat(),
        **change,
    }
    r = client.post("/courses", headers=auth_header("admin"), json=body)
    assert r.status_code == 422 and field in _fields(r), r.json
    assert _events(settings) == before


def test_boosters_past_the_range_are_refused(client, settings, auth_header, therapist):
    therapist()
    register_client(settings, "c1", "t1")
    apply_records_directly(settings)
    r = client.post(
        "/boosters",
        headers=auth_header("admin"),
        json={
            "client_id": "c1",
            "therapist_id": "t1",
            "modality": "video",
            "count": 3,
            "interval_months": 2,
            "first_starts_at": "2099-10-05T10:00:00+01:00",
        },
    )
    assert r.status_code == 422 and "count" in _fields(r), r.json


def test_a_cancellation_reason_with_control_characters_is_refused(
    client, settings, auth_header, therapist
):
    therapist()
    register_client(settings, "c1", "t1")
    apply_records_directly(settings)
    admin = auth_header("admin")
    booked = client.post(
        "/sessions",
        headers=admin,
        json={
            "client_id": "c1",
            "therapist_id": "t1",
            "kind": "treatment",
            "modality": "video",
            "starts_at": at(monday(), 10).isoformat(),
        },
    )
    assert booked.status_code == 201, booked.json
    r = client.post(
        f"/sessions/{booked.json['session_id']}/cancel",
        headers=admin,
        json={"by": "client", "reason": "ill\x1b[2J"},
    )
    assert r.status_code == 422 and "reason" in _fields(r), r.json

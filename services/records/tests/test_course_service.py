"""Course completion, maintenance and discharge against the real broker and store (issue 17,
item 5; clinical.md: the course is completed, the client may go on to boosters as John did,
and discharge is when care ends). Scheduling's events come through its own store, relay and
topic (support.Scheduling)."""

from datetime import timedelta

import pytest

from services.records.app import create_app
from services.records.projections import ClientSummaries
from shared.consumer import projection_store
from testkit.plugin import eventually, service_workers

from .support import JOHN, JOHN_FORMULATION, T2, Scheduling


@pytest.fixture
def api(settings):
    return create_app(settings).test_client()


@pytest.fixture
def staff(auth_header):
    return {
        "admin": auth_header("admin", sub="reception-user"),
        "t2": auth_header("therapist", sub="t2-user", therapist_id=T2),
    }


def ok(response, status=200):
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()


def john_in_the_ending_phase(api, staff) -> str:
    john = ok(api.post("/clients", json=JOHN, headers=staff["admin"]), 201)["client_id"]
    ok(api.put(f"/clients/{john}/formulation", json=JOHN_FORMULATION, headers=staff["t2"]))
    for to in ("initial", "middle", "ending"):
        body = {"to_phase": to, "reason": "agreed in session"}
        ok(api.post(f"/clients/{john}/phase", json=body, headers=staff["t2"]))
    return john


def test_session_16_attended_completes_the_course_and_the_therapist_records_the_outcome(
    api, staff, settings, workers
):
    workers.start(*service_workers(settings, "records"))
    john = john_in_the_ending_phase(api, staff)
    scheduling = Scheduling(settings)
    for number in (15, 16):
        facts = scheduling.facts(john, T2, number)
        scheduling.book(facts, number)
        scheduling.attend({**facts, "course_id": "k1", "number": number})
    scheduling.publish()

    def completed():
        record = ok(api.get(f"/clients/{john}", headers=staff["t2"]))
        return record["course"]

    course = eventually(completed, timeout=60, message="course completed at session 16")
    assert course["ended"] == "final_session" and course["outcome"] is None
    assert course["session_id"] == scheduling.facts(john, T2, 16)["session_id"]
    assert course["sessions_attended"] == 2

    body = {
        "outcome": "recovered",
        "outcome_summary": "tennis and friends again",
        "maintenance": True,
    }
    out = ok(api.post(f"/clients/{john}/course-completed", json=body, headers=staff["t2"]))
    assert out["outcome"] == "recovered" and out["phase"] == "maintenance"
    assert out["ended"] == "final_session", "the outcome is added to the course session 16 ended"
    record = ok(api.get(f"/clients/{john}", headers=staff["t2"]))
    assert record["status"] == "active", "completing the course is not leaving the practice"
    again = api.post(f"/clients/{john}/course-completed", json=body, headers=staff["t2"])
    assert again.status_code == 409 and again.get_json()["code"] == "course_completed"


def test_a_discharge_with_boosters_booked_asks_staff_before_cancelling_them(
    api, staff, settings, workers
):
    workers.start(*service_workers(settings, "records"))
    john = john_in_the_ending_phase(api, staff)
    body = {"outcome": "improved", "maintenance": True}
    ok(api.post(f"/clients/{john}/course-completed", json=body, headers=staff["t2"]))

    scheduling = Scheduling(settings)
    booster = scheduling.facts(john, T2, 1, session_id="booster-1")
    booster["starts_at"] = scheduling.start + timedelta(weeks=20)
    booster["ends_at"] = booster["starts_at"] + timedelta(minutes=50)
    scheduling.book(booster, 1, kind="booster")
    scheduling.publish()

    sessions = projection_store(settings, ClientSummaries()).reader("sessions")
    eventually(lambda: sessions.find_one({"_id": "booster-1"}), timeout=60, message="booster known")
    leave = {"reason": "moving to Scotland", "outcome_summary": "well"}
    r = api.post(f"/clients/{john}/discharge", json=leave, headers=staff["t2"])
    assert r.status_code == 409, r.get_json()
    problem = r.get_json()
    assert problem["code"] == "boosters_booked" and "cancel_boosters" in problem["detail"]
    assert ok(api.get(f"/clients/{john}", headers=staff["t2"]))["status"] == "active"

    confirmed = {**leave, "cancel_boosters": True}
    out = ok(api.post(f"/clients/{john}/discharge", json=confirmed, headers=staff["t2"]))
    assert out["cancel_boosters"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "outcome"),
        ({"outcome": "cured"}, "outcome"),
        ({"outcome": "improved", "maintenance": "perhaps"}, "maintenance"),
        ({"outcome": "improved", "outcome_summary": "a\u202eb"}, "outcome_summary"),
    ],
)
def test_bad_course_completion_input_is_refused_naming_the_field(api, staff, body, field):
    john = ok(api.post("/clients", json=JOHN, headers=staff["admin"]), 201)["client_id"]
    r = api.post(f"/clients/{john}/course-completed", json=body, headers=staff["t2"])
    assert r.status_code == 422, r.get_json()
    assert field in str(r.get_json()), r.get_json()
    assert ok(api.get(f"/clients/{john}", headers=staff["t2"]))["course"] is None


def test_only_the_clients_therapist_or_the_lead_completes_a_course(api, staff, auth_header):
    john = ok(api.post("/clients", json=JOHN, headers=staff["admin"]), 201)["client_id"]
    body = {"outcome": "improved"}
    assert (
        api.post(f"/clients/{john}/course-completed", json=body, headers=staff["admin"]).status_code
        == 403
    )
    other = auth_header("therapist", sub="t1-user", therapist_id="therapist-1")
    assert (
        api.post(f"/clients/{john}/course-completed", json=body, headers=other).status_code == 403
    )
    lead = auth_header("clinical_lead", sub="lead-user")
    assert (
        ok(api.post(f"/clients/{john}/course-completed", json=body, headers=lead))["phase"] is None
    )

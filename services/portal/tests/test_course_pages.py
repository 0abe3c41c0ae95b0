"""The course's end on the client record (issue 17, item 5): the "Course completed" control
for the therapist and the lead, the course shown once recorded, and the discharge form that
asks before booster sessions are cancelled. Against a stand-in for the services (conftest)."""

from .test_pages import EMMA_FULL
from .test_record_pages import (
    emma,  # noqa: F401  (the fixture)
    error_beside,
    page,
    post,
)


def test_the_therapist_records_the_course_completed_into_maintenance(signed_in, emma):
    emma.on(
        "POST",
        "/clients/c-1/course-completed",
        {"client_id": "c-1", "ended": "therapist", "outcome": "recovered", "phase": "maintenance"},
    )
    client = signed_in("therapist")
    html = page(client, "/clients/c-1")
    assert 'href="#course"' in html and ">Course completed</button>" in html
    r = post(
        client,
        "/clients/c-1/course-completed",
        {
            "form": "course",
            "outcome": "recovered",
            "outcome_summary": "Back at tennis",
            "maintenance": "yes",
        },
        "/clients/c-1",
    )
    assert r.status_code == 302 and r.headers["Location"].endswith("/clients/c-1#course")
    assert emma.last("POST", "/clients/c-1/course-completed")["json"] == {
        "outcome": "recovered",
        "outcome_summary": "Back at tennis",
        "maintenance": True,
    }


def test_a_refused_course_completion_shows_the_reason_beside_the_field(signed_in, emma):
    emma.on(
        "POST",
        "/clients/c-1/course-completed",
        {
            "title": "Conflict",
            "status": 409,
            "detail": "maintenance is not allowed from middle: move to the ending phase first",
            "errors": [{"field": "maintenance", "reason": "move to the ending phase first"}],
        },
        status=409,
    )
    client = signed_in("clinical_lead")
    r = post(
        client,
        "/clients/c-1/course-completed",
        {"form": "course", "outcome": "improved", "maintenance": "yes"},
        "/clients/c-1",
    )
    html = r.get_data(as_text=True)
    assert r.status_code == 409
    assert "ending phase first" in error_beside(html, "course", "maintenance")
    assert 'value="improved" required checked' in html, "the choice is kept"


def test_a_completed_course_is_shown_with_its_outcome_and_no_second_control(signed_in, emma):
    course = {
        "client_id": "c-1",
        "ended": "final_session",
        "outcome": None,
        "sessions_attended": 16,
        "completed_at": "2026-11-20T10:00:00Z",
        "phase": "ending",
    }
    emma.on("GET", "/clients/c-1", {**EMMA_FULL, "course": course})
    html = page(signed_in("therapist"), "/clients/c-1")
    assert "session 16 attended" in html and "not recorded yet" in html
    assert "Record how the course ended." in html, "the outcome may still be added"
    emma.on("GET", "/clients/c-1", {**EMMA_FULL, "course": {**course, "outcome": "improved"}})
    html = page(signed_in("therapist"), "/clients/c-1")
    assert "Improved" in html and ">Course completed</button>" not in html


def test_the_discharge_form_asks_before_boosters_are_cancelled(signed_in, emma):
    emma.on(
        "POST",
        "/clients/c-1/discharge",
        {
            "title": "Conflict",
            "status": 409,
            "code": "boosters_booked",
            "detail": "the client has 2 booster session(s) booked (01 Feb 2027, 01 Apr 2027)",
            "errors": [{"field": "cancel_boosters", "reason": "2 booster sessions booked"}],
        },
        status=409,
    )
    client = signed_in("therapist")
    html = page(client, "/clients/c-1/discharge")
    assert "Also cancel the booster sessions" in html
    r = post(
        client,
        "/clients/c-1/discharge",
        {"form": "discharge", "reason": "Moving away", "outcome_summary": "Well"},
        "/clients/c-1/discharge",
    )
    assert r.status_code == 409
    assert "booster" in error_beside(r.get_data(as_text=True), "discharge", "cancel_boosters")
    assert emma.last("POST", "/clients/c-1/discharge")["json"]["cancel_boosters"] is False

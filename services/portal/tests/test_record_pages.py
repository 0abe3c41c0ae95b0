"""The client record's forms (issue 13): assessment, formulation with the interpersonal
inventory, phase, discharge, corrections of details, notes about the right session, the
search box and therapist names. Against a stand-in for the services (conftest)."""

import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from .conftest import csrf_of
from .test_pages import EMMA, EMMA_FULL, SESSION, THERAPISTS

HTML = {"Accept": "text/html"}


LONDON = ZoneInfo("Europe/London")


def _at(days: int, hour: int = 10) -> str:
    """`hour` o'clock in the practice's time, `days` from today: read when a test runs, not
    when the module is collected (a run that crosses midnight moves "today")."""
    today = datetime.now(LONDON).date()
    return datetime.combine(today + timedelta(days=days), time(hour), tzinfo=LONDON).isoformat()


def course() -> list[dict]:
    """Emma's 16 sessions, weekly, the third today."""
    return [
        {
            **SESSION,
            "session_id": f"s-{n}",
            "number": n,
            "starts_at": _at(7 * (n - 3)),
            "ends_at": _at(7 * (n - 3)),
            "status": "attended" if n < 3 else "booked",
        }
        for n in range(1, 17)
    ]


@pytest.fixture
def emma(services):
    services.on("GET", "/therapists", THERAPISTS)
    services.on("GET", "/clients/c-1", EMMA_FULL)
    services.on("GET", "/clients/c-1/sessions", course())
    services.on("GET", "/clients/c-1/history", {"events": []})
    return services


def page(client, path):
    r = client.get(path)
    assert r.status_code == 200, r.get_data(as_text=True)[:2000]
    return r.get_data(as_text=True)


def post(client, path, data, back):
    html = page(client, back)
    form = data.get("form", "")
    return client.post(path, data={"csrf_token": csrf_of(html), "back": back, "form": form, **data})


def error_beside(html: str, form: str, field: str) -> str:
    found = re.search(
        rf'<p class="field-error" id="{re.escape(form)}-{re.escape(field)}-error"[^>]*>([^<]*)</p>',
        html,
    )
    assert found, f"no error beside {form}.{field}"
    return found.group(1)


# -- assessment ---------------------------------------------------------------------------
def test_the_assessment_is_recorded_with_goals_one_per_line(signed_in, emma):
    emma.on("POST", "/clients/c-1/assessment", {"risk_summary": "x"}, status=201)
    client = signed_in("therapist")
    html = page(client, "/clients/c-1/assessment")
    assert 'value="bipolar_disorder"' in html and "Eating disorder" in html
    assert 'value="s-3" selected' in html  # today's session
    r = post(
        client,
        "/clients/c-1/assessment",
        {
            "form": "assessment",
            "session_id": "s-3",
            "presenting_difficulties": "Low mood, poor sleep",
            "conditions": ["depression", "eating_disorder"],
            "goals": "Argue less\r\n\r\n More help at home ",
            "risk_summary": "No thoughts of self-harm",
        },
        "/clients/c-1/assessment",
    )
    assert r.status_code == 302 and r.headers["Location"].endswith("/clients/c-1#assessment")
    assert emma.last("POST", "/clients/c-1/assessment")["json"] == {
        "session_id": "s-3",
        "presenting_difficulties": "Low mood, poor sleep",
        "conditions": ["depression", "eating_disorder"],
        "goals": ["Argue less", "More help at home"],
        "risk_summary": "No thoughts of self-harm",
    }


def test_a_refused_assessment_is_shown_again_with_the_reason_beside_the_field(signed_in, emma):
    emma.on(
        "POST",
        "/clients/c-1/assessment",
        {
            "status": 422,
            "title": "Unprocessable Entity",
            "errors": [{"field": "conditions", "reason": "Shorter than minimum length 1."}],
        },
        status=422,
    )
    client = signed_in("therapist")
    r = post(
        client,
        "/clients/c-1/assessment",
        {
            "form": "assessment",
            "presenting_difficulties": "Low mood",
            "goals": "Sleep better",
            "risk_summary": "none",
        },
        "/clients/c-1/assessment",
    )
    html = r.get_data(as_text=True)
    assert r.status_code == 422
    assert error_beside(html, "assessment", "conditions") == "Shorter than minimum length 1."
    assert ">Low mood</textarea>" in html and ">Sleep better</textarea>" in html


# -- formulation --------------------------------------------------------------------------
def test_the_formulation_form_lists_the_inventory_with_spare_rows(signed_in, emma):
    html = page(signed_in("therapist"), "/clients/c-1/formulation")
    assert 'name="rows" value="4"' in html  # two people and two blank rows
    assert (
        'value="Mark"' in html
        and 'id="person-0-unilateral" name="person-0-unilateral" value="1" checked' in html
    )
    assert 'value="role_dispute" checked' in html and 'name="expected_revision" value="1"' in html
    assert "Add another person" in html and "Significant other seen unilaterally" in html


def test_a_formulation_is_sent_without_blank_rows_with_the_unilateral_partner(signed_in, emma):
    emma.on("PUT", "/clients/c-1/formulation", {"revision": 2})
    client = signed_in("therapist")
    r = post(
        client,
        "/clients/c-1/formulation",
        {
            "form": "formulation",
            "rows": "3",
            "expected_revision": "1",
            "problem_areas": ["role_dispute"],
            "formulation": "A dispute with Mark about the housework.",
            "goals": "Share the housework",
            "person-0-name": "Mark",
            "person-0-relationship": "husband",
            "person-0-ring": "1",
            "person-0-good": "kind",
            "person-0-hard": "rows",
            "person-0-unilateral": "1",
            "person-1-name": "",
            "person-1-relationship": "",
            "person-1-ring": "2",
            "person-2-name": "Sue",
            "person-2-relationship": "sister",
            "person-2-ring": "3",
        },
        "/clients/c-1/formulation",
    )
    assert r.status_code == 302
    sent = emma.last("PUT", "/clients/c-1/formulation")["json"]
    assert sent == {
        "problem_areas": ["role_dispute"],
        "formulation": "A dispute with Mark about the housework.",
        "goals": ["Share the housework"],
        "expected_revision": 1,
        "inventory": [
            {
                "name": "Mark",
                "relationship": "husband",
                "closeness": 1,
                "good": "kind",
                "hard": "rows",
                "unilateral_partner": True,
            },
            {
                "name": "Sue",
                "relationship": "sister",
                "closeness": 3,
                "good": "",
                "hard": "",
                "unilateral_partner": False,
            },
        ],
    }


def test_an_error_in_a_person_shows_beside_that_row(signed_in, emma):
    emma.on(
        "PUT",
        "/clients/c-1/formulation",
        {
            "status": 422,
            "title": "Unprocessable Entity",
            "errors": [
                {"field": "inventory.1.relationship", "reason": "Missing data for required field."}
            ],
        },
        status=422,
    )
    client = signed_in("therapist")
    r = post(
        client,
        "/clients/c-1/formulation",
        {
            "form": "formulation",
            "rows": "4",
            "expected_revision": "1",
            "problem_areas": ["role_dispute"],
            "formulation": "Kept text",
            "goals": "One goal",
            "person-0-name": "Mark",
            "person-0-relationship": "husband",
            "person-0-unilateral": "1",
            "person-3-name": "Sue",
        },
        "/clients/c-1/formulation",
    )
    html = r.get_data(as_text=True)
    assert r.status_code == 422
    assert (
        error_beside(html, "formulation", "person-3-relationship")
        == "Missing data for required field."
    )
    assert 'value="Sue"' in html and ">Kept text</textarea>" in html
    assert (
        'name="person-0-unilateral" value="1" checked' in html
        and 'name="person-1-unilateral" value="1" checked' not in html
    )


def test_add_another_person_works_without_javascript_and_keeps_the_input(signed_in, emma):
    client = signed_in("therapist")
    r = post(
        client,
        "/clients/c-1/formulation",
        {
            "form": "formulation",
            "rows": "4",
            "add_person": "1",
            "formulation": "Half written",
            "person-2-name": "Sue",
        },
        "/clients/c-1/formulation",
    )
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and 'name="rows" value="5"' in html and 'id="person-4-name"' in html
    assert (
        'value="Sue"' in html
        and ">Half written</textarea>" in html
        and 'class="msg error"' not in html
    )
    assert not [c for c in emma.calls if c["method"] == "PUT"]


# -- phase --------------------------------------------------------------------------------
def test_move_to_offers_the_phases_the_record_allows(signed_in, emma):
    html = page(signed_in("therapist"), "/clients/c-1")
    select = re.search(r'<select id="to_phase".*?</select>', html, re.S).group(0)
    assert re.findall(r'<option value="(\w+)"', select) == [
        "middle",
        "ending",
        "maintenance",
    ]  # no next_phases: all but now

    emma.on("GET", "/clients/c-1", {**EMMA_FULL, "next_phases": ["middle"]})
    html = page(signed_in("therapist"), "/clients/c-1")
    select = re.search(r'<select id="to_phase".*?</select>', html, re.S).group(0)
    assert re.findall(r'<option value="(\w+)"', select) == ["middle"]


def test_a_refused_phase_change_shows_why_beside_the_choice(signed_in, emma):
    emma.on("GET", "/clients/c-1", {**EMMA_FULL, "next_phases": ["middle"]})
    emma.on(
        "POST",
        "/clients/c-1/phase",
        {
            "status": 409,
            "title": "Conflict",
            "code": "no_formulation",
            "detail": "record the IPT formulation before the middle phase",
            "errors": [
                {
                    "field": "to_phase",
                    "reason": "record the IPT formulation before the middle phase",
                }
            ],
        },
        status=409,
    )
    client = signed_in("therapist")
    r = post(
        client,
        "/clients/c-1/phase",
        {"form": "phase", "to_phase": "middle", "reason": "focus agreed"},
        "/clients/c-1",
    )
    html = r.get_data(as_text=True)
    assert r.status_code == 409
    assert "formulation before the middle phase" in error_beside(html, "phase", "to_phase")
    assert 'id="phase-reason" name="reason" required value="focus agreed"' in html


def test_changing_phase_sends_the_choice_and_reason(signed_in, emma):
    emma.on("POST", "/clients/c-1/phase", {"phase": "middle"})
    r = post(
        signed_in("therapist"),
        "/clients/c-1/phase",
        {"form": "phase", "to_phase": "middle", "reason": "session 5"},
        "/clients/c-1",
    )
    assert r.status_code == 302 and r.headers["Location"].endswith("#phase")
    assert emma.last("POST", "/clients/c-1/phase")["json"] == {
        "to_phase": "middle",
        "reason": "session 5",
    }


# -- discharge ----------------------------------------------------------------------------
def test_discharge_sends_reason_and_outcome(signed_in, emma):
    emma.on("POST", "/clients/c-1/discharge", {"reason": "course complete"})
    client = signed_in("clinical_lead")
    assert "Outcome summary" in page(client, "/clients/c-1/discharge")
    r = post(
        client,
        "/clients/c-1/discharge",
        {"form": "discharge", "reason": "Course complete", "outcome_summary": "Depression lifted"},
        "/clients/c-1/discharge",
    )
    assert r.status_code == 302
    assert emma.last("POST", "/clients/c-1/discharge")["json"] == {
        "reason": "Course complete",
        "outcome_summary": "Depression lifted",
        "cancel_boosters": False,
    }


def test_a_discharged_record_offers_no_clinical_writes(signed_in, emma):
    discharged = {
        **EMMA_FULL,
        "status": "discharged",
        "next_phases": [],
        "discharged_at": "2026-11-20T10:00:00Z",
        "discharge": {
            "reason": "Course complete",
            "outcome_summary": "Depression lifted",
            "discharged_at": "2026-11-20T10:00:00Z",
        },
    }
    emma.on("GET", "/clients/c-1", discharged)
    html = page(signed_in("therapist"), "/clients/c-1")
    assert "Depression lifted" in html and "was discharged" in html
    for write in (
        "Add note",
        "Amend this note",
        "Mark done",
        "Set task",
        "Change phase",
        "Record the assessment",
        "Revise the assessment",
        "Revise the formulation",
        "Discharge…",
        "Book for this client",
    ):
        assert write not in html, write
    assert 'method="post"' not in html.split("<main")[1]


# -- details ------------------------------------------------------------------------------
def test_reception_corrects_details_and_may_reassign(signed_in, emma):
    emma.on("GET", "/clients/c-1", EMMA)
    emma.on("PATCH", "/clients/c-1", EMMA)
    client = signed_in("admin")
    html = page(client, "/clients/c-1/edit")
    assert 'id="e-therapist"' in html and 'value="emma@example.test"' in html
    r = post(
        client,
        "/clients/c-1/edit",
        {
            "form": "details",
            "given_name": "Emma",
            "family_name": "Hart",
            "date_of_birth": "1981-03-02",
            "email": "emma@example.test",
            "phone": "07700 900461",
            "reminder_channels": ["email"],
            "preferred_modality": "face_to_face",
            "therapist_id": "t-2",
            "referral_source": "",
            "reason": "new mobile; moved to Tom",
        },
        "/clients/c-1/edit",
    )
    assert r.status_code == 302
    assert emma.last("PATCH", "/clients/c-1")["json"] == {
        "phone": "07700 900461",
        "therapist_id": "t-2",
        "reason": "new mobile; moved to Tom",
    }


def test_a_therapist_is_not_offered_reassignment_and_cannot_send_it(signed_in, emma):
    emma.on("PATCH", "/clients/c-1", EMMA_FULL)
    client = signed_in("therapist")
    assert 'id="e-therapist"' not in page(client, "/clients/c-1/edit")
    post(
        client,
        "/clients/c-1/edit",
        {
            "form": "details",
            **{
                k: EMMA_FULL.get(k) or ""
                for k in (
                    "given_name",
                    "family_name",
                    "date_of_birth",
                    "email",
                    "preferred_modality",
                )
            },
            "reminder_channels": ["email"],
            "therapist_id": "t-2",
            "family_name": "Hart-Jones",
            "reason": "married",
        },
        "/clients/c-1/edit",
    )
    assert emma.last("PATCH", "/clients/c-1")["json"] == {
        "family_name": "Hart-Jones",
        "reason": "married",
    }


def test_a_refused_correction_is_shown_again_beside_the_field(signed_in, emma):
    emma.on("GET", "/clients/c-1", EMMA)
    emma.on(
        "PATCH",
        "/clients/c-1",
        {
            "status": 422,
            "title": "Unprocessable Entity",
            "errors": [
                {"field": "nhs_number", "reason": "the check digit does not match (modulus 11)"}
            ],
        },
        status=422,
    )
    r = post(
        signed_in("admin"),
        "/clients/c-1/edit",
        {
            "form": "details",
            "given_name": "Emma",
            "family_name": "Hart",
            "date_of_birth": "1981-03-02",
            "nhs_number": "943 476 5918",
            "reminder_channels": ["email"],
            "email": "emma@example.test",
            "preferred_modality": "face_to_face",
            "reason": "from the letter",
        },
        "/clients/c-1/edit",
    )
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and "check digit" in error_beside(html, "details", "nhs_number")
    assert 'value="943 476 5918"' in html and 'value="from the letter"' in html


# -- notes (defect 6) ---------------------------------------------------------------------
def test_the_note_form_defaults_to_todays_session_not_the_last_future_one(signed_in, emma):
    html = page(signed_in("therapist"), "/clients/c-1")
    select = re.search(r'<select id="note-session".*?</select>', html, re.S).group(0)
    assert re.search(r'<option value="s-3" selected>Session 3, ', select)
    assert 'value="s-16"' not in select and 'value="s-4"' not in select  # not held yet


def test_without_a_session_today_the_note_is_about_the_latest_attended_one(signed_in, emma):
    emma.on("GET", "/clients/c-1/sessions", [s for s in course() if s["number"] != 3])
    html = page(signed_in("therapist"), "/clients/c-1")
    select = re.search(r'<select id="note-session".*?</select>', html, re.S).group(0)
    assert re.search(r'<option value="s-2" selected>Session 2, ', select)


def test_each_note_shows_its_session(signed_in, emma):
    note = {**EMMA_FULL["notes"][0], "session_id": "s-2"}
    emma.on("GET", "/clients/c-1", {**EMMA_FULL, "notes": [note]})
    html = page(signed_in("therapist"), "/clients/c-1")
    meta = html.split('id="notes"')[1].split('<p class="meta">')[1].split("</p>")[0]
    when = datetime.fromisoformat(course()[1]["starts_at"]).strftime("%d %b %Y")
    assert "Session 2, " in meta and when in meta


def test_a_refused_note_keeps_the_text_beside_the_reason(signed_in, emma):
    emma.on(
        "POST",
        "/clients/c-1/notes",
        {
            "status": 409,
            "title": "Conflict",
            "code": "discharged",
            "detail": "the client was discharged; adding or amending a note is no longer possible",
        },
        status=409,
    )
    r = post(
        signed_in("therapist"),
        "/clients/c-1/notes",
        {"form": "note", "session_id": "s-2", "text": "Long note"},
        "/clients/c-1",
    )
    html = r.get_data(as_text=True)
    assert r.status_code == 409 and "no longer possible" in html and ">Long note</textarea>" in html


# -- list (defects 9 and 12) --------------------------------------------------------------
def test_the_client_list_names_therapists_even_when_scheduling_cannot_list_them(
    signed_in, services, users
):
    users.add(
        email="tom@rapport.test",
        name="Mr Tom Reid",
        role="therapist",
        password="x" * 12,
        therapist_id="t-2",
    )
    services.on("GET", "/therapists", {"title": "Internal Server Error", "status": 500}, status=500)
    services.on("GET", "/clients", {"items": [{**EMMA, "therapist_id": "t-2"}, EMMA], "total": 2})
    html = page(signed_in("admin"), "/clients")
    rows = html.split("<tbody>")[1]
    assert (
        "Mr Tom Reid" in rows
        and "Dr Sarah Okafor" in rows
        and ">t-2<" not in rows
        and ">t-1<" not in rows
    )


def test_the_search_box_passes_phone_email_or_nhs_number_to_records(signed_in, services):
    services.on("GET", "/therapists", THERAPISTS)
    services.on("GET", "/clients", {"items": [EMMA], "total": 1})
    html = page(signed_in("admin"), "/clients?q=07700+900461")
    assert "Name, phone, e-mail or NHS number" in html and "Emma Hart" in html
    assert services.last("GET", "/clients")["args"]["q"] == "07700 900461"


def test_a_refused_registration_keeps_what_was_typed(signed_in, services):
    services.on("GET", "/therapists", THERAPISTS)
    services.on(
        "POST",
        "/clients",
        {
            "status": 422,
            "title": "Unprocessable Entity",
            "errors": [
                {"field": "phone", "reason": "a phone number of 7 to 20 digits, spaces or + - ( )"}
            ],
        },
        status=422,
    )
    r = post(
        signed_in("admin"),
        "/clients/new",
        {
            "form": "register",
            "given_name": "Grace",
            "family_name": "Whitfield",
            "date_of_birth": "1980-09-14",
            "phone": "call me",
            "reminder_channels": ["email", "sms"],
            "therapist_id": "t-2",
            "preferred_modality": "video",
            "referral_source": "GP",
        },
        "/clients/new",
    )
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and "7 to 20 digits" in error_beside(html, "register", "phone")
    assert (
        'value="Whitfield"' in html and 'value="call me"' in html and 'value="t-2" selected' in html
    )
    assert 'value="sms" checked' in html and 'value="video" selected' in html

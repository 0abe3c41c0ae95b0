"""Pages built from the services' answers (a stand-in server shaped like their OpenAPI):
what each role sees, the bearer token the portal sends, and how refusals are shown."""

from services.measures.domain import INSTRUMENTS
from services.measures.queries.staff import describe
from services.measures.schemas import InstrumentOut
from shared.auth import verify_token

from .conftest import csrf_of

HTML = {"Accept": "text/html"}
THERAPISTS = [
    {"therapist_id": "t-1", "name": "Dr Sarah Okafor", "rooms": ["Room 1"]},
    {"therapist_id": "t-2", "name": "Mr Tom Reid", "rooms": ["Room 2"]},
]
EMMA = {
    "client_id": "c-1",
    "given_name": "Emma",
    "family_name": "Hart",
    "date_of_birth": "1981-03-02",
    "therapist_id": "t-1",
    "status": "active",
    "preferred_modality": "face_to_face",
    "reminder_channels": ["email"],
    "email": "emma@example.test",
    "view": "contact",
}
EMMA_FULL = {
    **EMMA,
    "view": "full",
    "phase": "initial",
    "suggested_phase": "middle",
    "attended_sessions": 4,
    "assessment": {
        "presenting_difficulties": "Low mood since starting a new job",
        "conditions": ["depression"],
        "goals": ["Argue less"],
        "risk_summary": "No current risk",
    },
    "formulation": {
        "revision": 1,
        "problem_areas": ["role_dispute"],
        "formulation": "A dispute with Mark.",
        "goals": ["Share the housework"],
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
                "name": "<script>x</script>",
                "relationship": "friend",
                "closeness": 3,
                "good": "",
                "hard": "",
                "unilateral_partner": False,
            },
        ],
    },
    "notes": [
        {
            "note_id": "n-1",
            "text": "Talked about the rows.",
            "author": "u",
            "recorded_at": "2026-11-02T10:00:00+00:00",
            "current": True,
        }
    ],
    "tasks": [
        {
            "task_id": "k-1",
            "description": "Ask Mark for help with the school run",
            "status": "assigned",
        }
    ],
}
SESSION = {
    "session_id": "s-1",
    "client_id": "c-1",
    "therapist_id": "t-1",
    "kind": "treatment",
    "modality": "face_to_face",
    "room": "Room 1",
    "starts_at": "2026-11-30T10:00:00+00:00",
    "ends_at": "2026-11-30T10:50:00+00:00",
    "status": "booked",
    "number": 1,
    "client_name": "Emma Hart",
}


def _token_of(call) -> object:
    return call["authorization"].split(" ", 1)[1]


def test_the_diary_shows_the_week_and_calls_as_the_signed_in_user(
    signed_in, services, settings, staff
):
    services.on("GET", "/therapists", THERAPISTS)
    services.on(
        "GET",
        "/therapists/t-2/diary",
        {"therapist_id": "t-2", "sessions": [{**SESSION, "therapist_id": "t-2"}]},
    )
    page = signed_in("admin").get("/diary?therapist=t-2&date=2026-11-30&view=week")
    html = page.get_data(as_text=True)
    assert (
        page.status_code == 200 and "Emma Hart" in html and "Mon 30 Nov" in html and "10:00" in html
    )
    call = services.last("GET", "/therapists/t-2/diary")
    assert call["args"] == {"date": "2026-11-30", "view": "week"}
    identity = verify_token(settings.token_secret, _token_of(call))
    assert identity.role == "admin" and identity.sub == staff["admin"].id


def test_a_therapist_always_sees_their_own_diary(signed_in, services):
    services.on("GET", "/therapists", THERAPISTS)
    services.on("GET", "/therapists/t-1/diary", {"sessions": []})
    signed_in("therapist").get("/diary?therapist=t-2")
    assert services.last("GET", "/therapists/t-1/diary")


def test_reception_sees_details_and_sessions_but_no_clinical_sections(signed_in, services):
    services.on("GET", "/therapists", THERAPISTS)
    services.on("GET", "/clients/c-1", EMMA)
    services.on("GET", "/clients/c-1/sessions", [SESSION])
    html = signed_in("admin").get("/clients/c-1").get_data(as_text=True)
    assert "Emma Hart" in html and "Dr Sarah Okafor" in html
    for clinical in ("Formulation", "Assessment", "Notes", "Measures"):
        assert clinical not in html
    # reception may resend a questionnaire link: the links' status, never the scores
    assert 'measures#links">Questionnaire links' in html
    assert not [c for c in services.calls if c["path"].endswith(("/history", "/notes"))]


def test_the_therapist_sees_the_formulation_with_the_closeness_circle(signed_in, services, staff):
    services.on("GET", "/therapists", THERAPISTS)
    note = {**EMMA_FULL["notes"][0], "author": staff["therapist"].id}
    services.on("GET", "/clients/c-1", {**EMMA_FULL, "notes": [note]})
    services.on("GET", "/clients/c-1/sessions", [SESSION])
    services.on(
        "GET",
        "/clients/c-1/history",
        {
            "events": [
                {
                    "type": "ClientRegistered",
                    "occurred_at": "2026-10-01T09:00:00Z",
                    "actor": {"id": "u", "role": "admin"},
                }
            ]
        },
    )
    html = signed_in("therapist").get("/clients/c-1").get_data(as_text=True)
    assert "Role dispute" in html and 'class="circle"' in html
    assert "partner seen unilaterally" in html and "Suggested next phase" in html
    assert "<script>x</script>" not in html and "&lt;script&gt;" in html
    assert (
        "Talked about the rows." in html
        and "Ask Mark for help" in html
        and "ClientRegistered" in html
    )
    assert "Dr Sarah Okafor" in html.split('id="notes"')[1]  # the author by name, not by user id


def test_a_refusal_from_a_service_is_a_clear_page_not_a_crash(signed_in, services):
    services.on("GET", "/therapists", THERAPISTS)
    services.on(
        "GET",
        "/clients/c-9",
        {"title": "Forbidden", "status": 403, "detail": "this client is not on your caseload"},
        status=403,
    )
    r = signed_in("therapist").get("/clients/c-9", headers=HTML)
    assert r.status_code == 403 and "not on your caseload" in r.get_data(as_text=True)


def test_a_service_that_is_down_is_503_with_a_message(portal, signed_in, services):
    services.close()
    r = signed_in("clinical_lead").get("/clients", headers=HTML)
    assert r.status_code == 503 and "not answering" in r.get_data(as_text=True)


def test_booking_a_course_shows_what_could_not_be_booked_with_alternatives(signed_in, services):
    services.on("GET", "/therapists", THERAPISTS)
    services.on(
        "GET",
        "/slots",
        [
            {
                "starts_at": "2026-11-30T10:00:00+00:00",
                "ends_at": "2026-11-30T10:50:00+00:00",
                "rooms": ["Room 1"],
            }
        ],
    )
    services.on("GET", "/clients", {"items": [EMMA], "total": 1})
    services.on(
        "POST",
        "/courses",
        {
            "course_id": "k-1",
            "sessions": [SESSION] * 15,
            "unbooked": [
                {
                    "number": 9,
                    "wanted_at": "2027-01-25T10:00:00+00:00",
                    "reason": "therapist on leave",
                    "alternatives": ["2027-01-26T11:00:00+00:00"],
                }
            ],
        },
        status=201,
    )
    client = signed_in("admin")
    page = client.get("/book?therapist=t-1&client=c-1&date=2026-11-30")
    assert "Mon 30 Nov 10:00" in page.get_data(as_text=True)
    r = client.post(
        "/book",
        data={
            "csrf_token": csrf_of(page.get_data(as_text=True)),
            "therapist_id": "t-1",
            "client_id": "c-1",
            "slot": "2026-11-30T10:00:00+00:00|Room 1",
            "modality": "face_to_face",
            "what": "course",
            "count": "16",
            "interval_weeks": "1",
        },
    )
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "15 of 16 sessions booked" in html
    assert "therapist on leave" in html and "Tue 26 Jan 11:00" in html
    sent = services.last("POST", "/courses")["json"]
    assert sent == {
        "client_id": "c-1",
        "therapist_id": "t-1",
        "modality": "face_to_face",
        "room": "Room 1",
        "first_starts_at": "2026-11-30T10:00:00+00:00",
        "count": 16,
        "interval_weeks": 1,
    }


def test_a_refused_form_goes_back_with_the_field_and_reason(signed_in, services):
    services.on("GET", "/therapists", THERAPISTS)
    services.on("GET", "/clients/c-1", EMMA_FULL)
    services.on("GET", "/clients/c-1/sessions", [SESSION])
    services.on("GET", "/clients/c-1/history", {"events": []})
    services.on(
        "POST",
        "/clients/c-1/notes",
        {
            "status": 422,
            "title": "Unprocessable Entity",
            "errors": [{"field": "text", "reason": "must not be blank"}],
        },
        status=422,
    )
    client = signed_in("therapist")
    page = client.get("/clients/c-1")
    r = client.post(
        "/clients/c-1/notes",
        data={
            "csrf_token": csrf_of(page.get_data(as_text=True)),
            "text": " ",
            "session_id": "s-1",
            "form": "note",
        },
        headers={"Referer": "http://localhost/clients/c-1"},
    )
    html = r.get_data(as_text=True)  # the record again, the reason beside the note's text
    assert r.status_code == 422 and 'id="note-text-error" role="alert">must not be blank' in html


def test_amending_a_note_uses_the_amend_route_with_a_reason(signed_in, services):
    services.on("GET", "/clients/c-1", EMMA_FULL)
    services.on("POST", "/clients/c-1/notes/n-1/amend", {"note_id": "n-2"}, status=201)
    client = signed_in("therapist")
    services.on("GET", "/therapists", THERAPISTS)
    services.on("GET", "/clients/c-1/sessions", [SESSION])
    services.on("GET", "/clients/c-1/history", {"events": []})
    token = csrf_of(client.get("/clients/c-1").get_data(as_text=True))
    client.post(
        "/clients/c-1/notes",
        data={
            "csrf_token": token,
            "amends": "n-1",
            "text": "Corrected.",
            "amendment_reason": "wrong name",
        },
    )
    assert services.last("POST", "/clients/c-1/notes/n-1/amend")["json"] == {
        "text": "Corrected.",
        "reason": "wrong name",
    }


def test_the_measures_page_draws_each_instrument_with_its_caseness_line(signed_in, services):
    services.on("GET", "/clients/c-1", EMMA_FULL)
    points = [
        {"at": f"2026-10-{d:02d}T09:00:00+00:00", "session_number": i + 1, "total": t, "band": "x"}
        for i, (d, t) in enumerate([(1, 17), (8, 15), (15, 12), (22, 9)])
    ]
    services.on(
        "GET", "/clients/c-1/trajectory", {"series": [{"instrument": "PHQ-9", "points": points}]}
    )
    # bands and the caseness line come only from measures' GET /instruments (one registry)
    phq9 = InstrumentOut().dump(describe(INSTRUMENTS["PHQ-9"]))
    services.on("GET", "/instruments", {"instruments": [phq9], "default_set": ["PHQ-9"]})
    services.on(
        "GET",
        "/clients/c-1/outcomes",
        {
            "outcomes": [
                {
                    "phq9": {"first": 17, "last": 9, "change": -8},
                    "gad7": {"first": None, "last": None, "change": None},
                    "attended_sessions": 4,
                    "finished_treatment": True,
                    "recovered": True,
                    "reliable_improvement": True,
                }
            ]
        },
    )
    services.on(
        "GET",
        "/questionnaire-requests",
        {
            "requests": [
                {"request_id": "r-1", "status": "completed", "due_at": "2026-10-21T09:00:00Z"}
            ]
        },
    )
    html = signed_in("therapist").get("/clients/c-1/measures").get_data(as_text=True)
    assert "PHQ-9 totals over 4 questionnaires" in html and "caseness 10" in html
    assert (
        "first 17, last 9 (change -8)" in html
        and "reliable improvement: yes" in html
        and "completed" in html
    )
    assert services.last("GET", "/questionnaire-requests")["args"] == {"client_id": "c-1"}


def test_the_risk_inbox_lists_open_alerts_first_and_acknowledges_with_a_note(signed_in, services):
    services.on(
        "GET",
        "/risk-alerts",
        {
            "alerts": [
                {
                    "alert_id": "a-old",
                    "client_id": "c-1",
                    "instrument": "PHQ-9",
                    "item": 9,
                    "answer": 1,
                    "indicated_at": "2026-10-01T09:00:00Z",
                    "status": "acknowledged",
                    "acknowledged_at": "2026-10-01T10:00:00Z",
                    "note": "Called her; safe.",
                },
                {
                    "alert_id": "a-new",
                    "client_id": "c-1",
                    "instrument": "PHQ-9",
                    "item": 9,
                    "answer": 2,
                    "indicated_at": "2026-11-20T09:00:00Z",
                    "status": "open",
                },
            ]
        },
    )
    services.on(
        "POST", "/risk-alerts/a-new/acknowledge", {"alert_id": "a-new", "status": "acknowledged"}
    )
    client = signed_in("therapist")
    html = client.get("/risk").get_data(as_text=True)
    assert html.index("a-new") < html.index("Called her; safe.") and "Open (1)" in html
    assert services.last("GET", "/risk-alerts")["args"] == {"status": "all"}
    r = client.post(
        "/risk/a-new/acknowledge",
        data={"csrf_token": csrf_of(html), "note": "Phoned; safety plan reviewed."},
    )
    assert r.status_code == 302
    assert services.last("POST", "/risk-alerts/a-new/acknowledge")["json"] == {
        "note": "Phoned; safety plan reviewed."
    }


def test_the_lead_sees_rates_with_case_counts_beside_the_national_comparators(signed_in, services):
    services.on("GET", "/therapists", THERAPISTS)
    rate = lambda c, o: {"count": c, "of": o, "rate": c / o if o else None}  # noqa: E731
    summary = {
        "courses": 4,
        "finished_with_paired_scores": 4,
        "recovery": rate(2, 4),
        "reliable_recovery": rate(2, 4),
        "reliable_improvement": rate(3, 4),
        "reliable_deterioration": rate(0, 4),
    }
    services.on(
        "GET",
        "/dashboards/practice",
        {
            "practice": summary,
            "by_therapist": [{"key": "t-1", **summary}],
            "by_problem_area": [{"key": "grief", **summary}],
            "national": {"reliable_recovery": 0.51, "reliable_improvement": 0.69},
        },
    )
    html = (
        signed_in("clinical_lead")
        .get("/dashboard?from=2026-01-01&to=2026-11-30")
        .get_data(as_text=True)
    )
    assert "Dr Sarah Okafor" in html and "Grief" in html
    assert (
        '75% <span class="meta">(3 of 4)</span>' in html
        and "national 69%" in html
        and "51%" in html
    )
    assert services.last("GET", "/dashboards/practice")["args"] == {
        "from": "2026-01-01",
        "to": "2026-11-30",
    }


def test_a_bad_dashboard_period_is_400_not_500(signed_in):
    r = signed_in("clinical_lead").get("/dashboard?from=2026-12-01&to=2026-01-01", headers=HTML)
    assert r.status_code == 400 and "must start before" in r.get_data(as_text=True)


def test_a_write_that_times_out_says_it_may_have_been_saved(signed_in, services):
    services.on(
        "GET",
        "/risk-alerts",
        {
            "alerts": [
                {
                    "alert_id": "a-1",
                    "client_id": "c-1",
                    "instrument": "PHQ-9",
                    "item": 9,
                    "answer": 2,
                    "indicated_at": "2026-11-20T09:00:00Z",
                    "status": "open",
                }
            ]
        },
    )
    services.on("POST", "/risk-alerts/a-1/acknowledge", {"status": "acknowledged"}, delay=2)
    client = signed_in("therapist")
    token = csrf_of(client.get("/risk").get_data(as_text=True))
    r = client.post(
        "/risk/a-1/acknowledge",
        data={
            "csrf_token": token,
            "note": "Called.",
            "back": "/risk",
            "form": "ack-a-1",
            "idempotency_key": "k-1",
        },
    )
    # The inbox is shown again at once, saying so, and its forms keep the key of the first try
    # so that sending again is done once (the services honour Idempotency-Key).
    assert r.status_code == 504
    body = r.get_data(as_text=True)
    assert "may or may not have been saved" in body, body[body.find("<main") :][:1500]
    assert 'name="idempotency_key" value="k-1"' in body and ">Called.</textarea>" in body
    acknowledge = [c for c in services.calls if c["method"] == "POST"][-1]
    assert acknowledge["headers"]["Idempotency-Key"].startswith(
        "k-1:measures:POST:/risk-alerts/a-1/acknowledge"
    )

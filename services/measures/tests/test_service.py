"""The measures service against the real local broker and store: a booked session produces a
request, the client answers once through the link, a risk answer raises an alert, and the
trajectory, outcome and practice dashboard projections follow."""

import re
from datetime import date, timedelta

from services.measures.domain import INSTRUMENTS, request_id_for, request_stream
from shared.directory import ClientDirectory
from shared.events import NewEvent
from testkit.fhir import validate_r4
from testkit.plugin import eventually, service_workers

from .support import Upstream, app, booked, now, register_client, session_facts  # noqa: F401


def answers(code, value, **items):
    """Form fields: every item `value`, some items (item_9=2) otherwise."""
    n = len(INSTRUMENTS[code].items)
    return {f"{code}-{i}": str(items.get(f"item_{i}", value)) for i in range(1, n + 1)}


def events_of(store, stream):
    return [e.type for e in store.load(stream)]


def test_booking_to_link_to_risk_to_outcomes(settings, app, workers, auth_header):
    workers.start(*service_workers(settings, "measures"))
    records, scheduling = Upstream(settings, "records"), Upstream(settings, "scheduling")
    register_client(records, "emma", "t-1", "Emma", areas=["role_dispute"])
    start = now() + timedelta(days=3)
    scheduling.publish("session-s1", booked("s1", "emma", "t-1", start, "course-1", 1))
    scheduling.publish(
        "session-s2", booked("s2", "emma", "t-1", start + timedelta(days=7), "course-1", 2)
    )
    scheduling.publish(
        "session-s3", booked("s3", "emma", "t-1", start + timedelta(days=14), "course-1", 3)
    )
    store = app.extensions["rapport"].store
    r1, r2, r3 = (request_id_for(s) for s in ("s1", "s2", "s3"))
    eventually(lambda: events_of(store, request_stream(r3)) == ["QuestionnaireRequested"])
    scheduling.publish(
        "session-s3",
        NewEvent(
            "SessionCancelled",
            {
                **session_facts("s3", "emma", "t-1", start + timedelta(days=14)),
                "by": "client",
                "reason": "holiday",
                "late": False,
            },
        ),
    )
    eventually(
        lambda: (
            events_of(store, request_stream(r3))
            == ["QuestionnaireRequested", "QuestionnaireWithdrawn"]
            and events_of(store, request_stream(r2)) == ["QuestionnaireRequested"]
        )
    )
    [requested] = store.load(request_stream(r1))
    assert requested.data["due_at"] == start - timedelta(hours=48)
    assert requested.data["instruments"] == ["PHQ-9", "GAD-7", "WSAS"]

    # the same booking delivered again requests nothing more
    scheduling.relay.store.events.update_many(
        {"stream_id": "session-s1"}, {"$set": {"outbox": "pending"}}
    )
    scheduling.relay.drain()
    client = app.test_client()
    issued = client.post(f"/questionnaire-requests/{r1}/link", headers=auth_header("service"))
    assert issued.status_code == 201, issued.json
    token = issued.json["url"].rsplit("/", 1)[1]
    assert issued.json["url"].startswith("https://measures.example/q/")
    assert events_of(store, request_stream(r1)) == ["QuestionnaireRequested"]

    # the form: first name only, a label for every choice. The name is measures' client
    # directory's, kept by a consumer of its own from records' events, which may still be on
    # its way after the plans (a rebalance held it back in a clean-clone run): wait for it
    names = app.extensions["rapport"].projection(ClientDirectory("measures"))
    eventually(
        lambda: names.physical("clients", names.active_generation()).find_one(
            {"_id": "emma", "given_name": "Emma"}
        ),
        message="measures' client directory never knew Emma",
    )
    page = client.get(f"/q/{token}")
    assert page.status_code == 200 and "Hello Emma" in page.text and "Test" not in page.text
    assert (
        page.text.count("<fieldset") == 9 + 7 + 5
        and page.headers["Referrer-Policy"] == "no-referrer"
    )
    assert "<script" not in page.text and "http" not in page.text.split("<body>")[1]

    # incomplete: the form again, the message next to the missing item
    form = {**answers("PHQ-9", 2, item_9=1), **answers("GAD-7", 2), **answers("WSAS", 5)}
    partial = {k: v for k, v in form.items() if k != "GAD-7-4"}
    again = client.post(f"/q/{token}", data=partial)
    assert again.status_code == 422 and 'id="GAD-7-4-error"' in again.text
    assert re.search(r'id="PHQ-9-1-2"[^>]*checked', again.text), "given answers are kept"
    assert not re.search(r'id="PHQ-9-1-0"[^>]*checked', again.text)

    form["WSAS-1"] = "na"  # retired: work item not applicable
    done = client.post(f"/q/{token}", data=form)
    assert done.status_code == 200 and "Samaritans" in done.text
    assert client.post(f"/q/{token}", data=form).status_code == 404
    assert client.get(f"/q/{token}").status_code == 404
    types = events_of(store, request_stream(r1))
    assert types == ["QuestionnaireRequested", "QuestionnaireCompleted"]
    completed = store.load(request_stream(r1))[1].data
    scores = {s["instrument"]: (s["total"], s["band"], s["prorated"]) for s in completed["scores"]}
    assert scores == {
        "PHQ-9": (17.0, "moderately severe", False),
        "GAD-7": (14.0, "moderate", False),
        "WSAS": (25.0, "moderately severe or worse", True),
    }
    assert completed["course_id"] == "course-1" and completed["session_number"] == 1

    # risk: an open alert for the therapist and the lead, none for reception
    therapist = auth_header("therapist", therapist_id="t-1")
    alerts = eventually(
        lambda: client.get("/risk-alerts?status=open", headers=therapist).json["alerts"]
    )
    assert [(a["instrument"], a["item"], a["answer"]) for a in alerts] == [("PHQ-9", 9, 1)]
    assert client.get("/risk-alerts", headers=auth_header("admin")).status_code == 403
    assert (
        client.get("/risk-alerts", headers=auth_header("therapist", therapist_id="t-2")).json[
            "alerts"
        ]
        == []
    )
    ack = client.post(
        f"/risk-alerts/{alerts[0]['alert_id']}/acknowledge",
        json={"note": "phoned Emma; safety plan reviewed"},
        headers=therapist,
    )
    assert ack.status_code == 200 and ack.json["acknowledged_by"] == "therapist-user"
    again = client.post(
        f"/risk-alerts/{alerts[0]['alert_id']}/acknowledge",
        json={"note": "again"},
        headers=auth_header("clinical_lead"),
    )
    assert again.status_code == 409

    # session 2's questionnaire entered by the therapist in session: recovered
    staff = client.post(
        "/responses",
        headers=therapist,
        json={
            "client_id": "emma",
            "request_id": r2,
            "answers": {"PHQ-9": [1] * 8 + [0], "GAD-7": [1] * 7, "WSAS": [2] * 5},
        },
    )
    assert staff.status_code == 201 and staff.headers["Location"].startswith(
        "/clients/emma/responses/"
    )
    for s in ("s1", "s2"):
        scheduling.publish(
            f"session-{s}",
            NewEvent(
                "SessionAttended", {**session_facts(s, "emma", "t-1", start), "kind": "treatment"}
            ),
        )

    def outcome():
        found = client.get("/clients/emma/outcomes", headers=therapist).json["outcomes"]
        return found and found[0]["finished_treatment"] and found[0]

    o = eventually(outcome)
    assert (o["episode_id"], o["phq9"], o["gad7"]) == (
        "course-1",
        {"first": 17, "last": 8, "change": -9},
        {"first": 14, "last": 7, "change": -7},
    )
    assert o["recovered"] and o["reliable_improvement"] and o["reliable_recovery"]
    published = eventually(
        lambda: [e.data for e in store.load("outcome-course-1") if e.data["finished_treatment"]]
    )
    assert published[-1]["reliable_recovery"] is True

    trajectory = client.get("/clients/emma/trajectory", headers=therapist).json
    phq = next(s for s in trajectory["series"] if s["instrument"] == "PHQ-9")
    assert phq["caseness"] == 10 and [p["total"] for p in phq["points"]] == [17, 8]
    assert [p["session_number"] for p in phq["points"]] == [1, 2]
    assert client.get("/clients/emma/trajectory", headers=auth_header("admin")).status_code == 403
    assert (
        client.get(
            "/clients/emma/outcomes", headers=auth_header("therapist", therapist_id="t-2")
        ).status_code
        == 403
    )

    lead = auth_header("clinical_lead")
    today = date.today().isoformat()
    report = client.get(f"/dashboards/practice?from={today}&to={today}", headers=lead).json
    assert report["practice"]["recovery"] == {"count": 1, "of": 1, "rate": 1.0}
    assert report["practice"]["reliable_improvement"] == {"count": 1, "of": 1, "rate": 1.0}
    assert [g["key"] for g in report["by_problem_area"]] == ["role_dispute"]
    assert report["national"] == {"reliable_recovery": 0.51, "reliable_improvement": 0.69}
    csv = client.get(f"/dashboards/practice.csv?from={today}&to={today}", headers=lead)
    assert csv.mimetype == "text/csv" and "problem_area,role_dispute,1,1" in csv.text
    mine = client.get("/dashboards/therapists/t-1", headers=therapist).json
    assert mine["summary"]["reliable_recovery"]["of"] == 1

    fhir = client.get("/clients/emma/fhir", headers=lead).json
    validate_r4(fhir)  # R4 models, no empty values, every reference resolves in the Bundle
    kinds = [e["resource"]["resourceType"] for e in fhir["entry"]]
    assert kinds.count("QuestionnaireResponse") == 6 and "Flag" not in kinds  # acknowledged
    appointments = {
        e["resource"]["id"]: e["resource"]
        for e in fhir["entry"]
        if e["resource"]["resourceType"] == "Appointment"
    }
    assert {k: a["status"] for k, a in appointments.items()} == {
        "s1": "fulfilled",
        "s2": "fulfilled",
        "s3": "cancelled",
    }
    assert appointments["s1"]["start"] == start.isoformat()
    assert [p["actor"]["reference"] for p in appointments["s1"]["participant"]] == [
        "Patient/emma",
        "Practitioner/t-1",
    ]
    assert kinds.count("Patient") == 1 and kinds.count("Practitioner") == 1
    observations = [
        e["resource"] for e in fhir["entry"] if e["resource"]["resourceType"] == "Observation"
    ]
    codes = {c["code"] for o in observations for c in o["code"].get("coding", [])}
    assert codes == {"44261-6", "70274-6"}
    # WSAS has no LOINC code: named by text alone, never an empty (invalid) `coding` array
    uncoded = [o["code"] for o in observations if "coding" not in o["code"]]
    assert uncoded and all(c["text"].startswith("Work and Social") for c in uncoded)

    status = client.get("/questionnaire-requests?client_id=emma", headers=auth_header("admin")).json
    assert {r["session_id"]: r["status"] for r in status["requests"]} == {
        "s1": "completed",
        "s2": "completed",
        "s3": "withdrawn",
    }
    assert "scores" not in str(status)


def test_staff_entry_is_stored_once_per_form_and_the_caseload_shows_latest_scores_and_risk(
    settings, app, workers, auth_header
):
    workers.start(*service_workers(settings, "measures"))
    records = Upstream(settings, "records")
    register_client(records, "john", "t-1", "John", areas=["grief"])
    register_client(records, "ann", "t-2", "Ann")
    client = app.test_client()
    therapist = auth_header("therapist", therapist_id="t-1")
    eventually(
        lambda: client.get("/clients/john/instruments", headers=therapist).status_code == 200
    )
    store = app.extensions["rapport"].store

    # issue 15 #9: the same form submitted twice (same Idempotency-Key) is stored once
    form = {"client_id": "john", "answers": {"PHQ-9": [2] * 8 + [1], "GAD-7": [1] * 7}}
    key = {**therapist, "Idempotency-Key": "form-1:measures:POST:/responses"}
    first = client.post("/responses", headers=key, json=form)
    again = client.post("/responses", headers=key, json=form)
    assert first.status_code == again.status_code == 201
    assert first.json == again.json and first.headers["Location"] == again.headers["Location"]
    completed = [e for e in store.read_all() if e.type == "QuestionnaireCompleted"]
    assert len(completed) == 1 and len(first.json["risk_alerts"]) == 1
    other = client.post(
        "/responses",
        headers={**therapist, "Idempotency-Key": "form-2:measures:POST:/responses"},
        json={"client_id": "john", "answers": {"CORE-10": [0] * 5 + [None] + [0] * 4}},
    )
    assert other.status_code == 201 and other.json["response_id"] != first.json["response_id"]
    # an unanswered risk item is not passed silently
    assert [(a["instrument"], a["item"], a["answer"]) for a in other.json["risk_alerts"]] == [
        ("CORE-10", 6, None)
    ]

    def caseload():
        found = client.get("/therapists/t-1/latest-scores", headers=therapist).json["clients"]
        mine = {c["client_id"]: c for c in found}
        return (
            "john" in mine
            and len(mine["john"]["latest"]) == 3
            and len(mine["john"]["open_alerts"]) == 2
            and mine
        )

    mine = eventually(caseload)
    assert set(mine) == {"john"}, "another therapist's client is not on the caseload"
    latest = {s["instrument"]: (s["total"], s["band"]) for s in mine["john"]["latest"]}
    assert latest == {
        "PHQ-9": (17.0, "moderately severe"),
        "GAD-7": (7.0, "mild"),
        "CORE-10": (8.89, "low"),
    }  # items 2, 3 reversed
    assert {(a["instrument"], a["answer"]) for a in mine["john"]["open_alerts"]} == {
        ("PHQ-9", 1),
        ("CORE-10", None),
    }
    assert (
        client.get(
            "/therapists/t-1/latest-scores", headers=auth_header("therapist", therapist_id="t-2")
        ).status_code
        == 403
    )
    assert (
        client.get("/therapists/t-1/latest-scores", headers=auth_header("admin")).status_code == 403
    )
    assert (
        client.get(
            "/therapists/t-1/latest-scores", headers=auth_header("clinical_lead")
        ).status_code
        == 200
    )

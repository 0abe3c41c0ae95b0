"""The complete subject access export (issue 17, item 6) across all five services on the real
broker and store, each served over real HTTP (records asks the others for their parts with a
service token), with a real SMTP server.

Sam gets in touch, waits on the list, books an assessment by link, is registered from the
enquiry, has a course of video sessions, an assessment, a formulation, phases, a note, a task
and two diary entries, answers questionnaires with a risk item that is acknowledged, is told
of appointments by e-mail, is charged, invoiced and pays, completes the course and is
discharged. The lead's export holds each of those items with its value; nothing of another
client; no credential (the video join link's JWT). Then, disposed of at the end of retention,
Sam's export holds nothing readable."""

import json
import threading

import pytest
from werkzeug.serving import make_server

from shared import services
from testkit.fhir import validate_r4
from testkit.plugin import eventually, service_workers
from testkit.procs import free_port

from .subject_access_journey import Journey

FIVE = ("scheduling", "records", "measures", "notifications", "billing")


@pytest.fixture
def five(settings, mail, workers, monkeypatch):
    monkeypatch.setenv("RAPPORT_QUIET_HOURS", "off")
    monkeypatch.setenv("RAPPORT_VIDEO_PROVIDER", "jitsi")
    monkeypatch.setenv("RAPPORT_JITSI_URL", "https://meet.practice.test")
    monkeypatch.setenv("RAPPORT_JITSI_APP_ID", "rapport-practice")
    monkeypatch.setenv("RAPPORT_JITSI_APP_SECRET", "jitsi-secret-of-the-export-test-0123456789")
    ports = {name: free_port() for name in FIVE}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    s = settings.with_(
        service_urls={**settings.service_urls, **urls},
        extra={
            "notifications": {
                "smtp_port": mail.port,
                "lead_email": "lead@practice.test",
                "poll_seconds": 0.1,
                "backoff_seconds": 0.3,
                "quiet_hours": "off",
                "measures_url": urls["measures"],
                "portal_url": "https://portal.practice.test",
            }
        },
    )
    apps = {name: services.load(name).create_app(s) for name in FIVE}
    servers = [make_server("127.0.0.1", ports[n], apps[n], threaded=True) for n in FIVE]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    workers.start(*[loop for name in FIVE for loop in service_workers(s, name)])
    yield {**{n: apps[n].test_client() for n in FIVE}, "apps": apps, "mail": mail}
    for server in servers:
        server.shutdown()


def _values(node) -> list:
    if isinstance(node, dict):
        return [v for value in node.values() for v in _values(value)]
    if isinstance(node, list):
        return [v for value in node for v in _values(value)]
    return [node]


def test_the_export_holds_every_item_from_every_service_and_nothing_of_anyone_else(
    five, auth_header
):
    journey = Journey(five, auth_header)
    sam = journey.sam_uses_every_feature()
    ruth = journey.another_client()

    export = journey.export(sam.cid)
    assert export["complete"] is True and export["missing"] == {}
    text = json.dumps(export)

    # records: details, the enquiry, assessment, formulation, phases, note, task, diary,
    # course completion, discharge
    record = export["record"]
    assert (record["given_name"], record["family_name"]) == ("Sam", "Okafor")
    assert (record["email"], record["phone"]) == (sam.email, "07700 900123")
    assert record["date_of_birth"] == "1979-06-02"
    enquiry = export["enquiry"]
    assert enquiry["concern"] == sam.concern and enquiry["heard_from"] == "my GP"
    assert enquiry["status"] == "registered" and enquiry["priority"] == "soon"
    assert [e["type"] for e in enquiry["events"]][:2] == ["EnquiryReceived", "EnquiryWaitlisted"]
    assessment = record["assessment"]
    assert assessment["presenting_difficulties"] == sam.difficulties
    assert assessment["goals"] == ["sleep through the night"]
    assert assessment["risk_summary"] == sam.risk_summary
    assert record["formulation"]["formulation"] == sam.formulation
    assert record["formulation"]["problem_areas"] == ["grief"]
    phases = [e["data"]["to_phase"] for e in export["events"] if e["type"] == "PhaseChanged"]
    assert phases == ["initial", "middle", "ending"]
    assert [n["text"] for n in record["notes"]] == [sam.note]
    [task] = record["tasks"]
    assert task["description"] == sam.task and task["status"] == "completed"
    assert task["reflection"] == sam.reflection
    assert {e["text"] for e in record["diary_entries"]} == set(sam.diary)
    assert record["course"]["outcome"] == "improved"
    assert record["course"]["outcome_summary"] == sam.course_summary
    assert record["discharge"]["reason"] == sam.discharge_reason
    assert record["discharge"]["outcome_summary"] == sam.discharge_summary

    # scheduling: the sessions (with their video rooms), the booking link and what it booked
    part = export["services"]["scheduling"]
    sessions = {s["session_id"]: s for s in part["held"]["sessions"]}
    assert set(sessions) == {sam.assessment_id, *sam.course_ids}
    assert sessions[sam.assessment_id]["kind"] == "assessment"
    assert sessions[sam.course_ids[0]]["status"] == "attended"
    assert sessions[sam.course_ids[0]]["starts_at"] == sam.first_session.isoformat()
    assert sam.video_ids and all(sessions[s]["video_room"] for s in sam.video_ids)
    [link] = part["held"]["booking_links"]
    assert link["session_id"] == sam.assessment_id and link["status"] == "used"
    assert link["starts"] == [t.isoformat() for t in sam.offered]
    assert {"SessionBooked", "CourseBooked", "SessionAttended", "BookingLinkUsed"} <= {
        e["type"] for e in part["events"]
    }

    # measures: the answers, the scores, the risk alert and its acknowledgement
    part = export["services"]["measures"]
    [response] = part["held"]["responses"]
    by_code = {s["instrument"]: s for s in response["scores"]}
    assert by_code["PHQ-9"]["answers"] == sam.phq9 and by_code["PHQ-9"]["total"] == sum(sam.phq9)
    assert by_code["GAD-7"]["answers"] == sam.gad7 and by_code["GAD-7"]["total"] == sum(sam.gad7)
    [alert] = part["held"]["alerts"]
    assert (alert["instrument"], alert["item"], alert["status"]) == ("PHQ-9", 9, "acknowledged")
    assert alert["note"] == sam.acknowledgement
    assert {"QuestionnaireCompleted", "RiskIndicated", "RiskAcknowledged"} <= {
        e["type"] for e in part["events"]
    }

    # notifications: the messages sent to Sam (kind, channel, time, status), nothing to staff
    part = export["services"]["notifications"]
    messages = part["held"]["messages"]
    sent = [m for m in messages if m["status"] == "sent"]
    kinds = [m["kind"] for m in sent]
    assert "course_summary" in kinds
    # the assessment booked by link is confirmed once: to the enquiry's contact if the
    # planner read the booking before the registration, else to the client
    assert kinds.count("confirmation") + kinds.count("booked_by_link") == 1, kinds
    assert all(m["channel"] == "email" and m["sent_at"] and m["due_at"] for m in sent)
    # the booking link's message went void: Sam booked before it was sent
    assert "booking_link" in {m["kind"] for m in messages}
    # the alerts to staff about Sam and the invoice to the insurer are not messages to Sam
    assert not {"risk_alert", "invoice"} & {m["kind"] for m in messages}
    recipients = {e["data"]["recipient"] for e in part["events"] if "recipient" in e["data"]}
    assert recipients == {"client", "enquirer"}, "Sam's own messages, before and after"

    # billing: funding, the charge for the session attended, the invoice, the payment
    part = export["services"]["billing"]
    [account] = part["held"]["accounts"]
    assert account["funding"]["payer_name"] == "Acme Health"
    [charge] = part["held"]["charges"]
    assert charge["session_id"] == sam.course_ids[0] and charge["reason"] == "attended"
    [invoice] = part["held"]["invoices"]
    assert invoice["number"] == sam.invoice_number
    [payment] = part["held"]["payments"]
    assert (payment["amount"], payment["method"]) == (9000, "insurer_remittance")
    funding = next(e["data"] for e in part["events"] if e["type"] == "FundingSet")
    assert funding["payer_reference"] == "POL-SAM-77"  # sealed in the store, opened here

    # every service's read for the export is in the audit trail
    reads = {(a.get("service"), a.get("action")) for a in export["audit"]}
    assert {("scheduling", "export"), ("measures", "export"), ("records", "export")} <= reads

    # no credential: the client's join link carries the room's JWT
    assert "jwt" not in text.lower() and "meet.practice.test/" not in text
    # nothing of anyone else
    for value in ruth.values:
        assert value not in text, f"another client's {value!r} is in Sam's export"
    assert ruth.cid not in set(_values(export))

    # the FHIR R4 export of the same client validates: Appointments for the sessions, every
    # reference resolved inside the Bundle
    def fhir_after_discharge():  # the discharge's cancellations reach measures in a moment
        found = five["measures"].get(f"/clients/{sam.cid}/fhir", headers=journey.lead).json
        resources = [e["resource"] for e in found["entry"]]
        statuses = {r["status"] for r in resources if r["resourceType"] == "Appointment"}
        return found if statuses >= {"fulfilled", "cancelled"} else None

    fhir = eventually(fhir_after_discharge, timeout=60, message="the Appointments' statuses")
    validate_r4(fhir)
    ids = {e["resource"]["id"] for e in fhir["entry"]}
    assert {sam.assessment_id, *sam.course_ids} <= ids

    # disposed of at the end of retention: nothing readable is left to export
    journey.dispose(sam.cid)
    after = json.dumps(journey.export(sam.cid))
    for value in sam.personal_values():
        assert value not in after, f"{value!r} still readable in the export after disposal"


def test_a_service_that_does_not_answer_makes_the_export_say_it_is_incomplete(
    settings, auth_header
):
    from services.records.app import create_app

    s = settings.with_(service_urls={**settings.service_urls, "billing": "http://127.0.0.1:9"})
    records = create_app(s).test_client()
    body = {
        "given_name": "Ada",
        "family_name": "Lovell",
        "date_of_birth": "1990-01-01",
        "email": "ada@client.test",
        "preferred_modality": "video",
        "reminder_channels": ["email"],
        "therapist_id": "t-1",
        "referral_source": "GP",
    }
    cid = records.post("/clients", headers=auth_header("admin"), json=body).json["client_id"]
    export = records.get(f"/clients/{cid}/export", headers=auth_header("clinical_lead")).json
    assert export["complete"] is False
    assert export["missing"]["billing"].startswith("unreachable")
    assert "billing" not in export["services"]
    assert export["record"]["family_name"] == "Lovell"


def test_only_a_service_reaches_a_part(settings, auth_header):
    for name in ("scheduling", "measures", "notifications", "billing"):
        api = services.load(name).create_app(settings).test_client()
        path = "/clients/c-1/subject-access"
        assert api.get(path, headers=auth_header("clinical_lead")).status_code == 403
        assert api.get(path).status_code == 401
        answer = api.get(path, headers=auth_header("service", sub="service:records"))
        assert answer.status_code == 200, (name, answer.get_json())
        assert answer.json["client_id"] == "c-1" and answer.json["events"] == []

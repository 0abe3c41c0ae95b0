"""Records' side of the subject access export (the whole, across services, is
tests/integration/test_subject_access.py): the enquiry the client came from is in it, and a
client disposed of at the end of retention exports nothing readable, the enquiry included."""

import json
from datetime import timedelta

import pytest

from services.records.app import create_app
from shared.events import utcnow

from .support import T1
from .test_enquiries import SAM, ok


@pytest.fixture
def app(settings):
    # no other service answers here: the export says so (`missing`), records' part is whole
    return create_app(settings.with_(service_urls=dict.fromkeys(SERVICES, "http://127.0.0.1:9")))


SERVICES = ("scheduling", "measures", "notifications", "billing", "records", "portal")


def test_the_enquiry_is_exported_and_nothing_is_readable_after_disposal(app, auth_header):
    api = app.test_client()
    admin, lead = auth_header("admin"), auth_header("clinical_lead", sub="lead-user")
    therapist = auth_header("therapist", therapist_id=T1)
    made = ok(api.post("/enquiries", json=SAM, headers=admin), 201)
    eid, cid = made["enquiry_id"], made["client_id"]
    ok(api.post(f"/enquiries/{eid}/waitlist", json={"priority": "urgent"}, headers=admin))
    body = {"date_of_birth": "1970-01-02", "therapist_id": T1}
    ok(api.post(f"/enquiries/{eid}/register", json=body, headers=admin), 201)

    export = ok(api.get(f"/clients/{cid}/export", headers=lead))
    assert export["complete"] is False and set(export["missing"]) == {
        "scheduling",
        "measures",
        "notifications",
        "billing",
    }
    assert export["enquiry"]["concern"] == SAM["concern"]
    assert export["enquiry"]["priority"] == "urgent"
    assert [e["type"] for e in export["enquiry"]["events"]] == [
        "EnquiryReceived",
        "EnquiryWaitlisted",
        "EnquiryConverted",
    ]

    # the rest of the record, each sealed: a task done with a reflection, a diary entry, the
    # course completed with its outcome
    task = {"description": "practising a difficult conversation"}
    tid = ok(api.post(f"/clients/{cid}/tasks", json=task, headers=therapist), 201)["task_id"]
    token = ok(api.post(f"/clients/{cid}/homework-links", headers=therapist), 201)["token"]
    portal = auth_header("service", sub="service:portal")
    entry = {"token": token, "text": "writing down important events or feelings"}
    ok(api.post("/homework/entries", json=entry, headers=portal), 201)
    done = {"token": token, "reflection": "better than I feared"}
    ok(api.post(f"/homework/tasks/{tid}/done", json=done, headers=portal))
    formulation = {
        "problem_areas": ["grief"],
        "formulation": "Grief after his mother's death",
        "inventory": [],
        "goals": ["back to the choir"],
    }
    ok(api.put(f"/clients/{cid}/formulation", json=formulation, headers=therapist))
    for to in ("initial", "middle", "ending"):
        body = {"to_phase": to, "reason": "agreed in session"}
        ok(api.post(f"/clients/{cid}/phase", json=body, headers=therapist))
    body = {"outcome": "improved", "outcome_summary": "Sleeping better"}
    ok(api.post(f"/clients/{cid}/course-completed", json=body, headers=therapist))

    body = {"reason": "moved away", "outcome_summary": "referred on"}
    ok(api.post(f"/clients/{cid}/discharge", json=body, headers=therapist))
    later = utcnow() + timedelta(days=365 * 20 + 6)
    app.config["RECORDS_CLOCK"] = lambda: later
    ok(api.post(f"/clients/{cid}/disposal", headers=lead))
    after = json.dumps(ok(api.get(f"/clients/{cid}/export", headers=lead)))
    for value in (
        "Okafor",
        SAM["concern"],
        "07700 900123",
        "weekday evenings",
        "my GP",
        "difficult conversation",
        "important events",
        "better than I feared",
        "mother's death",
        "Sleeping better",
    ):
        assert value not in after, f"{value!r} readable after disposal"

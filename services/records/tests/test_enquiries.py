"""Enquiries against the real local broker and store: a person gets in touch, reception logs
a call, puts them on the waiting list, offers an assessment, and registers them without
retyping; the report counts it; bad input stores nothing; an unconverted enquiry is disposed
of a year after its last step, and its personal data is then unreadable."""

from datetime import timedelta

import pytest

from services.records.app import create_app
from shared.crypto import DISPOSED, cipher_for
from shared.events import utcnow
from testkit.plugin import eventually, service_workers

from .support import T1, Scheduling

SAM = {
    "given_name": "Sam",
    "family_name": "Okafor",
    "phone": "07700 900123",
    "email": None,
    "contact_by": "phone",
    "concern": "Low since my mother died in the spring; not sleeping",
    "preferred_modality": "telephone",
    "preferred_times": "weekday evenings",
    "heard_from": "my GP",
    "consent_to_contact": True,
}


@pytest.fixture
def app(settings):
    return create_app(settings)


@pytest.fixture
def api(app):
    return app.test_client()


@pytest.fixture
def staff(auth_header):
    return {
        "admin": auth_header("admin", sub="reception-user"),
        "lead": auth_header("clinical_lead", sub="lead-user"),
        "t1": auth_header("therapist", sub="t1-user", therapist_id=T1),
        "portal": auth_header("service", sub="portal"),
    }


def ok(response, status=200):
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()


def events(app) -> list:
    with app.app_context():
        from shared.web import context

        return list(context().store.events.find({}, {"type": 1, "data": 1}))


def test_from_enquiry_to_client_without_retyping(app, api, staff, settings, workers):
    workers.start(*service_workers(settings, "records"))
    made = api.post("/enquiries", json=SAM, headers=staff["portal"])
    enquiry = ok(made, 201)
    eid, cid = enquiry["enquiry_id"], enquiry["client_id"]
    assert made.headers["Location"] == f"/enquiries/{eid}"
    assert enquiry["status"] == "received" and enquiry["concern"] == SAM["concern"]

    # sealed in the store: the name is not readable without the key
    raw = next(e for e in events(app) if e["type"] == "EnquiryReceived")
    assert raw["data"]["given_name"]["$enc"] == 1 and raw["data"]["consent_to_contact"] is True

    a = "/enquiries/" + eid
    attempt = {"channel": "phone", "outcome": "no_answer"}
    ok(api.post(f"{a}/contact-attempts", json=attempt, headers=staff["admin"]))
    attempt = {"channel": "phone", "outcome": "reached", "note": "happy to wait"}
    ok(api.post(f"{a}/contact-attempts", json=attempt, headers=staff["admin"]))
    waiting = ok(api.post(f"{a}/waitlist", json={"priority": "soon"}, headers=staff["admin"]))
    assert waiting["status"] == "waiting" and waiting["weeks_waiting"] == 0
    assert [x["outcome"] for x in waiting["attempts"]] == ["no_answer", "reached"]

    listed = eventually(
        lambda: ok(api.get("/waiting-list", headers=staff["admin"]))["enquiries"] or None
    )
    assert [(x["enquiry_id"], x["priority"], x["weeks_waiting"]) for x in listed] == [
        (eid, "soon", 0)
    ]
    # a therapist does not reach enquiries
    ok(api.get("/waiting-list", headers=staff["t1"]), 403)

    ok(api.post(f"{a}/offer", json={"therapist_id": T1}, headers=staff["admin"]))
    # the assessment slot the person booked by link, for the reserved client id
    scheduling = Scheduling(settings)
    facts = scheduling.facts(cid, T1, 1, start=utcnow() + timedelta(days=3))
    scheduling.book(facts, 1, kind="assessment")
    scheduling.publish()

    # a fact from another service, as the other cross-service waits here (60 s): in one
    # clean-clone CI run (session 16) it was not there within 20 s while the records
    # consumers were still rebalancing at the test's start; 3.2-3.7 s for the whole test alone
    booked = eventually(
        lambda: ok(api.get(a, headers=staff["admin"]))["assessment_at"],
        timeout=60,
        message="the assessment booked by link reaches the enquiry",
    )
    assert booked.startswith(facts["starts_at"].isoformat()[:16])

    made = api.post(
        f"{a}/register",
        json={"date_of_birth": "1990-01-02", "therapist_id": T1},
        headers=staff["admin"],
    )
    client = ok(made, 201)
    assert made.headers["Location"] == f"/clients/{cid}"
    assert client["client_id"] == cid
    assert (client["given_name"], client["family_name"], client["phone"]) == (
        "Sam",
        "Okafor",
        "07700 900123",
    )
    assert client["preferred_modality"] == "telephone"
    assert client["reminder_channels"] == ["sms"]
    assert "my GP" in client["referral_source"]
    # both happened or neither: a second registration is refused
    ok(
        api.post(
            f"{a}/register",
            json={"date_of_birth": "1990-01-02", "therapist_id": T1},
            headers=staff["admin"],
        ),
        409,
    )

    def report_when_complete():
        r = ok(api.get("/reports/enquiries", headers=staff["lead"]))
        return r if r["converted"] and r["to_assessment"]["count"] else None

    report = eventually(report_when_complete)
    assert report["enquiries"] == 1 and report["converted"] == 1
    assert report["conversion_rate"] == 1.0
    assert report["by_status"] == {"registered": 1}
    assert 2.9 <= report["to_assessment"]["median_days"] <= 3.1
    assert report["to_first_treatment"] == {"count": 0, "median_days": None, "mean_days": None}


@pytest.mark.parametrize(
    "change, field",
    [
        ({"consent_to_contact": False}, "consent_to_contact"),
        ({"contact_by": "email"}, "email"),
        ({"phone": "call me"}, "phone"),
        ({"given_name": "  "}, "given_name"),
        ({"concern": "x" * 2001}, "concern"),
        ({"preferred_modality": "carrier pigeon"}, "preferred_modality"),
        ({"concern": "hello\u202eevil"}, "concern"),
        ({"website": "spam"}, "website"),
    ],
)
def test_bad_enquiries_name_the_field_and_store_nothing(app, api, staff, change, field):
    response = api.post("/enquiries", json={**SAM, **change}, headers=staff["portal"])
    body = ok(response, 422)
    assert field in {e["field"] for e in body.get("errors") or []} or body.get("field") == field
    assert events(app) == []


def test_steps_are_refused_once_the_enquiry_is_closed(api, staff):
    eid = ok(api.post("/enquiries", json=SAM, headers=staff["admin"]), 201)["enquiry_id"]
    decline = {"reason": "needs a specialist service", "signposted_to": "NHS Talking Therapies"}
    declined = ok(api.post(f"/enquiries/{eid}/decline", json=decline, headers=staff["admin"]))
    assert declined["status"] == "declined"
    body = ok(
        api.post(f"/enquiries/{eid}/waitlist", json={"priority": "urgent"}, headers=staff["admin"]),
        409,
    )
    assert "declined" in body["detail"]
    ok(
        api.post("/enquiries/nope/waitlist", json={"priority": "urgent"}, headers=staff["admin"]),
        404,
    )
    ok(api.post("/enquiries", json=SAM, headers=staff["t1"]), 403)


def test_an_unconverted_enquiry_is_disposed_of_after_a_year(app, api, staff, settings, workers):
    workers.start(*service_workers(settings, "records"))
    made = ok(api.post("/enquiries", json=SAM, headers=staff["admin"]), 201)
    eid, cid = made["enquiry_id"], made["client_id"]
    body = ok(api.post(f"/enquiries/{eid}/disposal", headers=staff["lead"]), 409)
    assert "kept until" in body["detail"]
    later = utcnow() + timedelta(days=366)
    app.config["RECORDS_CLOCK"] = lambda: later
    disposed = ok(api.post(f"/enquiries/{eid}/disposal", headers=staff["lead"]))
    assert disposed["status"] == "disposed"
    assert cipher_for(settings).keys.is_disposed(cid)
    again = ok(api.get(f"/enquiries/{eid}", headers=staff["lead"]))
    assert again["given_name"] == DISPOSED and again["concern"] == DISPOSED
    assert [e["type"] for e in events(app)] == ["EnquiryReceived", "EnquiryDisposed"]

    # the kernel's disposal (as for a client) rebuilds the projections: the inbox forgets too
    def inbox_entry():
        found = ok(api.get("/enquiries", headers=staff["lead"]))["enquiries"]
        return found and found[0]["given_name"] == DISPOSED and found[0]

    entry = eventually(inbox_entry)
    assert (entry["given_name"], entry["concern"], entry["phone"]) == (DISPOSED,) * 3

"""The client who used every feature, through the services' APIs (tests/integration/
test_subject_access.py): what Sam said and did, kept so the export can be checked item by
item, and a second client whose data must never appear in Sam's export."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from shared.mongo import client as mongo_client
from testkit.plugin import eventually

LONDON = ZoneInfo("Europe/London")


def ok(response, status=200):
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()


def until_created(call, message):
    """A write that needs another service's events first (scheduling learns of a client from
    records, billing of a session from scheduling): repeat it until it is accepted."""
    return eventually(
        lambda: (lambda r: r.get_json() if r.status_code in (200, 201) else None)(call()),
        timeout=90,
        message=message,
    )


def _at(days: int, hour: int) -> datetime:
    day = (datetime.now(LONDON) + timedelta(days=days)).date()
    return datetime(day.year, day.month, day.day, hour, 0, tzinfo=LONDON).astimezone(UTC)


@dataclass
class Sam:
    email: str = "sam.okafor@client.test"
    concern: str = "Low since my mother died in the spring; not sleeping"
    difficulties: str = "Low mood and early waking since his mother's death"
    risk_summary: str = "Passive thoughts in May, no plan; safety plan agreed"
    formulation: str = "Grief after his mother's death, linked to withdrawing from the choir"
    note: str = "Talked through the funeral and the weeks after it"
    task: str = "practising a difficult conversation"
    diary: tuple = ("writing down important events or feelings", "Rang my sister on Sunday")
    reflection: str = "It went better than I feared"
    acknowledgement: str = "Phoned Sam the same day; safety plan reviewed together"
    course_summary: str = "Sleeping better; back at the choir"
    discharge_reason: str = "Moving to Leeds for work"
    discharge_summary: str = "Referred to a local IPT service"
    phq9: list = field(default_factory=lambda: [2, 2, 1, 1, 0, 1, 1, 0, 1])
    gad7: list = field(default_factory=lambda: [1, 1, 2, 1, 0, 1, 1])
    cid: str = ""
    tid: str = ""
    assessment_id: str = ""
    course_ids: list = field(default_factory=list)
    video_ids: list = field(default_factory=list)
    offered: list = field(default_factory=list)
    first_session: datetime | None = None
    invoice_number: str = ""

    def personal_values(self) -> list[str]:
        return [
            "Okafor",
            self.email,
            "07700 900123",
            self.concern,
            self.difficulties,
            self.risk_summary,
            self.formulation,
            self.note,
            self.task,
            *self.diary,
            self.reflection,
            self.acknowledgement,
            self.course_summary,
            self.discharge_reason,
            self.discharge_summary,
            # the policy number identifies Sam; the insurer's name is an organisation's
            # (FundingSet.payer_name is not personal data), so it may stay
            "POL-SAM-77",
        ]


@dataclass
class Other:
    cid: str
    values: tuple


class Journey:
    def __init__(self, five, auth_header):
        self.s = five
        self.auth = auth_header
        self.lead = auth_header("clinical_lead", sub="lead-user")
        self.reception = auth_header("admin", sub="reception-user")
        self.portal = auth_header("service", sub="service:portal")

    # -- Sam ---------------------------------------------------------------------------------
    def sam_uses_every_feature(self) -> Sam:
        sam = Sam()
        sam.tid = self.tid = self._therapist()
        self.therapist = self.auth("therapist", sub="t-user", therapist_id=sam.tid)
        ok(self.s["billing"].put("/fees", headers=self.lead, json=FEES))
        self._enquiry_and_booking_link(sam)
        self._course(sam)
        self._clinical_record(sam)
        self._homework(sam)
        self._questionnaires(sam)
        self._money(sam)
        self._messages_sent(sam)
        self._course_end_and_discharge(sam)
        return sam

    def _therapist(self) -> str:
        sched = self.s["scheduling"]
        body = {
            "name": "Dr Ruth Ames",
            "email": "ruth.ames@practice.test",
            "modalities": ["video", "telephone"],
            "rooms": [],
        }
        tid = ok(sched.post("/therapists", headers=self.lead, json=body), 201)["therapist_id"]
        hours = [{"weekday": d, "start": "08:00", "end": "20:00"} for d in range(7)]
        body = {"weekly_hours": hours, "exceptions": []}
        ok(sched.put(f"/therapists/{tid}/availability", headers=self.lead, json=body))
        return tid

    def _enquiry_and_booking_link(self, sam: Sam) -> None:
        records, sched = self.s["records"], self.s["scheduling"]
        enquiry = {
            "given_name": "Sam",
            "family_name": "Okafor",
            "email": sam.email,
            "phone": "07700 900123",
            "contact_by": "email",
            "concern": sam.concern,
            "preferred_modality": "video",
            "preferred_times": "weekday mornings",
            "heard_from": "my GP",
            "consent_to_contact": True,
        }
        made = ok(records.post("/enquiries", headers=self.portal, json=enquiry), 201)
        eid, sam.cid = made["enquiry_id"], made["client_id"]
        ok(
            records.post(
                f"/enquiries/{eid}/waitlist", headers=self.reception, json={"priority": "soon"}
            )
        )
        sam.offered = [_at(2, 9), _at(2, 11)]
        offer = {
            "client_id": sam.cid,
            "enquiry_id": eid,
            "therapist_id": sam.tid,
            "kind": "assessment",
            "modality": "video",
            "starts": [t.isoformat() for t in sam.offered],
        }
        link = until_created(
            lambda: sched.post("/booking-links", headers=self.reception, json=offer),
            "the enquirer known to scheduling",
        )
        token = ok(sched.post(f"/booking-links/{link['link_id']}/token", headers=self.portal), 201)
        booked = ok(
            sched.post(
                "/booking-links/book",
                headers=self.portal,
                json={"token": token["token"], "starts_at": sam.offered[0].isoformat()},
            ),
            201,
        )
        sam.assessment_id = booked["session_id"]
        body = {
            "date_of_birth": "1979-06-02",
            "therapist_id": sam.tid,
            "reminder_channels": ["email"],
        }
        ok(records.post(f"/enquiries/{eid}/register", headers=self.reception, json=body), 201)

    def _course(self, sam: Sam) -> None:
        sam.first_session = _at(7, 10)
        body = {
            "client_id": sam.cid,
            "therapist_id": sam.tid,
            "modality": "video",
            "first_starts_at": sam.first_session.isoformat(),
        }
        course = until_created(
            lambda: self.s["scheduling"].post("/courses", headers=self.reception, json=body),
            "the client known to scheduling",
        )
        sam.course_ids = [x["session_id"] for x in course["sessions"]]
        sam.video_ids = [x["session_id"] for x in course["sessions"] if x["modality"] == "video"]

    def _clinical_record(self, sam: Sam) -> None:
        records, cid, t = self.s["records"], sam.cid, self.therapist
        assessment = {
            "presenting_difficulties": sam.difficulties,
            "conditions": ["depression"],
            "goals": ["sleep through the night"],
            "risk_summary": sam.risk_summary,
        }
        ok(records.post(f"/clients/{cid}/assessment", headers=t, json=assessment), 201)
        formulation = {
            "problem_areas": ["grief"],
            "formulation": sam.formulation,
            "inventory": [],
            "goals": ["back to the choir"],
        }
        ok(records.put(f"/clients/{cid}/formulation", headers=t, json=formulation))
        for to in ("initial", "middle", "ending"):
            body = {"to_phase": to, "reason": "agreed in session"}
            ok(records.post(f"/clients/{cid}/phase", headers=t, json=body))
        note = {"session_id": sam.course_ids[0], "text": sam.note}
        until_created(
            lambda: records.post(f"/clients/{cid}/notes", headers=t, json=note), "note written"
        )

    def _homework(self, sam: Sam) -> None:
        records, cid = self.s["records"], sam.cid
        task = {"description": sam.task}
        tid = ok(records.post(f"/clients/{cid}/tasks", headers=self.therapist, json=task), 201)
        token = ok(records.post(f"/clients/{cid}/homework-links", headers=self.therapist), 201)
        for words in sam.diary:
            body = {"token": token["token"], "text": words}
            ok(records.post("/homework/entries", headers=self.portal, json=body), 201)
        done = {"token": token["token"], "reflection": sam.reflection}
        ok(records.post(f"/homework/tasks/{tid['task_id']}/done", headers=self.portal, json=done))

    def _questionnaires(self, sam: Sam) -> None:
        measures = self.s["measures"]
        body = {
            "client_id": sam.cid,
            "session_id": sam.course_ids[0],
            "answers": {"PHQ-9": sam.phq9, "GAD-7": sam.gad7},
        }
        until_created(
            lambda: measures.post("/responses", headers=self.therapist, json=body),
            "measures knows the client and the session",
        )
        alerts = eventually(
            lambda: measures.get("/risk-alerts?status=open", headers=self.lead).json.get("alerts"),
            timeout=90,
            message="the risk alert",
        )
        body = {"note": sam.acknowledgement}
        ok(
            measures.post(
                f"/risk-alerts/{alerts[0]['alert_id']}/acknowledge", headers=self.lead, json=body
            )
        )

    def _money(self, sam: Sam) -> None:
        billing, sched = self.s["billing"], self.s["scheduling"]
        funding = {
            "payer": "insurer",
            "payer_name": "Acme Health",
            "payer_reference": "POL-SAM-77",
            "payer_email": "claims@acme.test",
            "funded_sessions": 12,
        }
        until_created(
            lambda: billing.put(
                f"/clients/{sam.cid}/funding", headers=self.reception, json=funding
            ),
            "billing knows the client",
        )
        # attended once it has ended: the scheduling clock steps past the first session
        after = sam.first_session + timedelta(hours=1)
        self.s["apps"]["scheduling"].config["SCHEDULING_CLOCK"] = lambda: after
        ok(sched.post(f"/sessions/{sam.course_ids[0]}/attend", headers=self.therapist, json={}))
        eventually(
            lambda: billing.get(f"/clients/{sam.cid}/charges", headers=self.reception).json.get(
                "charges"
            ),
            timeout=90,
            message="the charge for the session attended",
        )
        invoice = ok(
            billing.post("/invoices", headers=self.reception, json={"client_id": sam.cid}), 201
        )
        sam.invoice_number = invoice["number"]
        payment = {
            "client_id": sam.cid,
            "payer": "funder",  # the session is one of the twelve the insurer funds
            "method": "insurer_remittance",
            "reference": "ACME-REMIT-5521",
            "amount": 9000,
            "received_on": datetime.now(UTC).date().isoformat(),
            "invoice_id": invoice["invoice_id"],
        }
        ok(billing.post("/payments", headers=self.reception, json=payment), 201)

    def _messages_sent(self, sam: Sam) -> None:
        def sent() -> set:
            found = self.s["notifications"].get(
                "/notifications", headers=self.lead, query_string={"client_id": sam.cid}
            )
            return {m["kind"] for m in found.json if m["status"] == "sent"}

        def seen():
            found = self.s["notifications"].get(
                "/notifications", headers=self.lead, query_string={"client_id": sam.cid}
            )
            return [(m["kind"], m["status"], m.get("last_error")) for m in found.json]

        # the assessment was booked by link: confirmed to the enquiry's contact (booked_by_link)
        # if the planner read the booking before the registration, else to the client
        # (confirmation); either way once
        eventually(
            lambda: "course_summary" in sent() and sent() & {"confirmation", "booked_by_link"},
            timeout=90,
            message="the assessment's confirmation and the course's summary sent",
            describe=seen,
        )

    def _course_end_and_discharge(self, sam: Sam) -> None:
        records, cid = self.s["records"], sam.cid
        body = {"outcome": "improved", "outcome_summary": sam.course_summary}
        ok(records.post(f"/clients/{cid}/course-completed", headers=self.therapist, json=body))
        body = {"reason": sam.discharge_reason, "outcome_summary": sam.discharge_summary}
        ok(records.post(f"/clients/{cid}/discharge", headers=self.therapist, json=body))

    # -- someone else ------------------------------------------------------------------------
    def another_client(self) -> Other:
        records, measures = self.s["records"], self.s["measures"]
        ruth = {
            "given_name": "Ruthie",
            "family_name": "Marlowe",
            "date_of_birth": "1961-11-30",
            "email": "ruthie.marlowe@client.test",
            "preferred_modality": "telephone",
            "reminder_channels": ["email"],
            "therapist_id": self.tid,
            "referral_source": "her daughter",
        }
        cid = ok(records.post("/clients", headers=self.reception, json=ruth), 201)["client_id"]
        note = "Ruthie's allotment was flooded"
        body = {
            "presenting_difficulties": note,
            "conditions": ["depression"],
            "goals": ["dig again"],
            "risk_summary": "none",
        }
        ok(records.post(f"/clients/{cid}/assessment", headers=self.therapist, json=body), 201)
        answers = {"client_id": cid, "answers": {"GAD-7": [3, 3, 3, 3, 3, 3, 2]}}
        until_created(
            lambda: measures.post("/responses", headers=self.therapist, json=answers),
            "measures knows Ruthie",
        )
        return Other(cid, ("Marlowe", "ruthie.marlowe@client.test", note, "dig again"))

    # -- the export and disposal -------------------------------------------------------------
    def export(self, cid: str) -> dict:
        return ok(self.s["records"].get(f"/clients/{cid}/export", headers=self.lead))

    def dispose(self, cid: str) -> None:
        later = datetime.now(UTC) + timedelta(days=365 * 20 + 6)
        self.s["apps"]["records"].config["RECORDS_CLOCK"] = lambda: later
        done = ok(self.s["records"].post(f"/clients/{cid}/disposal", headers=self.lead))
        assert done["status"] == "disposed"
        settings = self.s["apps"]["records"].config["RAPPORT_SETTINGS"]

        def db(s):  # each service's database on its own store (Settings.mongo_uri_of)
            return mongo_client(settings.mongo_uri_of(s))[settings.database(s)]

        def state() -> dict:
            return {
                f"{s}.{name}": db(s)[name].find_one({"_id": cid})
                for s in ("scheduling", "records", "measures", "notifications", "billing")
                for name in db(s).list_collection_names()
                if name.startswith("disposals__")
            }

        def swept():
            found = state()
            return len(found) == 5 and all(d and d.get("done_at") for d in found.values())

        eventually(swept, timeout=300, message="every service forgot the client", describe=state)


FEES = {
    "effective_from": "2026-01-01",
    "currency": "GBP",
    "prices": [
        {"kind": "assessment", "amount": 12000},
        {"kind": "treatment", "amount": 9000},
        {"kind": "booster", "amount": 8000},
    ],
    "notice_hours": 24,
    "late_cancellation": {"charge": "full_fee"},
    "did_not_attend": {"charge": "fixed", "amount": 4500},
}

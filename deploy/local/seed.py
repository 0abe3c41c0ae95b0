"""The demo practice for `make up` (python -m deploy.local.seed): two therapists in Maidstone,
four staff users, and clients whose records and scores tell their stories (Emma: a role
dispute, PHQ-9 17 -> 6 over 16 weekly sessions; John: grief, 19 -> 7, then boosters every
two months; see /work/shared/clinical.md "The seed's two cases").

Demo mode only (RAPPORT_DEMO_MODE); password $RAPPORT_DEMO_PASSWORD, default rapport-demo.
Idempotent: every step's result is kept in the portal database (`seed_progress`), so a second
run does nothing and a run that stopped half-way carries on where it stopped.

What is present-day goes through the services' HTTP APIs with the clinical lead's token
(from the portal's POST /api/auth/token). Sessions and questionnaires in the *past* cannot:
the scheduling API refuses to book in the past, by design. For those the seed runs the
services' own command handlers in-process, on their own stores, with a clock set to the
past (scheduling: `Application(clock=...)` books a course and marks sessions attended;
measures: `CompleteQuestionnaire(now=...)` through `application.record_response`), so every
rule of their deciders still applies and the events reach every projection as usual."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from zoneinfo import ZoneInfo

import requests

from services.portal.users import UserStore
from shared.config import Settings
from shared.events import Actor, new_id
from shared.eventstore import Metadata
from shared.mongo import client as mongo_client
from shared.web import ServiceContext

LONDON = ZoneInfo("Europe/London")
STARTED = time.monotonic()
MARKER = "demo-practice"
HOURS = [{"weekday": d, "start": "09:00", "end": "17:00"} for d in range(5)]
THERAPISTS = [
    {
        "therapist_id": "sarah-okafor",
        "name": "Dr Sarah Okafor",
        "email": "therapist1@rapport.test",
        "modalities": ["face_to_face", "video", "telephone"],
        "rooms": ["Maidstone Room 1"],
    },
    {
        "therapist_id": "tom-reid",
        "name": "Mr Tom Reid",
        "email": "therapist2@rapport.test",
        "modalities": ["face_to_face", "video", "telephone"],
        "rooms": ["Maidstone Room 2"],
    },
]
STAFF = [
    ("lead@rapport.test", "Dr Helen Marsh", "clinical_lead", None),
    ("reception@rapport.test", "Jo Bennett", "admin", None),
    ("therapist1@rapport.test", "Dr Sarah Okafor", "therapist", "sarah-okafor"),
    ("therapist2@rapport.test", "Mr Tom Reid", "therapist", "tom-reid"),
]


@dataclass(frozen=True)
class Case:
    key: str
    client: dict
    age: int
    assessment: dict
    formulation: dict
    weekday: int  # of the weekly session, Monday = 0
    hour: int
    weeks_ago: int  # the first session was this many weeks ago
    attended: int  # sessions attended so far (of 16)
    phq9: tuple  # totals, one per attended session
    gad7: tuple
    phase: str | None = None
    discharge: str | None = None
    boosters: bool = False


def _person(name, relationship, closeness, good, hard, unilateral=False):
    return {
        "name": name,
        "relationship": relationship,
        "closeness": closeness,
        "good": good,
        "hard": hard,
        "unilateral_partner": unilateral,
    }


CASES = [
    Case(
        "emma",
        {
            "given_name": "Emma",
            "family_name": "Clarke",
            "email": "emma.clarke@example.test",
            "phone": "07700 900123",
            "preferred_modality": "face_to_face",
            "reminder_channels": ["email", "sms"],
            "therapist_id": "sarah-okafor",
            "referral_source": "GP",
        },
        45,
        {
            "presenting_difficulties": "Low mood for four months since starting a new job as a "
            "care assistant; overeating, poor sleep, irritable with her husband and three "
            "children.",
            "conditions": ["depression"],
            "goals": ["Argue less with Mark", "Get more help at home"],
            "risk_summary": "No thoughts of self-harm; protective factors: children, faith, work.",
        },
        {
            "problem_areas": ["role_dispute"],
            "formulation": "Emma's depression began when her new job changed the balance at home; "
            "she and Mark disagree about who does what, and the dispute has reached an impasse.",
            "goals": [
                "Renegotiate household roles with Mark",
                "Say what she needs without shouting",
            ],
            "inventory": [
                _person(
                    "Mark", "husband", 1, "Loyal, good father", "Expects her to do it all", True
                ),
                _person("Lily", "daughter, 14", 1, "Close, funny", "Rows about chores"),
                _person("Jan", "mother", 2, "Always listens", "Lives in Hastings"),
                _person("Priti", "colleague", 3, "Understands the job", "Only see her at work"),
            ],
        },
        weekday=0,
        hour=10,
        weeks_ago=18,
        attended=16,
        phq9=(17, 17, 16, 15, 14, 13, 12, 12, 11, 10, 9, 8, 8, 7, 6, 6),
        gad7=(12, 12, 11, 11, 10, 9, 9, 8, 7, 7, 6, 6, 5, 5, 4, 4),
        phase="ending",
        discharge=(
            "Course completed: communication with Mark better, more help at home, mood lifted."
        ),
    ),
    Case(
        "john",
        {
            "given_name": "John",
            "family_name": "Whitaker",
            "email": "john.whitaker@example.test",
            "phone": None,
            "preferred_modality": "face_to_face",
            "reminder_channels": ["email"],
            "therapist_id": "tom-reid",
            "referral_source": "self-referral",
        },
        68,
        {
            "presenting_difficulties": "Wife Margaret died five months ago after a long illness; "
            "withdrawn, waking at 4am, guilt, tearful, weight loss.",
            "conditions": ["depression"],
            "goals": ["Feel less guilty", "See friends again"],
            "risk_summary": "Passive thoughts early on, no plans; reviewed each session.",
        },
        {
            "problem_areas": ["grief"],
            "formulation": "John's low mood follows Margaret's death; he has not been able to "
            "mourn, and has withdrawn from the tennis, cycling and friends they shared.",
            "goals": ["Talk about Margaret and the illness", "Return to tennis and walking"],
            "inventory": [
                _person("Margaret", "late wife", 1, "Forty years together", "Died in May"),
                _person("David", "son", 2, "Phones weekly", "Lives in Leeds"),
                _person("Ray", "tennis partner", 3, "Keeps asking him back", "John avoids him"),
            ],
        },
        weekday=1,
        hour=14,
        weeks_ago=26,
        attended=16,
        phq9=(19, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 9, 8, 7, 7),
        gad7=(9, 9, 9, 8, 8, 7, 7, 6, 6, 5, 5, 5, 4, 4, 4, 3),
        phase="maintenance",
        boosters=True,
    ),
    Case(
        "priya",
        {
            "given_name": "Priya",
            "family_name": "Shah",
            "email": "priya.shah@example.test",
            "phone": "07700 900456",
            "preferred_modality": "video",
            "reminder_channels": ["sms"],
            "therapist_id": "sarah-okafor",
            "referral_source": "employer",
        },
        32,
        {
            "presenting_difficulties": "Low mood and worry since moving to Kent for a new role.",
            "conditions": ["depression", "anxiety"],
            "goals": ["Build a life here"],
            "risk_summary": "No risk identified.",
        },
        {
            "problem_areas": ["role_transition"],
            "formulation": "A move away from family and friends.",
            "goals": ["Join a local group"],
            "inventory": [_person("Anil", "brother", 1, "Daily calls", "Far away")],
        },
        weekday=2,
        hour=11,
        weeks_ago=8,
        attended=8,
        phq9=(14, 14, 13, 13, 12, 12, 11, 10),
        gad7=(11, 11, 10, 10, 9, 9, 8, 8),
        phase="middle",
    ),
    Case(
        "margaret",
        {
            "given_name": "Margaret",
            "family_name": "Ellis",
            "email": "m.ellis@example.test",
            "phone": None,
            "preferred_modality": "telephone",
            "reminder_channels": ["email"],
            "therapist_id": "tom-reid",
            "referral_source": "GP",
        },
        61,
        {
            "presenting_difficulties": "Low mood after her sister's death last year.",
            "conditions": ["depression"],
            "goals": ["Sleep better"],
            "risk_summary": "No risk identified.",
        },
        {
            "problem_areas": ["grief", "interpersonal_deficits"],
            "formulation": "Grief and isolation.",
            "goals": ["Phone one friend a week"],
            "inventory": [_person("Ann", "neighbour", 3, "Kind", "Busy")],
        },
        weekday=3,
        hour=15,
        weeks_ago=20,
        attended=16,
        phq9=(15, 15, 15, 14, 14, 14, 13, 13, 13, 13, 12, 12, 12, 12, 12, 12),
        gad7=(10, 10, 10, 10, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9),
        phase="ending",
    ),
]


class Progress:
    """Each step's result, kept so that a rerun repeats nothing."""

    def __init__(self, db):
        self.col = db["seed_progress"]

    def done(self) -> bool:
        return bool((self.col.find_one({"_id": MARKER}) or {}).get("finished_at"))

    def once(self, key: str, work):
        key = key.replace(".", ":")  # a dotted key would nest in $set and never be found again
        doc = self.col.find_one({"_id": MARKER}) or {}
        if key in (doc.get("steps") or {}):
            return doc["steps"][key]
        result = work()
        self.col.update_one({"_id": MARKER}, {"$set": {f"steps.{key}": result}}, upsert=True)
        return result

    def finish(self) -> None:
        self.col.update_one(
            {"_id": MARKER}, {"$set": {"finished_at": datetime.now(UTC)}}, upsert=True
        )


class Api:
    def __init__(self, urls: dict, token: str):
        self.urls, self.http = urls, requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, service: str, path: str, body=None, ok=(200, 201)):
        r = self.http.request(method, self.urls[service] + path, json=body, timeout=30)
        if r.status_code not in ok:
            raise SystemExit(f"seed: {method} {service}{path} -> {r.status_code} {r.text[:400]}")
        return r.json() if r.content else {}


def wait_for(what: str, check, timeout: float = 300.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise SystemExit(f"seed: gave up waiting for {what}")


def answers_for(total: int, items: int) -> list[int]:
    """Item answers (0-3) that add up to `total`, spread evenly; the last PHQ-9 item (self-harm)
    stays 0 so that the demo raises no risk alert."""
    usable = items - 1 if items == 9 else items
    out = [0] * items
    for i in range(total):
        out[i % usable] += 1
    assert max(out) <= 3, total
    return out


def first_session(case: Case, today: date) -> datetime:
    start = today - timedelta(weeks=case.weeks_ago)
    start -= timedelta(days=(start.weekday() - case.weekday) % 7)
    return datetime.combine(start, clock_time(case.hour), tzinfo=LONDON).astimezone(UTC)


def past_course(
    settings: Settings, case: Case, client_id: str, meta: Metadata, today: date
) -> list[dict]:
    """Book the course as if on the day before it began, then mark each session attended just
    after it ended: scheduling's own handlers, clock set to the past."""
    from services.scheduling.application import Application
    from services.scheduling.domain.courses import BookCourse
    from services.scheduling.domain.session import AttendSession
    from services.scheduling.projections import directory

    ctx = ServiceContext("scheduling", settings)
    directory_store = ctx.projection(directory())
    first = first_session(case, today)
    now = {"at": first - timedelta(days=1)}
    app = Application(ctx.store, directory_store, clock=lambda: now["at"])
    wait_for(f"scheduling to know {case.key}", lambda: app.client_facts(client_id)[0])
    therapist = case.client["therapist_id"]
    modality = case.client["preferred_modality"]
    room = (
        next(t["rooms"][0] for t in THERAPISTS if t["therapist_id"] == therapist)
        if modality == "face_to_face"
        else None
    )

    def command(plan_id):
        plan = app.plan(
            client_id=client_id,
            therapist_id=therapist,
            modality=modality,
            room=room,
            start=first,
            end=first + timedelta(weeks=16),
        )
        return BookCourse(plan_id, plan, first, 16, 1)

    events = app.book_many(command, meta)
    sessions = sorted(
        (
            {
                "session_id": e.data["session_id"],
                "number": e.data["number"],
                "starts_at": e.data["starts_at"],
                "course_id": e.data["course_id"],
            }
            for e in events[1:]
        ),
        key=lambda s: s["number"],
    )
    for s in sessions[: case.attended]:
        now["at"] = s["starts_at"] + timedelta(minutes=55)
        app.run_session(s["session_id"], lambda _state: AttendSession(now["at"]), meta)
    return [{**s, "starts_at": s["starts_at"].isoformat()} for s in sessions]


def past_scores(
    settings: Settings, case: Case, client_id: str, sessions: list[dict], meta: Metadata
) -> int:
    """One PHQ-9 + GAD-7 before each attended session, completed the evening before, through
    measures' own scoring and handlers with the completion time in the past."""
    from services.measures import domain
    from services.measures.application import Application

    measures = Application(ServiceContext("measures", settings).store)
    for s, phq9, gad7 in zip(sessions, case.phq9, case.gad7, strict=False):
        when = datetime.fromisoformat(s["starts_at"]) - timedelta(hours=16)
        command = domain.CompleteQuestionnaire(
            response_id=new_id(),
            client_id=client_id,
            therapist_id=case.client["therapist_id"],
            answers={"PHQ-9": answers_for(phq9, 9), "GAD-7": answers_for(gad7, 7)},
            source="link",
            now=when,
            session_id=s["session_id"],
            course_id=s["course_id"],
            session_number=s["number"],
        )
        measures.record_response(command, meta)
    return len(case.phq9)


def records_know_sessions(settings: Settings, case: Case, session_ids: list[str]) -> None:
    """A note names a session records has heard of from scheduling (issue 15, #10), and
    records waits only a few seconds for one; the seed books a whole course at once, so it
    waits here until records' projection holds every session it writes notes for."""
    from services.records.projections import ClientSummaries

    sessions = ServiceContext("records", settings).projection(ClientSummaries())
    wait_for(
        f"records to know {case.key}'s sessions",
        lambda: (
            sessions.reader("sessions").count_documents({"_id": {"$in": session_ids}})
            == len(set(session_ids))
        ),
    )


def register(api: Api, progress: Progress, case: Case, today: date) -> str:
    born = (
        date(today.year - case.age, 3, 2)
        if (today.month, today.day) >= (3, 2)
        else date(today.year - case.age - 1, 3, 2)
    )
    return progress.once(
        f"{case.key}.client",
        lambda: api.call(
            "POST", "records", "/clients", {**case.client, "date_of_birth": born.isoformat()}
        )["client_id"],
    )


def seed_case(
    api: Api, settings: Settings, progress: Progress, case: Case, meta: Metadata, today: date
) -> None:
    client_id = register(api, progress, case, today)
    progress.once(
        f"{case.key}.assessment",
        lambda: bool(
            api.call("POST", "records", f"/clients/{client_id}/assessment", case.assessment)
        ),
    )
    progress.once(
        f"{case.key}.formulation",
        lambda: bool(
            api.call("PUT", "records", f"/clients/{client_id}/formulation", case.formulation)
        ),
    )
    sessions = progress.once(
        f"{case.key}.course", lambda: past_course(settings, case, client_id, meta, today)
    )
    progress.once(
        f"{case.key}.scores", lambda: past_scores(settings, case, client_id, sessions, meta)
    )
    attended = sessions[: case.attended]
    records_know_sessions(settings, case, [s["session_id"] for s in attended])
    progress.once(
        f"{case.key}.notes",
        lambda: [
            api.call(
                "POST",
                "records",
                f"/clients/{client_id}/notes",
                {"session_id": s["session_id"], "text": text},
            )["note_id"]
            for s, text in zip(
                (attended[0], attended[len(attended) // 2], attended[-1]),
                (
                    "Assessment completed; agreed a focus and a 16-session contract.",
                    "Middle phase: worked on the focus; homework reviewed.",
                    "Reviewed progress and warning signs; plan for after therapy.",
                ),
                strict=True,
            )
        ],
    )
    progress.once(
        f"{case.key}.task",
        lambda: api.call(
            "POST",
            "records",
            f"/clients/{client_id}/tasks",
            {"description": case.formulation["goals"][0]},
        )["task_id"],
    )
    for phase in ("initial", "middle", "ending", "maintenance"):
        progress.once(
            f"{case.key}.phase.{phase}",
            lambda phase=phase: bool(
                api.call(
                    "POST",
                    "records",
                    f"/clients/{client_id}/phase",
                    {"to_phase": phase, "reason": f"Sessions attended: {case.attended}"},
                )
            ),
        )
        if phase == case.phase:
            break
    if case.boosters:
        first = datetime.combine(
            today + timedelta(days=14 + (case.weekday - today.weekday()) % 7),
            clock_time(case.hour),
            tzinfo=LONDON,
        ).astimezone(UTC)
        progress.once(
            f"{case.key}.boosters",
            lambda: len(
                api.call(
                    "POST",
                    "scheduling",
                    "/boosters",
                    {
                        "client_id": client_id,
                        "therapist_id": case.client["therapist_id"],
                        "modality": case.client["preferred_modality"],
                        "room": next(
                            t["rooms"][0]
                            for t in THERAPISTS
                            if t["therapist_id"] == case.client["therapist_id"]
                        ),
                        "first_starts_at": first.isoformat(),
                        "count": 3,
                        "interval_months": 2,
                    },
                )["sessions"]
            ),
        )
    if case.discharge:
        progress.once(
            f"{case.key}.discharge",
            lambda: bool(
                api.call(
                    "POST",
                    "records",
                    f"/clients/{client_id}/discharge",
                    {"reason": "Treatment completed", "outcome_summary": case.discharge},
                )
            ),
        )
    print(
        f"seed: {case.client['given_name']} {case.client['family_name']} ready ({client_id}, "
        f"{time.monotonic() - STARTED:.0f}s)",
        flush=True,
    )


def seed_staff(store: UserStore, password: str) -> None:
    for email, name, role, therapist_id in STAFF:
        if store.by_email(email) is None:
            store.add(
                email=email, name=name, role=role, password=password, therapist_id=therapist_id
            )


def seed_therapists(api: Api, progress: Progress) -> None:
    for t in THERAPISTS:
        progress.once(
            f"therapist.{t['therapist_id']}",
            lambda t=t: bool(api.call("POST", "scheduling", "/therapists", t, ok=(201, 409))),
        )
        progress.once(
            f"availability.{t['therapist_id']}",
            lambda t=t: bool(
                api.call(
                    "PUT",
                    "scheduling",
                    f"/therapists/{t['therapist_id']}/availability",
                    {"weekly_hours": HOURS, "exceptions": []},
                )
            ),
        )


# The practice's price list (billing): in force since before any demo course began, so the
# demo's attended, late-cancelled and missed sessions are charged as they arrive.
FEES = {
    "effective_from": "2020-01-01",
    "currency": "GBP",
    "prices": [
        {"kind": "assessment", "amount": 12000},
        {"kind": "treatment", "amount": 9000},
        {"kind": "booster", "amount": 8000},
    ],
    "notice_hours": 24,
    "late_cancellation": {"charge": "full_fee"},
    "did_not_attend": {"charge": "fixed", "amount": 4500},
    "vat": {"exempt": True},
}


def seed_fees(api: Api, progress: Progress) -> None:
    progress.once("billing.fees", lambda: bool(api.call("PUT", "billing", "/fees", FEES)))


def lead_token(settings: Settings, password: str) -> tuple[str, str]:
    r = requests.post(
        settings.service_urls["portal"] + "/api/auth/token",
        json={"email": "lead@rapport.test", "password": password},
        timeout=30,
    )
    if r.status_code != 200:
        raise SystemExit(
            f"seed: the portal refused the lead's sign-in: {r.status_code} {r.text[:200]}"
        )
    return r.json()["token"], r.json()["role"]


def run(settings: Settings, password: str, today: date | None = None) -> bool:
    """Seed once; False when the practice was already seeded."""
    db = mongo_client(settings.mongo_uri_of("portal"))[settings.database("portal")]
    progress = Progress(db)
    if progress.done():
        return False
    users = UserStore(db)
    users.ensure_indexes()
    seed_staff(users, password)
    token, _ = lead_token(settings, password)
    api = Api(settings.service_urls, token)
    lead = users.by_email("lead@rapport.test")
    meta = Metadata(
        actor=Actor(id=lead.id, role="clinical_lead"), correlation_id="seed-" + new_id()
    )
    seed_therapists(api, progress)
    seed_fees(api, progress)
    today = today or datetime.now(LONDON).date()
    for case in CASES:  # all registered first, so the services learn of them meanwhile
        register(api, progress, case, today)
    for case in CASES:
        seed_case(api, settings, progress, case, meta, today)
    progress.finish()
    return True


def main() -> int:
    settings = Settings.from_env()
    if not settings.demo_mode:
        print("seed: refused: the demo practice is only for RAPPORT_DEMO_MODE=1", file=sys.stderr)
        return 2
    password = os.environ.get("RAPPORT_DEMO_PASSWORD", "rapport-demo")
    if run(settings, password):
        print(
            "seed: demo practice ready; staff sign in as lead@, reception@, therapist1@, "
            "therapist2@rapport.test"
        )
    else:
        print("seed: the demo practice is already there; nothing to do")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Races through HTTP on real gunicorn (deploy/gunicorn.conf.py, several workers, threads):
20 bookings of one slot at once, and two clinicians' sessions acting on one client record at
once. One wins, the others get 409, and the log holds exactly the winner's events."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import time, timedelta

import requests

from services.records.tests.support import known_session
from services.scheduling.domain import diary
from services.scheduling.projections import directory
from shared.events import utcnow
from shared.outbox import message_from_document
from shared.projections import Record
from shared.web import ServiceContext
from testkit.faults import RECEPTION, registered
from testkit.procs import Gunicorn

WORKING_WEEK = [{"weekday": d, "start": "09:00", "end": "17:00"} for d in range(5)]


def at_once(n: int, call) -> list:
    """Run `call(i)` on n threads released together by a barrier."""
    barrier = threading.Barrier(n)

    def go(i):
        barrier.wait()
        return call(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(go, range(n)))


def monday_at(hour: int, weeks_ahead: int = 3):
    today = diary.local(utcnow()).date()
    return diary.to_utc(today + timedelta(days=7 * weeks_ahead - today.weekday()), time(hour))


def clients_known_to_scheduling(settings, client_ids) -> None:
    """Records' registrations, applied to scheduling's client directory by the kernel's own
    projection code (the broker path is covered by the other fault cases)."""
    store = ServiceContext("records", settings).store
    for cid in client_ids:
        store.append(cid, 0, [registered(cid)], RECEPTION)
    target = ServiceContext("scheduling", settings).projection(directory())
    docs = list(store.events.find().sort("position", 1))
    target.apply(
        [Record("records-direct", 0, d["position"], message_from_document(d)) for d in docs],
        target.active_generation(),
    )


def test_twenty_concurrent_bookings_of_one_slot_on_gunicorn_one_wins(settings, procs, auth_header):
    web = procs.add(
        Gunicorn(
            "services.scheduling.wsgi:app",
            settings,
            log_dir=procs.log_dir,
            name="scheduling",
            workers=2,
        )
    )
    admin = auth_header("admin")
    r = requests.post(
        f"{web.url}/therapists",
        headers=admin,
        timeout=30,
        json={
            "therapist_id": "t1",
            "name": "Ann",
            "email": "t1@rapport.test",
            "modalities": ["video"],
            "rooms": [],
        },
    )
    assert r.status_code == 201, r.text
    r = requests.put(
        f"{web.url}/therapists/t1/availability",
        headers=admin,
        timeout=30,
        json={"weekly_hours": WORKING_WEEK, "exceptions": []},
    )
    assert r.status_code == 200, r.text
    clients = [f"race-c{i}" for i in range(20)]
    clients_known_to_scheduling(settings, clients)
    starts = monday_at(14).isoformat()

    def book(i):
        r = requests.post(
            f"{web.url}/sessions",
            headers=admin,
            timeout=60,
            json={
                "client_id": clients[i],
                "therapist_id": "t1",
                "kind": "treatment",
                "modality": "video",
                "starts_at": starts,
            },
        )
        return r.status_code, r.json().get("detail")

    results = at_once(20, book)
    codes = sorted(code for code, _ in results)
    assert codes.count(201) == 1 and codes.count(409) == 19, results
    store = ServiceContext("scheduling", settings).store
    assert store.events.count_documents({"type": "SessionBooked"}) == 1, "the log holds one booking"


def test_two_sessions_on_one_client_record_one_wins_no_lost_update(settings, procs, auth_header):
    web = procs.add(
        Gunicorn(
            "services.records.wsgi:app", settings, log_dir=procs.log_dir, name="records", workers=2
        )
    )
    admin, t1 = auth_header("admin"), auth_header("therapist", therapist_id="t1", sub="t1-user")
    r = requests.post(
        f"{web.url}/clients",
        headers=admin,
        timeout=30,
        json={
            "given_name": "Emma",
            "family_name": "Race",
            "date_of_birth": "1981-03-02",
            "preferred_modality": "video",
            "therapist_id": "t1",
            "referral_source": "GP",
        },
    )
    assert r.status_code == 201, r.text
    cid = r.json()["client_id"]
    url = f"{web.url}/clients/{cid}"

    def phase(_):  # both clinicians start the initial phase at the same moment
        return requests.post(
            f"{url}/phase",
            headers=t1,
            timeout=60,
            json={"to_phase": "initial", "reason": "first session"},
        ).status_code

    assert sorted(at_once(2, phase)) == [200, 409]

    def formulate(i):  # both revise revision 0 of the formulation
        return requests.put(
            f"{url}/formulation",
            headers=t1,
            timeout=60,
            json={
                "problem_areas": ["grief"],
                "formulation": f"version {i}",
                "goals": ["grieve"],
                "expected_revision": 0,
            },
        ).status_code

    assert sorted(at_once(2, formulate)) == [200, 409]

    r = requests.post(
        f"{url}/notes",
        headers=t1,
        timeout=30,
        json={"session_id": known_session(settings, cid, "t1"), "text": "first note"},
    )
    assert r.status_code == 201, r.text
    note = r.json()["note_id"]

    def amend(i):  # two tabs amending the same note
        return requests.post(
            f"{url}/notes/{note}/amend",
            headers=t1,
            timeout=60,
            json={"text": f"amended {i}", "reason": "typo"},
        ).status_code

    assert sorted(at_once(2, amend)) == [201, 409]

    events = ServiceContext("records", settings).store.load(cid)
    types = [e.type for e in events]
    assert types.count("PhaseChanged") == 1 and types.count("FormulationRecorded") == 1
    amendments = [e for e in events if e.type == "NoteRecorded" and e.data.get("amends") == note]
    assert len(amendments) == 1, "exactly the winner's amendment is in the record"
    notes = requests.get(f"{url}/notes", headers=t1, timeout=30).json()["notes"]
    current = [n for n in notes if n.get("current", True)]
    assert (
        len(notes) == 2 and len(current) == 1 and current[0]["text"] == amendments[0].data["text"]
    )

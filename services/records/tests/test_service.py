"""The records service against the real local broker and store: the seed's Emma and John
through a course, the record as it stood between two changes, scheduling's attendance
turned into a suggested phase, caseloads, the list and the timeline."""

import time
from datetime import timedelta

import pytest

from services.records.app import create_app
from services.records.projections import ClientSummaries
from shared.consumer import projection_store, rebuild
from shared.events import utcnow
from shared.projections import snapshot
from testkit.plugin import eventually, service_workers

from .support import (
    EMMA,
    EMMA_ASSESSMENT,
    EMMA_FORMULATION,
    JOHN,
    JOHN_FORMULATION,
    T1,
    T2,
    Scheduling,
)


@pytest.fixture
def api(settings):
    return create_app(settings).test_client()


@pytest.fixture
def staff(auth_header):
    return {
        "admin": auth_header("admin", sub="reception-user"),
        "lead": auth_header("clinical_lead", sub="lead-user"),
        "t1": auth_header("therapist", sub="t1-user", therapist_id=T1),
        "t2": auth_header("therapist", sub="t2-user", therapist_id=T2),
    }


def ok(response, status=200):
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()


def phase(api, who, client_id, to, reason="agreed in session"):
    return ok(
        api.post(
            f"/clients/{client_id}/phase", json={"to_phase": to, "reason": reason}, headers=who
        )
    )


def test_emma_and_john_through_their_courses(api, staff, settings, workers):
    workers.start(*service_workers(settings, "records"))
    e, j = register_both(api, staff)
    emma_initial_then_middle_read_as_of(api, staff, e)
    emma_notes_and_tasks(api, staff, settings, e)
    scheduling = attendance_suggests_a_phase_and_fills_the_caseload(api, staff, settings, e)
    john_to_maintenance_with_a_booster(api, staff, scheduling, j)
    discharge_emma(api, staff, e)
    history_list_and_timeline(api, staff, e, j)
    rebuilt_summaries_match_the_live_ones(settings)


def register_both(api, staff):
    emma_r = api.post("/clients", json=EMMA, headers=staff["admin"])
    emma = ok(emma_r, 201)
    assert emma_r.headers["Location"] == f"/clients/{emma['client_id']}"
    assert emma["nhs_number"] == "9434765919" and emma["view"] == "contact"
    john = ok(api.post("/clients", json=JOHN, headers=staff["admin"]), 201)
    return emma["client_id"], john["client_id"]


def emma_initial_then_middle_read_as_of(api, staff, e):
    ok(api.post(f"/clients/{e}/assessment", json=EMMA_ASSESSMENT, headers=staff["t1"]), 201)
    first = ok(api.put(f"/clients/{e}/formulation", json=EMMA_FORMULATION, headers=staff["t1"]))
    assert first["revision"] == 1 and first["inventory"][0]["unilateral_partner"] is True
    phase(api, staff["t1"], e, "initial", "first session")

    time.sleep(0.05)
    between = utcnow()  # after the first formulation and phase, before the next changes
    time.sleep(0.05)

    revised = ok(
        api.put(
            f"/clients/{e}/formulation",
            headers=staff["t1"],
            json={**EMMA_FORMULATION, "goals": ["negotiate the housework"], "expected_revision": 1},
        )
    )
    assert revised["revision"] == 2
    moved = phase(api, staff["t1"], e, "middle", "session 5: focus agreed")
    assert (moved["from_phase"], moved["phase"], moved["by"]) == ("initial", "middle", "t1-user")

    then = ok(
        api.get(f"/clients/{e}", query_string={"as_of": between.isoformat()}, headers=staff["t1"])
    )
    assert then["phase"] == "initial" and then["formulation"]["revision"] == 1
    now = ok(api.get(f"/clients/{e}", headers=staff["t1"]))
    assert now["phase"] == "middle" and now["formulation"]["revision"] == 2
    assert now["assessment"]["conditions"] == ["depression"]


def emma_notes_and_tasks(api, staff, settings, e):
    # notes name a session scheduling booked for Emma (issue 15, #10)
    scheduling = Scheduling(settings)
    first, sixth = (scheduling.facts(e, T1, n, session_id=f"s-{e[:8]}-note-{n}") for n in (1, 6))
    scheduling.book(first, 1)
    scheduling.book(sixth, 6)
    scheduling.publish()
    # notes: the amendment is a new note; the original stays, marked
    note = ok(
        api.post(
            f"/clients/{e}/notes",
            headers=staff["t1"],
            json={
                "session_id": first["session_id"],
                "text": "Discussed the row about the school run",
            },
        ),
        201,
    )
    amended = ok(
        api.post(
            f"/clients/{e}/notes/{note['note_id']}/amend",
            headers=staff["t1"],
            json={
                "text": "Discussed the row about the school run and shifts",
                "reason": "left out the shifts",
            },
        ),
        201,
    )
    notes = ok(api.get(f"/clients/{e}/notes", headers=staff["lead"]))["notes"]
    assert [(n["note_id"], n["current"]) for n in notes] == [
        (note["note_id"], False),
        (amended["note_id"], True),
    ]
    assert notes[0]["text"] == "Discussed the row about the school run"
    assert notes[0]["amended_by"] == amended["note_id"] and amended["amends"] == note["note_id"]
    assert amended["author"] == "t1-user" and amended["session_id"] == first["session_id"]

    # homework
    task = ok(
        api.post(
            f"/clients/{e}/tasks",
            headers=staff["t1"],
            json={"description": "Ask Mark to do two school runs"},
        ),
        201,
    )
    done = ok(
        api.post(
            f"/tasks/{task['task_id']}/complete",
            headers=staff["t1"],
            json={"reflection": "He said yes to one"},
        )
    )
    assert done["status"] == "completed" and done["reflection"] == "He said yes to one"
    reviewed = ok(
        api.post(
            f"/tasks/{task['task_id']}/review",
            headers=staff["t1"],
            json={"review": "A start; practise asking again", "session_id": sixth["session_id"]},
        )
    )
    assert reviewed["reviews"][0]["by"] == "t1-user"
    assert (
        ok(api.post(f"/tasks/{task['task_id']}/complete", headers=staff["t1"], json={}), 409)[
            "code"
        ]
        == "completed"
    )


def attendance_suggests_a_phase_and_fills_the_caseload(api, staff, settings, e):
    # scheduling reports five attended sessions and one booked ahead: the record suggests
    # the middle phase, the caseload shows the next session
    scheduling = Scheduling(settings)
    for number in range(1, 6):
        facts = scheduling.facts(e, T1, number)
        scheduling.book(facts, number)
        scheduling.attend(facts)
    scheduling.attend(scheduling.facts(e, T1, 5))  # scheduling said it twice: counted once
    upcoming = scheduling.facts(e, T1, 6, start=utcnow().replace(microsecond=0) + timedelta(days=3))
    scheduling.book(upcoming, 6)
    scheduling.publish()
    record = eventually(
        lambda: (
            (r := ok(api.get(f"/clients/{e}", headers=staff["t1"])))["attended_sessions"] == 5 and r
        )
    )
    assert record["suggested_phase"] == "middle"

    caseload = eventually(
        lambda: (
            (c := ok(api.get(f"/therapists/{T1}/caseload", headers=staff["t1"])))["clients"]
            and c["clients"][0]["next_session"]
            and c["clients"][0]["open_tasks"] == 0
            and c["clients"][0]["phase"] == "middle"
            and c
        )
    )
    entry = caseload["clients"][0]
    assert entry["client_id"] == e and entry["attended_sessions"] == 5
    assert entry["next_session"]["session_id"] == upcoming["session_id"]
    return scheduling


def john_to_maintenance_with_a_booster(api, staff, scheduling, j):
    # John: grief, the whole course, then maintenance with boosters
    ok(api.put(f"/clients/{j}/formulation", json=JOHN_FORMULATION, headers=staff["t2"]))
    for to in ("initial", "middle", "ending", "maintenance"):
        phase(api, staff["t2"], j, to)
    booster = scheduling.facts(j, T2, 17)
    scheduling.book(booster, 17, kind="booster")
    scheduling.attend(booster, kind="booster")
    scheduling.publish()
    eventually(
        lambda: (
            ok(api.get(f"/clients/{j}", headers=staff["t2"]))["suggested_phase"] == "maintenance"
        )
    )


def discharge_emma(api, staff, e):
    # discharge Emma: clinical commands refused afterwards, the record still readable
    ok(
        api.post(
            f"/clients/{e}/discharge",
            headers=staff["t1"],
            json={
                "reason": "course complete",
                "outcome_summary": "Better communication, more help at home; depression lifted",
            },
        )
    )
    refused = ok(
        api.post(
            f"/clients/{e}/phase",
            headers=staff["t1"],
            json={"to_phase": "ending", "reason": "late"},
        ),
        409,
    )
    assert refused["code"] == "discharged"
    ok(
        api.post(
            f"/clients/{e}/notes", headers=staff["t1"], json={"session_id": "s-9", "text": "late"}
        ),
        409,
    )
    assert ok(api.get(f"/clients/{e}", headers=staff["t1"]))["status"] == "discharged"


def history_list_and_timeline(api, staff, e, j):
    # the history keeps every change, the original note text included
    history = ok(api.get(f"/clients/{e}/history", headers=staff["lead"]))["events"]
    types = [ev["type"] for ev in history]
    assert types.count("FormulationRecorded") == 2 and types.count("NoteRecorded") == 2
    assert types[0] == "ClientRegistered" and types[-1] == "ClientDischarged"
    assert any(ev["data"].get("text") == "Discussed the row about the school run" for ev in history)

    # list, search and filters (projection)
    found = eventually(
        lambda: ok(api.get("/clients", query_string={"q": "emm cla"}, headers=staff["lead"]))[
            "items"
        ]
    )
    assert [c["client_id"] for c in found] == [e]
    listing = eventually(
        lambda: (
            (
                p := ok(
                    api.get(
                        "/clients", headers=staff["lead"], query_string={"phase": "maintenance"}
                    )
                )
            )["total"]
            == 1
            and p
        )
    )
    assert listing["items"][0]["client_id"] == j
    mine = ok(api.get("/clients", headers=staff["t2"]))
    assert [c["client_id"] for c in mine["items"]] == [j]
    discharged = eventually(
        lambda: ok(
            api.get("/clients", headers=staff["admin"], query_string={"status": "discharged"})
        )["items"]
    )
    assert discharged[0]["client_id"] == e and "phase" not in discharged[0]

    timeline = eventually(
        lambda: (
            (t := ok(api.get(f"/clients/{e}/timeline", headers=staff["t1"])))["entries"]
            and any(x["type"] == "ClientDischarged" for x in t["entries"])
            and t
        )
    )
    sources = {x["source"] for x in timeline["entries"]}
    assert sources == {"records", "scheduling"}


def rebuilt_summaries_match_the_live_ones(settings):
    """Replaying both topics into a new generation gives the same read model."""
    store = projection_store(settings, ClientSummaries())
    live = store.active_generation()
    new = rebuild(settings, ClientSummaries())
    for collection in ("clients", "sessions", "attendance"):
        assert snapshot(store.physical(collection, new)) == snapshot(
            store.physical(collection, live)
        ), collection
    assert len(snapshot(store.physical("clients", new))) == 2

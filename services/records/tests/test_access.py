"""Who gets what: reception sees contact data only, a therapist only their own clients, the
clinical lead everything (and alone the export and the audit trail); every clinical read is
in the audit trail."""

import pytest

from services.records.app import create_app
from shared.audit import trail_for

from .support import EMMA, EMMA_ASSESSMENT, EMMA_FORMULATION, T1, T2, known_session

CLINICAL_KEYS = {
    "assessment",
    "formulation",
    "phase",
    "suggested_phase",
    "notes",
    "tasks",
    "discharge",
    "attended_sessions",
}


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
        "service": auth_header("service", sub="service:scheduling"),
    }


@pytest.fixture
def emma(api, staff, settings):
    """Emma with an assessment, a formulation, a note and a task; returns the ids."""
    cid = api.post("/clients", json=EMMA, headers=staff["admin"]).get_json()["client_id"]
    assert (
        api.post(
            f"/clients/{cid}/assessment", json=EMMA_ASSESSMENT, headers=staff["t1"]
        ).status_code
        == 201
    )
    assert (
        api.put(
            f"/clients/{cid}/formulation", json=EMMA_FORMULATION, headers=staff["t1"]
        ).status_code
        == 200
    )
    session = known_session(settings, cid)
    note = api.post(
        f"/clients/{cid}/notes", json={"session_id": session, "text": "first"}, headers=staff["t1"]
    ).get_json()["note_id"]
    task = api.post(
        f"/clients/{cid}/tasks", json={"description": "diary"}, headers=staff["t1"]
    ).get_json()["task_id"]
    return {"client": cid, "note": note, "task": task, "session": session}


def routes(ids):
    """(method, path, body) of every route that touches Emma's record."""
    c, n, t = ids["client"], ids["note"], ids["task"]
    return {
        "record": ("get", f"/clients/{c}", None),
        "correct": ("patch", f"/clients/{c}", {"reason": "new number", "phone": "07700 900999"}),
        "history": ("get", f"/clients/{c}/history", None),
        "export": ("get", f"/clients/{c}/export", None),
        "timeline": ("get", f"/clients/{c}/timeline", None),
        "assessment": ("post", f"/clients/{c}/assessment", EMMA_ASSESSMENT),
        "formulation": ("put", f"/clients/{c}/formulation", EMMA_FORMULATION),
        "phase": ("post", f"/clients/{c}/phase", {"to_phase": "initial", "reason": "start"}),
        "notes": ("get", f"/clients/{c}/notes", None),
        "note": ("get", f"/clients/{c}/notes/{n}", None),
        "add_note": (
            "post",
            f"/clients/{c}/notes",
            {"session_id": ids["session"], "text": "second"},
        ),
        "add_task": ("post", f"/clients/{c}/tasks", {"description": "walk"}),
        "task": ("get", f"/tasks/{t}", None),
        "review": ("post", f"/tasks/{t}/review", {"review": "went over it"}),
        "caseload": ("get", f"/therapists/{T1}/caseload", None),
        "audit": ("get", "/audit", None),
        "audit_csv": ("get", "/audit/export", None),
    }


ALLOWED = {  # role -> the routes it may use on Emma (a client of therapist 1)
    "lead": "all",
    "t1": {
        "record",
        "correct",
        "history",
        "timeline",
        "assessment",
        "formulation",
        "phase",
        "notes",
        "note",
        "add_note",
        "add_task",
        "task",
        "review",
        "caseload",
    },
    "t2": set(),
    "admin": {"record", "correct"},
    "service": {"record"},
}


@pytest.mark.parametrize("who", sorted(ALLOWED))
def test_each_role_gets_exactly_its_routes(api, staff, emma, who):
    outcome = {}
    for name, (method, path, body) in routes(emma).items():
        response = getattr(api, method)(path, json=body, headers=staff[who])
        outcome[name] = response.status_code
        if response.status_code >= 400:
            assert response.mimetype == "application/problem+json"
    allowed = set(routes(emma)) if ALLOWED[who] == "all" else ALLOWED[who]
    assert {k for k, v in outcome.items() if v < 300} == allowed, outcome
    assert all(v == 403 for k, v in outcome.items() if k not in allowed), outcome


def test_reception_sees_the_contact_view_only(api, staff, emma):
    record = api.get(f"/clients/{emma['client']}", headers=staff["admin"]).get_json()
    assert record["view"] == "contact" and not CLINICAL_KEYS & set(record)
    assert record["email"] == EMMA["email"] and record["therapist_id"] == T1
    full = api.get(f"/clients/{emma['client']}", headers=staff["t1"]).get_json()
    assert full["view"] == "full" and CLINICAL_KEYS <= set(full)
    assert full["assessment"]["risk_summary"] == EMMA_ASSESSMENT["risk_summary"]


def test_reception_may_reassign_a_therapist_may_not(api, staff, emma):
    path = f"/clients/{emma['client']}"
    r = api.patch(path, json={"reason": "t1 on leave", "therapist_id": T2}, headers=staff["t1"])
    assert r.status_code == 403
    r = api.patch(path, json={"reason": "t1 on leave", "therapist_id": T2}, headers=staff["admin"])
    assert r.status_code == 200 and r.get_json()["therapist_id"] == T2
    # the caseload moves with the correction: therapist 2 now reaches the notes, 1 does not
    assert api.get(f"{path}/notes", headers=staff["t2"]).status_code == 200
    assert api.get(f"{path}/notes", headers=staff["t1"]).status_code == 403


def test_a_therapist_registers_only_onto_their_own_caseload(api, staff):
    r = api.post("/clients", json={**EMMA, "therapist_id": T2}, headers=staff["t1"])
    assert r.status_code == 403
    assert api.post("/clients", json=EMMA, headers=staff["t1"]).status_code == 201


def test_a_therapist_lists_only_their_own_clients(api, staff, emma):
    assert (
        api.get("/clients", query_string={"therapist_id": T1}, headers=staff["t2"]).status_code
        == 403
    )
    assert (
        api.get("/clients", query_string={"phase": "initial"}, headers=staff["admin"]).status_code
        == 403
    )


def test_no_token_is_401(api, emma):
    for method, path, body in routes(emma).values():
        assert getattr(api, method)(path, json=body).status_code == 401


def test_clinical_reads_are_audited_and_the_lead_sees_the_trail(api, staff, emma, settings):
    c = emma["client"]
    api.get(f"/clients/{c}", headers=staff["t1"])
    api.get(f"/clients/{c}/notes", headers=staff["t1"])
    api.get(f"/clients/{c}/history", headers=staff["lead"])
    api.get(f"/clients/{c}/export", headers=staff["lead"])
    api.get(f"/clients/{c}", headers=staff["admin"])  # contact view: not clinical
    trail = api.get("/audit", query_string={"client_id": c}, headers=staff["lead"]).get_json()
    assert trail["chain_intact"] is True
    seen = [(e["actor"], e["resource"], e["action"]) for e in trail["entries"]]
    assert seen == [
        ("t1-user", "client_record", "read"),
        ("t1-user", "session_notes", "read"),
        ("lead-user", "client_history", "read"),
        ("lead-user", "client_export", "export"),
    ]
    csv = api.get("/audit/export", query_string={"client_id": c}, headers=staff["lead"])
    assert csv.mimetype == "text/csv" and csv.headers["X-Audit-Chain"].startswith("intact")
    lines = csv.get_data(as_text=True).strip().splitlines()
    assert lines[0].startswith("seq,at,actor") and len(lines) == 1 + 4
    assert trail_for(settings).verify()[0]


def test_every_route_declares_its_roles(api):
    app = api.application
    own = [
        (rule, method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.split(".")[0] in ("clients", "care", "tasks", "reports", "homework")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    ]
    assert (
        len(own) == 28
    )  # operations (path and method); issue 17: course-completed, diary, homework
    for rule, method in own:
        view = app.view_functions[rule.endpoint]
        assert getattr(view, "_rapport_roles", None), f"{method} {rule} has no @requires/@public"

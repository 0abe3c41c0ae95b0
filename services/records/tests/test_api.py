"""Bad input gets a clear problem+json answer (which field, why), never a 500 and never a
partial write; the committed OpenAPI document matches the live one."""

import json
from pathlib import Path

import pytest

from services.records.app import create_app

from .support import EMMA, EMMA_FORMULATION

OPENAPI = Path(__file__).resolve().parents[1] / "openapi.json"


@pytest.fixture
def app(settings):
    return create_app(settings)


@pytest.fixture
def api(app):
    return app.test_client()


@pytest.fixture
def lead(auth_header):
    return auth_header("clinical_lead", sub="lead-user")


@pytest.fixture
def emma(api, lead):
    return api.post("/clients", json=EMMA, headers=lead).get_json()["client_id"]


def problem(response, status):
    assert response.status_code == status, (response.status_code, response.get_json())
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status and body["title"]
    return body


def fields_of(body) -> dict:
    return {e["field"]: e["reason"] for e in body.get("errors") or []}


def event_count(app) -> int:
    with app.app_context():
        from shared.web import context

        return context().store.events.count_documents({})


@pytest.mark.parametrize(
    "change, field, why",
    [
        ({"nhs_number": "943 476 5918"}, "nhs_number", "check digit"),
        ({"nhs_number": "12345"}, "nhs_number", "10 digits"),
        ({"reminder_channels": ["email", "pigeon"]}, "reminder_channels.1", "Must be one of"),
        ({"date_of_birth": "2999-01-01"}, "date_of_birth", "future"),
        ({"date_of_birth": "14/05/1981"}, "date_of_birth", "Not a valid date"),
        ({"email": "not-an-email"}, "email", "email"),
        ({"given_name": "   "}, "given_name", "blank"),
        ({"preferred_modality": "carrier pigeon"}, "preferred_modality", "Must be one of"),
        ({"email": None}, "email", "email reminders"),  # consent to email, but no address
        ({"surname": "Clarke"}, "surname", "Unknown field"),
    ],
)
def test_registration_errors_name_the_field(app, api, lead, change, field, why):
    body = problem(api.post("/clients", json={**EMMA, **change}, headers=lead), 422)
    assert field in fields_of(body), body
    assert why.lower() in fields_of(body)[field].lower()
    assert event_count(app) == 0, "nothing written"


def test_missing_fields_are_each_named(api, lead):
    body = problem(api.post("/clients", json={"given_name": "Emma"}, headers=lead), 422)
    assert {
        "family_name",
        "date_of_birth",
        "preferred_modality",
        "therapist_id",
        "referral_source",
    } <= set(fields_of(body))


def test_malformed_json_is_400(api, lead):
    problem(api.post("/clients", data="{oops", content_type="application/json", headers=lead), 400)


def test_unknown_client_and_task_are_404(api, lead):
    problem(api.get("/clients/nobody", headers=lead), 404)
    problem(
        api.post(
            "/clients/nobody/phase", json={"to_phase": "initial", "reason": "x"}, headers=lead
        ),
        404,
    )
    problem(api.post("/tasks/none/complete", json={}, headers=lead), 404)
    problem(
        api.post("/clients/nobody/notes/n1/amend", json={"text": "x", "reason": "y"}, headers=lead),
        404,
    )


def test_clinical_input_is_validated(app, api, lead, emma):
    before = event_count(app)
    bad = {**EMMA_FORMULATION, "problem_areas": ["grief", "role_dispute", "role_transition"]}
    assert "problem_areas" in fields_of(
        problem(api.put(f"/clients/{emma}/formulation", json=bad, headers=lead), 422)
    )
    bad = {**EMMA_FORMULATION, "inventory": [{**EMMA_FORMULATION["inventory"][0], "closeness": 5}]}
    assert "inventory.0.closeness" in fields_of(
        problem(api.put(f"/clients/{emma}/formulation", json=bad, headers=lead), 422)
    )
    assert "to_phase" in fields_of(
        problem(
            api.post(
                f"/clients/{emma}/phase", json={"to_phase": "finished", "reason": "x"}, headers=lead
            ),
            422,
        )
    )
    assert "session_id" in fields_of(
        problem(api.post(f"/clients/{emma}/notes", json={"text": "no session"}, headers=lead), 422)
    )
    assert "query.as_of" in fields_of(
        problem(
            api.get(f"/clients/{emma}", query_string={"as_of": "last tuesday"}, headers=lead), 422
        )
    )
    assert event_count(app) == before


def test_rule_breaches_are_409_with_a_reason(api, lead, emma):
    body = problem(
        api.post(
            f"/clients/{emma}/phase", json={"to_phase": "ending", "reason": "x"}, headers=lead
        ),
        409,
    )
    assert body["code"] == "phase_order" and "allowed: initial" in body["detail"]
    api.post(f"/clients/{emma}/phase", json={"to_phase": "initial", "reason": "x"}, headers=lead)
    body = problem(
        api.post(
            f"/clients/{emma}/phase", json={"to_phase": "middle", "reason": "x"}, headers=lead
        ),
        409,
    )
    assert body["code"] == "no_formulation"
    api.put(f"/clients/{emma}/formulation", json=EMMA_FORMULATION, headers=lead)
    body = problem(
        api.put(
            f"/clients/{emma}/formulation",
            headers=lead,
            json={**EMMA_FORMULATION, "expected_revision": 0},
        ),
        409,
    )
    assert body["code"] == "stale"


def test_as_of_before_registration_is_404_and_a_date_means_that_whole_day(api, lead, emma):
    problem(api.get(f"/clients/{emma}", query_string={"as_of": "2020-01-01"}, headers=lead), 404)
    from datetime import date

    today = api.get(
        f"/clients/{emma}", query_string={"as_of": date.today().isoformat()}, headers=lead
    )
    assert today.status_code == 200 and today.get_json()["client_id"] == emma


def test_correction_needs_a_reason_and_a_change(api, lead, emma):
    assert "reason" in fields_of(
        problem(api.patch(f"/clients/{emma}", json={"phone": "07700 900000"}, headers=lead), 422)
    )
    problem(
        api.patch(f"/clients/{emma}", json={"reason": "x", "given_name": "Emma"}, headers=lead), 422
    )
    fixed = api.patch(
        f"/clients/{emma}", json={"reason": "mistyped", "nhs_number": None}, headers=lead
    )
    assert fixed.status_code == 200 and fixed.get_json()["nhs_number"] is None


def test_openapi_document_is_committed_and_current(api):
    live = api.get("/openapi.json").get_json()
    assert OPENAPI.exists(), "run: make openapi"
    assert json.loads(OPENAPI.read_text()) == live, "regenerate: make openapi"
    for path, operations in live["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":  # the path parameters, shared by its operations
                continue
            assert operation.get("summary") or operation.get("description"), (method, path)

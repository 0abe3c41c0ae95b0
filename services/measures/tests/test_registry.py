"""An instrument is one entry in one registry (domain/instruments.py): a made-up one, added
by that entry alone at test time, is offered, scored, raises its risk alerts, shows in the
trajectory the portal charts from, and is exported in FHIR, with no other change."""

import pytest

from services.measures.domain import INSTRUMENTS, Band, Instrument
from services.portal.charts import scales_from, score_chart
from testkit.plugin import eventually, service_workers

from .support import Upstream, app, register_client  # noqa: F401

MADE_UP = Instrument(
    code="TEST-3",
    title="Made-up Three Item Scale (TEST-3)",
    source="made up for this test",
    period="the last week",
    preamble="How often have you felt these?",
    items=("Calm", "Rested", "Thoughts of harming yourself"),
    options=("Never", "Sometimes", "Often"),
    bands=(Band(0, "low"), Band(3, "middling"), Band(5, "high")),
    reversed_items=frozenset({1}),
    risk_items=frozenset({3}),
    caseness=3,
)


@pytest.fixture
def made_up_instrument(monkeypatch):
    """One registry entry, removed again after the test."""
    monkeypatch.setitem(INSTRUMENTS, MADE_UP.code, MADE_UP)
    return MADE_UP


def test_a_new_instrument_is_one_registry_entry(
    made_up_instrument, settings, app, workers, auth_header
):
    workers.start(*service_workers(settings, "measures"))
    register_client(Upstream(settings, "records"), "nina", "t-1", "Nina")
    client = app.test_client()
    therapist = auth_header("therapist", therapist_id="t-1")
    eventually(
        lambda: client.get("/clients/nina/instruments", headers=therapist).status_code == 200
    )

    described = client.get("/instruments", headers=therapist).json
    [entry] = [i for i in described["instruments"] if i["code"] == "TEST-3"]
    assert entry["total_range"] == [0, 6] and entry["caseness"] == 3
    # each band's start too: it was never served, so the portal drew its own copy of the bands
    assert [(b["from"], b["label"]) for b in entry["bands"]] == [
        (0, "low"),
        (3, "middling"),
        (5, "high"),
    ]
    chosen = client.put(
        "/clients/nina/instruments", headers=therapist, json={"instruments": ["TEST-3", "PHQ-9"]}
    )
    assert chosen.status_code == 200, chosen.json

    # scored by the entry's rule: item 1 reversed (2 -> 0), 0 + 2 + 1 = 3, "middling"
    answered = client.post(
        "/responses",
        headers=therapist,
        json={"client_id": "nina", "answers": {"TEST-3": [2, 2, 1]}},
    )
    assert answered.status_code == 201, answered.json
    [scored] = answered.json["scores"]
    assert (scored["total"], scored["band"], scored["prorated"]) == (3.0, "middling", False)
    assert [(a["instrument"], a["item"], a["answer"]) for a in answered.json["risk_alerts"]] == [
        ("TEST-3", 3, 1)
    ]
    too_high = client.post(
        "/responses",
        headers=therapist,
        json={"client_id": "nina", "answers": {"TEST-3": [3, 0, 0]}},
    )
    assert too_high.status_code == 422
    assert {e["field"] for e in too_high.json["errors"]} == {"answers.TEST-3.1"}

    # the trajectory the portal charts from, drawn with the bands GET /instruments gives
    def series():
        found = client.get("/clients/nina/trajectory", headers=therapist).json["series"]
        return next((s for s in found if s["instrument"] == "TEST-3"), None)

    line = eventually(series)
    assert [p["total"] for p in line["points"]] == [3.0] and line["caseness"] == 3
    svg = score_chart("TEST-3", line["points"], scale=scales_from(described)["TEST-3"])
    assert "middling 3–4" in svg and "high 5–6" in svg and "caseness 3" in svg

    # exported in FHIR: no LOINC code, so named by text alone (never an empty `coding`)
    bundle = client.get("/clients/nina/fhir", headers=therapist).json
    resources = [e["resource"] for e in bundle["entry"]]
    [response] = [r for r in resources if r["resourceType"] == "QuestionnaireResponse"]
    assert response["questionnaire"].endswith("/Questionnaire/TEST-3")
    assert [i["text"] for i in response["item"]] == list(MADE_UP.items)
    [observation] = [r for r in resources if r["resourceType"] == "Observation"]
    assert observation["code"] == {"text": "Made-up Three Item Scale (TEST-3) total score"}
    assert observation["valueQuantity"]["value"] == 3.0
    assert [r["code"]["text"] for r in resources if r["resourceType"] == "Flag"] == [
        "Risk: TEST-3 item 3 answered 1"
    ]


def test_an_unknown_instrument_is_a_422_naming_it(app, auth_header):
    lead = auth_header("clinical_lead")
    client = app.test_client()
    r = client.post("/responses", headers=lead, json={"client_id": "c", "answers": {"TEST-3": [0]}})
    assert r.status_code == 422 and {e["field"] for e in r.json["errors"]} == {"answers.TEST-3"}
    r = client.put("/clients/c/instruments", headers=lead, json={"instruments": ["TEST-3"]})
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "instruments.0"

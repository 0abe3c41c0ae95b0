"""The API's edges against the real store (no consumers needed): validation as problem+json
naming the item, roles, the link's refusals and rate limit, and the committed OpenAPI."""

import json
from datetime import timedelta
from pathlib import Path

from services.measures import domain
from services.measures.app import create_app
from services.measures.application import Application
from services.measures.application.links import Links, token_hash
from shared.domain import Conflict
from shared.events import new_id, utcnow

from .support import META, app  # noqa: F401


def test_instruments_for_any_staff_with_exact_wording(app, auth_header):
    client = app.test_client()
    r = client.get("/instruments", headers=auth_header("admin"))
    assert r.status_code == 200 and r.json["default_set"] == ["PHQ-9", "GAD-7", "WSAS"]
    core = next(i for i in r.json["instruments"] if i["code"] == "CORE-10")
    assert [i["number"] for i in core["items"] if i["reversed"]] == [2, 3]
    assert [i["number"] for i in core["items"] if i["risk"]] == [6]
    assert client.get("/instruments").status_code == 401


def test_answers_out_of_range_or_incomplete_are_422_naming_the_item(app, auth_header):
    client = app.test_client()
    lead = auth_header("clinical_lead")
    r = client.post(
        "/responses",
        headers=lead,
        json={"client_id": "c-x", "answers": {"PHQ-9": [0] * 8 + [4], "GAD-7": [0] * 6}},
    )
    assert r.status_code == 422 and r.mimetype == "application/problem+json"
    fields = {e["field"]: e["reason"] for e in r.json["errors"]}
    assert fields == {
        "answers.PHQ-9.9": "must be between 0 and 3",
        "answers.GAD-7.7": "missing: please answer this question",
    }
    r = client.post("/responses", headers=lead, json={"client_id": "c-x", "answers": {"BDI": [1]}})
    assert r.status_code == 422
    r = client.post("/responses", headers=lead, data="{nope", content_type="application/json")
    assert r.status_code == 400
    r = client.post(
        "/responses", headers=lead, json={"client_id": "c-x", "answers": {"PHQ-9": [0] * 9}}
    )
    assert r.status_code == 404  # nobody registered c-x
    store = app.extensions["rapport"].store
    assert store.events.count_documents({}) == 0, "nothing written"


def test_a_blank_form_or_an_edge_date_or_a_control_character_is_422(app, auth_header):
    """Issue 15 (#11, #2): a PHQ-9 with every answer blank was stored as completed; a
    dashboard period in year 1 and an acknowledgement note with a NUL were accepted."""
    client = app.test_client()
    lead = auth_header("clinical_lead")
    r = client.post(
        "/responses", headers=lead, json={"client_id": "c-x", "answers": {"PHQ-9": [None] * 9}}
    )
    assert r.status_code == 422, r.json
    assert "answers.PHQ-9.0" in {e["field"] for e in r.json["errors"]}
    for query in ("from=0001-01-01&to=2026-01-01", "from=2026-01-01&to=9999-12-31"):
        r = client.get(f"/dashboards/practice?{query}", headers=lead)
        assert r.status_code == 422 and "between 2000-01-01" in r.json["errors"][0]["reason"], (
            r.json
        )
    r = client.post("/risk-alerts/a-1/acknowledge", headers=lead, json={"note": "phoned\x00"})
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "note", r.json
    assert app.extensions["rapport"].store.events.count_documents({}) == 0, "nothing written"


def test_reception_never_sees_scores(app, auth_header):
    client = app.test_client()
    admin = auth_header("admin")
    for path in (
        "/clients/c-1/trajectory",
        "/clients/c-1/outcomes",
        "/clients/c-1/responses",
        "/clients/c-1/fhir",
        "/risk-alerts",
        "/dashboards/therapists/t-1",
    ):
        assert client.get(path, headers=admin).status_code == 403, path
    assert client.post("/responses", headers=admin, json={}).status_code == 403
    other = auth_header("therapist", therapist_id="t-2")
    assert client.get("/dashboards/therapists/t-1", headers=other).status_code == 403


def test_practice_dashboard_validates_its_dates(app, auth_header):
    client = app.test_client()
    lead = auth_header("clinical_lead")
    r = client.get("/dashboards/practice?from=2026-02-01&to=2026-01-01", headers=lead)
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "query.to"
    r = client.get("/dashboards/practice?from=yesterday&to=2026-01-01", headers=lead)
    assert r.status_code == 422 and r.json["errors"][0]["field"] == "query.from"
    r = client.get("/dashboards/practice?from=2026-01-01&to=2026-01-31", headers=lead)
    assert r.status_code == 200 and r.json["practice"]["recovery"] == {
        "count": 0,
        "of": 0,
        "rate": None,
    }


def _requested(store, session_id="s-1", hours=72):
    start = utcnow() + timedelta(hours=hours)
    command = domain.RequestQuestionnaire(
        domain.request_id_for(session_id),
        "c-1",
        "t-1",
        session_id,
        ("PHQ-9",),
        start,
        start + timedelta(minutes=50),
        utcnow(),
    )
    Application(store).request_questionnaire(command, META)
    return command.request_id


def _link(client, request_id, auth_header):
    issued = client.post(
        f"/questionnaire-requests/{request_id}/link", headers=auth_header("service")
    )
    assert issued.status_code == 201, issued.json
    return issued.json["url"].rsplit("/", 1)[1]


PHQ9_FORM = {f"PHQ-9-{i}": "0" for i in range(1, 10)}


def test_every_link_of_a_request_works_until_one_is_used_and_is_hashed(app, auth_header):
    # defect 2 (issue 13): the e-mail's link died (410) when the SMS was sent
    client = app.test_client()
    store = app.extensions["rapport"].store
    request_id = _requested(store)
    assert (
        client.post("/questionnaire-requests/nope/link", headers=auth_header("service")).status_code
        == 404
    )
    by_email, by_sms = (
        _link(client, request_id, auth_header),
        _link(client, request_id, auth_header),
    )
    links = app.extensions["rapport"].db["questionnaire_links"]
    assert links.find_one({"_id": token_hash(by_sms)}) and not links.find_one({"_id": by_sms})
    assert not any(
        t in json.dumps(d, default=str) for d in store.events.find() for t in (by_email, by_sms)
    )
    assert client.get(f"/q/{by_email}").status_code == 200
    assert client.get(f"/q/{by_sms}").status_code == 200
    ok = client.post(f"/q/{by_email}", data=PHQ9_FORM)
    assert ok.status_code == 200 and "Samaritans" not in ok.text
    # used, its sibling, and a guess: answered alike (issue 15 #15)
    used, sibling, guess = (client.get(f"/q/{t}") for t in (by_email, by_sms, "not-a-token"))
    assert used.status_code == sibling.status_code == guess.status_code == 404
    assert used.text == sibling.text == guess.text and "not valid" in used.text
    assert client.post(f"/q/{by_sms}", data=PHQ9_FORM).status_code == 404
    done = client.post(f"/questionnaire-requests/{request_id}/link", headers=auth_header("service"))
    assert done.status_code == 409 and done.json["code"] == "completed"


def test_no_staff_role_can_mint_a_client_link(app, auth_header):
    # issue 15 #3: reception minted a link and could answer as the client
    client = app.test_client()
    request_id = _requested(app.extensions["rapport"].store, "s-mint")
    for role in ("admin", "therapist", "clinical_lead"):
        r = client.post(
            f"/questionnaire-requests/{request_id}/link",
            headers=auth_header(role, therapist_id="t-1"),
        )
        assert r.status_code == 403, role


def test_staff_resend_the_link_to_the_clients_channels_without_seeing_it(app, auth_header):
    client = app.test_client()
    store = app.extensions["rapport"].store
    request_id = _requested(store, "s-resend")
    sent = _link(client, request_id, auth_header)
    r = client.post(f"/questionnaire-requests/{request_id}/resend", headers=auth_header("admin"))
    assert r.status_code == 202 and r.json["resend"] == 1 and "url" not in r.json
    assert "/q/" not in r.text
    [_, resent] = store.load(domain.request_stream(request_id))
    assert resent.type == "QuestionnaireResent" and resent.data["expires_at"]
    again = client.post(
        f"/questionnaire-requests/{request_id}/resend", headers=auth_header("clinical_lead")
    )
    assert again.status_code == 409 and again.json["code"] == "just_resent"
    assert client.get(f"/q/{sent}").status_code == 200, "a resend never revokes what was sent"
    assert (
        client.post("/questionnaire-requests/nope/resend", headers=auth_header("admin")).status_code
        == 404
    )
    assert client.post(f"/questionnaire-requests/{request_id}/resend").status_code == 401


def test_unicode_digits_are_a_plain_refusal_and_a_failure_never_logs_the_link(
    app, auth_header, caplog, monkeypatch
):
    # issue 15 #5: "²" passed str.isdigit() and int() raised: 500, with the link in the log
    client = app.test_client()
    token = _link(client, _requested(app.extensions["rapport"].store, "s-uni"), auth_header)
    r = client.post(f"/q/{token}", data={**PHQ9_FORM, "PHQ-9-3": "²"})
    assert r.status_code == 422 and 'id="PHQ-9-3-error"' in r.text
    from services.measures.api import form

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(form, "_parse", broken)
    with caplog.at_level("DEBUG"):
        assert client.post(f"/q/{token}", data=PHQ9_FORM).status_code == 500
    assert "/q/<link>" in caplog.text and token not in caplog.text


def test_a_racing_second_submission_cannot_complete_twice(app):
    store = app.extensions["rapport"].store
    request_id = _requested(store, "s-race")
    links = Links(app.extensions["rapport"].db)
    token, _ = links.issue(request_id, "c-1", utcnow() + timedelta(days=1), utcnow())
    link_id = token_hash(token)
    links.links.update_one({"_id": link_id}, {"$set": {"used_at": utcnow()}})  # the other one won
    command = domain.CompleteQuestionnaire(
        new_id(), "c-1", "t-1", {"PHQ-9": [0] * 9}, "link", utcnow()
    )
    try:
        Application(store).complete_request(
            request_id, command, META, also=links.use(link_id, utcnow())
        )
        raise AssertionError("completed through a used link")
    except Conflict:
        pass
    assert [e.type for e in store.load(domain.request_stream(request_id))] == [
        "QuestionnaireRequested"
    ]


def test_token_attempts_are_rate_limited_per_address_behind_the_proxy_and_per_link(
    settings, auth_header
):
    # issue 15 #15: behind an ingress every client shared one bucket, and a link had none
    app = create_app(
        settings.with_(
            extra={"link_rate": (3, 600), "link_rate_per_link": (2, 600), "proxy_hops": 1}
        )
    )
    client = app.test_client()
    codes = [
        client.get(f"/q/guess-{i}", headers={"X-Forwarded-For": "203.0.113.7"}).status_code
        for i in range(5)
    ]
    assert codes == [404, 404, 404, 429, 429]
    assert client.get("/q/guess-x", headers={"X-Forwarded-For": "203.0.113.8"}).status_code == 404
    token = _link(client, _requested(app.extensions["rapport"].store, "s-rate"), auth_header)
    codes = [
        client.get(f"/q/{token}", headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code
        for i in range(3)
    ]
    assert codes == [200, 200, 429]


def test_without_a_configured_proxy_forwarded_addresses_are_not_trusted(settings):
    client = create_app(settings.with_(extra={"link_rate": (2, 600)})).test_client()
    codes = [
        client.get(f"/q/guess-{i}", headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code
        for i in range(3)
    ]
    assert codes == [404, 404, 429]


def test_staff_answers_that_the_rule_cannot_score_are_refused_naming_the_items(app, auth_header):
    # issue 15 #12: a PHQ-9 with item 9 blank was stored unscored, with no alert
    client = app.test_client()
    lead = auth_header("clinical_lead")
    r = client.post(
        "/responses",
        headers=lead,
        json={
            "client_id": "c-x",
            "answers": {"PHQ-9": [1] * 8 + [None], "CORE-10": [None, None] + [1] * 8},
        },
    )
    assert r.status_code == 422
    assert {e["field"] for e in r.json["errors"]} == {
        "answers.PHQ-9.9",
        "answers.CORE-10.1",
        "answers.CORE-10.2",
    }


def test_committed_openapi_equals_the_live_one(app):
    live = app.test_client().get("/openapi.json").json
    committed = json.loads((Path(__file__).parents[1] / "openapi.json").read_text())
    assert committed == live, "regenerate: make openapi"
    for path, methods in live["paths"].items():
        for method, op in methods.items():
            if method == "parameters":
                continue
            assert op.get("summary") or op.get("description"), (method, path)

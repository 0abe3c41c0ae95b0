"""POST /api/auth/token: a JWT the services verify, with the user's role and therapist id."""

from shared.auth import verify_token

from .conftest import PASSWORD


def test_a_token_carries_the_role_and_therapist_id(portal, settings, staff):
    r = portal.test_client().post(
        "/api/auth/token", json={"email": "sarah@rapport.test", "password": PASSWORD}
    )
    assert r.status_code == 200
    assert r.json["role"] == "therapist" and r.json["therapist_id"] == "t-1"
    identity = verify_token(settings.token_secret, r.json["token"])
    assert (identity.sub, identity.role, identity.therapist_id) == (
        staff["therapist"].id,
        "therapist",
        "t-1",
    )
    assert r.json["expires_at"] > "2026"


def test_wrong_credentials_are_401_problem(portal, staff):
    r = portal.test_client().post(
        "/api/auth/token", json={"email": "sarah@rapport.test", "password": "nope"}
    )
    assert r.status_code == 401 and r.mimetype == "application/problem+json"
    assert r.json["detail"] == "wrong e-mail or password"
    assert "token" not in r.json


def test_missing_fields_are_422_naming_them_and_malformed_json_400(portal):
    client = portal.test_client()
    r = client.post("/api/auth/token", json={"email": "a@b.test"})
    assert r.status_code == 422 and {e["field"] for e in r.json["errors"]} == {"password"}
    r = client.post("/api/auth/token", data="{nope", content_type="application/json")
    assert r.status_code == 400 and r.mimetype == "application/problem+json"


def test_five_failures_then_429_with_retry_after(portal, staff):
    client = portal.test_client()
    for _ in range(5):
        assert (
            client.post(
                "/api/auth/token", json={"email": "lead@rapport.test", "password": "x"}
            ).status_code
            == 401
        )
    r = client.post("/api/auth/token", json={"email": "lead@rapport.test", "password": PASSWORD})
    assert r.status_code == 429 and r.headers["Retry-After"] == "900"
    assert "too many failed attempts" in r.json["detail"]


def test_the_committed_openapi_document_is_the_live_one(portal):
    import json
    from pathlib import Path

    live = portal.test_client().get("/openapi.json").json
    committed = json.loads((Path(__file__).parents[1] / "openapi.json").read_text())
    assert committed == live
    assert "/api/auth/token" in live["paths"]


def test_every_route_declares_who_may_use_it(portal):
    unguarded = []
    for rule in portal.url_map.iter_rules():
        view = portal.view_functions[rule.endpoint]
        declared = (
            getattr(view, "_rapport_roles", None)
            or getattr(view, "_portal_roles", None)
            or getattr(getattr(view, "view_class", None), "post", None)
            and getattr(view.view_class.post, "_rapport_roles", None)
        )
        if not declared and rule.endpoint not in (
            "static",
            "pages.static",
            "pages.sign_in",
            "pages.sign_out",
            "api-docs.openapi_json",
        ):
            unguarded.append(rule.rule)
    assert unguarded == []

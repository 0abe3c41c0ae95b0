"""Issue 15 #4: JSON nested 100,000 levels deep made every JSON route answer 500 (the parser
recursed until it failed), unauthenticated on the portal's token route. It is refused with 400
before anything parses it, signed in or not."""

import pytest

from shared import services

DEEP = "[" * 100_000
ROUTES = {
    "scheduling": "/sessions",
    "records": "/clients",
    "measures": "/responses",
    "notifications": "/clients/c-1/preferences",
    "portal": "/api/auth/token",
}


@pytest.mark.parametrize("service", sorted(ROUTES))
def test_deeply_nested_json_is_refused_with_400(service, settings, auth_header):
    client = services.load(service).create_app(settings).test_client()
    method = "put" if service == "notifications" else "post"
    for headers in ({}, auth_header("clinical_lead")):
        r = getattr(client, method)(
            ROUTES[service], data=DEEP, content_type="application/json", headers=headers
        )
        if service != "portal" and not headers:
            assert r.status_code == 401, "anonymous callers learn nothing of a signed-in route"
            continue
        assert r.status_code == 400, (service, r.status_code, r.get_data(as_text=True)[:200])
        assert r.mimetype == "application/problem+json" and "nested" in r.json["detail"]


def test_ordinary_nesting_still_parses(settings):
    client = services.load("portal").create_app(settings).test_client()
    r = client.post("/api/auth/token", json={"email": [[[["x"]]]], "password": "p"})
    assert r.status_code == 422, "a shallow wrong body is a field error, not a refusal"

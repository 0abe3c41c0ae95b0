"""The 500s tests/security/test_portal_fuzz.py found in the portal, each kept as a plain test:
what a person can post (a key, a number that is not one) and what a service can answer (a
refusal that is not problem+json, its own 500, a page that cannot be shown again) never makes
the portal answer 500."""

import pytest

from .conftest import csrf_of
from .test_pages import EMMA, EMMA_FULL, HTML, SESSION, THERAPISTS


def _new_client_form(client, **fields) -> dict:
    page = client.get("/clients/new")
    return {
        "csrf_token": csrf_of(page.get_data(as_text=True)),
        "form": "new-client",
        "back": "/clients/new",
        "given_name": "Emma",
        "family_name": "Hart",
        "date_of_birth": "1981-03-02",
        "therapist_id": "t-1",
        **fields,
    }


def test_an_idempotency_key_that_is_not_latin_1_is_sent_as_a_digest(signed_in, services):
    """A posted key such as `é𝟘` cannot go into a header: sending it raised UnicodeEncodeError."""
    services.on("GET", "/therapists", THERAPISTS)
    services.on("POST", "/clients", {**EMMA}, status=201)
    client = signed_in("admin")
    for _ in range(2):
        r = client.post(
            "/clients/new", data=_new_client_form(client, idempotency_key="é\U0001d7d8")
        )
        assert r.status_code == 302, r.status_code
    keys = [c["idempotency_key"] for c in services.calls if c["method"] == "POST"]
    assert (
        len(keys) == 2 and keys[0] == keys[1] and keys[0].isascii()
    )  # a second press: the same key
    assert keys[0].endswith(":records:POST:/clients")


@pytest.mark.parametrize(
    "body", [["not", "a", "problem"], "a bare string", {"errors": ["x", {"field": ["a"]}]}]
)
def test_a_refusal_that_is_not_problem_json_shows_the_form_again(signed_in, services, body):
    services.on("GET", "/therapists", THERAPISTS)
    services.on("POST", "/clients", body, status=422)
    client = signed_in("admin")
    r = client.post("/clients/new", data=_new_client_form(client), headers=HTML)
    assert r.status_code == 422, r.status_code
    assert "This was not saved" in r.get_data(as_text=True)


def test_a_services_own_500_on_a_form_is_a_502_from_the_portal(signed_in, services):
    """The form shown again took the service's status as its own: a 500 from the portal."""
    services.on("GET", "/therapists", THERAPISTS)
    services.on("POST", "/clients", {"title": "Internal Server Error", "status": 500}, status=500)
    client = signed_in("admin")
    r = client.post("/clients/new", data=_new_client_form(client), headers=HTML)
    assert r.status_code == 502, r.status_code


def test_a_refused_form_whose_page_cannot_be_shown_again_goes_back_with_the_reason(
    signed_in, services
):
    """The page to show again reads a service that is failing: the BackendError raised inside
    the error handler escaped as a 500."""
    services.on("GET", "/clients/c-1", {"title": "down"}, status=503)
    services.on(
        "POST",
        "/clients/c-1/notes",
        {"status": 422, "errors": [{"field": "text", "reason": "too long"}]},
        status=422,
    )
    client = signed_in("therapist")
    with client.session_transaction() as s:
        token = s["csrf_token"]
    r = client.post(
        "/clients/c-1/notes",
        data={
            "csrf_token": token,
            "form": "note",
            "back": "/clients/c-1",
            "text": "x",
            "idempotency_key": "k1",
        },
        headers=HTML,
    )
    assert r.status_code == 302 and r.headers["Location"].endswith("/clients/c-1")
    with client.session_transaction() as s:
        assert any("too long" in message for _, message in s.get("_flashes", []))


def test_a_page_address_with_an_id_of_the_wrong_shape_is_a_400_not_a_service_error(
    signed_in, services
):
    """The portal's own refusal to send `a b` as an id was shown as 502 (a service's fault)."""
    r = signed_in("therapist").get("/clients/a%20b", headers=HTML)
    assert r.status_code == 400, r.status_code
    assert not [c for c in services.calls if c["path"].startswith("/clients/a")]


@pytest.mark.parametrize(
    "field, value",
    [
        ("count", "abc"),
        ("count", "1.5"),
        ("interval_weeks", "1.5"),
        ("count", "²"),
        ("interval_weeks", "2026-11-30"),
    ],
)
def test_a_course_count_that_is_not_a_whole_number_shows_the_form_again(
    signed_in, services, field, value
):
    """Issue 15 (#8): `count=abc` or `interval_weeks=1.5` on POST /book was a 500 (ValueError)."""
    services.on("GET", "/therapists", THERAPISTS)
    services.on("GET", "/slots", [])
    services.on("GET", "/clients", {"items": [EMMA], "total": 1})
    client = signed_in("admin")
    page = client.get("/book?therapist=t-1&client=c-1&date=2026-11-30")
    r = client.post(
        "/book",
        data={
            "csrf_token": csrf_of(page.get_data(as_text=True)),
            "form": "book",
            "back": "/book?therapist=t-1&client=c-1&date=2026-11-30",
            "therapist_id": "t-1",
            "client_id": "c-1",
            "what": "course",
            "slot": "2026-11-30T10:00:00+00:00|Room 1",
            field: value,
        },
        headers=HTML,
    )
    assert r.status_code == 422, r.status_code
    assert "must be a whole number" in r.get_data(as_text=True)
    assert not [c for c in services.calls if c["path"] == "/courses"]


@pytest.mark.parametrize(
    "fields", [{"rows": "0001-01-01"}, {"rows": "1000000000"}, {"expected_revision": "x"}]
)
def test_a_formulation_with_a_bad_row_count_or_revision_is_shown_again(signed_in, services, fields):
    """`rows=0001-01-01` was a 500; `rows=1000000000` had the portal loop over a billion rows."""
    services.on("GET", "/clients/c-1", EMMA_FULL)
    services.on("GET", "/clients/c-1/sessions", [SESSION])
    client = signed_in("therapist")
    page = client.get("/clients/c-1/formulation")
    r = client.post(
        "/clients/c-1/formulation",
        data={
            "csrf_token": csrf_of(page.get_data(as_text=True)),
            "form": "formulation",
            "back": "/clients/c-1/formulation",
            "formulation": "f",
            **fields,
        },
        headers=HTML,
    )
    assert r.status_code == 422, r.status_code
    assert "must be a whole number" in r.get_data(as_text=True)
    assert not [c for c in services.calls if c["method"] == "PUT"]

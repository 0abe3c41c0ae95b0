"""Issue 15, #13: a value typed into a form never becomes part of a backend URL path
unchecked. The note form's `amends` used to go straight into
`/clients/{id}/notes/{amends}/amend`, so `../../c-2/notes` or `n-1/amend?x=` reached other
routes of records with the therapist's token. Backend.call now refuses any path segment that
is not a safe id, for every page at once."""

from __future__ import annotations

import pytest

from services.portal.backend import Backend, BackendError

from .conftest import csrf_of
from .test_pages import EMMA_FULL, SESSION, THERAPISTS


def _record_page(services):
    services.on("GET", "/clients/c-1", EMMA_FULL)
    services.on("GET", "/therapists", THERAPISTS)
    services.on("GET", "/clients/c-1/sessions", [SESSION])
    services.on("GET", "/clients/c-1/history", {"events": []})


@pytest.mark.parametrize(
    "amends",
    ["../../c-2/notes", "..", "n-1/amend?x=", "n-1%2Famend", " ", "n 1", "n-1#x", ".hidden"],
)
def test_a_note_amendment_with_a_bad_id_is_refused_before_records_is_called(
    signed_in, services, amends
):
    _record_page(services)
    client = signed_in("therapist")
    token = csrf_of(client.get("/clients/c-1").get_data(as_text=True))
    before = len(services.calls)
    r = client.post(
        "/clients/c-1/notes",
        data={
            "csrf_token": token,
            "form": "note",
            "amends": amends,
            "text": "Corrected.",
            "amendment_reason": "wrong name",
        },
        headers={"Referer": "http://localhost/clients/c-1"},
    )
    sent = [(c["method"], c["path"]) for c in services.calls[before:] if c["method"] != "GET"]
    assert sent == [], f"the portal sent {sent} for amends={amends!r}"
    assert r.status_code == 422, r.status_code
    body = r.get_data(as_text=True)
    assert "must be an id" in body and "<h1>Emma" in body  # the record shown again with the reason


def test_a_good_amendment_still_goes_to_the_amend_route(signed_in, services):
    _record_page(services)
    services.on("POST", "/clients/c-1/notes/n-1/amend", {"note_id": "n-2"}, status=201)
    client = signed_in("therapist")
    token = csrf_of(client.get("/clients/c-1").get_data(as_text=True))
    r = client.post(
        "/clients/c-1/notes",
        data={
            "csrf_token": token,
            "amends": "n-1",
            "text": "Corrected.",
            "amendment_reason": "wrong name",
        },
    )
    assert r.status_code == 302
    assert services.last("POST", "/clients/c-1/notes/n-1/amend")["json"]["text"] == "Corrected."


def test_every_backend_call_checks_each_segment(services):
    api = Backend({"records": services.url}, "token", 2.0)
    for path in ("/clients/../admin", "/clients//x", "clients", "/clients/a%2Fb", "/clients/x?y=1"):
        with pytest.raises(BackendError) as refused:
            api.get("records", path)
        assert refused.value.status == 422, path
    assert services.calls == []
    services.on("GET", "/clients/c-1", {"client_id": "c-1"})
    assert api.get("records", "/clients/c-1") == {"client_id": "c-1"}

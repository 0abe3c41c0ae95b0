"""The public "get in touch" page against the real records service (served over HTTP on the
real store): an enquiry from a phone reaches reception's inbox; bad input gets a clear
message beside the field and stores nothing; a robot (the hidden field, a form sent too
quickly, a forged start time) stores nothing; a flood from one address or naming one phone
number gets 429 and stores nothing; the per-address limit counts the client's address behind
a trusted proxy."""

from __future__ import annotations

import re
import threading

import pytest
from werkzeug.serving import make_server

from services.portal.app import create_app
from services.portal.config import PortalConfig
from services.records.app import create_app as create_records

from .conftest import _Quiet

FORM = {
    "given_name": "Sam",
    "family_name": "Okafor",
    "phone": "07700 900123",
    "email": "",
    "contact_by": "phone",
    "concern": "Low since my mother died in the spring; not sleeping",
    "preferred_modality": "telephone",
    "preferred_times": "weekday evenings",
    "heard_from": "my GP",
    "consent_to_contact": "yes",
    "website": "",
}


@pytest.fixture
def records(settings):
    app = create_records(settings)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def portal(settings, records):
    urls = dict.fromkeys(("scheduling", "records", "measures", "notifications"), records[1])
    app = create_app(
        settings.with_(service_urls=urls, extra={**settings.extra, "proxy_hops": 1}),
        PortalConfig(secret_key="portal-test-secret-" + "x" * 24, cookie_secure=False),
    )
    app.config.update(TESTING=True, PUBLIC_MIN_FILL_SECONDS=0)
    return app


def stored(records_app) -> list[str]:
    with records_app.app_context():
        from shared.web import context

        return [e["type"] for e in context().store.events.find({}, {"type": 1})]


def send(client, changes=None, address="198.51.100.7"):
    page = client.get("/enquire")
    html = page.get_data(as_text=True)
    hidden = dict(re.findall(r'type="hidden" name="([a-z_]+)" value="([^"]*)"', html))
    data = {**hidden, **FORM, **(changes or {})}
    if data.get("consent_to_contact") is None:  # unticked: only the page's hidden field goes
        data["consent_to_contact"] = hidden.get("consent_to_contact", None)
    return client.post(
        "/enquire",
        data={k: v for k, v in data.items() if v is not None},
        headers={"X-Forwarded-For": address},
    )


def test_an_enquiry_from_the_public_page_reaches_reception(portal, records):
    client = portal.test_client()
    page = client.get("/enquire")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'name="viewport"' in html
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"
    assert "Sign out" not in html and "Diary" not in html  # no staff page around it

    thanks = send(client)
    assert thanks.status_code == 200, thanks.get_data(as_text=True)
    assert "by a phone call" in thanks.get_data(as_text=True)
    assert stored(records[0]) == ["EnquiryReceived"]


@pytest.mark.parametrize(
    "changes, field, says",
    [
        # a browser sends no field for an unticked box
        ({"consent_to_contact": None}, "consent_to_contact", "agree to us contacting you"),
        ({"phone": "", "contact_by": "phone"}, "phone", "please give your phone"),
        ({"phone": "call me maybe"}, "phone", "phone"),
        ({"email": "not-an-address", "contact_by": "email"}, "email", "email"),
        ({"given_name": ""}, "given_name", ""),
        ({"concern": ""}, "concern", ""),
        ({"preferred_modality": "carrier pigeon"}, "preferred_modality", "one of"),
        ({"concern": "help\u202e"}, "concern", ""),
    ],
)
def test_bad_input_is_shown_beside_the_field_and_nothing_is_stored(
    portal, records, changes, field, says
):
    client = portal.test_client()
    answer = send(client, changes)
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422, html
    found = re.search(rf'id="enquire-{field}-error"[^>]*>([^<]+)<', html)
    assert found, html
    assert says.lower() in found.group(1).lower()
    # beside the field, never as a raw field name in the message above the form
    assert not re.search(rf'class="msg error"[^>]*>[^<]*\b{field}:', html), html
    assert 'value="Okafor"' in html  # what the person typed is kept
    assert stored(records[0]) == []


def test_robots_store_nothing(portal, records):
    client = portal.test_client()
    thanked = send(client, {"website": "http://spam.example"})
    assert thanked.status_code == 200  # a robot learns nothing
    forged = send(client, {"started": "1700000000.forged"})
    assert forged.status_code == 422
    assert "could not be checked" in forged.get_data(as_text=True)
    portal.config["PUBLIC_MIN_FILL_SECONDS"] = 60
    quick = send(client)
    assert quick.status_code == 422 and "very quickly" in quick.get_data(as_text=True)
    assert stored(records[0]) == []


def test_a_flood_from_one_address_gets_429_and_stores_nothing_more(portal, records):
    portal.config["PUBLIC_RATE_PER_ADDRESS"] = (3, 600)
    client = portal.test_client()
    answers = [
        send(client, {"phone": f"07700 90012{n}", "website": "x" if n else ""}).status_code
        for n in range(6)
    ]
    assert answers == [200, 200, 200, 429, 429, 429]
    assert stored(records[0]) == ["EnquiryReceived"]
    # another address behind the same proxy is not held back by the first one's flood
    assert send(client, address="203.0.113.50").status_code == 200
    assert stored(records[0]) == ["EnquiryReceived"] * 2


def test_one_phone_number_however_written_is_limited(portal, records):
    portal.config["PUBLIC_RATE_PER_CONTACT"] = (2, 86_400)
    client = portal.test_client()
    spellings = ["07700 900123", "+44 7700 900123", "07700900123"]
    answers = [
        send(client, {"phone": p}, address=f"192.0.2.{n}").status_code
        for n, p in enumerate(spellings)
    ]
    assert answers == [200, 200, 429]
    assert busy_text(send(client, {"phone": spellings[0]}, address="192.0.2.99"))
    assert stored(records[0]) == ["EnquiryReceived"] * 2


def busy_text(answer) -> bool:
    return answer.status_code == 429 and "Nothing was sent" in answer.get_data(as_text=True)

"""The portal's backend client against the four real services over HTTP, with every relay and
consumer running (issue 13, defects 3 and 5): a client registered through the portal's form is
at once on their record page (no red "no client <uuid>" from scheduling) and in the booking
list, and the same form sent twice registers one client."""

import re
import threading

import pytest
from werkzeug.serving import make_server

from services.portal.app import create_app as create_portal
from services.portal.config import PortalConfig
from services.portal.security import user_store
from shared.web import context
from testkit.plugin import eventually
from testkit.procs import free_port

from .conftest import FOUR

PASSWORD = "correct horse battery"
HOURS = [{"weekday": d, "start": "08:00", "end": "20:00"} for d in range(7)]


@pytest.fixture
def portal(practice):
    """The portal, calling the practice's services over real HTTP."""
    s = practice["settings"]
    urls, servers = dict(s.service_urls), []
    for name in FOUR:
        if name == "measures":
            continue  # the practice fixture serves it already
        port = free_port()
        server = make_server("127.0.0.1", port, practice["apps"][name], threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        urls[name] = f"http://127.0.0.1:{port}"
    app = create_portal(
        s.with_(service_urls=urls),
        PortalConfig(
            secret_key="portal-test-secret-" + "x" * 24, cookie_secure=False, backend_timeout=15
        ),
    )
    app.config["TESTING"] = True
    with app.app_context():
        user_store().add(
            email="lead@rapport.test", name="Lee Lead", role="clinical_lead", password=PASSWORD
        )
    yield app
    for server in servers:
        server.shutdown()


def _hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no {name} in the page"
    return found.group(1)


def _registered(practice) -> int:
    with practice["apps"]["records"].app_context():
        return context().store.events.count_documents({"type": "ClientRegistered"})


@pytest.fixture
def signed_in(practice, portal, auth_header):
    """(browser signed in as the clinical lead, the registration form's fields filled in)."""
    lead = auth_header("clinical_lead")
    tid = (
        practice["scheduling"]
        .post(
            "/therapists",
            headers=lead,
            json={
                "name": "Dr Sarah Okafor",
                "email": "sarah@practice.test",
                "modalities": ["video"],
                "rooms": [],
            },
        )
        .json["therapist_id"]
    )
    practice["scheduling"].put(
        f"/therapists/{tid}/availability",
        headers=lead,
        json={"weekly_hours": HOURS, "exceptions": []},
    )
    eventually(
        lambda: tid in str(practice["scheduling"].get("/therapists", headers=lead).json),
        timeout=60,
        message="the therapist is listed (set up outside the portal)",
    )
    browser = portal.test_client()
    page = browser.get("/sign-in").get_data(as_text=True)
    assert (
        browser.post(
            "/sign-in",
            data={
                "email": "lead@rapport.test",
                "password": PASSWORD,
                "csrf_token": _hidden(page, "csrf_token"),
            },
        ).status_code
        == 302
    )
    html = browser.get("/clients/new").get_data(as_text=True)
    fields = {
        "csrf_token": _hidden(html, "csrf_token"),
        "idempotency_key": _hidden(html, "idempotency_key"),
        "form": "client-new",
        "back": "/clients/new",
        "given_name": "Emma",
        "family_name": "Whitfield",
        "date_of_birth": "1981-03-14",
        "email": "emma@client.test",
        "reminder_channels": "email",
        "preferred_modality": "video",
        "therapist_id": tid,
        "referral_source": "GP",
    }
    return browser, fields


def test_a_client_registered_in_the_portal_is_on_every_page_at_once(signed_in):
    browser, fields = signed_in
    first = browser.post("/clients/new", data=fields)
    assert first.status_code == 302, first.get_data(as_text=True)[:500]
    record_url = first.headers["Location"]
    record = browser.get(record_url)
    text = record.get_data(as_text=True)
    assert record.status_code == 200 and "Emma" in text
    assert "no client" not in text and "not registered" not in text, "scheduling knew the client"
    client_id = record_url.rstrip("/").rsplit("/", 1)[-1]
    booking = browser.get(f"/book?therapist={fields['therapist_id']}").get_data(as_text=True)
    assert f'value="{client_id}"' in booking, "the new client is in the booking list"


def test_the_registration_form_sent_twice_registers_one_client(practice, signed_in):
    browser, fields = signed_in
    first = browser.post("/clients/new", data=fields)
    second = browser.post("/clients/new", data=fields)  # a second press of the same form
    assert first.status_code == second.status_code == 302
    assert second.headers["Location"] == first.headers["Location"]
    assert _registered(practice) == 1

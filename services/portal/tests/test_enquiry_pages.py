"""Reception's enquiry pages and the person's booking link, with the real records and
scheduling services (served over HTTP on the real broker and store): an enquiry from the
public page is in the inbox; reception puts it on the waiting list (weeks waiting) and offers
assessment times; the person books one on the link (which reception never sees) and cannot
book twice; reception registers them with nothing retyped, and the booked session is already
theirs. Bad input on the booking page is answered beside the field with nothing stored; a
wrong link is one plain 404; a flood on a link is 429."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from werkzeug.serving import make_server

from services.portal.app import create_app
from services.portal.config import PortalConfig
from services.records.app import create_app as create_records
from services.scheduling.app import create_app as create_scheduling
from shared.auth import service_token
from shared.events import utcnow
from testkit.plugin import eventually, service_workers

from .conftest import _Quiet, csrf_of
from .test_public_enquire import FORM, send

WEEK = [{"weekday": d, "start": "09:00", "end": "17:00"} for d in range(7)]


def serve(app):
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


@pytest.fixture
def stack(settings, workers):
    workers.start(*service_workers(settings, "records"), *service_workers(settings, "scheduling"))
    records, scheduling = create_records(settings), create_scheduling(settings)
    servers = [serve(records), serve(scheduling)]
    urls = {
        "records": servers[0][1],
        "scheduling": servers[1][1],
        "measures": servers[0][1],
        "notifications": servers[0][1],
    }
    portal = create_app(
        settings.with_(service_urls=urls),
        PortalConfig(secret_key="portal-test-secret-" + "x" * 24, cookie_secure=False),
    )
    portal.config.update(TESTING=True, PUBLIC_MIN_FILL_SECONDS=0)
    yield {"portal": portal, "records": records, "scheduling": scheduling}
    for server, _ in servers:
        server.shutdown()


@pytest.fixture
def portal(stack):
    """The stack's portal (conftest's users, staff and signed_in fixtures use it)."""
    return stack["portal"]


@pytest.fixture
def therapist(stack, auth_header):
    api = stack["scheduling"].test_client()
    made = api.post(
        "/therapists",
        headers=auth_header("admin"),
        json={
            "therapist_id": "t1",
            "name": "Ann Therapist",
            "email": "ann@rapport.test",
            "modalities": ["telephone", "video"],
            "rooms": [],
        },
    )
    assert made.status_code == 201, made.json
    hours = api.put(
        "/therapists/t1/availability",
        headers=auth_header("admin"),
        json={"weekly_hours": WEEK, "exceptions": []},
    )
    assert hours.status_code == 200, hours.json
    return "t1"


def page_with(client, url: str, text: str) -> str:
    """The page at `url` once it shows `text` (what it shows comes from projections)."""
    return eventually(
        lambda: page if text in (page := client.get(url).get_data(as_text=True)) else None
    )


def post_form(client, page_html: str, form_id: str, action: str, data: dict):
    """Send a form of the page with its hidden fields (CSRF, form name, key)."""
    form = re.search(rf'<form[^>]*id="form-{form_id}".*?</form>', page_html, re.S).group(0)
    hidden = dict(re.findall(r'type="hidden" name="([a-z_]+)" value="([^"]*)"', form))
    return client.post(action, data={**hidden, **data})


def events(app, types=None) -> list[str]:
    with app.app_context():
        from shared.web import context

        found = [e["type"] for e in context().store.events.find({}, {"type": 1})]
    return [t for t in found if types is None or t in types]


def test_enquiry_to_booked_assessment_to_client(stack, therapist, signed_in, settings):
    portal = stack["portal"]
    assert send(portal.test_client()).status_code == 200

    reception = signed_in("admin")
    inbox = page_with(reception, "/enquiries", "Sam Okafor")
    eid = re.search(r'href="/enquiries/([^"]+)">Sam Okafor', inbox).group(1)
    page = reception.get(f"/enquiries/{eid}").get_data(as_text=True)
    assert FORM["concern"].split(";")[0] in page

    done = post_form(
        reception, page, "waitlist", f"/enquiries/{eid}/waitlist", {"priority": "soon"}
    )
    assert done.status_code == 302, done.get_data(as_text=True)
    # the therapist to offer times for comes from scheduling's therapists projection, which
    # its consumer fills a moment after the therapist was registered (on a loaded CI machine
    # the page was once read before it had: no therapist, so no free times)
    page = page_with(reception, f"/enquiries/{eid}", 'name="starts"')
    assert "soon priority, 0 weeks waiting" in page

    # nothing chosen: the form again with the reason, nothing issued
    refused = post_form(reception, page, "offer", f"/enquiries/{eid}/offer", {})
    assert refused.status_code == 422
    assert "choose at least one time" in refused.get_data(as_text=True)
    times = re.findall(r'name="starts" value="([^"]+)"', page)[:3]
    assert len(times) == 3, page
    offered = post_form(reception, page, "offer", f"/enquiries/{eid}/offer", {"starts": times})
    assert offered.status_code == 302, offered.get_data(as_text=True)
    assert events(stack["scheduling"], {"BookingLinkIssued"}) == ["BookingLinkIssued"]

    # the token: as the notifications service fetches it for the message to the person
    token = mint_token(stack, settings)
    person = portal.test_client()
    offer = person.get(f"/book-online/{token}")
    html = offer.get_data(as_text=True)
    assert offer.status_code == 200 and "Ann Therapist" in html
    assert offer.headers["Cache-Control"] == "no-store"
    assert offer.headers["Referrer-Policy"] == "no-referrer"

    none_chosen = post_form(person, html, "book-online", f"/book-online/{token}", {})
    assert none_chosen.status_code == 422
    assert "please choose one of the times" in none_chosen.get_data(as_text=True)
    assert events(stack["scheduling"], {"SessionBooked"}) == []

    booked = post_form(
        person, html, "book-online", f"/book-online/{token}", {"starts_at": times[1]}
    )
    assert booked.status_code == 200, booked.get_data(as_text=True)
    assert "Your appointment is booked" in booked.get_data(as_text=True)
    assert person.get(f"/book-online/{token}").status_code == 404  # single use

    page = page_with(reception, f"/enquiries/{eid}", "Assessment booked")
    assert token not in page
    registered = post_form(
        reception,
        page,
        "register",
        f"/enquiries/{eid}/register",
        {"date_of_birth": "1990-01-02", "therapist_id": "t1"},
    )
    assert registered.status_code == 302, registered.get_data(as_text=True)
    client_id = registered.headers["Location"].rsplit("/", 1)[-1]
    record = (
        stack["records"]
        .test_client()
        .get(f"/clients/{client_id}", headers={"Authorization": f"Bearer {lead_token(settings)}"})
    )
    assert (record.json["given_name"], record.json["phone"]) == ("Sam", FORM["phone"])
    sessions = (
        stack["scheduling"]
        .test_client()
        .get(
            f"/clients/{client_id}/sessions",
            headers={"Authorization": f"Bearer {lead_token(settings)}"},
        )
    )
    assert [s["kind"] for s in sessions.json] == ["assessment"]


def mint_token(stack, settings) -> str:
    with stack["scheduling"].app_context():
        from shared.web import context

        link = context().store.events.find_one({"type": "BookingLinkIssued"})
    minted = (
        stack["scheduling"]
        .test_client()
        .post(
            f"/booking-links/{link['data']['link_id']}/token",
            headers={
                "Authorization": f"Bearer {service_token(settings.token_secret, 'notifications')}"
            },
        )
    )
    assert minted.status_code == 201, minted.json
    return minted.json["token"]


def lead_token(settings) -> str:
    from shared.auth import issue_token

    return issue_token(settings.token_secret, sub="lead", role="clinical_lead")


def test_a_wrong_link_is_one_plain_page_and_a_flood_gets_429(stack):
    portal = stack["portal"]
    # a window far longer than the test: a 600 s one aligned to the clock could start
    # afresh between two attempts (seen at 22:10 and 22:20 UTC)
    portal.config["PUBLIC_RATE_PER_LINK"] = (3, 10**9)
    person = portal.test_client()
    answers = [person.get("/book-online/guessed-token").status_code for _ in range(5)]
    assert answers == [404, 404, 404, 429, 429]
    page = person.get("/book-online/another-guess")
    assert page.status_code == 404 and "not valid any more" in page.get_data(as_text=True)
    csrf = csrf_of(person.get("/enquire").get_data(as_text=True))  # this visitor's session
    flood = person.post(
        "/book-online/guessed-token",
        data={"csrf_token": csrf, "starts_at": (utcnow() + timedelta(days=2)).isoformat()},
    )
    assert flood.status_code == 429
    assert events(stack["scheduling"], {"SessionBooked"}) == []


def test_reception_pages_are_for_reception_and_the_lead(stack, signed_in):
    assert signed_in("therapist").get("/enquiries").status_code == 403
    assert signed_in("clinical_lead").get("/enquiries").status_code == 200
    anonymous = stack["portal"].test_client().get("/enquiries")
    assert anonymous.status_code == 302 and "/sign-in" in anonymous.headers["Location"]


def test_a_failure_on_a_booking_link_never_logs_the_link(stack, monkeypatch, caplog):
    portal = stack["portal"]
    portal.config.update(TESTING=False, PROPAGATE_EXCEPTIONS=False)
    from services.portal.pages import public_booking

    def broken():
        raise RuntimeError("boom")

    monkeypatch.setattr(public_booking, "public_backend", broken)
    with caplog.at_level("ERROR"):
        answer = portal.test_client().get("/book-online/secret-token-123")
    assert answer.status_code == 500
    assert "Exception on /book-online/<link>" in caplog.text
    assert "secret-token-123" not in caplog.text

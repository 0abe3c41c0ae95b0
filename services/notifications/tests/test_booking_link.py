"""A booking link reaches the person who enquired, on the channel they asked for, with a
token fetched at send time from the real scheduling service (served over HTTP on the same
store); the token opens the offer there, and is never stored by notifications. Someone who
asked to be phoned gets a text (the link is for their phone)."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from werkzeug.serving import make_server

from services.scheduling.app import create_app as create_scheduling
from services.scheduling.domain import diary
from shared.auth import service_token
from shared.events import utcnow
from testkit.plugin import service_workers

from .conftest import wait

WEEK = [{"weekday": d, "start": "09:00", "end": "17:00"} for d in range(7)]


@pytest.fixture
def scheduling(settings):
    app = create_scheduling(settings)
    from services.portal.tests.conftest import _Quiet

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield app, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def linked_settings(nsettings, scheduling):
    return nsettings.with_(service_urls={**nsettings.service_urls, "scheduling": scheduling[1]})


def enquiry(feed, cid: str, **contact):
    feed(
        "records",
        f"enquiry-{cid}",
        "EnquiryReceived",
        enquiry_id=f"e-{cid}",
        client_id=cid,
        given_name="Sam",
        family_name="Okafor",
        concern="low since the spring",
        preferred_modality="telephone",
        preferred_times=None,
        heard_from=None,
        consent_to_contact=True,
        received_at=utcnow(),
        **contact,
    )


def offer(api, auth_header, cid: str) -> dict:
    day = diary.local(utcnow()).date() + timedelta(days=3)
    made = api.post(
        "/booking-links",
        headers=auth_header("admin"),
        json={
            "client_id": cid,
            "therapist_id": "t1",
            "modality": "telephone",
            "starts": [diary.to_utc(day, diary.parse_hhmm("10:00")).isoformat()],
        },
    )
    assert made.status_code == 201, made.json
    return made.json


def test_the_link_goes_to_the_enquirer_with_a_token_minted_at_send_time(
    linked_settings, scheduling, feed, mail, sms, workers, auth_header, book
):
    workers.start(*feed.relays(), *service_workers(linked_settings, "notifications"))
    app, _ = scheduling
    api = app.test_client()
    therapist = {
        "therapist_id": "t1",
        "name": "Ann Therapist",
        "email": "ann@practice.test",
        "modalities": ["telephone"],
        "rooms": [],
    }
    assert api.post("/therapists", headers=auth_header("admin"), json=therapist).status_code == 201
    hours = {"weekly_hours": WEEK, "exceptions": []}
    put = api.put("/therapists/t1/availability", headers=auth_header("admin"), json=hours)
    assert put.status_code == 200
    enquiry(feed, "sam", email="sam@person.test", phone=None, contact_by="email")
    enquiry(feed, "kim", email=None, phone="+447700900555", contact_by="phone")
    offer(api, auth_header, "sam")
    offer(api, auth_header, "kim")

    wait(lambda: mail.to("sam@person.test"), message="the link by e-mail")
    wait(lambda: sms.delivered, message="the link by text")
    body = mail.to("sam@person.test")[0].get_content()
    assert "Choose a time" in mail.to("sam@person.test")[0]["Subject"]
    token = re.search(r"https://portal\.practice\.test/book-online/(\S+)", body).group(1)
    assert "/book-online/" in sms.delivered[0]["body"]

    opened = api.post(
        "/booking-links/open",
        headers={
            "Authorization": f"Bearer {service_token(linked_settings.token_secret, 'portal')}"
        },
        json={"token": token},
    )
    assert opened.status_code == 200 and opened.json["therapist_name"] == "Ann Therapist"
    stored = repr(list(book.find())) + repr(list(book.database["events"].find()))
    assert token not in stored

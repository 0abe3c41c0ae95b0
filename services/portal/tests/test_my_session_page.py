"""The client's own link to one session (issue 17, item 2) through the portal, with the real
scheduling service served over HTTP on the real broker and store: reception sends it from
the session page; the client, on the public page, sees the session and the other free times
of the same therapist, moves it once (a used link is the plain 404 page), or cancels another
one (late inside 24 hours, as staff would record it). Bad input is answered on the page with
nothing stored, never a 500; a flood on a link is 429."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from services.scheduling.domain import diary
from services.scheduling.tests.conftest import apply_records_directly, register_client
from shared.auth import service_token
from shared.events import utcnow

from .conftest import csrf_of
from .test_enquiry_pages import (  # noqa: F401  (fixtures)
    events,
    lead_token,
    portal,
    post_form,
    stack,
    therapist,
)


def book(stack, auth_header, days: int, hour: int) -> str:  # noqa: F811
    day = diary.local(utcnow()).date() + timedelta(days=days)
    made = (
        stack["scheduling"]
        .test_client()
        .post(
            "/sessions",
            headers=auth_header("admin"),
            json={
                "client_id": "emma",
                "therapist_id": "t1",
                "kind": "treatment",
                "modality": "telephone",
                "starts_at": diary.to_utc(day, diary.parse_hhmm(f"{hour:02d}:00")).isoformat(),
            },
        )
    )
    assert made.status_code == 201, made.json
    return made.json["session_id"]


def mint(stack, settings, session_id: str) -> str:  # noqa: F811
    """The token, as the notifications service fetches it for the message to the client."""
    with stack["scheduling"].app_context():
        from shared.web import context

        link = context().store.events.find_one(
            {"type": "SessionLinkIssued", "data.session_id": session_id}
        )
    minted = (
        stack["scheduling"]
        .test_client()
        .post(
            f"/session-links/{link['data']['link_id']}/token",
            headers={
                "Authorization": f"Bearer {service_token(settings.token_secret, 'notifications')}"
            },
        )
    )
    assert minted.status_code == 201, minted.json
    return minted.json["token"]


@pytest.fixture
def emma(stack, therapist, settings):  # noqa: F811
    register_client(settings, "emma", "t1")
    apply_records_directly(settings)
    return "emma"


def send_link(reception, session_id: str) -> None:
    page = reception.get(f"/sessions/{session_id}").get_data(as_text=True)
    assert "Send the client a link to move or cancel" in page
    form = re.search(r"<form[^>]*client-link.*?</form>", page, re.S).group(0)
    hidden = dict(re.findall(r'type="hidden" name="([a-z_]+)" value="([^"]*)"', form))
    sent = reception.post(f"/sessions/{session_id}/client-link", data=hidden)
    assert sent.status_code == 302, sent.get_data(as_text=True)


def test_the_client_moves_a_session_by_their_link_once(
    stack,  # noqa: F811
    emma,
    signed_in,
    settings,
    auth_header,
):
    sid = book(stack, auth_header, 5, 10)
    reception = signed_in("admin")
    send_link(reception, sid)
    token = mint(stack, settings, sid)
    assert token not in reception.get(f"/sessions/{sid}").get_data(as_text=True)

    person = stack["portal"].test_client()
    shown = person.get(f"/my-session/{token}")
    html = shown.get_data(as_text=True)
    assert shown.status_code == 200 and "Ann Therapist" in html, html
    assert shown.headers["Cache-Control"] == "no-store"
    assert "Move my appointment" in html and "more than 24 hours' notice" in html
    times = re.findall(r'name="starts_at" value="([^"]+)"', html)
    assert times

    before = events(stack["scheduling"])
    for data in ({}, {"starts_at": "2020-01-01T10:00:00+00:00"}, {"starts_at": "soon"}):
        refused = post_form(person, html, "my-session", f"/my-session/{token}", data)
        assert refused.status_code == 422, (data, refused.status_code)
        assert "choose" in refused.get_data(as_text=True).lower()
    nothing = person.post(
        f"/my-session/{token}", data={"csrf_token": csrf_of(html), "action": "explode"}
    )
    assert nothing.status_code == 422
    assert events(stack["scheduling"]) == before

    moved = post_form(person, html, "my-session", f"/my-session/{token}", {"starts_at": times[3]})
    assert moved.status_code == 200, moved.get_data(as_text=True)
    assert "Your appointment has moved" in moved.get_data(as_text=True)
    assert person.get(f"/my-session/{token}").status_code == 404  # used: the plain page
    lead = {"Authorization": f"Bearer {lead_token(settings)}"}
    now = stack["scheduling"].test_client().get(f"/sessions/{sid}", headers=lead).json
    assert datetime.fromisoformat(now["starts_at"]) == datetime.fromisoformat(times[3])


def test_the_client_cancels_a_session_inside_the_notice_period_as_a_late_one(
    stack,  # noqa: F811
    emma,
    signed_in,
    settings,
    auth_header,
):
    sid = book(stack, auth_header, 1, 16)  # tomorrow 16:00: under 24 h only late in the day
    send_link(signed_in("admin"), sid)
    token = mint(stack, settings, sid)
    person = stack["portal"].test_client()
    html = person.get(f"/my-session/{token}").get_data(as_text=True)
    lead = {"Authorization": f"Bearer {lead_token(settings)}"}
    starts = datetime.fromisoformat(
        stack["scheduling"].test_client().get(f"/sessions/{sid}", headers=lead).json["starts_at"]
    )
    late = starts - utcnow() < timedelta(hours=24)
    assert ("late cancellation" in html) == late
    assert ("Move my appointment" in html) == (not late)
    done = post_form(person, html, "my-session-cancel", f"/my-session/{token}", {})
    assert done.status_code == 200, done.get_data(as_text=True)
    assert "Your appointment is cancelled" in done.get_data(as_text=True)
    session = stack["scheduling"].test_client().get(f"/sessions/{sid}", headers=lead).json
    assert (session["status"], session["cancelled_by"], session["late"]) == (
        "cancelled",
        "client",
        late,
    )


def test_a_wrong_link_is_one_plain_page_and_a_flood_gets_429(stack):  # noqa: F811
    # a window far longer than the test: a 600 s one aligned to the clock could start
    # afresh between two attempts (it did, at 22:10 and 22:20 UTC)
    stack["portal"].config["PUBLIC_RATE_PER_LINK"] = (3, 10**9)
    person = stack["portal"].test_client()
    answers = [person.get("/my-session/guessed-token").status_code for _ in range(5)]
    assert answers == [404, 404, 404, 429, 429]
    for junk in ("x" * 300, "%00", "..%2f..%2fetc", "ünïcødé"):
        page = person.get(f"/my-session/{junk}")
        assert page.status_code in (404, 429), (junk, page.status_code)
    csrf = csrf_of(person.get("/enquire").get_data(as_text=True))
    flood = person.post("/my-session/guessed-token", data={"csrf_token": csrf, "action": "cancel"})
    assert flood.status_code == 429
    assert events(stack["scheduling"], {"SessionCancelled", "SessionRescheduled"}) == []


def test_a_failure_on_a_session_link_never_logs_the_link(stack, monkeypatch, caplog):  # noqa: F811
    app = stack["portal"]
    app.config.update(TESTING=False, PROPAGATE_EXCEPTIONS=False)
    from services.portal.pages import public_session

    def broken():
        raise RuntimeError("boom")

    monkeypatch.setattr(public_session, "public_backend", broken)
    with caplog.at_level("ERROR"):
        answer = app.test_client().get("/my-session/secret-token-456")
    assert answer.status_code == 500
    assert "Exception on /my-session/<link>" in caplog.text
    assert "secret-token-456" not in caplog.text

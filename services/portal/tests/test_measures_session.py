"""Answers entered in the room belong to a session: the entry form offers the client's
sessions (scheduling's list, cancelled ones left out), with today's chosen, else the next
one, else the latest; the choice goes to measures as `session_id` (its `ResponseIn`), and
"not about a session" sends none."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from .conftest import csrf_of
from .test_measures_pages import measures_page

LONDON = ZoneInfo("Europe/London")


def _session(sid: str, days: float, number: int, status: str = "booked") -> dict:
    """A session at noon in the practice's time, `days` from today as the test runs (not as
    the module is collected: a run that crosses midnight moves "today")."""
    noon = datetime.combine(datetime.now(LONDON).date(), time(12), tzinfo=LONDON)
    return {
        "session_id": sid,
        "client_id": "c-1",
        "therapist_id": "t-1",
        "number": number,
        "kind": "treatment",
        "status": status,
        "starts_at": (noon + timedelta(days=days)).isoformat(),
        "ends_at": (noon + timedelta(days=days, minutes=50)).isoformat(),
    }


def _selected(html: str) -> str:
    start = html.index('id="enter-session"')
    chosen = html[start : html.index("</select>", start)].split(" selected")[0]
    return chosen.rsplit('value="', 1)[1].split('"', 1)[0]


def test_the_entry_form_offers_the_sessions_and_chooses_todays(signed_in, services):
    measures_page(services)
    sessions = [
        _session("s-past", -7, 1, "attended"),
        _session("s-today", 0, 2),
        _session("s-next", 7, 3),
        _session("s-gone", 3, 4, "cancelled"),
    ]
    services.on("GET", "/clients/c-1/sessions", sessions)
    html = signed_in("therapist").get("/clients/c-1/measures").get_data(as_text=True)
    assert '<label for="enter-session">Session</label>' in html
    assert _selected(html) == "s-today"
    assert 'value="s-past"' in html and 'value="s-next"' in html
    assert 'value="s-gone"' not in html  # a cancelled session is not one answers belong to
    assert "Not about a session" in html


def test_without_a_session_today_the_next_one_else_the_latest_is_chosen(signed_in, services):
    measures_page(services)
    client = signed_in("therapist")
    services.on(
        "GET",
        "/clients/c-1/sessions",
        [_session("s-past", -7, 1, "attended"), _session("s-next", 7, 2)],
    )
    assert _selected(client.get("/clients/c-1/measures").get_data(as_text=True)) == "s-next"
    services.on(
        "GET",
        "/clients/c-1/sessions",
        [_session("s-old", -14, 1, "attended"), _session("s-last", -7, 2, "attended")],
    )
    assert _selected(client.get("/clients/c-1/measures").get_data(as_text=True)) == "s-last"


def _post(client, html: str, session_id: str):
    return client.post(
        "/clients/c-1/measures/responses",
        data={
            "csrf_token": csrf_of(html),
            "form": "enter-answers",
            "back": "/clients/c-1/measures",
            "idempotency_key": "k-1",
            "instrument": ["PHQ-9"],
            "session_id": session_id,
            **{f"answers.PHQ-9.{n}": "1" for n in range(1, 10)},
        },
    )


def test_the_chosen_session_is_sent_with_the_answers(signed_in, services):
    measures_page(services)
    services.on("GET", "/clients/c-1/sessions", [_session("s-today", 0, 2)])
    services.on(
        "POST",
        "/responses",
        {"response_id": "r-1", "scores": [{"instrument": "PHQ-9", "total": 9}]},
        status=201,
    )
    client = signed_in("therapist")
    html = client.get("/clients/c-1/measures").get_data(as_text=True)
    assert _post(client, html, "s-today").status_code == 302
    assert services.last("POST", "/responses")["json"]["session_id"] == "s-today"
    assert _post(client, html, "").status_code == 302
    assert "session_id" not in services.last("POST", "/responses")["json"]


def test_a_session_measures_refuses_is_shown_beside_the_choice(signed_in, services):
    measures_page(services)
    services.on("GET", "/clients/c-1/sessions", [_session("s-today", 0, 2)])
    services.on(
        "POST",
        "/responses",
        {
            "title": "Unprocessable Entity",
            "status": 422,
            "detail": "no such session for this client",
            "errors": [{"field": "session_id", "reason": "no such session for this client"}],
        },
        status=422,
    )
    client = signed_in("therapist")
    html = client.get("/clients/c-1/measures").get_data(as_text=True)
    again = _post(client, html, "s-today")
    page = again.get_data(as_text=True)
    assert again.status_code == 422
    assert 'id="enter-answers-session_id-error"' in page
    assert "no such session for this client" in page and _selected(page) == "s-today"

"""The client's homework page (public, issue 17 item 3) against a stand-in for records: it
shows the client's tasks and diary and nothing of staff, sends what they write with the
portal's service token and the link in the body, shows a refusal beside the field with the
words kept, answers any link not valid now with the same page, and a flood with 429."""

import re

import jwt

from .conftest import csrf_of

TOKEN = "t0k3n-" + "a" * 37
VIEW = {
    "given_name": "Emma",
    "tasks": [
        {
            "task_id": "k1",
            "description": "practising a difficult conversation",
            "due_at": None,
            "status": "open",
            "reflection": None,
        }
    ],
    "entries": [
        {
            "entry_id": "e1",
            "text": "writing down important events or feelings",
            "task_id": None,
            "written_at": "2026-12-01T19:00:00Z",
        }
    ],
    "expires_at": "2026-12-15T19:00:00Z",
}


def _page(client, services):
    services.on("POST", "/homework/view", VIEW)
    r = client.get(f"/homework/{TOKEN}")
    assert r.status_code == 200, r.get_data(as_text=True)[:2000]
    return r.get_data(as_text=True)


def test_the_page_shows_the_clients_tasks_and_diary_and_no_staff_data(portal, services, settings):
    html = _page(portal.test_client(), services)
    assert "Hello Emma" in html and "practising a difficult conversation" in html
    assert "writing down important events or feelings" in html
    assert "Sign out" not in html and "Caseload" not in html and "Diary</a>" not in html
    call = services.last("POST", "/homework/view")
    assert call["json"] == {"token": TOKEN}
    claims = jwt.decode(
        call["authorization"].split()[1],
        settings.token_secret,
        algorithms=["HS256"],
        options={"verify_aud": False},
    )
    assert claims["role"] == "service", "records is reached as the portal service, not a user"


def test_the_client_writes_an_entry_and_marks_a_task_done(portal, services):
    client = portal.test_client()
    csrf = csrf_of(_page(client, services))
    services.on("POST", "/homework/entries", {"entry_id": "e2"}, status=201)
    r = client.post(
        f"/homework/{TOKEN}",
        data={"csrf_token": csrf, "action": "entry", "text": "I felt calmer", "task_id": "k1"},
    )
    assert r.status_code == 303
    assert services.last("POST", "/homework/entries")["json"] == {
        "token": TOKEN,
        "text": "I felt calmer",
        "task_id": "k1",
    }
    services.on("POST", "/homework/tasks/k1/done", {"task_id": "k1", "status": "completed"})
    r = client.post(
        f"/homework/{TOKEN}",
        data={"csrf_token": csrf, "action": "done", "task_id": "k1", "reflection": "I said it"},
    )
    assert r.status_code == 303
    assert services.last("POST", "/homework/tasks/k1/done")["json"] == {
        "token": TOKEN,
        "reflection": "I said it",
    }
    assert "Marked as done" in client.get(f"/homework/{TOKEN}").get_data(as_text=True)


def test_a_refused_entry_is_shown_beside_the_field_with_the_words_kept(portal, services):
    client = portal.test_client()
    csrf = csrf_of(_page(client, services))
    services.on(
        "POST",
        "/homework/entries",
        {
            "title": "Unprocessable Entity",
            "status": 422,
            "detail": "invalid input",
            "errors": [{"field": "text", "reason": "control or direction characters"}],
        },
        status=422,
    )
    r = client.post(
        f"/homework/{TOKEN}", data={"csrf_token": csrf, "action": "entry", "text": "my words"}
    )
    html = r.get_data(as_text=True)
    assert r.status_code == 422
    assert re.search(r'id="hw-text-error"[^>]*>control or direction characters', html)
    assert ">my words</textarea>" in html
    r = client.post(
        f"/homework/{TOKEN}",
        data={"csrf_token": csrf, "action": "done", "task_id": "../x", "reflection": "r"},
    )
    assert r.status_code == 422 and "choose one of your tasks" in r.get_data(as_text=True)


def test_any_link_not_valid_now_gets_the_same_page(portal, services):
    client = portal.test_client()
    services.on("POST", "/homework/view", {"title": "Not Found", "status": 404}, status=404)
    for token in (TOKEN, "short", "x" * 101, "bad!token.aaaaaaaaaaaaaaaaaaaaaa"):
        r = client.get(f"/homework/{token}")
        assert r.status_code == 404 and "This link is not valid" in r.get_data(as_text=True)


def test_a_flood_is_answered_with_429_and_nothing_reaches_records(portal, services):
    client = portal.test_client()
    services.on("POST", "/homework/view", VIEW)
    statuses = [client.get(f"/homework/{TOKEN}").status_code for _ in range(31)]
    assert statuses[:30] == [200] * 30 and statuses[30] == 429
    calls = [c for c in services.calls if c["path"] == "/homework/view"]
    assert len(calls) == 30, "the refused attempt never reached records"


def test_the_page_has_the_strict_csp_and_is_not_cached_or_indexed(portal, services):
    client = portal.test_client()
    services.on("POST", "/homework/view", VIEW)
    r = client.get(f"/homework/{TOKEN}")
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert r.headers["Cache-Control"] == "no-store" and r.headers["X-Robots-Tag"] == "noindex"


def test_the_therapist_sees_the_diary_on_the_record_and_on_the_session_page(signed_in, services):
    from .test_pages import EMMA_FULL, SESSION

    entries = {
        "client_id": "c-1",
        "entries": VIEW["entries"],
        "tasks_done": [{**VIEW["tasks"][0], "status": "completed", "reflection": "I said it"}],
    }
    services.on("GET", "/therapists", [])
    services.on("GET", "/clients/c-1", {**EMMA_FULL, "diary_entries": VIEW["entries"]})
    services.on("GET", "/clients/c-1/sessions", [])
    services.on("GET", "/clients/c-1/history", {"events": []})
    services.on("GET", "/sessions/s-1", {**SESSION, "client_id": "c-1"})
    services.on("GET", "/clients/c-1/diary-entries", entries)
    client = signed_in("therapist")
    record = client.get("/clients/c-1").get_data(as_text=True)
    assert "From the client's diary" in record
    assert "writing down important events or feelings" in record
    session = client.get("/sessions/s-1").get_data(as_text=True)
    assert "writing down important events or feelings" in session
    assert "practising a difficult conversation: “I said it”" in session
    reception = signed_in("admin").get("/sessions/s-1").get_data(as_text=True)
    assert "From the client's diary" not in reception


def test_behind_a_proxy_the_limit_counts_the_clients_address_not_the_proxys(settings, services):
    from services.portal.app import create_app
    from services.portal.config import PortalConfig

    urls = dict.fromkeys(("scheduling", "records", "measures", "notifications"), services.url)
    app = create_app(
        settings.with_(service_urls=urls, extra={"proxy_hops": 1}),
        PortalConfig(secret_key="portal-test-secret-" + "x" * 24, cookie_secure=False),
    )
    services.on("POST", "/homework/view", VIEW)
    client = app.test_client()
    tokens = ["a" * 30 + str(n).zfill(3) for n in range(61)]
    for n, token in enumerate(tokens[:60]):  # 60 people behind the same proxy, one link each
        r = client.get(f"/homework/{token}", headers={"X-Forwarded-For": f"203.0.113.{n}"})
        assert r.status_code == 200
    same = {"X-Forwarded-For": "203.0.113.200"}
    assert client.get(f"/homework/{tokens[60]}", headers=same).status_code == 200

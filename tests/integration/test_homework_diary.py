"""The homework diary across records and notifications on the real broker and store, with a
real SMTP server (issue 17, item 3): the therapist sets Emma a task; the task reminder brings
her a personal link to her homework page; there (as the portal's page does it, with its
service token) she sees the task, writes two diary entries and marks the task done; her
therapist reads them on the record."""

import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
from werkzeug.serving import make_server

from shared import services
from testkit.plugin import eventually, service_workers
from testkit.procs import free_port

EMMA_EMAIL = "emma.h@client.test"


@pytest.fixture
def served(settings, mail, workers, monkeypatch):
    """Records and notifications, records over real HTTP (notifications fetches the
    client's homework link from it at send time, as in production)."""
    monkeypatch.setenv("RAPPORT_QUIET_HOURS", "off")
    port = free_port()
    s = settings.with_(
        service_urls={**settings.service_urls, "records": f"http://127.0.0.1:{port}"},
        extra={
            "notifications": {
                "smtp_port": mail.port,
                "poll_seconds": 0.1,
                "backoff_seconds": 0.3,
                "quiet_hours": "off",
                "portal_url": "https://portal.practice.test",
            }
        },
    )
    apps = {name: services.load(name).create_app(s) for name in ("records", "notifications")}
    server = make_server("127.0.0.1", port, apps["records"], threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    workers.start(*[w for name in ("records", "notifications") for w in service_workers(s, name)])
    yield {"records": apps["records"].test_client(), "mail": mail}
    server.shutdown()


def _ok(response, status=200):
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()


def _text(message) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    return f"{message['Subject']}\n{part.get_content() if part else ''}"


def test_the_task_reminder_brings_the_homework_link_and_the_therapist_reads_the_diary(
    served, auth_header
):
    records, mail = served["records"], served["mail"]
    reception, portal = auth_header("admin"), auth_header("service", sub="service:portal")
    therapist = auth_header("therapist", therapist_id="t-emma")
    emma = {
        "given_name": "Emma",
        "family_name": "Hart",
        "date_of_birth": "1981-03-14",
        "email": EMMA_EMAIL,
        "preferred_modality": "video",
        "reminder_channels": ["email"],
        "therapist_id": "t-emma",
        "referral_source": "GP",
    }
    cid = _ok(records.post("/clients", headers=reception, json=emma), 201)["client_id"]
    due = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0)
    task = {"description": "practising a difficult conversation", "due_at": due.isoformat()}
    tid = _ok(records.post(f"/clients/{cid}/tasks", headers=therapist, json=task), 201)["task_id"]

    def link_in_reminder():
        for message in mail.to(EMMA_EMAIL):
            found = re.findall(
                r"https://portal\.practice\.test/homework/([A-Za-z0-9_-]+)", _text(message)
            )
            if found:
                return found[0], _text(message)
        return None

    token, text = eventually(link_in_reminder, timeout=90, message="the task reminder's link")
    assert "practising" not in text, "the task's wording stays out of the message"

    page = _ok(records.post("/homework/view", headers=portal, json={"token": token}))
    assert [t["description"] for t in page["tasks"]] == ["practising a difficult conversation"]
    for words in ("writing down important events or feelings", "Mark listened this time"):
        body = {"token": token, "text": words}
        _ok(records.post("/homework/entries", headers=portal, json=body), 201)
    done = {"token": token, "reflection": "I said what I needed without a row"}
    _ok(records.post(f"/homework/tasks/{tid}/done", headers=portal, json=done))

    diary = _ok(records.get(f"/clients/{cid}/diary-entries", headers=therapist))
    assert {e["text"] for e in diary["entries"]} == {
        "writing down important events or feelings",
        "Mark listened this time",
    }
    assert diary["tasks_done"][0]["reflection"] == "I said what I needed without a row"

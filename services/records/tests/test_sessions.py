"""Issue 15, #10: a note, an assessment, a task or a task review names a session of this
client, as scheduling reported it, or is refused with 422 naming `session_id`. Against the
real broker and store, with records' consumers running: scheduling publishes the booking
and records learns it from the topic."""

from __future__ import annotations

import time

import pytest

from services.records.app import create_app
from testkit.plugin import eventually, service_workers

from .support import EMMA, EMMA_ASSESSMENT, JOHN, T1, T2, Scheduling, new_session_id


@pytest.fixture
def api(settings):
    return create_app(settings).test_client()


@pytest.fixture
def staff(auth_header):
    return {
        "admin": auth_header("admin", sub="reception-user"),
        "t1": auth_header("therapist", sub="t1-user", therapist_id=T1),
        "t2": auth_header("therapist", sub="t2-user", therapist_id=T2),
    }


def _client(api, staff, details):
    r = api.post("/clients", json=details, headers=staff["admin"])
    assert r.status_code == 201, r.get_json()
    return r.get_json()["client_id"]


def _refused(response) -> str:
    assert response.status_code == 422, (response.status_code, response.get_json())
    body = response.get_json()
    assert [e["field"] for e in body["errors"]] == ["session_id"], body
    return body["errors"][0]["reason"]


def test_only_a_session_of_this_client_may_be_named(api, staff, settings, workers):
    workers.start(*service_workers(settings, "records"))
    emma, john = _client(api, staff, EMMA), _client(api, staff, JOHN)
    scheduling = Scheduling(settings)
    emma_session = scheduling.facts(emma, T1, 1, session_id=new_session_id())
    john_session = scheduling.facts(john, T2, 1, session_id=new_session_id())
    scheduling.book(john_session, 1)
    scheduling.publish()
    # John's booking has reached records before Emma's is even written
    eventually(
        lambda: (
            api.post(
                f"/clients/{john}/notes",
                headers=staff["t2"],
                json={"session_id": john_session["session_id"], "text": "First session"},
            ).status_code
            == 201
        )
    )

    # Emma's therapist names John's session: refused at once, on every write that names one
    t1 = staff["t1"]
    other = john_session["session_id"]
    started = time.monotonic()
    reason = _refused(
        api.post(
            f"/clients/{emma}/notes", headers=t1, json={"session_id": other, "text": "wrong client"}
        )
    )
    assert time.monotonic() - started < 2.0  # a session known to be another's is not waited for
    assert "no session" in reason and "John" not in reason
    _refused(
        api.post(
            f"/clients/{emma}/assessment", headers=t1, json={**EMMA_ASSESSMENT, "session_id": other}
        )
    )
    _refused(
        api.post(
            f"/clients/{emma}/tasks", headers=t1, json={"description": "diary", "session_id": other}
        )
    )
    task = api.post(f"/clients/{emma}/tasks", headers=t1, json={"description": "diary"})
    assert task.status_code == 201  # a task need not name a session
    task_id = task.get_json()["task_id"]
    _refused(
        api.post(
            f"/tasks/{task_id}/review",
            headers=t1,
            json={"review": "went over it", "session_id": other},
        )
    )
    # a made-up session: refused after the bounded wait (3 s), not held indefinitely
    started = time.monotonic()
    _refused(
        api.post(
            f"/clients/{emma}/notes",
            headers=t1,
            json={"session_id": new_session_id(), "text": "no such session"},
        )
    )
    assert 2.5 < time.monotonic() - started < 8.0
    notes = api.get(f"/clients/{emma}/notes", headers=t1).get_json()["notes"]
    assert notes == []  # nothing was written by any refusal

    # Emma's own session, written the moment scheduling has published it: the write waits
    # for the projection instead of being refused because the consumer is behind
    scheduling.book(emma_session, 1)
    scheduling.publish()
    sid = emma_session["session_id"]
    note = api.post(
        f"/clients/{emma}/notes", headers=t1, json={"session_id": sid, "text": "Session 1"}
    )
    assert note.status_code == 201, note.get_json()
    assert note.get_json()["session_id"] == sid
    assert (
        api.post(
            f"/clients/{emma}/assessment", headers=t1, json={**EMMA_ASSESSMENT, "session_id": sid}
        ).status_code
        == 201
    )
    assert (
        api.post(
            f"/tasks/{task_id}/review",
            headers=t1,
            json={"review": "went over it", "session_id": sid},
        ).status_code
        == 200
    )

"""The homework diary against the real store (issue 17, item 3): the therapist issues the
client's link; at it (the portal's service token, the link in the body) the client sees their
tasks, writes entries and a reflection and marks a task done; the therapist reads them on the
record; they are sealed under the client's key, in the export; bad input is refused naming
the field and stores nothing; a wrong link is 404."""

import pytest

from services.records.app import create_app
from services.records.queries.homework import HomeworkLinks

from .support import EMMA, T1


@pytest.fixture
def api(settings):
    return create_app(settings).test_client()


@pytest.fixture
def staff(auth_header):
    return {
        "admin": auth_header("admin", sub="reception-user"),
        "lead": auth_header("clinical_lead", sub="lead-user"),
        "t1": auth_header("therapist", sub="t1-user", therapist_id=T1),
        "portal": auth_header("service", sub="service:portal"),
    }


def ok(response, status=200):
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()


@pytest.fixture
def emma(api, staff):
    cid = ok(api.post("/clients", json=EMMA, headers=staff["admin"]), 201)["client_id"]
    task = {"description": "practising a difficult conversation"}
    tid = ok(api.post(f"/clients/{cid}/tasks", json=task, headers=staff["t1"]), 201)["task_id"]
    link = ok(api.post(f"/clients/{cid}/homework-links", headers=staff["t1"]), 201)
    return cid, tid, link["token"]


def test_the_client_writes_at_the_link_and_the_therapist_reads_it(api, staff, emma, settings):
    cid, tid, token = emma
    portal = staff["portal"]
    page = ok(api.post("/homework/view", json={"token": token}, headers=portal))
    assert page["given_name"] == "Emma" and page["entries"] == []
    assert [t["description"] for t in page["tasks"]] == ["practising a difficult conversation"]
    assert set(page) == {"given_name", "tasks", "entries", "expires_at"}, "nothing clinical"

    body = {"token": token, "text": "writing down important events or feelings"}
    ok(api.post("/homework/entries", json=body, headers=portal), 201)
    reflection = {"token": token, "text": "I said what I needed, calmly", "task_id": tid}
    ok(api.post("/homework/entries", json=reflection, headers=portal), 201)
    done = ok(
        api.post(
            f"/homework/tasks/{tid}/done",
            json={"token": token, "reflection": "Hard, but I did it"},
            headers=portal,
        )
    )
    assert done["status"] == "completed"

    read = ok(api.get(f"/clients/{cid}/diary-entries", headers=staff["t1"]))
    assert {e["text"] for e in read["entries"]} == {
        "writing down important events or feelings",
        "I said what I needed, calmly",
    }
    assert read["tasks_done"][0]["reflection"] == "Hard, but I did it"
    record = ok(api.get(f"/clients/{cid}", headers=staff["t1"]))
    assert len(record["diary_entries"]) == 2
    export = ok(api.get(f"/clients/{cid}/export", headers=staff["lead"]))
    assert len(export["record"]["diary_entries"]) == 2
    assert any(e["type"] == "DiaryEntryWritten" for e in export["events"])
    assert ok(api.get(f"/clients/{cid}", headers=staff["admin"])).get("diary_entries") is None

    from shared.web import ServiceContext

    raw = ServiceContext("records", settings).store.events.find_one({"type": "DiaryEntryWritten"})
    assert raw["data"]["text"]["$enc"] == 1, "the client's words are sealed under their key"
    links = HomeworkLinks(ServiceContext("records", settings).db)
    assert links.links.find_one({"client_id": cid})["_id"] != token, "only the hash is kept"
    assert links.forget(cid) == 1
    assert api.post("/homework/view", json={"token": token}, headers=portal).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": ""}, "text"),
        ({"text": "x" * 5001}, "text"),
        ({"text": "bad \u202e direction"}, "text"),
        ({"text": "ok", "task_id": "../etc"}, "task_id"),
        ({"text": "ok", "extra": 1}, "extra"),
    ],
)
def test_bad_entries_are_refused_naming_the_field_and_nothing_is_stored(
    api, staff, emma, body, field
):
    cid, _, token = emma
    r = api.post("/homework/entries", json={"token": token, **body}, headers=staff["portal"])
    assert r.status_code == 422 and field in str(r.get_json()), r.get_json()
    assert ok(api.get(f"/clients/{cid}/diary-entries", headers=staff["t1"]))["entries"] == []


def test_a_wrong_link_is_404_and_only_the_portal_service_may_use_a_link(api, staff, emma):
    cid, tid, token = emma
    wrong = {"token": "x" * 43, "text": "hello"}
    assert api.post("/homework/entries", json=wrong, headers=staff["portal"]).status_code == 404
    assert api.post("/homework/view", json={"token": token}, headers=staff["t1"]).status_code == 403
    assert api.post(f"/clients/{cid}/homework-links", headers=staff["admin"]).status_code == 403
    other = {"token": token, "reflection": None}
    r = api.post("/homework/tasks/not-a-task/done", json=other, headers=staff["portal"])
    assert r.status_code == 404
